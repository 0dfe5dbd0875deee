// The master's children: start, broker, reap, restart (contract in supervisor.h).
// Runs as root. A child that cannot be started or dies before serving anyone throttles its
// service (RestartPolicy); a child's bad frame costs it its control channel, never the master.
#include "master/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "common/log.h"
#include "common/protocol.h"
#include "master/spawn.h"

extern char** environ;

namespace sppd::master {
namespace {

std::string tag_of(std::string_view service, pid_t pid) {
  return "sppd-" + std::string(service) + "[" + std::to_string(pid) + "]";
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    std::string text = "killed by signal " + std::to_string(WTERMSIG(status));
    if (WCOREDUMP(status)) text += " (core dumped)";
    return text;
  }
  return "ended with wait status " + std::to_string(status);
}

}  // namespace

std::string prepare_chroot(const config::Config& config) {
  const std::string& dir = config.service(std::string(kSmtpd)).chroot;
  if (dir.empty()) return "";
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string prefix = dir.substr(0, slash);
    if (mkdir(prefix.c_str(), 0755) < 0 && errno != EEXIST) {
      std::string why = "cannot create smtpd chroot " + prefix + ": " + std::strerror(errno);
      // Without root there is no chroot to enter: privilege::drop skips it.
      if (geteuid() != 0) {
        log::debug(why, " (not root, so not needed)");
        return "";
      }
      return why;
    }
    if (slash == std::string::npos) return "";
  }
}

Supervisor::Supervisor(config::Config config, ListenerSet listeners, LocalSocket dnsbl_socket,
                       std::string program_dir)
    : config_(std::move(config)),
      listeners_(std::move(listeners)),
      dnsbl_socket_(std::move(dnsbl_socket)),
      program_dir_(std::move(program_dir)) {
  dev_null_.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!dev_null_) throw std::runtime_error(std::string("/dev/null: ") + std::strerror(errno));
  base_.reset(event_base_new());
  if (!base_) throw std::runtime_error("cannot create the event loop");
  // Three priorities, every event at the middle one by default, except SIGCHLD at the
  // lowest: a child that sends kServed and exits at once must have its frame read before
  // its death is judged, or a success would count as a start-up failure.
  event_base_priority_init(base_.get(), 3);
  for (int sig : {SIGCHLD, SIGHUP, SIGTERM, SIGINT}) {
    signal_events_.emplace_back(evsignal_new(base_.get(), sig, on_signal, this));
    if (sig == SIGCHLD) event_priority_set(signal_events_.back().get(), 2);
    event_add(signal_events_.back().get(), nullptr);
  }
  shutdown_timer_.reset(evtimer_new(base_.get(), on_shutdown_timer, this));
  for (std::string_view name : kServices) {
    ServiceState& s = services_[std::string(name)];
    s.name = name;
    s.owner = this;
    s.throttle_timer.reset(evtimer_new(base_.get(), on_throttle_timer, &s));
  }
}

Supervisor::~Supervisor() = default;

int Supervisor::run() {
  for (std::string_view service : kServices) reconcile(service);
  event_base_dispatch(base_.get());
  relay_remaining_logs();
  log::info("stopped");
  return 0;
}

void Supervisor::on_signal(evutil_socket_t sig, short, void* self) {
  auto* supervisor = static_cast<Supervisor*>(self);
  switch (sig) {
    case SIGCHLD:
      supervisor->reap();
      break;
    case SIGHUP:
      supervisor->reload();
      break;
    default:
      supervisor->begin_shutdown(sig);
      break;
  }
}

void Supervisor::on_throttle_timer(evutil_socket_t, short, void* state) {
  auto* s = static_cast<ServiceState*>(state);
  s->owner->reconcile(s->name);
}

Supervisor::ServiceState& Supervisor::state(std::string_view service) {
  return services_.find(service)->second;
}

int Supervisor::desired(std::string_view service) const {
  // Singleton helpers: every worker holds exactly one channel per such service.
  if (role_of(service) == Role::kHelper && !is_pool(service)) return 1;
  return config_.service(std::string(service)).processes;
}

void Supervisor::reconcile(std::string_view service) {
  if (phase_ != Phase::kRunning) return;
  ServiceState& s = state(service);
  auto now = RestartPolicy::Clock::now();
  if (!s.policy.may_start(now)) {
    // The timer may fire a hair before the policy's deadline: wait for the rest.
    if (!evtimer_pending(s.throttle_timer.get(), nullptr)) {
      auto left =
          std::chrono::duration_cast<std::chrono::microseconds>(s.policy.throttled_until() - now) +
          std::chrono::milliseconds(1);
      timeval tv{static_cast<time_t>(left.count() / 1000000),
                 static_cast<suseconds_t>(left.count() % 1000000)};
      evtimer_add(s.throttle_timer.get(), &tv);
    }
    return;
  }
  while (children_.count_active(service) < desired(service)) {
    if (!start_child(service)) {
      throttle(s, s.policy.on_death(false, now), "cannot start a child");
      return;
    }
  }
}

void Supervisor::throttle(ServiceState& s, std::chrono::seconds delay, std::string_view why) {
  if (delay.count() == 0) return;
  log::warn("service ", s.name, ": ", why, ", throttling restarts for ", delay.count(), " s");
  timeval tv{static_cast<time_t>(delay.count()), 0};
  evtimer_add(s.throttle_timer.get(), &tv);
}

bool Supervisor::start_child(std::string_view service) {
  const std::string program = program_dir_ + "/sppd-" + std::string(service);
  int log_pipe[2];
  if (pipe2(log_pipe, O_CLOEXEC) < 0) {
    log::error("cannot start ", program, ": pipe: ", std::strerror(errno));
    return false;
  }
  UniqueFd log_read(log_pipe[0]), log_write(log_pipe[1]);
  std::pair<UniqueFd, UniqueFd> control;
  try {
    control = ipc::make_socketpair();
  } catch (const std::exception& e) {
    log::error("cannot start ", program, ": ", e.what());
    return false;
  }

  SpawnRequest request;
  request.program = program;
  request.argv = {program, "--config", config_.path};
  request.env = child_environment(environ, service, generation_);
  request.fds = {dev_null_.get(), log_write.get(), log_write.get(), control.second.get()};
  static_assert(protocol::kLogFd == 2 && protocol::kControlFd == 3 &&
                protocol::kFirstListenFd == 4);
  if (role_of(service) == Role::kWorker) {
    for (const BoundListener& listener : listeners_.items()) {
      int slot = static_cast<int>(request.fds.size());
      request.fds.push_back(listener.fd.get());
      request.argv.push_back("--listener");
      request.argv.push_back(listener.name + "=" + std::to_string(slot));
    }
  }
  if (service == kDnsblCache && dnsbl_socket_.fd() >= 0) {
    static_assert(protocol::kDnsblLocalFd == 4);
    request.fds.push_back(dnsbl_socket_.fd());
  }
  std::string why;
  pid_t pid = spawn(request, &why);
  if (pid < 0) {
    log::error("cannot start ", program, ": ", why);
    return false;
  }

  uint64_t relay_id = next_relay_id_++;
  relays_[relay_id] =
      std::make_unique<LogRelay>(base_.get(), std::move(log_read), tag_of(service, pid),
                                 [this, relay_id] { relays_.erase(relay_id); });
  Child child;
  child.pid = pid;
  child.service = service;
  child.generation = generation_;
  child.log_relay = relay_id;
  child.control = std::make_unique<ipc::Channel>(
      base_.get(), std::move(control.first),
      [this, pid](ipc::Frame&& frame) { on_control_frame(pid, std::move(frame)); },
      [this, pid](const std::string& why) { on_control_closed(pid, why); });
  Child& stored = children_.add(std::move(child));
  log::info("started ", tag_of(service, pid), " (generation ", generation_, ")");
  broker_new_child(stored);
  return true;
}

void Supervisor::broker_new_child(Child& child) {
  if (!child.reachable()) return;
  if (role_of(child.service) == Role::kWorker) {
    for (Child* helper : children_.with_role(Role::kHelper)) {
      if (helper->reachable()) broker(child, *helper);
    }
  } else {
    for (Child* worker : children_.with_role(Role::kWorker)) {
      if (worker->reachable()) broker(*worker, child);
    }
  }
}

void Supervisor::broker(Child& worker, Child& helper) {
  std::pair<UniqueFd, UniqueFd> ends;
  try {
    ends = ipc::make_socketpair();
  } catch (const std::exception& e) {
    log::error("cannot connect ", tag_of(worker.service, worker.pid), " to ",
               tag_of(helper.service, helper.pid), ": ", e.what());
    return;
  }
  ipc::Frame to_helper(protocol::kNewClient, 0);
  to_helper.add("worker_pid", std::to_string(worker.pid));
  to_helper.fd = std::move(ends.first);
  ipc::Frame to_worker(protocol::kHelperChannel, 0);
  to_worker.add("service", helper.service);
  to_worker.add("helper_pid", std::to_string(helper.pid));
  to_worker.fd = std::move(ends.second);
  helper.control->send(std::move(to_helper));
  worker.control->send(std::move(to_worker));
  log::debug("connected ", tag_of(worker.service, worker.pid), " to ",
             tag_of(helper.service, helper.pid));
}

void Supervisor::on_control_frame(pid_t pid, ipc::Frame&& frame) {
  Child* child = children_.find(pid);
  if (!child) return;
  if (frame.type == protocol::kServed) {
    if (!child->served) {
      child->served = true;
      state(child->service).policy.on_served();
      log::debug(tag_of(child->service, pid), " served its first client");
    }
    return;
  }
  // Status from children is gossip (Postfix master_status.c): note it, never act on it.
  log::warn(tag_of(child->service, pid), " sent an unexpected frame (type ", frame.type,
            "); ignored");
}

void Supervisor::on_control_closed(pid_t pid, const std::string& why) {
  // The channel object stays until the child is reaped; it is just no longer reachable.
  Child* child = children_.find(pid);
  if (!child) return;
  // Closing or resetting is how a dying child's channel ends; anything else is news.
  bool gone = why == "peer closed the channel" || why.ends_with(std::strerror(EPIPE)) ||
              why.ends_with(std::strerror(ECONNRESET));
  if (gone) {
    log::debug("control channel of ", tag_of(child->service, pid), " closed");
  } else {
    log::warn("control channel of ", tag_of(child->service, pid), " closed: ", why);
  }
}

void Supervisor::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) on_child_exit(pid, status);
}

void Supervisor::on_child_exit(pid_t pid, int status) {
  Child child = children_.remove(pid);
  if (child.service.empty()) {
    log::debug("reaped unknown process ", pid, " (", describe_status(status), ")");
    return;
  }
  // Its last words first, then the news of its death.
  auto relay = relays_.find(child.log_relay);
  if (relay != relays_.end() && !relay->second->drain()) relays_.erase(relay);

  bool normal = child.retiring || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::string text = tag_of(child.service, pid) + " " + describe_status(status);
  if (normal) {
    log::info(text);
  } else {
    log::warn(text);
  }
  child.control.reset();
  if (phase_ != Phase::kRunning) {
    advance_shutdown();
    return;
  }
  if (child.retiring) return;
  ServiceState& s = state(child.service);
  throttle(s, s.policy.on_death(child.served, RestartPolicy::Clock::now()),
           "child died before serving anyone");
  reconcile(child.service);
}

}  // namespace sppd::master
