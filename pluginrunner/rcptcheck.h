// rcptcheck: one run of qmail-md's rcptcheck program for one RCPT (kRcptCheck), started
// exactly as a qmail-spp plugin is (PluginProcess: own process group, cwd qmail_home, fd 0
// closed, stderr logged, stdout ignored, plugin_timeout), with the session environment plus
// SENDER and RECIPIENT. The answer is the exit status; the worker turns it into a reply
// (smtpd/rcptcheck_replies). Owned by Runner; destroying it kills a program still running.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/event.h"
#include "common/frame.h"
#include "pluginrunner/plugin_process.h"
#include "pluginrunner/request.h"

namespace sppd::pluginrunner {

// What kRcptCheckResult carries: the exit status, or why there is none.
struct RcptCheckResult {
  std::optional<int> exit_status;
  std::optional<std::string> failure;
};

struct RcptCheckSpec {
  std::string program;           // a path (relative to qmail_home) or ":" and a shell command
  std::string session;           // the worker's session id, for log lines
  std::string sender;            // SENDER (empty for the null sender)
  std::string recipient;         // RECIPIENT
  std::vector<std::string> env;  // the session environment, "NAME=value"
};

// The program's environment: env with SENDER and RECIPIENT set (replacing any of the client's).
std::vector<std::string> rcptcheck_environment(std::vector<std::string> env,
                                               const std::string& sender,
                                               const std::string& recipient);

// The kRcptCheckResult frame for a result.
ipc::Frame rcptcheck_result_frame(uint32_t request_id, const RcptCheckResult& result);

class RcptCheck {
 public:
  // Called once, possibly from inside start(); the owner must not destroy the check inside it.
  using DoneHandler = std::function<void(RcptCheckResult&&)>;

  RcptCheck(event_base* base, ChildTable& children, const RunSettings& settings, RcptCheckSpec spec,
            DoneHandler on_done);
  RcptCheck(const RcptCheck&) = delete;
  RcptCheck& operator=(const RcptCheck&) = delete;

  // Starts the program (or answers at once with a failure if it cannot be started).
  void start();
  // Nobody wants the answer any more: on_done is not called; destroying kills the program.
  void cancel() { done_ = true; }
  const std::string& session() const { return spec_.session; }

 private:
  void finish(PluginOutcome&& outcome);

  event_base* base_;
  ChildTable& children_;
  RunSettings settings_;
  RcptCheckSpec spec_;
  DoneHandler on_done_;
  std::unique_ptr<PluginProcess> process_;
  bool done_ = false;
};

}  // namespace sppd::pluginrunner
