// Pattern files with regex(7) and vanilla entries (see patterns.h). Runs in the worker:
// compiled before the sandbox, matched per command.
#include "smtpd/patterns.h"

#include <cctype>

#include "common/ascii.h"

namespace sppd::smtpd {
namespace {

using ascii::lower;

}  // namespace

bool is_plain_pattern(const std::string& line) {
  if (line.empty() || line[0] == '!') return false;
  return line.find_first_of("\\^$*?()[]{}|") == std::string::npos;
}

PatternFile::PatternFile(const std::vector<std::string>& lines, const std::string& path,
                         std::vector<std::string>* warnings)
    : path_(path) {
  for (size_t number = 0; number < lines.size(); ++number) {
    const std::string& line = lines[number];
    Entry entry;
    entry.line = line;
    if (is_plain_pattern(line)) {
      entry.plain = true;
      entry.lowered = lower(line);
      entries_.push_back(std::move(entry));
      continue;
    }
    entry.inverted = line[0] == '!';
    std::string pattern = entry.inverted ? line.substr(1) : line;
    entry.regex = std::make_unique<regex_t>();
    int status = regcomp(entry.regex.get(), pattern.c_str(), REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (status != 0) {
      char why[256];
      regerror(status, entry.regex.get(), why, sizeof(why));
      // regcomp frees what it allocated when it fails; nothing to regfree.
      entry.regex.reset();
      if (warnings) {
        warnings->push_back(path + ":" + std::to_string(number + 1) + ": bad regex \"" + line +
                            "\": " + why + "; line ignored");
      }
      continue;
    }
    entries_.push_back(std::move(entry));
  }

  // Ordinary regex lines joined as "(a)|(b)|..."; a back reference (a glibc extension in
  // ERE) would count its groups differently inside the alternation, so such lines stay out,
  // as do the lines of a block that does not compile as a whole (it should).
  std::vector<const Entry*> block;
  auto close_block = [&] {
    if (block.empty()) return;
    std::string alternation;
    for (const Entry* entry : block)
      alternation += (alternation.empty() ? "(" : "|(") + entry->line + ")";
    auto regex = std::make_unique<regex_t>();
    if (regcomp(regex.get(), alternation.c_str(), REG_EXTENDED | REG_ICASE | REG_NOSUB) == 0) {
      alternations_.push_back(std::move(regex));
    } else {
      outside_alternations_.insert(outside_alternations_.end(), block.begin(), block.end());
    }
    block.clear();
  };
  for (const Entry& entry : entries_) {
    bool back_reference = false;
    for (size_t i = 0; i + 1 < entry.line.size(); ++i) {
      if (entry.line[i] == '\\' && std::isdigit(static_cast<unsigned char>(entry.line[i + 1]))) {
        back_reference = true;
      }
    }
    if (entry.plain || entry.inverted || back_reference) {
      outside_alternations_.push_back(&entry);
      continue;
    }
    block.push_back(&entry);
    if (block.size() == kLinesPerAlternation) close_block();
  }
  close_block();
}

PatternFile::~PatternFile() {
  for (Entry& entry : entries_) {
    if (entry.regex) regfree(entry.regex.get());
  }
  for (auto& regex : alternations_) regfree(regex.get());
}

bool PatternFile::entry_matches(const Entry& entry, const std::string& subject,
                                const std::string& lowered) {
  if (!entry.plain) {
    return (regexec(entry.regex.get(), subject.c_str(), 0, nullptr, 0) == 0) != entry.inverted;
  }
  if (entry.lowered[0] == '@') {
    size_t at = lowered.rfind('@');
    return at != std::string::npos && lowered.compare(at, std::string::npos, entry.lowered) == 0;
  }
  return lowered == entry.lowered;
}

bool PatternFile::any_match(const std::string& subject, const std::string& lowered) const {
  for (const Entry* entry : outside_alternations_) {
    if (entry_matches(*entry, subject, lowered)) return true;
  }
  for (const auto& regex : alternations_) {
    if (regexec(regex.get(), subject.c_str(), 0, nullptr, 0) == 0) return true;
  }
  return false;
}

std::optional<PatternFile::Match> PatternFile::match(const std::string& subject) const {
  if (entries_.empty()) return std::nullopt;
  const std::string lowered = lower(subject);
  if (!any_match(subject, lowered)) return std::nullopt;
  for (const Entry& entry : entries_) {
    if (entry_matches(entry, subject, lowered)) return Match{entry.line, entry.plain};
  }
  return std::nullopt;
}

}  // namespace sppd::smtpd
