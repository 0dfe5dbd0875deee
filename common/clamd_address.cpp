// Parsing control/clamd (see clamd_address.h). Pure: no I/O, no name lookups.
#include "common/clamd_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "common/config.h"

namespace sppd {

std::optional<ClamdAddress> parse_clamd_address(const std::string& text, std::string* why) {
  ClamdAddress address;
  if (!text.empty() && text[0] == '/') {
    sockaddr_un unix_address{};
    // sun_path needs its terminating NUL: the kernel's limit is 107 bytes of path.
    if (text.size() >= sizeof(unix_address.sun_path)) {
      *why = "socket path \"" + text + "\" is longer than " +
             std::to_string(sizeof(unix_address.sun_path) - 1) + " bytes";
      return std::nullopt;
    }
    unix_address.sun_family = AF_UNIX;
    std::memcpy(unix_address.sun_path, text.data(), text.size());
    std::memcpy(&address.sockaddr, &unix_address, sizeof(unix_address));
    address.length = static_cast<socklen_t>(sizeof(unix_address));
    address.family = AF_UNIX;
    return address;
  }
  std::string host;
  int port = 0;
  if (!config::split_address(text, &host, &port) || port == 0) {
    *why = "\"" + text + "\" is neither ip:port, [ipv6]:port nor an absolute socket path";
    return std::nullopt;
  }
  if (host.find(':') != std::string::npos) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr);  // checked by split_address
    std::memcpy(&address.sockaddr, &in6, sizeof(in6));
    address.length = static_cast<socklen_t>(sizeof(in6));
    address.family = AF_INET6;
  } else {
    sockaddr_in in4{};
    in4.sin_family = AF_INET;
    in4.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &in4.sin_addr);
    std::memcpy(&address.sockaddr, &in4, sizeof(in4));
    address.length = static_cast<socklen_t>(sizeof(in4));
    address.family = AF_INET;
  }
  return address;
}

}  // namespace sppd
