// ClamdConnect: queue-bridge's one non-blocking connect to clamd for a transaction whose
// worker asked for virus scanning (kQueueOpen with clamd=). The sandboxed worker cannot
// connect, so the bridge does, as its own user, and hands the connected socket over
// (kQueueScanner); it never reads or writes on it. TCP (ip:port) or an AF_UNIX path; a
// refusal, a timeout or a bad address is reported as a reason, never thrown.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"

namespace sppd::queue_bridge {

// Every address a listener's control/clamd names (read from each listener's control_dir):
// the only ones a worker may have the bridge connect to. A file that cannot be read is
// logged and skipped (sessions of that listener then hear "unavailable").
std::set<std::string> configured_clamds(const config::Config& config);

class ClamdConnect {
 public:
  // Called once, from the event loop (never from the constructor): socket is the connected
  // descriptor, or empty with why. The owner may destroy this object inside the call.
  using Done = std::function<void(UniqueFd socket, const std::string& why)>;

  // Starts connecting to address (as parse_clamd_address accepts) for at most
  // timeout_seconds.
  ClamdConnect(event_base* base, const std::string& address, int timeout_seconds, Done done);
  ClamdConnect(const ClamdConnect&) = delete;
  ClamdConnect& operator=(const ClamdConnect&) = delete;

 private:
  static void on_event(evutil_socket_t, short what, void* self);
  void report(const std::string& why);

  std::string address_;
  UniqueFd socket_;
  std::string failure_;  // set when the outcome was known at once; reported from the loop
  EventPtr event_;
  Done done_;
};

}  // namespace sppd::queue_bridge
