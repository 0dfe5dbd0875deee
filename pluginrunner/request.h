// request: one kPluginRun (one section's plugins for one SMTP command): runs them in order,
// threads the environment (S, U, C in [mail]/[rcpt]) from each to the next, stops at a
// terminating command or failure, reports once. Owned by Runner; destroying it kills its plugin.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/event.h"
#include "common/frame.h"
#include "pluginrunner/plugin_process.h"

namespace sppd::pluginrunner {

// What kPluginResult carries.
struct RunResult {
  std::vector<std::string> commands;
  std::optional<std::string> failure;
};

// The runner settings a request uses (re-read on SIGHUP; a request keeps the ones it began
// with).
struct RunSettings {
  std::string qmail_home;
  std::chrono::milliseconds plugin_timeout{300000};  // 0 = none
  size_t max_output = 65536;
  // dnsbl-cache's local socket, given to every plugin as SPPD_DNSBL_SOCKET (rblspp asks
  // there); empty = not set.
  std::string dnsbl_socket;
};

// Applies one command's effect on the environment later plugins of the request see: S
// (qmail's env_put: replaces NAME, even "S" without '=' adds the raw entry), U (removes NAME),
// C (SMTPMAILFROM in section m, SMTPRCPTTO in section r). Other commands change nothing.
void apply_to_env(char section, const std::string& command, std::vector<std::string>* env);

// The kPluginResult frame for result, kept under the 64 KiB frame limit: non-terminating
// commands that do not fit are dropped (logged with session); the terminating command and the
// failure are kept, cut short if they alone are too long.
ipc::Frame result_frame(uint32_t request_id, RunResult result, const std::string& session);

class Request {
 public:
  // Called once, possibly from inside start(). The owner must not destroy the request inside
  // the call.
  using DoneHandler = std::function<void(RunResult&&)>;

  Request(event_base* base, ChildTable& children, RunSettings settings, char section,
          std::string session, std::vector<std::string> plugins, std::vector<std::string> env,
          DoneHandler on_done);
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // Starts the first plugin (or answers at once when there is none).
  void start();
  // Nobody wants the result any more: no further plugin starts and on_done is not called.
  // The running plugin is killed when the request is destroyed.
  void cancel() { done_ = true; }
  const std::string& session() const { return session_; }

 private:
  void run_next();
  // Takes one plugin's outcome; true if the section goes on with the next plugin.
  bool take(PluginOutcome&& outcome);
  void finish();

  event_base* base_;
  ChildTable& children_;
  RunSettings settings_;
  char section_;
  std::string session_;
  std::vector<std::string> plugins_;
  std::vector<std::string> env_;
  DoneHandler on_done_;
  size_t next_ = 0;
  RunResult result_;
  // Every plugin run so far; the finished ones stay until the request goes, because a
  // plugin reports its outcome from inside its own callbacks.
  std::vector<std::unique_ptr<PluginProcess>> processes_;
  bool done_ = false;
};

}  // namespace sppd::pluginrunner
