// PatternFile: one of qmail-md's pattern files (badhelo, badmailfrom, badmailto/badrcptto,
// goodmailfrom; spec qmail-protocols.md §6.2, DECISIONS.md): one pattern per line, POSIX
// extended regex (regcomp, regex(7)), case-insensitive, unanchored; a leading '!' inverts a
// line (it matches when the regex does not, qregex's meaning). A line without any regex
// syntax ("user@dom", "@dom", "helo.name") keeps vanilla qmail's exact meaning: the whole
// subject, or for "@dom" its domain part, equal ignoring case. Compiled once per worker
// start; matching is pure. A line that does not compile is skipped with a warning.
// Speed: the ordinary regex lines are also compiled together as alternations of up to
// kLinesPerAlternation lines, so a subject that matches nothing (nearly every one) costs one
// regexec per block instead of one per line; only a hit walks the lines to name the first.
#pragma once

#include <regex.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sppd::smtpd {

class PatternFile {
 public:
  struct Match {
    std::string line;    // the pattern as written in the file
    bool plain = false;  // a vanilla entry (no regex syntax), not a regex
  };

  // Compiles lines read from path; each line that is not a valid regex is skipped and
  // described in *warnings as "path:N: ...".
  PatternFile(const std::vector<std::string>& lines, const std::string& path,
              std::vector<std::string>* warnings);
  ~PatternFile();
  PatternFile(const PatternFile&) = delete;
  PatternFile& operator=(const PatternFile&) = delete;

  // The first line, in file order, that matches subject.
  std::optional<Match> match(const std::string& subject) const;
  const std::string& path() const { return path_; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string line;
    bool inverted = false;
    bool plain = false;
    std::string lowered;  // plain entries: the line in lower case
    std::unique_ptr<regex_t> regex;
  };
  static constexpr size_t kLinesPerAlternation = 64;
  // Whether any line matches, using the alternations.
  bool any_match(const std::string& subject, const std::string& lowered) const;
  static bool entry_matches(const Entry& entry, const std::string& subject,
                            const std::string& lowered);

  std::string path_;
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<regex_t>> alternations_;
  std::vector<const Entry*> outside_alternations_;  // plain and '!' lines, back references
};

// Whether a pattern line is a vanilla qmail entry rather than a regex: no '!' in front and
// none of \ ^ $ * ? ( ) [ ] { } | in it ('.' and '+' occur in plain addresses).
bool is_plain_pattern(const std::string& line);

}  // namespace sppd::smtpd
