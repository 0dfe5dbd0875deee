// CheckRunner implementation (contract in runner.h). The credentials go into a pipe that is
// at most 512 bytes, so one write into the empty pipe never blocks and never comes up short
// (PIPE_BUF); the write end is closed at once so checkpassword sees EOF.
#include "authd/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "common/spawn.h"

namespace sppd::authd {

Outcome outcome_of(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    return {Verdict::kTemp, "killed by signal " + std::to_string(WTERMSIG(wait_status))};
  }
  int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 111;
  std::string detail = "exit " + std::to_string(code);
  if (code == 0) return {Verdict::kOk, detail};
  if (code == 2) return {Verdict::kMisuse, detail};
  if (code == 111) return {Verdict::kTemp, detail};
  return {Verdict::kBad, detail};
}

CheckRunner::CheckRunner(event_base* base, RunnerSettings settings)
    : base_(base), settings_(std::move(settings)) {
  // Above fd 3, so laying out the child's 0, 1 and 3 never overwrites it first.
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd >= 0 && fd <= 3) {
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 4);
    ::close(fd);
    fd = moved;
  }
  if (fd < 0) log::fatal("cannot open /dev/null: ", std::strerror(errno));
  dev_null_.reset(fd);
}

CheckRunner::~CheckRunner() {
  for (const auto& [pid, run] : running_) kill(-pid, SIGKILL);
}

void CheckRunner::set_settings(RunnerSettings settings) {
  settings_ = std::move(settings);
  start_waiting();
}

void CheckRunner::submit(Secret input, std::vector<std::string> env, Done done) {
  if (waiting_.size() >= settings_.max_waiting) {
    input.wipe();
    done({Verdict::kTemp, "too many checks waiting"});
    return;
  }
  waiting_.push_back(Job{std::move(input), std::move(env), std::move(done)});
  start_waiting();
}

void CheckRunner::start_waiting() {
  while (!waiting_.empty() && running_.size() < static_cast<size_t>(settings_.concurrency)) {
    Job job = std::move(waiting_.front());
    waiting_.pop_front();
    start(std::move(job));
  }
}

void CheckRunner::start(Job job) {
  std::string why;
  std::optional<spawn::Pipe> pipe = spawn::make_pipe(3, &why);
  std::optional<pid_t> pid;
  if (pipe) {
    spawn::Program program;
    program.argv = settings_.command;
    program.env = spawn::with_default_path(std::move(job.env));
    program.cwd = settings_.cwd;
    program.descriptors = {{dev_null_.get(), 0}, {dev_null_.get(), 1}, {pipe->read.get(), 3}};
    pid = spawn::start(program, &why);
  }
  if (!pid) {
    job.input.wipe();
    log::error("cannot run checkpassword: ", why);
    job.done({Verdict::kTemp, "cannot run checkpassword"});
    return;
  }
  pipe->read.reset();
  // A program that exited before reading gives EPIPE (SIGPIPE is ignored); its exit status
  // then says what happened, so the write's result does not matter.
  if (spawn::set_nonblocking(pipe->write.get())) {
    ssize_t written = ::write(pipe->write.get(), job.input.view().data(), job.input.size());
    (void)written;
  }
  job.input.wipe();
  pipe->write.reset();

  auto run = std::make_unique<Run>();
  run->runner = this;
  run->pid = *pid;
  run->done = std::move(job.done);
  run->timer.reset(evtimer_new(base_, on_timeout, run.get()));
  timeval limit{settings_.timeout, 0};
  evtimer_add(run->timer.get(), &limit);
  running_[*pid] = std::move(run);
}

void CheckRunner::on_timeout(evutil_socket_t, short, void* arg) {
  auto* run = static_cast<Run*>(arg);
  CheckRunner* runner = run->runner;
  pid_t pid = run->pid;
  // The whole group: checkpassword may have exec'd its subprogram or started others. The
  // zombie keeps its pid from being reused until reap_children() collects it.
  if (kill(-pid, SIGKILL) < 0) {
    // A checkpassword that switched its real uid (djb's does, before running the
    // subprogram) is out of authd's reach; the check is answered "temp" all the same.
    log::warn("cannot kill checkpassword process group ", pid, ": ", std::strerror(errno));
  }
  runner->finish(
      pid, {Verdict::kTemp, "timed out after " + std::to_string(runner->settings_.timeout) + " s"});
}

void CheckRunner::finish(pid_t pid, const Outcome& outcome) {
  auto it = running_.find(pid);
  if (it == running_.end()) return;
  Done done = std::move(it->second->done);
  // Freeing the timer is safe even from inside its own callback (a one-shot event).
  running_.erase(it);
  done(outcome);
  start_waiting();
}

void CheckRunner::reap_children() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (running_.count(pid)) {
      finish(pid, outcome_of(status));
    } else {
      log::debug("reaped pid ", pid, " of a check that had timed out");
    }
  }
}

}  // namespace sppd::authd
