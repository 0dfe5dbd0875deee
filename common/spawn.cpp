// posix_spawn with sppd's child layout (contract in spawn.h). Runs in queue-bridge and
// pluginrunner, as their users; no privilege of its own.
#include "common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include <algorithm>
#include <cstring>

namespace sppd::spawn {
namespace {

class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
};

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const auto& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

int lay_out_descriptors(const Program& program, posix_spawn_file_actions_t* actions) {
  int rc = 0;
  int highest = 2;
  for (const auto& [ours, theirs] : program.descriptors) {
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(actions, ours, theirs);
    highest = std::max(highest, theirs);
  }
  if (rc == 0 && program.close_stdin) rc = posix_spawn_file_actions_addclose(actions, 0);
  for (int fd = 3; rc == 0 && fd < highest; ++fd) {
    bool target = std::any_of(program.descriptors.begin(), program.descriptors.end(),
                              [fd](const auto& d) { return d.second == fd; });
    if (!target) rc = posix_spawn_file_actions_addclose(actions, fd);
  }
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(actions, highest + 1);
  if (rc == 0) rc = posix_spawn_file_actions_addchdir_np(actions, program.cwd.c_str());
  return rc;
}

int isolate(const Program& program, posix_spawnattr_t* attr) {
  sigset_t defaults, none;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGALRM}) sigaddset(&defaults, sig);
  if (program.default_sigpipe) sigaddset(&defaults, SIGPIPE);
#ifdef __GLIBC__
  // glibc's posix_spawn (2.36 spawni.c) sets its two internal signals, 32 and 33 (SIGCANCEL,
  // SIGSETXID), to SIG_IGN in the child unless they are in this set, and sigaddset() refuses
  // them; set their bits directly so the child starts with nothing ignored by accident.
  constexpr size_t kBits = 8 * sizeof(defaults.__val[0]);
  for (size_t bit : {31, 32}) defaults.__val[bit / kBits] |= 1UL << (bit % kBits);
#endif
  int rc = posix_spawnattr_setflags(
      attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (rc == 0) rc = posix_spawnattr_setpgroup(attr, 0);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(attr, &defaults);
  if (rc == 0) rc = posix_spawnattr_setsigmask(attr, &none);
  return rc;
}

}  // namespace

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
  SpawnSetup setup;
  int rc = lay_out_descriptors(program, &setup.actions);
  if (rc == 0) rc = isolate(program, &setup.attr);
  if (rc != 0) {
    *why = std::string("posix_spawn set-up: ") + std::strerror(rc);
    return std::nullopt;
  }
  std::vector<char*> argv = c_strings(program.argv);
  std::vector<char*> envp = c_strings(program.env);
  pid_t pid = -1;
  rc = posix_spawn(&pid, argv[0], &setup.actions, &setup.attr, argv.data(), envp.data());
  if (rc != 0) {
    *why = "cannot run " + program.argv[0] + " in " + program.cwd + ": " + std::strerror(rc);
    return std::nullopt;
  }
  return pid;
}

}  // namespace sppd::spawn
