// IP addresses as workers send them (text), and the names of their PTR records (RFC 3596
// §2.5: 4.3.2.1.in-addr.arpa, nibbles + ip6.arpa) and DNSBL entries (RFC 5782 §2: the same
// labels under a zone). Pure; text that is not a numeric address is rejected, never guessed.
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

// address itself, or the IPv4 address inside an IPv4-mapped one (::ffff:1.2.3.4), which is
// how DNSBLs know it (ucspi-tcp6's rblsmtpd does the same).
IpAddress unmapped(const IpAddress& address);

// The DNSBL name of address in zone: reversed octets or nibbles, then zone (1.2.3.4 in
// zen.example -> 4.3.2.1.zen.example); a mapped address is reduced first.
std::string dnsbl_name(const IpAddress& address, const std::string& zone);

}  // namespace sppd::dnsbl_cache
