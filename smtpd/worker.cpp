// Worker implementation (see worker.h): the accept loop, session table and drain logic.
#include "smtpd/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "common/protocol.h"

namespace sppd::smtpd {
namespace {

Endpoint endpoint_of(const sockaddr_storage& address) {
  Endpoint e;
  char text[INET6_ADDRSTRLEN] = "";
  if (address.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    e.port = ntohs(sin->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address);
    e.port = ntohs(sin6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
      e.ipv6 = true;
    }
  }
  e.ip = text;
  return e;
}

}  // namespace

Worker::Worker(event_base* base, const config::Config& config,
               std::vector<InheritedListener> listeners, UniqueFd control)
    : base_(base),
      capacity_(config.service("smtpd").sessions_per_worker),
      max_use_(config.service("smtpd").max_use),
      queue_(base, "queue-bridge"),
      dns_(base, "dnsbl-cache"),
      plugins_(base, "pluginrunner"),
      authd_(base, "authd"),
      log_tag_(std::to_string(getpid()) + "/") {
  for (auto& inherited : listeners) {
    const config::Listener* listener = config.listener(inherited.name);
    if (!listener) log::fatal("listener ", inherited.name, " is not in ", config.path);
    auto listening = std::make_unique<Listening>();
    listening->owner = this;
    listening->fd = std::move(inherited.fd);
    evutil_make_socket_nonblocking(listening->fd.get());
    listening->settings = load_listener_settings(
        *listener, !config.service("authd").get("checkpassword", "").empty());
    add_spam_controls(*listening->settings, config.qmail_home);
    if (listener->realrcptto) {
      // pluginrunner reads the same files, below the same qmail_home.
      QmailLocals& locals = listening->settings->qmail_locals;
      locals = QmailLocals::load(config.qmail_home);
      if (!locals.error().empty()) {
        log::warn("listener ", listener->name,
                  ": realrcptto will ask pluginrunner about every recipient: ", locals.error());
      }
    }
    listening->accept_event.reset(
        event_new(base_, listening->fd.get(), EV_READ | EV_PERSIST, on_accept, listening.get()));
    listeners_.push_back(std::move(listening));
  }
  control_ = std::make_unique<ipc::Channel>(
      base_, std::move(control), [this](ipc::Frame&& f) { on_control_frame(std::move(f)); },
      [this](const std::string& why) { drain(("master channel closed: " + why).c_str()); });
  reap_event_.reset(event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void* self) { static_cast<Worker*>(self)->reap_sessions(); },
      this));
  term_event_.reset(evsignal_new(
      base_, SIGTERM,
      [](evutil_socket_t, short, void* self) { static_cast<Worker*>(self)->drain("SIGTERM"); },
      this));
  evsignal_add(term_event_.get(), nullptr);
}

Worker::~Worker() = default;

int Worker::run() {
  update_accepting();
  event_base_dispatch(base_);
  dnsbl_table_.report_hits();  // the hits since the last report
  return 0;
}

void Worker::on_accept(evutil_socket_t, short, void* self) {
  auto* listening = static_cast<Listening*>(self);
  listening->owner->accept_from(*listening);
}

void Worker::accept_from(Listening& listening) {
  while (!draining_ && sessions_.size() < static_cast<size_t>(capacity_) &&
         sessions_started_ < static_cast<uint64_t>(max_use_)) {
    sockaddr_storage remote{};
    socklen_t remote_length = sizeof(remote);
    int fd = accept4(listening.fd.get(), reinterpret_cast<sockaddr*>(&remote), &remote_length,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // EAGAIN: another worker won the race for this connection.
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED && errno != EINTR) {
        log::warn("accept on ", listening.settings->listener.name, ": ", std::strerror(errno));
      }
      break;
    }
    UniqueFd client(fd);
    // Replies are written as whole batches already; Nagle would hold a 354 that follows
    // pipelined 250s until the client's delayed ACK (about 40 ms).
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_storage local{};
    socklen_t local_length = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length);
    uint64_t id = ++sessions_started_;
    SessionContext context{
        base_, &queue_, &dns_, &plugins_, &authd_, log_tag_, [this](uint64_t done) {
          session_finished(done);
        }};
    context.dnsbl_table = &dnsbl_table_;
    auto session = std::make_unique<Session>(id, std::move(client), endpoint_of(remote),
                                             endpoint_of(local), *listening.settings, context);
    Session* started = session.get();
    sessions_[id] = std::move(session);
    if (!served_reported_) {
      served_reported_ = true;
      control_->send(ipc::Frame(protocol::kServed, 0));
    }
    started->start();
  }
  if (sessions_started_ >= static_cast<uint64_t>(max_use_) && !draining_) {
    drain("max_use reached");
    return;
  }
  update_accepting();
}

void Worker::update_accepting() {
  bool want = !draining_ && sessions_.size() < static_cast<size_t>(capacity_);
  if (want == accepting_) return;
  accepting_ = want;
  for (auto& listening : listeners_) {
    if (!listening->accept_event) continue;
    if (want) {
      event_add(listening->accept_event.get(), nullptr);
    } else {
      event_del(listening->accept_event.get());
    }
  }
}

void Worker::on_control_frame(ipc::Frame&& frame) {
  if (frame.type != protocol::kHelperChannel || !frame.fd) {
    log::warn("ignoring unexpected frame type ", frame.type, " from the master");
    return;
  }
  std::string service = frame.get_or("service", "");
  int helper_pid = atoi(frame.get_or("helper_pid", "0").c_str());
  if (service == "queue-bridge" && helper_pid > 0) {
    queue_.attach(helper_pid, std::move(frame.fd));
  } else if (service == "dnsbl-cache") {
    dns_.attach(std::move(frame.fd));
    dnsbl_table_.attach();  // a new dnsbl-cache has a new table
    // A new dnsbl-cache knows no client: count the live sessions again.
    size_t counted = 0;
    for (auto& [id, session] : sessions_) counted += session->reannounce_client() ? 1 : 0;
    if (counted) log::info("new dnsbl-cache channel: re-announced ", counted, " client(s)");
  } else if (service == "authd") {
    authd_.attach(std::move(frame.fd));
  } else if (service == "pluginrunner" && helper_pid > 0) {
    plugins_.attach(helper_pid, std::move(frame.fd));
  } else {
    log::warn("ignoring channel for unknown service '", service, "'");
  }
}

void Worker::session_finished(uint64_t id) {
  finished_.push_back(id);
  event_active(reap_event_.get(), EV_TIMEOUT, 0);
}

void Worker::reap_sessions() {
  for (uint64_t id : finished_) sessions_.erase(id);
  finished_.clear();
  if (draining_ && sessions_.empty()) {
    event_base_loopbreak(base_);
    return;
  }
  update_accepting();
}

void Worker::drain(const char* why) {
  if (draining_) return;
  log::info("draining (", why, "): ", sessions_.size(), " session(s) still open");
  draining_ = true;
  update_accepting();
  // Close our copies of the listeners so the kernel stops handing connections to us.
  for (auto& listening : listeners_) {
    listening->accept_event.reset();
    listening->fd.reset();
  }
  if (sessions_.empty()) event_base_loopbreak(base_);
}

}  // namespace sppd::smtpd
