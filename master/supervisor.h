// The master's event loop: starts the children (helpers first, then the smtpd workers),
// brokers a channel for every (worker, helper) pair, relays their logs, reaps and restarts
// them under RestartPolicy, reloads on SIGHUP and drains on SIGTERM/SIGINT.
// Runs as root; it never reads client input. Children's misbehaviour (bad frames, early
// deaths) is logged and handled; only the master's own broken invariants would abort it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "master/listeners.h"
#include "master/local_socket.h"
#include "master/log_relay.h"
#include "master/services.h"

namespace sppd::master {

// Creates the smtpd chroot directory (mkdir -p, 0755) if it is missing. Returns an error
// message when that fails while running as root (where the chroot matters), else "".
std::string prepare_chroot(const config::Config& config);

class Supervisor {
 public:
  // program_dir holds sppd-smtpd, sppd-queue-bridge and sppd-dnsbl-cache; dnsbl_socket is
  // handed to every dnsbl-cache and kept until the master ends.
  Supervisor(config::Config config, ListenerSet listeners, LocalSocket dnsbl_socket,
             std::string program_dir);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the children and runs until a shutdown has finished. Returns the exit status.
  int run();

 private:
  enum class Phase { kRunning, kStoppingWorkers, kStoppingHelpers, kDone };
  struct ServiceState {
    std::string name;
    Supervisor* owner = nullptr;
    RestartPolicy policy;
    EventPtr throttle_timer;
  };

  static void on_signal(evutil_socket_t sig, short what, void* self);
  static void on_throttle_timer(evutil_socket_t, short, void* state);
  static void on_shutdown_timer(evutil_socket_t, short, void* self);

  // ---- children (supervisor.cpp)
  // Starts children until the service has as many as it should, unless it is throttled.
  void reconcile(std::string_view service);
  bool start_child(std::string_view service);
  // Gives a new child its channels: a worker one per live helper, a helper one per worker.
  void broker_new_child(Child& child);
  void broker(Child& worker, Child& helper);
  void on_control_frame(pid_t pid, ipc::Frame&& frame);
  void on_control_closed(pid_t pid, const std::string& why);
  void reap();
  void on_child_exit(pid_t pid, int status);
  void throttle(ServiceState& state, std::chrono::seconds delay, std::string_view why);
  int desired(std::string_view service) const;
  ServiceState& state(std::string_view service);

  // ---- reload and shutdown (lifecycle.cpp)
  void reload();
  void begin_shutdown(int sig);
  // Moves the shutdown on when the children it waits for are gone.
  void advance_shutdown();
  void shutdown_timer_fired();
  void arm_shutdown_timer(int seconds);
  // Marks every child of role retiring and sends it sig; returns how many there were.
  int signal_role(Role role, int sig);
  void relay_remaining_logs();

  config::Config config_;
  ListenerSet listeners_;
  LocalSocket dnsbl_socket_;
  std::string program_dir_;
  unsigned generation_ = 1;
  Phase phase_ = Phase::kRunning;
  int forced_ = 0;  // times the current shutdown phase ran out of patience
  UniqueFd dev_null_;
  EventBasePtr base_;
  std::vector<EventPtr> signal_events_;
  EventPtr shutdown_timer_;
  std::map<std::string, ServiceState, std::less<>> services_;
  ProcessTable children_;
  std::map<uint64_t, std::unique_ptr<LogRelay>> relays_;
  uint64_t next_relay_id_ = 1;
};

}  // namespace sppd::master
