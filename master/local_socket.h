// The master's local socket for dnsbl-cache ([service dnsbl-cache] socket): an AF_UNIX
// SOCK_SEQPACKET listener on which dnsbl-cache answers processes that are not workers (the
// rblspp plugin, sppd-dnsbl-status). The master binds it as root and keeps it for its whole
// life, handing it to every dnsbl-cache it starts (protocol.h kDnsblLocalFd), so connections
// made while dnsbl-cache restarts wait in the queue. Errors throw LocalSocketError with a
// message naming the path; the socket file is removed when the master ends.
#pragma once

#include <sys/types.h>

#include <stdexcept>
#include <string>

#include "common/fd.h"

namespace sppd::master {

struct LocalSocketError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Who may connect: as root, owner root, this group and mode 0660 (the plugins' group);
// otherwise the invoking user alone, mode 0600.
struct SocketAccess {
  bool as_root = false;
  gid_t group = 0;
};

class LocalSocket {
 public:
  LocalSocket() = default;
  // Creates the parent directory (mode 0755) if missing, removes a stale socket at path
  // (one nobody listens on; a live one or a file that is no socket is an error), binds,
  // listens (non-blocking) and sets owner and mode per access. Throws LocalSocketError.
  static LocalSocket bind(const std::string& path, SocketAccess access);
  // Removes the socket file if it is still the one we bound.
  ~LocalSocket();
  LocalSocket(LocalSocket&& other) noexcept;
  LocalSocket& operator=(LocalSocket&& other) noexcept;
  LocalSocket(const LocalSocket&) = delete;
  LocalSocket& operator=(const LocalSocket&) = delete;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  void remove_file();

  std::string path_;
  UniqueFd fd_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
};

}  // namespace sppd::master
