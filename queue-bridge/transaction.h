// Transaction: one running qmail-queue on behalf of one worker request, from kQueueOpen to
// its verdict. Owns our ends of the pipes (envelope, error), the queue_timeout timer and the
// child's process group. Driven by Bridge (frames, SIGCHLD); reports exactly one verdict
// through on_finish unless aborted. Privilege: queue-bridge's user.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/event.h"
#include "common/fd.h"
#include "queue-bridge/exit_codes.h"
#include "queue-bridge/spawn.h"

namespace sppd::queue_bridge {

// Builds the qmail-queue envelope: "F<from>\0" + "T<to>\0" per recipient + "\0".
std::string build_envelope(std::string_view from, std::string_view recipients_records);
// One envelope recipient record: "T<to>\0".
void append_recipient(std::string* records, std::string_view to);

class Transaction {
 public:
  // Called once with the answer for the worker. The transaction is over after it: the owner
  // may schedule its destruction, but must not destroy it inside the call.
  using FinishHandler = std::function<void(const Verdict&)>;

  Transaction(event_base* base, QueueChild child, int queue_timeout, FinishHandler on_finish);
  // Kills the process group of an unfinished transaction (bridge shutdown).
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  pid_t pid() const { return pid_; }
  bool committed() const { return committed_; }
  bool finished() const { return finished_; }

  // Remembers recipients that arrive before kQueueCommit.
  void add_recipients(const std::vector<std::string_view>& to);
  // Writes the envelope (without blocking) and starts the queue_timeout clock.
  void commit(std::string_view from, const std::vector<std::string_view>& to);
  // SIGCHLD: the child ended with wait_status; reads its error text and finishes.
  void child_exited(int wait_status);
  // Gives up without a verdict: qmail-queue sees EOF on the envelope and queues nothing.
  void abort();

 private:
  static void on_writable(evutil_socket_t, short, void* self);
  static void on_timeout(evutil_socket_t, short, void* self);
  void write_envelope();
  void stop_envelope();
  void kill_group();
  std::string read_error_text();
  void finish(const Verdict& verdict);

  pid_t pid_;
  UniqueFd envelope_fd_;
  UniqueFd error_fd_;
  int queue_timeout_;
  EventPtr write_event_;
  EventPtr timeout_event_;
  FinishHandler on_finish_;
  std::string recipients_;  // "T<to>\0" records received before commit
  std::string envelope_;    // the whole envelope once committed
  size_t envelope_written_ = 0;
  bool envelope_complete_ = false;
  bool committed_ = false;
  bool child_running_ = true;
  bool finished_ = false;
};

}  // namespace sppd::queue_bridge
