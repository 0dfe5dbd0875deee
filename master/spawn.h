// fork+exec of the master's children with an exact descriptor layout (protocol.h): the
// caller names the descriptor for each slot 0..N-1, everything else is closed, signal
// dispositions and mask are reset, and the child gets its own process group (so a terminal
// Ctrl-C reaches only the master, which then drains the children in order).
// Runs as root in the master; the child drops privilege itself after exec.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace sppd::master {

struct SpawnRequest {
  std::string program;            // absolute path of the executable
  std::vector<std::string> argv;  // argv[0] first
  std::vector<std::string> env;   // NAME=value, the child's whole environment
  std::vector<int> fds;           // fds[i] becomes descriptor i in the child
};

// Starts the program and returns its pid, or -1 with *why set if fork fails. An exec
// failure happens in the child: it writes the reason to its fd 2 and exits 127.
pid_t spawn(const SpawnRequest& request, std::string* why);

// The master's environment (envp) with SPPD_SERVICE and SPPD_GENERATION set for a child.
std::vector<std::string> child_environment(char** envp, std::string_view service,
                                           unsigned generation);

// The directory of the running executable (/proc/self/exe): sibling programs live there.
// Throws std::runtime_error if it cannot be read.
std::string own_directory();

}  // namespace sppd::master
