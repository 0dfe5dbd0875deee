// tcprules: the text form ucspi-tcp's tcprules compiles (UT tcprules.c), looked up in
// tcpserver's order (UT rules.c; spec §2.11). Parsed in the worker before the sandbox; a bad
// line is a TcpRulesError "file:line: what", so the worker refuses to start rather than guess.
#include "smtpd/tcprules.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/ascii.h"

namespace sppd::smtpd {
namespace {

using ascii::lower;

// A parse failure of one line; turned into "path:line: what" by parse().
struct LineError {
  std::string what;
};

// The position of the ':' that ends the address: as tcprules, the first ':' followed by
// "allow" or "deny", so IPv6 keys ("::1:allow") and values containing ":deny" both work.
size_t instruction_colon(std::string_view line) {
  for (size_t colon = line.find(':'); colon != std::string_view::npos;
       colon = line.find(':', colon + 1)) {
    std::string_view rest = line.substr(colon + 1);
    if (rest.starts_with("allow") || rest.starts_with("deny")) return colon;
  }
  throw LineError{"no ':allow' or ':deny' after the address"};
}

// ",VAR=<d>value<d>,..." after allow/deny; <d> is any character.
std::vector<std::pair<std::string, std::string>> parse_env(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> env;
  while (!text.empty()) {
    if (text.front() != ',') {
      throw LineError{"expected ',VAR=\"value\"' but found '" + std::string(text) + "'"};
    }
    text.remove_prefix(1);
    size_t equals = text.find('=');
    if (equals == std::string_view::npos) throw LineError{"variable without '='"};
    std::string name(text.substr(0, equals));
    if (name.empty()) throw LineError{"empty variable name"};
    text.remove_prefix(equals + 1);
    if (text.empty()) throw LineError{"variable " + name + " has no value (use " + name + "=\"\")"};
    char delimiter = text.front();
    text.remove_prefix(1);
    size_t end = text.find(delimiter);
    if (end == std::string_view::npos) {
      throw LineError{"value of " + name + " has no closing " + std::string(1, delimiter)};
    }
    env.emplace_back(std::move(name), std::string(text.substr(0, end)));
    text.remove_prefix(end + 1);
  }
  return env;
}

unsigned long range_number(std::string_view digits) {
  // tcprules' getnum accepts an empty number as 0; anything else must be all digits.
  unsigned long value = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') throw LineError{"bad number '" + std::string(digits) + "' in range"};
    value = value * 10 + static_cast<unsigned long>(ch - '0');
    if (value > 1000000) throw LineError{"number '" + std::string(digits) + "' in range too big"};
  }
  return value;
}

// The keys an address stands for: itself, or for "1.2.3.4-7" one key per number of the
// range (tcprules expands the component holding the first '-'; top is capped at 255).
// Host ("=...") and info ("...@...") keys are never ranges.
std::vector<std::string> expand_keys(std::string_view address) {
  if (address.find('=') != std::string_view::npos || address.find('@') != std::string_view::npos ||
      address.find('-') == std::string_view::npos) {
    return {std::string(address)};
  }
  size_t dash = address.find('-');
  size_t dot_before = address.substr(0, dash).rfind('.');
  size_t left = dot_before == std::string_view::npos ? 0 : dot_before + 1;
  size_t right = address.find('.', dash + 1);
  if (right == std::string_view::npos) right = address.size();
  unsigned long bottom = range_number(address.substr(left, dash - left));
  unsigned long top = range_number(address.substr(dash + 1, right - dash - 1));
  if (top > 255) top = 255;
  std::vector<std::string> keys;
  for (unsigned long n = bottom; n <= top; ++n) {
    keys.push_back(std::string(address.substr(0, left)) + std::to_string(n) +
                   std::string(address.substr(right)));
  }
  return keys;
}

}  // namespace

TcpRules TcpRules::parse(const std::string& text, const std::string& path) {
  TcpRules rules;
  std::istringstream in(text);
  std::string raw;
  for (size_t number = 1; std::getline(in, raw); ++number) {
    std::string_view line = raw;
    // As tcprules: trailing spaces, tabs (and a CR from a DOS editor) do not count.
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') continue;
    try {
      size_t colon = instruction_colon(line);
      std::string_view address = line.substr(0, colon);
      std::string_view instruction = line.substr(colon + 1);
      TcpRule rule;
      if (instruction.starts_with("deny")) {
        rule.allow = false;
        instruction.remove_prefix(4);
      } else {
        instruction.remove_prefix(5);
      }
      rule.env = parse_env(instruction);
      // tcpserver looks host names up lower-cased; keep "=Host.Example" keys reachable.
      std::string key = address.starts_with("=") ? lower(address) : std::string(address);
      if (key.starts_with("=")) rules.uses_host_names_ = true;
      for (std::string& expanded : expand_keys(key)) rules.rules_.try_emplace(expanded, rule);
    } catch (const LineError& error) {
      throw TcpRulesError(path + ":" + std::to_string(number) + ": " + error.what + ": " +
                          std::string(line));
    }
  }
  return rules;
}

TcpRules TcpRules::load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw TcpRulesError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) throw TcpRulesError(path + ": read error: " + std::strerror(errno));
  return parse(text.str(), path);
}

std::vector<std::string> TcpRules::values_of(const std::string& name) const {
  std::vector<std::string> values;
  for (const auto& [key, rule] : rules_) {
    for (const auto& [variable, value] : rule.env) {
      if (variable == name && std::find(values.begin(), values.end(), value) == values.end()) {
        values.push_back(value);
      }
    }
  }
  return values;
}

std::optional<TcpRule> TcpRules::match(const std::string& remote_ip,
                                       const std::optional<std::string>& remote_host) const {
  auto find = [this](const std::string& key) -> const TcpRule* {
    auto it = rules_.find(key);
    return it == rules_.end() ? nullptr : &it->second;
  };
  // An empty name is no name: tcpserver leaves TCPREMOTEHOST unset then.
  std::optional<std::string> host;
  if (remote_host && !remote_host->empty()) host = lower(*remote_host);

  if (const TcpRule* rule = find(remote_ip)) return *rule;
  if (host) {
    if (const TcpRule* rule = find("=" + *host)) return *rule;
  }
  // Prefixes, longest first: "1.2.3." "1.2." "1." for IPv4; "2001:db8:" "2001:" for IPv6
  // (compared as text on the compressed form, like ucspi-tcp6 without its CIDR keys).
  char separator = remote_ip.find(':') != std::string::npos ? ':' : '.';
  for (size_t length = remote_ip.size(); length > 0; --length) {
    if (remote_ip[length - 1] != separator) continue;
    if (const TcpRule* rule = find(remote_ip.substr(0, length))) return *rule;
  }
  if (host) {
    for (size_t dot = host->find('.'); dot != std::string::npos; dot = host->find('.', dot + 1)) {
      if (const TcpRule* rule = find("=" + host->substr(dot))) return *rule;
    }
    if (const TcpRule* rule = find("=")) return *rule;
  }
  if (const TcpRule* rule = find("")) return *rule;
  return std::nullopt;
}

}  // namespace sppd::smtpd
