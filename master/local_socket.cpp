// The local socket of dnsbl-cache (contract in local_socket.h). Runs as root in the master.
// The file is created under umask 0177 and only then opened up to its group, so no process
// can connect in the moment between bind() and chmod().
#include "master/local_socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace sppd::master {
namespace {

constexpr int kBacklog = 256;

[[noreturn]] void fail(const std::string& path, const std::string& step) {
  throw LocalSocketError("cannot create the dnsbl-cache socket " + path + ": " + step + ": " +
                         std::strerror(errno));
}

sockaddr_un address_of(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    errno = ENAMETOOLONG;
    fail(path, "path");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

// mkdir -p of the socket's directory; what exists already is left as it is.
void make_parent(const std::string& path) {
  size_t last = path.rfind('/');
  if (last == std::string::npos || last == 0) return;
  std::string dir = path.substr(0, last);
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string prefix = dir.substr(0, slash);
    if (mkdir(prefix.c_str(), 0755) < 0 && errno != EEXIST) fail(path, "mkdir " + prefix);
    if (slash == std::string::npos) return;
  }
}

// A socket file left by a master that died without cleaning up is removed; one that
// something still listens on (another sppd-master) is not ours to take.
void remove_stale(const std::string& path, const sockaddr_un& address) {
  struct stat info;
  if (lstat(path.c_str(), &info) < 0) {
    if (errno == ENOENT) return;
    fail(path, "lstat");
  }
  if (!S_ISSOCK(info.st_mode)) {
    errno = EEXIST;
    fail(path, "a file that is not a socket is in the way");
  }
  UniqueFd probe(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe) fail(path, "socket");
  if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0 ||
      errno == EAGAIN) {
    errno = EADDRINUSE;
    fail(path, "something listens on it (is another sppd-master running?)");
  }
  if (errno != ECONNREFUSED) fail(path, "probing the old socket");
  if (unlink(path.c_str()) < 0 && errno != ENOENT) fail(path, "removing the stale socket");
}

}  // namespace

LocalSocket LocalSocket::bind(const std::string& path, SocketAccess access) {
  sockaddr_un address = address_of(path);
  make_parent(path);
  remove_stale(path, address);

  LocalSocket result;
  // Non-blocking: dnsbl-cache accepts from its event loop (the flag belongs to the open
  // socket, which every dnsbl-cache shares with the master).
  result.fd_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!result.fd_) fail(path, "socket");
  mode_t saved = umask(0177);
  int bound =
      ::bind(result.fd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  int bind_errno = errno;
  umask(saved);
  errno = bind_errno;
  if (bound < 0) fail(path, "bind");
  result.path_ = path;  // from here on the destructor removes the file
  struct stat info;
  if (lstat(path.c_str(), &info) < 0) fail(path, "lstat");
  result.device_ = info.st_dev;
  result.inode_ = info.st_ino;
  if (access.as_root) {
    if (chown(path.c_str(), 0, access.group) < 0) fail(path, "chown");
    if (chmod(path.c_str(), 0660) < 0) fail(path, "chmod");
  }
  if (listen(result.fd_.get(), kBacklog) < 0) fail(path, "listen");
  return result;
}

LocalSocket::~LocalSocket() { remove_file(); }

LocalSocket::LocalSocket(LocalSocket&& other) noexcept
    : path_(std::exchange(other.path_, "")),
      fd_(std::move(other.fd_)),
      device_(other.device_),
      inode_(other.inode_) {}

LocalSocket& LocalSocket::operator=(LocalSocket&& other) noexcept {
  if (this != &other) {
    remove_file();
    path_ = std::exchange(other.path_, "");
    fd_ = std::move(other.fd_);
    device_ = other.device_;
    inode_ = other.inode_;
  }
  return *this;
}

void LocalSocket::remove_file() {
  if (path_.empty()) return;
  // Another master may have replaced the file meanwhile (ours was stale to it): leave it.
  struct stat info;
  if (lstat(path_.c_str(), &info) == 0 && info.st_dev == device_ && info.st_ino == inode_) {
    unlink(path_.c_str());
  }
  path_.clear();
}

}  // namespace sppd::master
