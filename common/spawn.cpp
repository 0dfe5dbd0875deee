// vfork + execve with sppd's child layout (contract in spawn.h). Runs in queue-bridge,
// pluginrunner and authd, as their users; no privilege of its own.
#include "common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sppd::spawn {
namespace {

// The signals sppd's programs catch or ignore: the child gets their default back (libevent's
// handlers, the workers' SIG_IGN for SIGPIPE). execve resets the caught ones by itself; this
// also covers the moment before it.
constexpr int kCaughtSignals[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGALRM};

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const auto& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

// Everything the child does between vfork and execve, worked out beforehand: the child
// shares our memory and stack, so it may only read this and make system calls.
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<char*> envp;
  const char* cwd = nullptr;
  std::vector<std::pair<int, int>> dups;  // (ours, theirs)
  std::vector<int> closes;                // below close_from, not targets
  int close_from = 3;
  bool default_sigpipe = true;
};

ChildPlan plan_for(const Program& program) {
  ChildPlan plan;
  plan.argv = c_strings(program.argv);
  plan.envp = c_strings(program.env);
  plan.cwd = program.cwd.c_str();
  plan.dups = program.descriptors;
  plan.default_sigpipe = program.default_sigpipe;
  int highest = 2;
  for (const auto& [ours, theirs] : program.descriptors) highest = std::max(highest, theirs);
  if (program.close_stdin) plan.closes.push_back(0);
  for (int fd = 3; fd < highest; ++fd) {
    bool target = std::any_of(program.descriptors.begin(), program.descriptors.end(),
                              [fd](const auto& d) { return d.second == fd; });
    if (!target) plan.closes.push_back(fd);
  }
  plan.close_from = highest + 1;
  return plan;
}

// In the vforked child: leaves errno in *error (our memory) for start() to report.
[[noreturn]] void child_failed(volatile int* error) {
  *error = errno != 0 ? errno : EINVAL;
  _exit(127);
}

// The vforked child: leaves our signal handling and our process group, lays out the
// descriptors and execs.
[[noreturn]] void run_child(const ChildPlan& plan, volatile int* error) {
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  for (int sig : kCaughtSignals) sigaction(sig, &default_action, nullptr);
  if (plan.default_sigpipe) sigaction(SIGPIPE, &default_action, nullptr);
  // A parent started by glibc's posix_spawn has these ignored, and that survives execve.
  set_glibc_internal_signals(SIG_DFL);
  if (setpgid(0, 0) != 0) child_failed(error);
  for (const auto& [ours, theirs] : plan.dups) {
    // dup2 onto itself keeps close-on-exec: clear it instead.
    if (ours == theirs ? fcntl(ours, F_SETFD, 0) != 0 : dup2(ours, theirs) != theirs)
      child_failed(error);
  }
  for (int fd : plan.closes) close(fd);
  close_range(static_cast<unsigned>(plan.close_from), ~0U, 0);
  if (chdir(plan.cwd) != 0) child_failed(error);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(plan.argv[0], plan.argv.data(), plan.envp.data());
  child_failed(error);
}

}  // namespace

void set_glibc_internal_signals(void (*handler)(int)) {
  // The kernel's struct sigaction: handler, flags, restorer, mask.
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  } action = {handler, 0, nullptr, 0};
  for (int sig : {32, 33}) syscall(SYS_rt_sigaction, sig, &action, nullptr, sizeof(action.mask));
}

std::optional<Pipe> make_pipe(int above, std::string* why) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    *why = std::string("pipe: ") + std::strerror(errno);
    return std::nullopt;
  }
  Pipe pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
  for (UniqueFd* end : {&pipe.read, &pipe.write}) {
    if (end->get() > above) continue;
    int moved = fcntl(end->get(), F_DUPFD_CLOEXEC, above + 1);
    if (moved < 0) {
      *why = std::string("fcntl: ") + std::strerror(errno);
      return std::nullopt;
    }
    end->reset(moved);
  }
  return pipe;
}

bool set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

std::vector<std::string> with_default_path(std::vector<std::string> env) {
  for (const auto& entry : env) {
    if (entry.compare(0, 5, "PATH=") == 0) return env;
  }
  env.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
  return env;
}

std::optional<pid_t> start(const Program& program, std::string* why) {
  if (program.argv.empty() || program.argv[0].empty()) {
    *why = "no program to run";
    return std::nullopt;
  }
  const ChildPlan plan = plan_for(program);
  // vfork rather than posix_spawn: the same clone(CLONE_VM|CLONE_VFORK) underneath, but
  // glibc's child resets all 64 signal handlers and maps a stack for every start; ours
  // touches only the signals sppd handles. That is a tenth of a qmail-queue start
  // (bench/spawn_cost.c). Signals stay blocked until the child has reset their handlers.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  volatile int child_error = 0;
  pid_t pid = vfork();
  if (pid == 0) run_child(plan, &child_error);
  const int vfork_error = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) {
    *why = std::string("cannot start a process: ") + std::strerror(vfork_error);
    return std::nullopt;
  }
  if (child_error != 0) {
    waitpid(pid, nullptr, 0);  // it exited 127 already: reap it
    *why =
        "cannot run " + program.argv[0] + " in " + program.cwd + ": " + std::strerror(child_error);
    return std::nullopt;
  }
  return pid;
}

}  // namespace sppd::spawn
