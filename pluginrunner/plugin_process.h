// plugin_process: one run of one qmail-spp plugin, spawn to outcome (qmail-spp.md §3 +
// DECISIONS.md): fd 0 closed, fd 1 parsed, fd 2 logged, own process group, cwd qmail_home.
// Every failure (spawn, crash, exit 120, timeout) becomes qmail-spp's failure text; no throws.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/event.h"
#include "common/fd.h"
#include "pluginrunner/output_parser.h"

namespace sppd::pluginrunner {

struct PluginSpec {
  std::string line;              // the config line: a path, or ":" and a shell command
  std::string session;           // the worker's session id, for log lines
  std::vector<std::string> env;  // "NAME=value": exactly what the plugin sees (PATH added)
  std::string qmail_home;        // its working directory
  std::chrono::milliseconds timeout{300000};  // 0 = none
  size_t max_output = 65536;                  // stdout bytes that count
};

struct PluginOutcome {
  std::vector<std::string> commands;   // as output_parser keeps them, in order
  bool terminated = false;             // the last command is A N O E R or D
  std::optional<std::string> failure;  // "qmail-spp failure: <line>: ... (#4.3.0)"
  std::optional<int> exit_status;      // if it exited (rcptcheck reads it; plugins do not)
};

// argv for a config line: ":cmd" -> {"/bin/sh", "-c", "cmd"}; anything else -> {line}
// (execv of the whole line: no argument splitting, no PATH search).
std::vector<std::string> plugin_argv(const std::string& line);
// The plugin's environment: env plus PATH=/usr/local/bin:/usr/bin:/bin if env has no PATH.
std::vector<std::string> plugin_environment(std::vector<std::string> env);
// qmail-spp's failure text, e.g. failure_text("plugins/x", "child crashed").
std::string failure_text(const std::string& line, const std::string& what);

class PluginProcess;

// Running plugins by pid, so SIGCHLD reaches the PluginProcess whose child ended; and the
// process groups plugins left behind, killed when their plugin's timeout comes.
class ChildTable {
 public:
  explicit ChildTable(event_base* base) : base_(base) {}
  // Kills the groups still waiting for their deadline: nothing a plugin started outlives us.
  ~ChildTable();
  ChildTable(const ChildTable&) = delete;
  ChildTable& operator=(const ChildTable&) = delete;

  void add(pid_t pid, PluginProcess* process) { children_[pid] = process; }
  void remove(pid_t pid) { children_.erase(pid); }
  size_t size() const { return children_.size(); }
  // Reaps every ended child (waitpid -1, WNOHANG) and tells its PluginProcess. Children
  // nobody waits for any more (killed after a timeout) are just reaped.
  void reap();
  // A plugin ended but its process group lives on (a background child): kill the group when
  // the plugin's timeout would have come, in `remaining`.
  void kill_group_later(pid_t pgid, std::chrono::milliseconds remaining);
  size_t lingering() const { return lingering_.size(); }

 private:
  struct Lingering {
    ChildTable* table = nullptr;
    pid_t pgid = -1;
    EventPtr timer;
  };
  static void on_deadline(evutil_socket_t, short, void* lingering);
  void kill_group(pid_t pgid, const char* when);

  event_base* base_;
  std::map<pid_t, PluginProcess*> children_;
  std::map<pid_t, std::unique_ptr<Lingering>> lingering_;
  // Fired timers, freed on the next call instead of inside their own callback.
  std::vector<std::unique_ptr<Lingering>> fired_;
};

class PluginProcess {
 public:
  // Called once with the outcome. Nothing in the process is touched after the call, so the
  // owner may keep or drop it, but must not destroy it inside the call.
  using DoneHandler = std::function<void(PluginOutcome&&)>;

  PluginProcess(event_base* base, ChildTable& children, PluginSpec spec, DoneHandler on_done);
  // Kills the process group of a plugin still running (its request was abandoned).
  ~PluginProcess();
  PluginProcess(const PluginProcess&) = delete;
  PluginProcess& operator=(const PluginProcess&) = delete;

  // Starts the plugin. false: it could not be started; *outcome holds the "can't execute"
  // failure and on_done is never called.
  bool start(PluginOutcome* outcome);
  // SIGCHLD (via ChildTable): the plugin ended with wait_status. What is already in its pipes
  // is read, then the outcome is reported; a background child still holding the pipes is
  // not waited for.
  void child_exited(int wait_status);
  pid_t pid() const { return pid_; }

 private:
  static void on_stdout(evutil_socket_t, short, void* self);
  static void on_stderr(evutil_socket_t, short, void* self);
  static void on_timeout(evutil_socket_t, short, void* self);
  // Milliseconds until the plugin's timeout; 0 if there is none or it has passed.
  std::chrono::milliseconds time_left() const;
  void read_stdout();
  void read_stderr(bool flush);
  void close_stdout();
  void close_stderr();
  void log_stderr_line(std::string_view text);
  void finish(std::optional<std::string> failure);

  event_base* base_;
  ChildTable& children_;
  PluginSpec spec_;
  DoneHandler on_done_;
  OutputParser parser_;
  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point started_;
  UniqueFd stdout_fd_;
  UniqueFd stderr_fd_;
  EventPtr stdout_event_;
  EventPtr stderr_event_;
  EventPtr timeout_event_;
  std::string stderr_line_;
  std::optional<int> exit_status_;
  bool child_running_ = false;
  bool finished_ = false;
  bool cap_logged_ = false;
};

}  // namespace sppd::pluginrunner
