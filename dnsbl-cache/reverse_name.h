// IP addresses as workers send them (text), and the DNS names under which their PTR
// records live: 1.2.3.4 -> 4.3.2.1.in-addr.arpa, IPv6 -> 32 reversed nibbles + ip6.arpa
// (RFC 3596 §2.5). Pure; text that is not a numeric address is rejected, never guessed at.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sppd::dnsbl_cache {

struct IpAddress {
  int family = 0;                         // AF_INET or AF_INET6
  std::array<unsigned char, 16> bytes{};  // network order; the first 4 for IPv4
  size_t size = 0;                        // 4 or 16
  std::string text;                       // canonical form (inet_ntop), the cache key
};

// Parses a numeric IPv4 or IPv6 address; nullopt for anything else (names, scopes, junk).
std::optional<IpAddress> parse_ip(std::string_view text);

// The in-addr.arpa or ip6.arpa name of address, without a trailing dot.
std::string reverse_name(const IpAddress& address);

}  // namespace sppd::dnsbl_cache
