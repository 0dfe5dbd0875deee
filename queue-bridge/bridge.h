// Bridge: the queue-bridge service. Accepts worker channels from the master (kNewClient on
// the control channel), runs one Transaction per kQueueOpen, reaps children on SIGCHLD and
// answers every committed transaction with exactly one kQueueResult. Runs unprivileged
// (qmaild-like user) in one libevent loop. A malformed worker frame closes that worker's
// channel (its transactions are aborted); a malformed control frame is fatal.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/log.h"
#include "queue-bridge/exit_codes.h"
#include "queue-bridge/transaction.h"

namespace sppd::queue_bridge {

// [service queue-bridge] plus what it needs of the global section.
struct Settings {
  std::string qmail_home;                // cwd of qmail-queue
  std::vector<std::string> qmail_queue;  // command line, split on whitespace
  int queue_timeout = 1200;              // seconds from the envelope to qmail-queue's exit
  int error_fd = 6;                      // where the queue program finds the error pipe
  std::string user;                      // run as this user (privilege::drop)
  log::Level log_level = log::Level::kInfo;
};

// Reads the settings from a loaded config; throws config::ConfigError on a bad value.
Settings settings_from(const config::Config& config);

class Bridge {
 public:
  // Seconds SIGTERM (or the master going away) lets running transactions finish.
  static constexpr int kDrainCap = 60;

  // control is the channel to the master; config_path is re-read on SIGHUP.
  Bridge(event_base* base, std::string config_path, Settings settings, UniqueFd control);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Runs the event loop until drained; returns the process exit status.
  int run();
  // Stops taking transactions; the loop ends when none runs (at most kDrainCap seconds).
  void drain(const std::string& why);
  // Re-reads the config file; keeps the current settings if it is broken.
  void reload();

 private:
  struct Client {
    uint64_t id = 0;
    std::string worker_pid;
    std::unique_ptr<ipc::Channel> channel;
    std::map<uint32_t, pid_t> requests;  // request id -> pid of its running transaction
  };
  struct Running {
    uint64_t client_id = 0;
    uint32_t request_id = 0;
    std::unique_ptr<Transaction> transaction;
  };

  void on_control_frame(ipc::Frame&& frame);
  void on_worker_frame(uint64_t client_id, ipc::Frame&& frame);
  void open_transaction(Client& client, const ipc::Frame& frame);
  void finish_transaction(pid_t pid, const Verdict& verdict);
  void drop_client(uint64_t client_id, const std::string& why);
  void malformed(Client& client, const std::string& why);
  void send_result(Client& client, uint32_t request_id, const Verdict& verdict, pid_t pid);
  void reap_children();
  void schedule_cleanup();
  void maybe_exit();
  Client* find_client(uint64_t client_id);

  static void on_signal(evutil_socket_t signal, short, void* self);
  static void on_cleanup(evutil_socket_t, short, void* self);
  static void on_drain_cap(evutil_socket_t, short, void* self);

  event_base* base_;
  std::string config_path_;
  Settings settings_;
  std::unique_ptr<ipc::Channel> control_;
  std::map<uint64_t, std::unique_ptr<Client>> clients_;
  std::map<pid_t, Running> running_;
  // Destroyed on the next loop pass, never inside the callbacks that ended them.
  std::vector<std::unique_ptr<Client>> dead_clients_;
  std::vector<std::unique_ptr<Transaction>> dead_transactions_;
  EventPtr sigchld_event_;
  EventPtr sighup_event_;
  EventPtr sigterm_event_;
  EventPtr cleanup_event_;
  EventPtr drain_cap_event_;
  uint64_t next_client_id_ = 1;
  bool served_ = false;
  bool draining_ = false;
};

}  // namespace sppd::queue_bridge
