// fork+exec with the protocol.h descriptor layout (contract in spawn.h). Runs in the master
// (root). Everything the child needs is prepared before fork(); between fork and exec the
// child only shuffles descriptors, resets signals and calls execve.
#include "master/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace sppd::master {
namespace {

// Moves each fds[i] to descriptor i and closes everything else. Source and target numbers
// may overlap (a source may sit at another slot's number), so every source is first copied
// above the highest slot; dup2 onto the slot then also clears close-on-exec.
bool arrange_descriptors(const std::vector<int>& fds) {
  const int slots = static_cast<int>(fds.size());
  int moved[64];
  if (slots > 64) return false;
  for (int i = 0; i < slots; ++i) {
    moved[i] = fcntl(fds[static_cast<size_t>(i)], F_DUPFD_CLOEXEC, slots);
    if (moved[i] < 0) return false;
  }
  for (int i = 0; i < slots; ++i) {
    if (dup2(moved[i], i) < 0) return false;
  }
  return close_range(static_cast<unsigned>(slots), ~0U, 0) == 0;
}

[[noreturn]] void child_fail(const char* step, const std::string& program) {
  std::string text = std::string("error: cannot execute ") + program + ": " + step + ": " +
                     std::strerror(errno) + "\n";
  ssize_t ignored = write(2, text.data(), text.size());
  (void)ignored;
  _exit(127);
}

}  // namespace

pid_t spawn(const SpawnRequest& request, std::string* why) {
  std::vector<char*> argv, envp;
  for (const auto& arg : request.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  for (const auto& var : request.env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);

  // Block every signal across fork: the child must not run the master's libevent signal
  // handler (it would write into the master's signal socketpair) before exec resets it.
  sigset_t all, saved;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &saved);
  pid_t pid = fork();
  if (pid == 0) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &default_action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setpgid(0, 0);
    if (!arrange_descriptors(request.fds)) child_fail("descriptor set-up", request.program);
    execve(request.program.c_str(), argv.data(), envp.data());
    child_fail("execve", request.program);
  }
  int fork_errno = errno;
  sigprocmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) {
    *why = std::string("fork: ") + std::strerror(fork_errno);
    return -1;
  }
  return pid;
}

std::vector<std::string> child_environment(char** envp, std::string_view service,
                                           unsigned generation) {
  std::vector<std::string> env;
  for (char** var = envp; var && *var; ++var) {
    std::string_view text(*var);
    if (text.starts_with("SPPD_SERVICE=") || text.starts_with("SPPD_GENERATION=")) continue;
    env.emplace_back(text);
  }
  env.push_back("SPPD_SERVICE=" + std::string(service));
  env.push_back("SPPD_GENERATION=" + std::to_string(generation));
  return env;
}

std::string own_directory() {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) {
    throw std::runtime_error(std::string("cannot read /proc/self/exe: ") + std::strerror(errno));
  }
  std::string exe(path, static_cast<size_t>(n));
  size_t slash = exe.rfind('/');
  return slash == 0 ? "/" : exe.substr(0, slash);
}

}  // namespace sppd::master
