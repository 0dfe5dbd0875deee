// The master's listening sockets: bound once as root (so port 25 works) and inherited by
// every smtpd worker at fd 4, 5, ... in config order. On reload, sockets whose address is
// unchanged are kept (no window in which connections are refused), new ones are bound and
// vanished ones closed. Errors throw ListenError with a message naming the listener.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/fd.h"

namespace sppd::master {

struct ListenError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct BoundListener {
  std::string name;     // [listener NAME]
  std::string address;  // canonical configured address, "1.2.3.4:25" or "[::1]:25"
  std::string bound;    // the address actually bound (differs when the port is 0)
  UniqueFd fd;
};

// Canonical text of host:port, so that "::1" and "0::1" name the same socket.
std::string canonical_address(const std::string& host, int port);

// For each wanted address, the index in bound of the socket it can keep, or -1 if it needs
// a new one. Each bound socket is kept at most once. Pure, for the reload logic.
std::vector<int> plan_rebind(const std::vector<std::string>& bound,
                             const std::vector<std::string>& wanted);

// The listeners the master holds, in config order.
class ListenerSet {
 public:
  // Binds every listener; throws ListenError (nothing stays bound on failure).
  static ListenerSet bind_all(const std::vector<config::Listener>& listeners);
  // Returns the set for a new config, moving over the sockets of this set whose address is
  // unchanged and binding the others. Throws ListenError and leaves this set intact if a
  // bind fails; on success the remaining sockets of this set are the vanished ones.
  ListenerSet rebind(const std::vector<config::Listener>& listeners);

  const std::vector<BoundListener>& items() const { return items_; }
  // Closes every socket (shutdown: the master stops holding the ports).
  void clear() { items_.clear(); }

 private:
  std::vector<BoundListener> items_;
};

}  // namespace sppd::master
