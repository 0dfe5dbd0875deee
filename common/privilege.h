// Dropping privilege, in the order OpenSSH uses (architecture-anchors §3.4):
// look up the user, chroot to an empty directory, chdir("/"), setgroups, setresgid,
// setresuid, verify root cannot be regained, PR_SET_DUMPABLE 0. Called by each program
// after its own set-up and before it touches client data. When not running as root,
// nothing changes (development and tests as an ordinary user).
#pragma once

#include <string>

namespace sppd::privilege {

struct Target {
  std::string user;    // empty = keep the current user
  std::string chroot;  // empty = no chroot
};

// Applies target; on any failure logs why and exits (the master throttles the service).
void drop(const Target& target);

}  // namespace sppd::privilege
