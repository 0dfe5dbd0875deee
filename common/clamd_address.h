// The address of a clamd (qmail-md's control/clamd: "ip:port" or the absolute path of its
// Unix socket), parsed once for both sides of virus scanning: smtpd checks the control file
// when it loads it, queue-bridge turns it into a sockaddr to connect to. Numeric addresses
// only: nothing here looks up a name. A malformed address is a value with a reason.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>

namespace sppd {

struct ClamdAddress {
  sockaddr_storage sockaddr{};
  socklen_t length = 0;
  int family = AF_UNSPEC;  // AF_INET, AF_INET6 or AF_UNIX
};

// "127.0.0.1:3310", "[::1]:3310" or "/run/clamav/clamd.ctl"; nullopt with why (for an
// operator's log line) if it is none of these.
std::optional<ClamdAddress> parse_clamd_address(const std::string& text, std::string* why);

}  // namespace sppd
