// ClientLimits: the per-client connection limits of one session (Postfix's anvil, tcpserver
// -c), as the worker announces them to dnsbl-cache, which counts every worker's clients: the
// listener's max_connections_per_ip / max_connection_rate_per_ip / connection_rate_window,
// overridden for a client by tcprules' MAXCONNIP and MAXCONNRATE. Pure functions; the session
// side (asking, waiting, the 421, releasing) is in session_limits.cpp.
#pragma once

#include <string>
#include <string_view>

#include "common/config.h"

namespace sppd::smtpd {

struct ClientLimits {
  long max_connections = 0;  // concurrent connections from the client; 0 = no limit
  long max_rate = 0;         // connections admitted per rate_window seconds; 0 = no limit
  long rate_window = 60;
  // False when neither is limited: the session is then neither announced nor counted.
  bool any() const { return max_connections > 0 || max_rate > 0; }
};

// The listener's limits, with MAXCONNIP and MAXCONNRATE (tcprules; nullptr = unset; a whole
// number, 0 = no limit) applied. A value that is not a whole number from 0 to 1000000 is
// ignored and described in *problem (empty otherwise), for the session's log.
ClientLimits client_limits(const config::Listener& listener, const std::string* maxconnip,
                           const std::string* maxconnrate, std::string* problem);

// The reply to a client dnsbl-cache refused ("too_many" or "too_fast", protocol.h
// kClientVerdict), one line without CRLF: "421 4.7.0 too many connections from IP, try
// again later", or "... from IP in WINDOW s, ..." for the rate.
std::string client_refusal(std::string_view verdict, const std::string& ip,
                           const ClientLimits& limits);

}  // namespace sppd::smtpd
