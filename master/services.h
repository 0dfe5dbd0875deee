// The master's process table and restart policy: which children run, for which service and
// generation, whether each has served anyone, and when a dead one may be replaced. Pure
// bookkeeping, no system calls: supervisor.cpp acts on what these classes decide.
// Restart rule (Postfix master_spawn.c, architecture-anchors §1.5): a child that dies before
// serving anyone is a start-up failure and throttles its service with an exponential backoff.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/channel.h"

namespace sppd::master {

// The services the master runs, in start order: helpers first, so the first workers
// already find them.
inline constexpr std::string_view kQueueBridge = "queue-bridge";
inline constexpr std::string_view kDnsblCache = "dnsbl-cache";
inline constexpr std::string_view kPluginRunner = "pluginrunner";
inline constexpr std::string_view kAuthd = "authd";
inline constexpr std::string_view kSmtpd = "smtpd";
inline constexpr std::string_view kServices[] = {kQueueBridge, kDnsblCache, kPluginRunner, kAuthd,
                                                 kSmtpd};
// Helpers of which the master runs `processes` children; workers keep a channel to each.
// The other helpers are singletons (one cache, one queue bridge per host).
bool is_pool(std::string_view service);

// Workers accept clients; helpers serve workers over channels the master brokers.
enum class Role { kHelper, kWorker };
Role role_of(std::string_view service);

// Decides when a service may start children again after deaths. One per service.
class RestartPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kFirstDelay{1};
  static constexpr std::chrono::seconds kMaxDelay{60};

  // A child served its first unit of work: start-up works, the backoff starts over.
  void on_served();
  // A child died (or could not be started: served = false). Returns the throttle this
  // death starts (1 s, 2 s, 4 s ... 60 s), or zero if it starts none: the child had
  // served, or the service is already throttled (siblings failing together count once).
  std::chrono::seconds on_death(bool served, Clock::time_point now);
  // Whether new children may be started at now.
  bool may_start(Clock::time_point now) const { return now >= throttled_until_; }
  Clock::time_point throttled_until() const { return throttled_until_; }
  // The throttle the next start-up failure would cause.
  std::chrono::seconds next_delay() const { return next_delay_; }

 private:
  std::chrono::seconds next_delay_ = kFirstDelay;
  Clock::time_point throttled_until_{};
};

// One running child of the master.
struct Child {
  pid_t pid = 0;
  std::string service;
  unsigned generation = 0;
  bool served = false;    // sent kServed: its death is not a start-up failure
  bool retiring = false;  // told to exit (reload or shutdown): not replaced when it dies
  std::unique_ptr<ipc::Channel> control;  // master's end of the child's fd 3
  uint64_t log_relay = 0;                 // id of the relay reading its stderr

  // Whether the master can still send it frames (channels to broker, for instance).
  bool reachable() const { return control && control->open(); }
};

// Every child the master has started and not yet reaped, by pid.
class ProcessTable {
 public:
  // Records a started child; returns the stored record.
  Child& add(Child child);
  // The child with pid, or nullptr.
  Child* find(pid_t pid);
  // Forgets a reaped child; returns its record (empty service if it was unknown).
  Child remove(pid_t pid);
  // Every child of a role, in pid order.
  std::vector<Child*> with_role(Role role);
  // Children of service that are not retiring (the ones that count towards `processes`).
  int count_active(std::string_view service) const;
  // Children of a role still running, retiring or not.
  int count_role(Role role) const;
  bool empty() const { return children_.empty(); }
  size_t size() const { return children_.size(); }

 private:
  std::map<pid_t, Child> children_;
};

}  // namespace sppd::master
