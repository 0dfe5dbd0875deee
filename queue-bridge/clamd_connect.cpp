// ClamdConnect implementation (contract in clamd_connect.h). Runs in queue-bridge as its
// user: connect(2) here is what the worker's seccomp filter forbids. Outcomes known at once
// (a refused Unix socket, a bad address) are reported from the loop too, so the owner's
// callback never runs inside its own call to the constructor.
#include "queue-bridge/clamd_connect.h"

#include <errno.h>
#include <sys/socket.h>

#include <cstring>

#include "common/clamd_address.h"
#include "common/control.h"
#include "common/log.h"

namespace sppd::queue_bridge {

std::set<std::string> configured_clamds(const config::Config& config) {
  std::set<std::string> addresses;
  for (const config::Listener& listener : config.listeners) {
    std::string path = listener.control_dir + "/clamd";
    try {
      if (auto line = control::read_line(path); line && !line->empty()) addresses.insert(*line);
    } catch (const std::exception& e) {
      log::warn("cannot read ", path, ": ", e.what(), ": no virus scanning through it");
    }
  }
  return addresses;
}

ClamdConnect::ClamdConnect(event_base* base, const std::string& address, int timeout_seconds,
                           Done done)
    : address_(address), done_(std::move(done)) {
  std::string why;
  auto target = parse_clamd_address(address, &why);
  if (target) {
    socket_.reset(::socket(target->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!socket_) why = std::string("socket: ") + std::strerror(errno);
  }
  if (socket_ &&
      ::connect(socket_.get(), reinterpret_cast<const sockaddr*>(&target->sockaddr),
                target->length) < 0 &&
      errno != EINPROGRESS) {
    // A Unix socket answers at once: ECONNREFUSED, ENOENT, or EAGAIN (its backlog is full).
    why = std::strerror(errno);
    socket_.reset();
  }
  if (!socket_) {
    failure_ = why.empty() ? "cannot connect" : why;
    event_.reset(evtimer_new(base, on_event, this));
    event_active(event_.get(), EV_TIMEOUT, 0);
    return;
  }
  // Writable = connected or failed (SO_ERROR says which); nothing = the timeout.
  event_.reset(event_new(base, socket_.get(), EV_WRITE, on_event, this));
  timeval timeout{timeout_seconds, 0};
  event_add(event_.get(), &timeout);
}

void ClamdConnect::on_event(evutil_socket_t, short what, void* self) {
  auto* connect = static_cast<ClamdConnect*>(self);
  if (!connect->failure_.empty()) return connect->report(connect->failure_);
  if (what & EV_TIMEOUT) return connect->report("connect timed out");
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(connect->socket_.get(), SOL_SOCKET, SO_ERROR, &error, &length) < 0) {
    error = errno;
  }
  connect->report(error ? std::strerror(error) : "");
}

void ClamdConnect::report(const std::string& why) {
  UniqueFd socket;
  if (why.empty()) socket = std::move(socket_);
  socket_.reset();
  Done done = std::move(done_);
  // Last: done may destroy this object.
  if (done) done(std::move(socket), why.empty() ? why : "clamd " + address_ + ": " + why);
}

}  // namespace sppd::queue_bridge
