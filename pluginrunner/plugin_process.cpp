// PluginProcess implementation (contract in plugin_process.h): spawn, pipes, timeout, exit
// status. The child's exit, not EOF, ends a plugin: a background job may hold stdout forever,
// and qmail-spp only waited for the direct child; we take what is in the pipe and stop.
#include "pluginrunner/plugin_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "common/spawn.h"

namespace sppd::pluginrunner {
namespace {

constexpr size_t kReadChunk = 16384;
// Reads per readable event before yielding to other sessions' plugins.
constexpr int kReadsPerEvent = 4;
// Reads after the plugin exited: 1 MiB, the most a pipe can hold (pipe-max-size), so all the
// plugin wrote is taken, but a background child that keeps writing cannot keep us here.
constexpr int kReadsAfterExit = 64;
// A longer stderr line is logged in pieces of this size.
constexpr size_t kMaxStderrLine = 1000;

}  // namespace

std::vector<std::string> plugin_argv(const std::string& line) {
  if (!line.empty() && line[0] == ':') return {"/bin/sh", "-c", line.substr(1)};
  return {line};
}

std::vector<std::string> plugin_environment(std::vector<std::string> env) {
  return spawn::with_default_path(std::move(env));
}

std::string failure_text(const std::string& line, const std::string& what) {
  return "qmail-spp failure: " + line + ": " + what + " (#4.3.0)";
}

ChildTable::~ChildTable() {
  for (const auto& [pgid, lingering] : lingering_) kill_group(pgid, "at shutdown");
}

void ChildTable::kill_group_later(pid_t pgid, std::chrono::milliseconds remaining) {
  fired_.clear();
  auto lingering = std::make_unique<Lingering>();
  lingering->table = this;
  lingering->pgid = pgid;
  lingering->timer.reset(evtimer_new(base_, &ChildTable::on_deadline, lingering.get()));
  if (!lingering->timer) log::fatal("out of memory for a plugin group timer");
  auto ms = remaining.count();
  timeval limit{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(lingering->timer.get(), &limit);
  lingering_[pgid] = std::move(lingering);
}

void ChildTable::on_deadline(evutil_socket_t, short, void* arg) {
  auto* lingering = static_cast<Lingering*>(arg);
  ChildTable* table = lingering->table;
  pid_t pgid = lingering->pgid;
  auto it = table->lingering_.find(pgid);
  if (it == table->lingering_.end()) return;
  table->fired_.push_back(std::move(it->second));
  table->lingering_.erase(it);
  table->kill_group(pgid, "at plugin_timeout");
}

void ChildTable::kill_group(pid_t pgid, const char* when) {
  // The group id is the pid of a plugin we reaped; once the group is empty the number can be
  // reused, and the likeliest new owner is another plugin of ours (each leads its own group).
  if (children_.count(pgid)) return;
  if (kill(-pgid, SIGKILL) == 0) {
    log::info("process group ", pgid, " left behind by a plugin killed ", when);
  }
}

void ChildTable::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    auto it = children_.find(pid);
    if (it == children_.end()) continue;  // killed after its timeout, nobody waits for it
    PluginProcess* process = it->second;
    children_.erase(it);
    process->child_exited(status);
  }
}

PluginProcess::PluginProcess(event_base* base, ChildTable& children, PluginSpec spec,
                             DoneHandler on_done)
    : base_(base),
      children_(children),
      spec_(std::move(spec)),
      on_done_(std::move(on_done)),
      parser_(spec_.max_output) {}

PluginProcess::~PluginProcess() {
  if (child_running_) {
    // The request was abandoned (worker gone, shutdown): nobody wants this plugin any more.
    if (kill(-pid_, SIGKILL) < 0 && errno != ESRCH) {
      log::debug("plugin ", spec_.line, ": cannot kill process group ", pid_, ": ",
                 std::strerror(errno));
    }
    children_.remove(pid_);
  }
}

bool PluginProcess::start(PluginOutcome* outcome) {
  auto cannot = [&](const std::string& why) {
    log::warn("plugin ", spec_.line, " session ", spec_.session, ": cannot run: ", why);
    outcome->failure = failure_text(spec_.line, "can't execute");
    finished_ = true;
    return false;
  };
  // Pipe ends above fd 2, so laying out 1 and 2 clobbers neither; our read ends non-blocking.
  std::string why;
  auto out = spawn::make_pipe(2, &why);
  auto err = out ? spawn::make_pipe(2, &why) : std::nullopt;
  if (!out || !err) return cannot(why);
  if (!spawn::set_nonblocking(out->read.get()) || !spawn::set_nonblocking(err->read.get())) {
    return cannot(std::string("fcntl: ") + std::strerror(errno));
  }
  stdout_fd_ = std::move(out->read);
  stderr_fd_ = std::move(err->read);
  UniqueFd stdout_write = std::move(out->write);
  UniqueFd stderr_write = std::move(err->write);

  spawn::Program program;
  program.argv = plugin_argv(spec_.line);
  program.env = plugin_environment(std::move(spec_.env));
  spec_.env.clear();
  program.cwd = spec_.qmail_home;
  // qmail-spp's close(0): reading stdin fails with EBADF, it is not /dev/null.
  program.descriptors = {{stdout_write.get(), 1}, {stderr_write.get(), 2}};
  program.close_stdin = true;
  // qmail-smtpd ignored SIGPIPE and plugins rely on getting EPIPE instead of dying.
  program.default_sigpipe = false;
  // spawn::start reports exec failures itself (ENOENT, EACCES, ENOEXEC ...): qmail-spp's child
  // would have exited 120 there, which is "can't execute" too.
  auto pid = spawn::start(program, &why);
  if (!pid) return cannot(why);
  pid_ = *pid;
  child_running_ = true;
  started_ = std::chrono::steady_clock::now();
  children_.add(pid_, this);
  // Our copies of the write ends close here: EOF arrives when the plugin's side is gone.
  stdout_write.reset();
  stderr_write.reset();

  stdout_event_.reset(
      event_new(base_, stdout_fd_.get(), EV_READ | EV_PERSIST, &PluginProcess::on_stdout, this));
  stderr_event_.reset(
      event_new(base_, stderr_fd_.get(), EV_READ | EV_PERSIST, &PluginProcess::on_stderr, this));
  timeout_event_.reset(evtimer_new(base_, &PluginProcess::on_timeout, this));
  if (!stdout_event_ || !stderr_event_ || !timeout_event_) {
    log::fatal("out of memory for the events of plugin ", spec_.line);
  }
  event_add(stdout_event_.get(), nullptr);
  event_add(stderr_event_.get(), nullptr);
  if (spec_.timeout.count() > 0) {
    auto ms = spec_.timeout.count();
    timeval limit{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    evtimer_add(timeout_event_.get(), &limit);
  }
  log::debug("plugin ", spec_.line, " session ", spec_.session, ": started, pid ", pid_);
  return true;
}

void PluginProcess::on_stdout(evutil_socket_t, short, void* self) {
  static_cast<PluginProcess*>(self)->read_stdout();
}

void PluginProcess::on_stderr(evutil_socket_t, short, void* self) {
  static_cast<PluginProcess*>(self)->read_stderr(false);
}

void PluginProcess::read_stdout() {
  char buffer[kReadChunk];
  // Once the child has exited, read everything that is there; before, take turns.
  int limit = child_running_ ? kReadsPerEvent : kReadsAfterExit;
  for (int reads = 0; stdout_fd_ && reads < limit; ++reads) {
    ssize_t n = ::read(stdout_fd_.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      if (n < 0) {
        log::warn("plugin ", spec_.line, " session ", spec_.session,
                  ": reading its output: ", std::strerror(errno));
      }
      parser_.finish();
      close_stdout();
      return;
    }
    bool wanted = parser_.feed(std::string_view(buffer, static_cast<size_t>(n)));
    if (parser_.discarded() > 0 && !cap_logged_) {
      cap_logged_ = true;
      log::warn("plugin ", spec_.line, " session ", spec_.session, ": output beyond ",
                spec_.max_output, " bytes discarded");
    }
    // qmail-spp stops reading after a terminating command; the plugin's later writes fail
    // with EPIPE (SIGPIPE is ignored).
    if (!wanted) close_stdout();
  }
}

void PluginProcess::read_stderr(bool flush) {
  char buffer[kReadChunk];
  int limit = child_running_ ? kReadsPerEvent : kReadsAfterExit;
  for (int reads = 0; stderr_fd_ && reads < limit; ++reads) {
    ssize_t n = ::read(stderr_fd_.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      close_stderr();
      flush = true;
      break;
    }
    std::string_view text(buffer, static_cast<size_t>(n));
    while (!text.empty()) {
      size_t newline = text.find('\n');
      size_t room = kMaxStderrLine - stderr_line_.size();
      if (newline == std::string_view::npos || newline > room) {
        size_t take = std::min(text.size(), room);
        stderr_line_.append(text.substr(0, take));
        text.remove_prefix(take);
        if (stderr_line_.size() == kMaxStderrLine) {
          log_stderr_line(stderr_line_);
          stderr_line_.clear();
        }
        continue;
      }
      stderr_line_.append(text.substr(0, newline));
      text.remove_prefix(newline + 1);
      log_stderr_line(stderr_line_);
      stderr_line_.clear();
    }
  }
  if (flush && !stderr_line_.empty()) {
    log_stderr_line(stderr_line_);
    stderr_line_.clear();
  }
}

void PluginProcess::log_stderr_line(std::string_view text) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  log::info("plugin ", spec_.line, " session ", spec_.session, ": ", text);
}

void PluginProcess::close_stdout() {
  // The event is only deleted here, freed with the object: this may run inside its callback.
  if (stdout_event_) event_del(stdout_event_.get());
  stdout_fd_.reset();
}

void PluginProcess::close_stderr() {
  if (stderr_event_) event_del(stderr_event_.get());
  stderr_fd_.reset();
}

void PluginProcess::child_exited(int wait_status) {
  child_running_ = false;
  if (finished_) return;
  read_stdout();
  if (stdout_fd_) {
    // A background child still holds stdout: what it writes later is not ours to wait for.
    parser_.finish();
    close_stdout();
  }
  read_stderr(true);
  close_stderr();
  // Whatever the plugin left running (its group outlives it) gets the rest of its time.
  std::chrono::milliseconds left = time_left();
  if (left.count() > 0 && kill(-pid_, 0) == 0) children_.kill_group_later(pid_, left);

  std::optional<std::string> failure;
  if (WIFEXITED(wait_status)) exit_status_ = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) {
    log::warn("plugin ", spec_.line, " session ", spec_.session, ": killed by signal ",
              WTERMSIG(wait_status));
    failure = failure_text(spec_.line, "child crashed");
  } else if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 120) {
    log::warn("plugin ", spec_.line, " session ", spec_.session,
              ": exit status 120 (qmail-spp: can't execute)");
    failure = failure_text(spec_.line, "can't execute");
  } else if (WIFEXITED(wait_status)) {
    // qmail-spp ignores every other exit status; the commands printed count.
    log::debug("plugin ", spec_.line, " session ", spec_.session, ": exit status ",
               WEXITSTATUS(wait_status));
  }
  finish(std::move(failure));
}

std::chrono::milliseconds PluginProcess::time_left() const {
  if (spec_.timeout.count() <= 0) return std::chrono::milliseconds(0);
  auto used = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_);
  return std::max(spec_.timeout - used, std::chrono::milliseconds(0));
}

void PluginProcess::on_timeout(evutil_socket_t, short, void* self) {
  auto* process = static_cast<PluginProcess*>(self);
  auto ms = process->spec_.timeout.count();
  log::warn("plugin ", process->spec_.line, " session ", process->spec_.session,
            ": still running after ", ms / 1000, ".", ms % 1000 / 100,
            " s (plugin_timeout), killing its process group");
  if (kill(-process->pid_, SIGKILL) < 0 && errno != ESRCH) {
    log::warn("plugin ", process->spec_.line, ": cannot kill process group ", process->pid_, ": ",
              std::strerror(errno));
  }
  // The kill is certain (same user): the zombie is reaped by ChildTable without us.
  process->children_.remove(process->pid_);
  process->child_running_ = false;
  process->read_stderr(true);
  process->finish(failure_text(process->spec_.line, "child crashed"));
}

void PluginProcess::finish(std::optional<std::string> failure) {
  if (finished_) return;
  finished_ = true;
  if (timeout_event_) evtimer_del(timeout_event_.get());
  close_stdout();
  close_stderr();
  PluginOutcome outcome;
  outcome.terminated = parser_.terminated();
  outcome.commands = parser_.take_commands();
  outcome.failure = std::move(failure);
  outcome.exit_status = exit_status_;
  DoneHandler handler = std::move(on_done_);
  if (handler) handler(std::move(outcome));
}

}  // namespace sppd::pluginrunner
