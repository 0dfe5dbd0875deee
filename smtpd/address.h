// MAIL/RCPT argument parsing with qmail-smtpd's addrparse() rules (spec qmail-protocols.md
// §2.4) plus the RFC 1870 SIZE parameter. Pure functions, unit-tested.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sppd::smtpd {

struct ParsedAddress {
  std::string address;                  // unquoted, source route dropped; may be empty (<>)
  std::vector<std::string> parameters;  // ESMTP parameters after '>' split on spaces
  bool bracketed = false;               // given as <...> (qmail-md's reqbrackets wants that)
};

// Parses the argument of MAIL ("FROM:<a@b> SIZE=10") or RCPT ("TO:<a@b>") exactly as
// qmail's addrparse: after the first '<' up to the first unquoted '>', or (no '<') after
// the first ':' skipping spaces up to the next unquoted space; drops "@route,...:" source
// routes; removes double quotes; backslash escapes the next byte; "box@[d.d.d.d]" where
// d.d.d.d is in local_ips becomes "box@" + localiphost. Returns nullopt for a syntax error,
// including an address whose length + 1 exceeds max_length (qmail: 899 bytes + NUL = 900).
std::optional<ParsedAddress> parse_address(std::string_view argument, size_t max_length,
                                           const std::vector<std::string>& local_ips,
                                           const std::string& localiphost);

// The value of a SIZE=n parameter (case-insensitive name); nullopt if absent or not a
// number (a malformed SIZE is ignored, as qmail's SIZE patches do).
std::optional<unsigned long long> size_parameter(const std::vector<std::string>& parameters);

}  // namespace sppd::smtpd
