// Bridge: the queue-bridge program on the helper::Service skeleton: runs one Transaction per
// kQueueOpen, reaps children on SIGCHLD and answers every committed transaction with exactly
// one kQueueResult. Runs unprivileged (qmaild-like user) in one libevent loop. A malformed
// worker frame closes that worker's channel (its transactions are aborted).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/helper_service.h"
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
};

// Reads the settings from a loaded config; throws config::ConfigError on a bad value.
Settings settings_from(const config::Config& config);

class Bridge final : public helper::Program {
 public:
  // Seconds SIGTERM (or the master going away) lets running transactions finish.
  static constexpr int kDrainCap = 60;

  // control is the channel to the master; config_path is re-read on SIGHUP.
  Bridge(event_base* base, std::string config_path, Settings settings, UniqueFd control);
  ~Bridge() override;
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // The service skeleton: run(), drain(), reload().
  helper::Service& service() { return service_; }
  size_t in_flight() const override { return running_.size(); }

 private:
  using RequestKey = std::pair<uint64_t, uint32_t>;  // client id, request id
  struct Running {
    RequestKey key;
    std::unique_ptr<Transaction> transaction;
  };

  void on_worker_frame(helper::Client& client, ipc::Frame&& frame) override;
  void on_client_gone(helper::Client& client) override;
  std::string reload(const config::Config& config) override;
  void on_sigchld() override;

  void open_transaction(helper::Client& client, const ipc::Frame& frame);
  void finish_transaction(pid_t pid, const Verdict& verdict);
  // Ends a running transaction without a verdict (nothing is queued).
  void abort_transaction(pid_t pid);
  void send_result(helper::Client& client, uint32_t request_id, const Verdict& verdict, pid_t pid);

  event_base* base_;
  Settings settings_;
  std::map<RequestKey, pid_t> requests_;  // -> pid of the running transaction
  std::map<pid_t, Running> running_;
  // Last, so it goes first: dead transactions are destroyed while the rest is intact.
  helper::Service service_;
};

}  // namespace sppd::queue_bridge
