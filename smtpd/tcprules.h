// tcprules: per-client environment rules from a text file, as ucspi-tcp's tcprules reads
// it and tcpserver applies it (spec qmail-protocols.md §2.11). Parsed once per worker
// start (before the sandbox); matched for every connection.
//
// Line format: `key:allow|deny[,VAR=<d>value<d>]...`, '#' comments, blank lines ignored.
// <d> is any delimiter character (usually '"'). Keys: an IP ("1.2.3.4", "::1"), an IPv4
// prefix ending in '.', a last-component range ("1.2.3.4-7" or "1.2.3.4-7."), "=host",
// "=.suffix", "=" (any known host name), and "" (the default rule). IPv6 keys are matched
// as text on the compressed form; a key ending in ':' is a prefix.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sppd::smtpd {

struct TcpRulesError : std::runtime_error {
  using std::runtime_error::runtime_error;  // "file:line: what"
};

struct TcpRule {
  bool allow = true;
  std::vector<std::pair<std::string, std::string>> env;  // in file order
};

class TcpRules {
 public:
  // Parses rules text; path is used in error messages only. Throws TcpRulesError.
  static TcpRules parse(const std::string& text, const std::string& path);
  // Reads and parses a file. Throws TcpRulesError (also when the file cannot be read).
  static TcpRules load(const std::string& path);

  // First match in tcpserver's order: ip, =host, IPv4 prefixes longest first, =.suffix for
  // each dot in host, "=" if a host is known, then the default rule. nullopt = no rule
  // matched (tcpserver allows with no extra environment).
  std::optional<TcpRule> match(const std::string& remote_ip,
                               const std::optional<std::string>& remote_host) const;
  // True if any rule key starts with '=' (so a PTR lookup is needed before matching).
  bool uses_host_names() const { return uses_host_names_; }
  // Every value any rule gives the variable name (e.g. the pattern files BADMAILFROM names,
  // which must be read before the sandbox); no duplicates.
  std::vector<std::string> values_of(const std::string& name) const;

 private:
  std::map<std::string, TcpRule> rules_;  // key -> first rule given for it
  bool uses_host_names_ = false;
};

}  // namespace sppd::smtpd
