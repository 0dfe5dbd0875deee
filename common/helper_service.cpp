// helper::Service implementation (contract in helper_service.h): control and worker frame
// dispatch, the client table, the local socket's accept loop, signals, the drain and
// deferred destruction, and startup(). A client channel that ends inside a callback is
// destroyed on the next loop pass, because the Channel code that called us may still be
// running on it.
#include "common/helper_service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstring>

#include "common/protocol.h"

namespace sppd::helper {
namespace {

// A worker that exits or dies mid-request is normal life; any other end of its channel
// (a read error, a frame that does not decode) is news.
bool is_goodbye(const std::string& why) {
  return why == "peer closed the channel" || why.ends_with(std::strerror(EPIPE)) ||
         why.ends_with(std::strerror(ECONNRESET));
}

// kNewClient's worker_pid: a positive decimal number.
bool is_pid(const std::string& text) {
  if (text.empty() || text.size() > 10 || text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// How a local client appears in log lines: its process and user, as the kernel says.
std::string local_label(int fd) {
  ucred peer{};
  socklen_t size = sizeof(peer);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) < 0) return "local client";
  return log::concat("local client pid ", peer.pid, " uid ", peer.uid);
}

// At most one refusal line per this many seconds: a local flood must not flood the log.
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);

}  // namespace

Service::Service(event_base* base, std::string config_path, UniqueFd control, Program& program,
                 DrainPolicy drain_policy)
    : base_(base),
      config_path_(std::move(config_path)),
      program_(program),
      drain_policy_(std::move(drain_policy)) {
  control_ = std::make_unique<ipc::Channel>(
      base_, std::move(control), [this](ipc::Frame&& frame) { on_control_frame(std::move(frame)); },
      [this](const std::string& why) { drain("control channel: " + why); });
  for (int signo : {SIGCHLD, SIGHUP, SIGTERM}) {
    signal_events_.emplace_back(evsignal_new(base_, signo, on_signal, this));
    event_add(signal_events_.back().get(), nullptr);
  }
  cleanup_event_.reset(event_new(base_, -1, 0, on_cleanup, this));
  drain_cap_event_.reset(evtimer_new(base_, on_drain_cap, this));
}

Service::~Service() {
  // Worker channels close without on_client_gone: the program is shutting down too.
  clients_.clear();
  dead_.clear();
}

int Service::run() {
  event_base_dispatch(base_);
  return 0;
}

void Service::on_signal(evutil_socket_t signal, short, void* self) {
  auto* service = static_cast<Service*>(self);
  if (signal == SIGCHLD) service->program_.on_sigchld();
  if (signal == SIGHUP) service->reload();
  if (signal == SIGTERM) service->drain("SIGTERM");
}

void Service::reload() {
  try {
    config::Config config = config::load(config_path_);
    std::string detail = program_.reload(config);
    log::set_level(log::level_named(config.log_level));
    log::info("configuration reloaded from ", config_path_, detail);
  } catch (const std::exception& e) {
    // Inside a chroot the file may be out of reach: the old settings stay until a restart.
    log::error("reload failed, keeping the old configuration: ", e.what());
  }
}

void Service::drain(const std::string& why) {
  if (draining_) return;
  draining_ = true;
  size_t running = program_.in_flight();
  if (running > 0) {
    log::info("stopping (", why, "): ", running, " ", drain_policy_.work, " still running");
  } else {
    log::info("stopping (", why, ")");
  }
  // Connections still coming wait in the master's socket for our successor.
  if (local_accept_event_) event_del(local_accept_event_.get());
  if (local_pause_event_) evtimer_del(local_pause_event_.get());
  timeval cap{drain_policy_.cap_seconds, 0};
  evtimer_add(drain_cap_event_.get(), &cap);
  check_drained();
}

void Service::on_drain_cap(evutil_socket_t, short, void* self) {
  auto* service = static_cast<Service*>(self);
  const DrainPolicy& policy = service->drain_policy_;
  log::warn("giving up on ", service->program_.in_flight(), " ", policy.work, " after ",
            policy.cap_seconds, " s; ", policy.give_up);
  event_base_loopexit(service->base_, nullptr);
}

void Service::check_drained() {
  // A short grace lets an answer that met a full socket buffer still go out: a worker that
  // loses a queue result answers 451 for a message that was queued (a duplicate, not a loss).
  timeval grace{0, 100000};
  if (draining_ && program_.in_flight() == 0) event_base_loopexit(base_, &grace);
}

void Service::destroy_later(std::shared_ptr<void> object) {
  dead_.push_back(std::move(object));
  if (!event_pending(cleanup_event_.get(), EV_TIMEOUT, nullptr)) {
    event_active(cleanup_event_.get(), EV_TIMEOUT, 0);
  }
}

void Service::on_cleanup(evutil_socket_t, short, void* self) {
  static_cast<Service*>(self)->dead_.clear();
}

void Service::served() {
  if (served_) return;
  served_ = true;
  control_->send(ipc::Frame(protocol::kServed, 0));
}

Client* Service::find_client(uint64_t id) {
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second.get();
}

void Service::on_control_frame(ipc::Frame&& frame) {
  if (frame.type != protocol::kNewClient) {
    // The master is trusted but may be newer than us: say so, do not die.
    log::warn("control channel: ignoring frame type ", frame.type);
    return;
  }
  const std::string* worker_pid = frame.get("worker_pid");
  if (!frame.fd || !worker_pid || !is_pid(*worker_pid)) {
    log::fatal(
        "control channel: malformed kNewClient (needs a descriptor and a numeric worker_pid)");
  }
  add_client(std::move(frame.fd), true, *worker_pid, "worker " + *worker_pid);
}

void Service::add_client(UniqueFd fd, bool worker, std::string worker_pid, std::string label) {
  auto client = std::make_unique<Client>();
  client->id = next_client_id_++;
  client->worker = worker;
  client->worker_pid = std::move(worker_pid);
  client->label = std::move(label);
  uint64_t id = client->id;
  client->channel = std::make_unique<ipc::Channel>(
      base_, std::move(fd), [this, id](ipc::Frame&& f) { on_client_frame(id, std::move(f)); },
      [this, id](const std::string& why) {
        close_client(id, why, is_goodbye(why) ? log::Level::kDebug : log::Level::kWarning);
      });
  log::debug(client->label, ": channel open");
  if (!worker) ++local_clients_;
  clients_[id] = std::move(client);
}

void Service::accept_local_clients(UniqueFd listener, size_t max_clients) {
  local_listener_ = std::move(listener);
  max_local_clients_ = max_clients;
  local_accept_event_.reset(
      event_new(base_, local_listener_.get(), EV_READ | EV_PERSIST, on_local_listener, this));
  local_pause_event_.reset(evtimer_new(base_, on_accept_pause, this));
  if (!draining_) event_add(local_accept_event_.get(), nullptr);
}

void Service::on_local_listener(evutil_socket_t, short, void* self) {
  static_cast<Service*>(self)->accept_local();
}

void Service::on_accept_pause(evutil_socket_t, short, void* self) {
  auto* service = static_cast<Service*>(self);
  if (!service->draining_) event_add(service->local_accept_event_.get(), nullptr);
}

void Service::accept_local() {
  // A bounded batch per wake-up, so the workers' channels are not starved by a flood.
  for (int i = 0; i < 64; ++i) {
    UniqueFd fd(accept4(local_listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == ECONNABORTED || errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors or memory: the connection stays queued, and the socket stays
      // readable, so wait a second instead of spinning on it.
      log::warn("local socket: accept: ", std::strerror(errno), "; trying again in 1 s");
      event_del(local_accept_event_.get());
      timeval pause{1, 0};
      evtimer_add(local_pause_event_.get(), &pause);
      return;
    }
    std::string label = local_label(fd.get());
    if (local_clients_ >= max_local_clients_) {
      refuse_local(label);
      continue;  // fd closes: the client sees the connection end
    }
    add_client(std::move(fd), false, "", std::move(label));
  }
}

void Service::refuse_local(const std::string& label) {
  ++refused_unlogged_;
  auto now = std::chrono::steady_clock::now();
  if (now - refusal_logged_ < kRefusalLogInterval) return;
  std::string more;
  if (refused_unlogged_ > 1) {
    more = log::concat(" (", refused_unlogged_ - 1, " more since the last such line)");
  }
  log::warn("refused ", label, ": ", local_clients_, " local clients connected, the most allowed",
            more);
  refused_unlogged_ = 0;
  refusal_logged_ = now;
}

void Service::on_client_frame(uint64_t id, ipc::Frame&& frame) {
  Client* client = find_client(id);
  if (!client) return;
  // No worker request carries a descriptor (protocol.h).
  if (frame.fd) return malformed(*client, "unexpected descriptor");
  program_.on_worker_frame(*client, std::move(frame));
}

void Service::malformed(Client& client, const std::string& why) {
  log::error(client.label, ": malformed request (", why, "); closing its channel");
  close_client(client.id, "malformed request", log::Level::kDebug);
}

void Service::close_client(uint64_t id, const std::string& why, log::Level level) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  std::unique_ptr<Client> client = std::move(it->second);
  clients_.erase(it);
  if (!client->worker) --local_clients_;
  log::write_line(level, log::concat(client->label, ": channel closed (", why, ")"));
  program_.on_client_gone(*client);
  client->channel->close();
  destroy_later(std::move(client));
  check_drained();
}

Startup startup(int argc, char** argv, std::string_view program) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      path = arg.substr(9);
    } else {
      log::fatal("usage: ", program, " --config PATH (unexpected argument '", arg, "')");
    }
  }
  if (path.empty()) log::fatal("usage: ", program, " --config PATH");
  signal(SIGPIPE, SIG_IGN);

  Startup start;
  start.config = or_exit([&] { return config::load(path); });
  log::set_level(log::level_named(start.config.log_level));
  if (fcntl(protocol::kControlFd, F_GETFD) < 0) {
    log::fatal("fd ", protocol::kControlFd, " is not open: ", program,
               " is started by sppd-master, not by hand");
  }
  start.control = UniqueFd(protocol::kControlFd);
  start.base.reset(event_base_new());
  if (!start.base) log::fatal("cannot create the event loop");
  return start;
}

std::optional<std::vector<std::string>> env_of(const ipc::Frame& frame) {
  std::vector<std::string> env;
  for (auto entry : frame.all("env")) {
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    env.emplace_back(entry);
  }
  return env;
}

}  // namespace sppd::helper
