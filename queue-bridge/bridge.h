// Bridge: the queue-bridge program on the helper::Service skeleton: runs one Transaction per
// kQueueOpen (and, if the worker names its clamd, connects to it meanwhile and hands the
// socket over: kQueueScanner), reaps children on SIGCHLD and answers every committed
// transaction with exactly one kQueueResult. Runs unprivileged (qmaild-like user) in one
// libevent loop. A malformed worker frame closes that worker's channel (its transactions are
// aborted).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/helper_service.h"
#include "queue-bridge/clamd_connect.h"
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
  // Virus scanning: the clamd addresses the listeners' control/clamd files name (the only
  // ones a worker may ask for), and how long one connect to clamd may take.
  std::set<std::string> clamds;
  int clamd_connect_timeout = 5;
};

// Reads the settings from a loaded config (and the listeners' control/clamd); throws
// config::ConfigError on a bad value.
Settings settings_from(const config::Config& config);
// ", clamd ADDRESS ..." for the ready and reload log lines ("" without any).
std::string clamds_detail(const std::set<std::string>& clamds);

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
    // While clamd is being connected to: the connect, and the message pipe's write end,
    // which goes to the worker (kQueueOpened) right after the scanner (kQueueScanner).
    std::unique_ptr<ClamdConnect> clamd;
    UniqueFd message;
  };

  void on_worker_frame(helper::Client& client, ipc::Frame&& frame) override;
  void on_client_gone(helper::Client& client) override;
  std::string reload(const config::Config& config) override;
  void on_sigchld() override;

  void open_transaction(helper::Client& client, const ipc::Frame& frame);
  // The clamd connect of a transaction ended: hand over the scanner, then the pipe.
  void clamd_connected(pid_t pid, UniqueFd socket, const std::string& why);
  void send_scanner(helper::Client& client, uint32_t request_id, UniqueFd socket,
                    const std::string& why);
  void send_opened(helper::Client& client, uint32_t request_id, pid_t pid, UniqueFd message);
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
