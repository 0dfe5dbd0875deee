// Reload (SIGHUP) and orderly shutdown (SIGTERM/SIGINT) of the master (contract in
// supervisor.h). Runs as root. A reload that fails (bad config, a port that will not bind)
// changes nothing; a shutdown escalates to SIGKILL when children outstay their time.
#include <signal.h>
#include <string.h>

#include <set>

#include "common/log.h"
#include "master/supervisor.h"

namespace sppd::master {
namespace {

constexpr int kHelperStopTimeout = 10;  // seconds helpers get after SIGTERM
constexpr int kReapGrace = 5;           // seconds to wait for SIGKILLed children to be reaped

}  // namespace

void Supervisor::reload() {
  if (phase_ != Phase::kRunning) {
    log::info("SIGHUP ignored: shutting down");
    return;
  }
  log::info("reloading configuration from ", config_.path);
  config::Config fresh;
  try {
    fresh = config::load(config_.path);
  } catch (const config::ConfigError& e) {
    log::error("reload failed: ", e.what());
    return;
  }
  if (std::string why = prepare_chroot(fresh); !why.empty()) {
    log::error("reload failed: ", why);
    return;
  }
  std::set<std::string> before;
  for (const auto& item : listeners_.items()) before.insert(item.address);
  ListenerSet next;
  try {
    next = listeners_.rebind(fresh.listeners);
  } catch (const ListenError& e) {
    log::error("reload failed: ", e.what());
    return;
  }
  for (const auto& gone : listeners_.items()) {
    log::info("closed listener ", gone.name, " on ", gone.bound);
  }
  for (const auto& item : next.items()) {
    if (!before.count(item.address)) log::info("listening on ", item.bound, " (", item.name, ")");
  }
  listeners_ = std::move(next);
  if (config::dnsbl_socket(fresh) != dnsbl_socket_.path()) {
    // dnsbl-cache holds the socket it was started with; pluginrunner keeps the old path too.
    log::warn("[service dnsbl-cache] socket ", config::dnsbl_socket(fresh),
              " takes effect when sppd-master restarts; ", dnsbl_socket_.path(), " until then");
  }
  config_ = std::move(fresh);
  log::set_level(log::level_named(config_.log_level));
  ++generation_;

  // A full new generation first, then the old one is told to finish its sessions and go.
  std::vector<pid_t> old_workers;
  for (Child* worker : children_.with_role(Role::kWorker)) {
    if (!worker->retiring) {
      worker->retiring = true;
      old_workers.push_back(worker->pid);
    }
  }
  reconcile(kSmtpd);
  for (pid_t pid : old_workers) kill(pid, SIGTERM);
  for (Child* helper : children_.with_role(Role::kHelper)) kill(helper->pid, SIGHUP);
  if (!old_workers.empty()) {
    log::info("told ", old_workers.size(), " old workers to finish their sessions and exit");
  }
  log::info("reloaded configuration (generation ", generation_, ")");
}

void Supervisor::begin_shutdown(int sig) {
  if (phase_ != Phase::kRunning) {
    log::info("received SIG", sigabbrev_np(sig), " again: already stopping");
    return;
  }
  log::info("received SIG", sigabbrev_np(sig), ": stopping; closed the listeners");
  listeners_.clear();
  for (auto& [name, s] : services_) evtimer_del(s.throttle_timer.get());
  phase_ = Phase::kStoppingWorkers;
  forced_ = 0;
  for (Child* helper : children_.with_role(Role::kHelper)) helper->retiring = true;
  int workers = signal_role(Role::kWorker, SIGTERM);
  log::info("sent SIGTERM to ", workers, " workers; waiting up to ", config_.drain_timeout,
            " s for their sessions to end");
  arm_shutdown_timer(config_.drain_timeout);
  advance_shutdown();
}

void Supervisor::advance_shutdown() {
  if (phase_ == Phase::kStoppingWorkers && children_.count_role(Role::kWorker) == 0) {
    phase_ = Phase::kStoppingHelpers;
    forced_ = 0;
    int helpers = signal_role(Role::kHelper, SIGTERM);
    log::info("workers gone; sent SIGTERM to ", helpers, " helpers");
    arm_shutdown_timer(kHelperStopTimeout);
  }
  if (phase_ == Phase::kStoppingHelpers && children_.empty()) {
    phase_ = Phase::kDone;
    evtimer_del(shutdown_timer_.get());
    log::info("all children gone");
    event_base_loopexit(base_.get(), nullptr);
  }
}

void Supervisor::on_shutdown_timer(evutil_socket_t, short, void* self) {
  static_cast<Supervisor*>(self)->shutdown_timer_fired();
}

void Supervisor::shutdown_timer_fired() {
  if (phase_ == Phase::kStoppingWorkers) {
    if (forced_++ == 0) {
      int n = signal_role(Role::kWorker, SIGKILL);
      log::warn("drain timeout (", config_.drain_timeout, " s) passed: killed ", n, " workers");
      arm_shutdown_timer(kReapGrace);
      return;
    }
    // Killed workers that still are not reaped (stuck in the kernel) must not keep the
    // helpers running forever.
    log::warn(children_.count_role(Role::kWorker), " killed workers not reaped; going on");
    phase_ = Phase::kStoppingHelpers;
    forced_ = 0;
    int helpers = signal_role(Role::kHelper, SIGTERM);
    log::info("sent SIGTERM to ", helpers, " helpers");
    arm_shutdown_timer(kHelperStopTimeout);
    return;
  }
  if (phase_ == Phase::kStoppingHelpers) {
    if (forced_++ == 0) {
      int n = signal_role(Role::kHelper, SIGKILL);
      log::warn("helpers did not stop within ", kHelperStopTimeout, " s: killed ", n);
      arm_shutdown_timer(kReapGrace);
      return;
    }
    log::warn(children_.size(), " children not reaped; exiting anyway");
    phase_ = Phase::kDone;
    event_base_loopexit(base_.get(), nullptr);
  }
}

void Supervisor::arm_shutdown_timer(int seconds) {
  timeval tv{seconds, 0};
  evtimer_add(shutdown_timer_.get(), &tv);
}

int Supervisor::signal_role(Role role, int sig) {
  int count = 0;
  for (Child* child : children_.with_role(role)) {
    child->retiring = true;
    kill(child->pid, sig);
    ++count;
  }
  return count;
}

void Supervisor::relay_remaining_logs() {
  for (auto& [id, relay] : relays_) relay->drain();
  relays_.clear();
}

}  // namespace sppd::master
