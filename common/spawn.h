// Starting a helper's child program (qmail-queue, a qmail-spp plugin, checkpassword) with
// vfork + execve: no copy of our memory, and exec errors come back as return values. Used by
// queue-bridge, pluginrunner and authd, which never run a shell of their own: argv is
// exec'd as given. Errors are returned as text for the caller's log.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"

namespace sppd::spawn {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// A close-on-exec pipe with both ends above fd `above`, so that laying out the child's
// descriptors (dup2 onto 0..above) never overwrites an end that is still to be moved.
std::optional<Pipe> make_pipe(int above, std::string* why);
bool set_nonblocking(int fd);

// env plus PATH=/usr/local/bin:/usr/bin:/bin when it has no PATH: qmail's programs ran
// with the PATH of their run script, and many plugins and queue wrappers expect one.
std::vector<std::string> with_default_path(std::vector<std::string> env);

struct Program {
  std::vector<std::string> argv;  // argv[0] is the program (absolute or relative to cwd)
  std::vector<std::string> env;   // "NAME=value": exactly what the program sees
  std::string cwd;
  // (our fd, child's fd): every child's fd from 3 up that is not a target is closed; fds
  // 0-2 keep what we have unless they are targets (fd 2 is the log pipe to the master).
  std::vector<std::pair<int, int>> descriptors;
  bool close_stdin = false;  // fd 0 closed in the child (qmail-spp: not /dev/null)
  // SIGPIPE stays ignored for qmail-spp plugins (qmail-smtpd ignored it and they rely on
  // EPIPE); qmail-queue gets the default, as qmail's own fork gave it.
  bool default_sigpipe = true;
};

// Sets glibc's internal signals 32 and 33 (SIGCANCEL, SIGSETXID), which its sigaction()
// refuses, to handler (SIG_DFL or SIG_IGN) with the raw system call. Async-signal-safe.
void set_glibc_internal_signals(void (*handler)(int));

// Starts the program in its own process group (pgid == pid, so a timeout can kill all it
// started) with no blocked signals and default handling for the ones sppd catches.
// Returns its pid, or nullopt with why (nothing is left running).
std::optional<pid_t> start(const Program& program, std::string* why);

}  // namespace sppd::spawn
