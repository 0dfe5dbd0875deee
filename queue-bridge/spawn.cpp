// spawn implementation: pipes, then posix_spawn (glibc's clone(CLONE_VFORK), cheap and with
// exec errors reported back) with file actions that lay out the qmail descriptors.
// Privilege: queue-bridge's user. Errors: returned, every descriptor made here is closed.
#include "queue-bridge/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include <cstring>
#include <memory>

namespace sppd::queue_bridge {
namespace {

constexpr const char* kDefaultPath = "PATH=/usr/local/bin:/usr/bin:/bin";

bool make_pipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return false;
  read_end->reset(fds[0]);
  write_end->reset(fds[1]);
  return true;
}

// Moves fd above min_fd, so no dup2 in the file actions overwrites a source still needed
// (e.g. the message pipe's read end sitting on fd 6 while fd 6 is the error fd's target).
bool move_above(UniqueFd* fd, int min_fd) {
  if (fd->get() > min_fd) return true;
  int moved = fcntl(fd->get(), F_DUPFD_CLOEXEC, min_fd + 1);
  if (moved < 0) return false;
  fd->reset(moved);
  return true;
}

bool set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

struct FileActionsFree {
  void operator()(posix_spawn_file_actions_t* a) const {
    posix_spawn_file_actions_destroy(a);
    delete a;
  }
};
struct AttrFree {
  void operator()(posix_spawnattr_t* a) const {
    posix_spawnattr_destroy(a);
    delete a;
  }
};

std::string error_text(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

}  // namespace

std::vector<std::string> queue_command(const std::vector<std::string>& configured,
                                       const std::vector<std::string>& env) {
  for (const auto& entry : env) {
    if (entry.compare(0, 11, "QMAILQUEUE=") == 0) return {entry.substr(11)};
  }
  return configured;
}

std::vector<std::string> queue_environment(std::vector<std::string> session_env) {
  for (const auto& entry : session_env) {
    if (entry.compare(0, 5, "PATH=") == 0) return session_env;
  }
  session_env.push_back(kDefaultPath);
  return session_env;
}

std::optional<QueueChild> spawn_queue(const SpawnSpec& spec, std::string* why) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    *why = "no queue program to run";
    return std::nullopt;
  }
  UniqueFd message_read, message_write, envelope_read, envelope_write, error_read, error_write;
  if (!make_pipe(&message_read, &message_write) || !make_pipe(&envelope_read, &envelope_write) ||
      !make_pipe(&error_read, &error_write)) {
    *why = error_text("pipe", errno);
    return std::nullopt;
  }
  if (!move_above(&message_read, spec.error_fd) || !move_above(&envelope_read, spec.error_fd) ||
      !move_above(&error_write, spec.error_fd) || !set_nonblocking(envelope_write.get()) ||
      !set_nonblocking(error_read.get())) {
    *why = error_text("fcntl", errno);
    return std::nullopt;
  }

  std::unique_ptr<posix_spawn_file_actions_t, FileActionsFree> actions(
      new posix_spawn_file_actions_t);
  posix_spawn_file_actions_init(actions.get());
  std::unique_ptr<posix_spawnattr_t, AttrFree> attr(new posix_spawnattr_t);
  posix_spawnattr_init(attr.get());

  int rc = posix_spawn_file_actions_adddup2(actions.get(), message_read.get(), 0);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(actions.get(), envelope_read.get(), 1);
  if (rc == 0)
    rc = posix_spawn_file_actions_adddup2(actions.get(), error_write.get(), spec.error_fd);
  // fd 2 stays: it is our log pipe. Everything else goes (fd 3 is our control channel).
  for (int fd = 3; rc == 0 && fd < spec.error_fd; ++fd) {
    rc = posix_spawn_file_actions_addclose(actions.get(), fd);
  }
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(actions.get(), spec.error_fd + 1);
  if (rc == 0) rc = posix_spawn_file_actions_addchdir_np(actions.get(), spec.qmail_home.c_str());
  if (rc != 0) {
    *why = error_text("posix_spawn_file_actions", rc);
    return std::nullopt;
  }

  // Own process group, so a timeout can kill the queue program and anything it started
  // (qmail-qfilter pipelines); default SIGPIPE (we ignore it, exec would keep that); no
  // blocked signals.
  sigset_t defaults, empty;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGALRM}) sigaddset(&defaults, sig);
  rc = posix_spawnattr_setflags(
      attr.get(), POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (rc == 0) rc = posix_spawnattr_setpgroup(attr.get(), 0);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(attr.get(), &defaults);
  if (rc == 0) rc = posix_spawnattr_setsigmask(attr.get(), &empty);
  if (rc != 0) {
    *why = error_text("posix_spawnattr", rc);
    return std::nullopt;
  }

  std::vector<char*> argv;
  for (const auto& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : spec.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  rc = posix_spawn(&pid, argv[0], actions.get(), attr.get(), argv.data(), envp.data());
  if (rc != 0) {
    *why = "cannot run " + spec.argv[0] + " in " + spec.qmail_home + ": " + std::strerror(rc);
    return std::nullopt;
  }
  // The child's ends close here, so EOF and EPIPE reach the right side.
  QueueChild child;
  child.pid = pid;
  child.message_write = std::move(message_write);
  child.envelope_write = std::move(envelope_write);
  child.error_read = std::move(error_read);
  return child;
}

}  // namespace sppd::queue_bridge
