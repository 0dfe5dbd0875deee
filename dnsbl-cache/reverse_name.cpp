// Reverse-lookup names (contract in reverse_name.h). Pure functions on untrusted text from
// workers: inet_pton decides what is an address, nothing else is accepted.
#include "dnsbl-cache/reverse_name.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <iterator>

namespace sppd::dnsbl_cache {

std::optional<IpAddress> parse_ip(std::string_view text) {
  // inet_pton needs a NUL-terminated string; anything longer than an IPv6 text is junk.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  std::string input(text);
  IpAddress address;
  if (inet_pton(AF_INET, input.c_str(), address.bytes.data()) == 1) {
    address.family = AF_INET;
    address.size = 4;
  } else if (inet_pton(AF_INET6, input.c_str(), address.bytes.data()) == 1) {
    address.family = AF_INET6;
    address.size = 16;
  } else {
    return std::nullopt;
  }
  char canonical[INET6_ADDRSTRLEN];
  inet_ntop(address.family, address.bytes.data(), canonical, sizeof(canonical));
  address.text = canonical;
  return address;
}

namespace {

// "4.3.2.1." or 32 nibbles each followed by a dot.
std::string reversed_labels(const IpAddress& address) {
  std::string name;
  if (address.family == AF_INET) {
    for (int i = 3; i >= 0; --i) {
      name += std::to_string(address.bytes[static_cast<size_t>(i)]);
      name += '.';
    }
    return name;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    unsigned char byte = address.bytes[static_cast<size_t>(i)];
    name += kHex[byte & 0x0f];
    name += '.';
    name += kHex[byte >> 4];
    name += '.';
  }
  return name;
}

}  // namespace

std::string reverse_name(const IpAddress& address) {
  return reversed_labels(address) + (address.family == AF_INET ? "in-addr.arpa" : "ip6.arpa");
}

IpAddress unmapped(const IpAddress& address) {
  static constexpr unsigned char kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (address.family != AF_INET6 ||
      !std::equal(std::begin(kMappedPrefix), std::end(kMappedPrefix), address.bytes.begin())) {
    return address;
  }
  IpAddress v4;
  v4.family = AF_INET;
  v4.size = 4;
  std::copy(address.bytes.begin() + 12, address.bytes.end(), v4.bytes.begin());
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, v4.bytes.data(), text, sizeof(text));
  v4.text = text;
  return v4;
}

std::string dnsbl_name(const IpAddress& address, const std::string& zone) {
  return reversed_labels(unmapped(address)) + zone;
}

}  // namespace sppd::dnsbl_cache
