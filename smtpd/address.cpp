// MAIL/RCPT argument parsing, a faithful port of notqmail's addrparse() (spec
// qmail-protocols.md §2.4) plus the SIZE parameter. Pure functions on hostile input, run in
// the unprivileged worker; the only failure is a too-long address (nullopt -> 555).
#include "smtpd/address.h"

#include <algorithm>
#include <limits>

#include "common/ascii.h"

namespace sppd::smtpd {
namespace {

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

// "[d.d.d.d]" (the whole text) -> "d.d.d.d" with leading zeros dropped, as qmail's
// ip_scanbracket reads it. Components above 255 are refused (qmail silently truncates
// them to a byte; an address like that is never one of ours).
std::optional<std::string> bracketed_ipv4(std::string_view text) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return std::nullopt;
  std::string_view inside = text.substr(1, text.size() - 2);
  std::string normal;
  for (int component = 0; component < 4; ++component) {
    if (component > 0) {
      if (inside.empty() || inside.front() != '.') return std::nullopt;
      inside.remove_prefix(1);
      normal.push_back('.');
    }
    size_t digits = 0;
    unsigned value = 0;
    while (digits < inside.size() && is_digit(inside[digits])) {
      value = value * 10 + static_cast<unsigned>(inside[digits] - '0');
      if (value > 255) return std::nullopt;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    normal += std::to_string(value);
    inside.remove_prefix(digits);
  }
  if (!inside.empty()) return std::nullopt;
  return normal;
}

// Splits text on spaces, dropping empty tokens ("SIZE=10  BODY=8BITMIME").
std::vector<std::string> split_parameters(std::string_view text) {
  std::vector<std::string> parameters;
  while (!text.empty()) {
    size_t start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    text.remove_prefix(start);
    size_t end = std::min(text.find(' '), text.size());
    parameters.emplace_back(text.substr(0, end));
    text.remove_prefix(end);
  }
  return parameters;
}

}  // namespace

std::optional<ParsedAddress> parse_address(std::string_view argument, size_t max_length,
                                           const std::vector<std::string>& local_ips,
                                           const std::string& localiphost) {
  std::string_view arg = argument;
  char terminator = '>';
  size_t angle = arg.find('<');
  if (angle != std::string_view::npos) {
    arg.remove_prefix(angle + 1);
  } else {
    // "partner should go read rfc 821": FROM:addr with no brackets. With no ':' either,
    // qmail lands on the end of the string and parses the empty address.
    terminator = ' ';
    size_t colon = arg.find(':');
    arg.remove_prefix(colon == std::string_view::npos ? arg.size() : colon + 1);
    size_t text = arg.find_first_not_of(' ');
    arg.remove_prefix(text == std::string_view::npos ? arg.size() : text);
  }

  // A source route "@a,@b:box@dom" is dropped through the first ':' (all of it if none).
  if (!arg.empty() && arg.front() == '@') {
    size_t colon = arg.find(':');
    arg.remove_prefix(colon == std::string_view::npos ? arg.size() : colon + 1);
  }

  ParsedAddress parsed;
  bool escaped = false;
  bool quoted = false;
  size_t i = 0;
  bool terminated = false;
  for (; i < arg.size(); ++i) {
    char ch = arg[i];
    if (escaped) {
      parsed.address.push_back(ch);
      escaped = false;
      continue;
    }
    if (!quoted && ch == terminator) {
      terminated = true;
      break;
    }
    if (ch == '\\') {
      escaped = true;
    } else if (ch == '"') {
      quoted = !quoted;
    } else {
      parsed.address.push_back(ch);
    }
  }
  // qmail ignores a missing terminator ("could check for termination failure here, but
  // why bother?"); so do we. What follows the terminator is the ESMTP parameter list.
  if (terminated) parsed.parameters = split_parameters(arg.substr(i + 1));
  parsed.bracketed = terminator == '>' && terminated;

  if (!localiphost.empty()) {
    size_t at = parsed.address.rfind('@');
    if (at != std::string::npos) {
      auto ip = bracketed_ipv4(std::string_view(parsed.address).substr(at + 1));
      if (ip && std::find(local_ips.begin(), local_ips.end(), *ip) != local_ips.end()) {
        parsed.address.resize(at + 1);
        parsed.address += localiphost;
      }
    }
  }

  // qmail refuses addr.len > 900 where len counts the terminating NUL. 0 = no limit.
  if (max_length != 0 && parsed.address.size() + 1 > max_length) return std::nullopt;
  return parsed;
}

std::optional<unsigned long long> size_parameter(const std::vector<std::string>& parameters) {
  static constexpr std::string_view kName = "size=";
  for (const std::string& parameter : parameters) {
    if (parameter.size() < kName.size()) continue;
    bool name_matches = true;
    for (size_t i = 0; i < kName.size(); ++i) {
      if (ascii::lower(parameter[i]) != kName[i]) name_matches = false;
    }
    if (!name_matches) continue;
    std::string_view digits = std::string_view(parameter).substr(kName.size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) {
      return std::nullopt;
    }
    // A value too large for 64 bits is still a size, and certainly over any limit.
    constexpr unsigned long long kMax = std::numeric_limits<unsigned long long>::max();
    unsigned long long value = 0;
    for (char ch : digits) {
      unsigned digit = static_cast<unsigned>(ch - '0');
      if (value > (kMax - digit) / 10) return kMax;
      value = value * 10 + digit;
    }
    return value;
  }
  return std::nullopt;
}

}  // namespace sppd::smtpd
