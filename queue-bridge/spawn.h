// spawn: starts one qmail-queue (or $QMAILQUEUE) with the qmail descriptor layout:
// fd 0 = message pipe, fd 1 = envelope pipe, fd 2 = our log, error_fd = error pipe, nothing
// else. Runs in queue-bridge (the qmaild-like user); the queue program may be setuid.
// Errors are returned as text for the log; the caller answers the worker "qqt failure".
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"

namespace sppd::queue_bridge {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is the program, relative to qmail_home or absolute
  std::vector<std::string> env;   // "NAME=value", exactly what the program sees
  std::string qmail_home;         // its working directory
  int error_fd = 6;               // where it finds the write end of the error pipe
};

// Our ends of a started queue program. The child leads its own process group (pgid == pid).
struct QueueChild {
  pid_t pid = -1;
  UniqueFd message_write;   // for the worker; blocking, close-on-exec
  UniqueFd envelope_write;  // ours; non-blocking
  UniqueFd error_read;      // ours; non-blocking
};

// The command qmail runs: $QMAILQUEUE alone if the session environment sets it (qmail.c
// setup_qqargs(): exec'd with no arguments), else the configured command line.
std::vector<std::string> queue_command(const std::vector<std::string>& configured,
                                       const std::vector<std::string>& env);

// The environment qmail-queue inherits: the session's, plus a default PATH if it has none.
std::vector<std::string> queue_environment(std::vector<std::string> session_env);

// Starts the program; nullopt with why on failure (nothing is left running or open).
std::optional<QueueChild> spawn_queue(const SpawnSpec& spec, std::string* why);

}  // namespace sppd::queue_bridge
