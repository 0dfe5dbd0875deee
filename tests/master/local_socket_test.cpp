// Tests for master/local_socket: dnsbl-cache's socket made in a fresh directory with the
// right mode (and owner, as root), a stale socket replaced, a live one or a plain file left
// alone, the file removed when the master's object goes (unless another replaced it).
#include "master/local_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "tests/common/test_support.h"

namespace sppd::master {
namespace {

using test_support::TempDir;

// Connects a SOCK_SEQPACKET client; the descriptor, or an invalid one with errno set.
UniqueFd connect_to(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) < 0) return {};
  return fd;
}

mode_t mode_of(const std::string& path) {
  struct stat info {};
  lstat(path.c_str(), &info);
  return info.st_mode;
}

class LocalSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.create("sppd-local-socket"));
    path_ = dir_.path() + "/run/sppd/dnsbl-cache.sock";
  }
  TempDir dir_;
  std::string path_;
};

TEST_F(LocalSocketTest, MakesItsDirectoryAndListensForTheOwnerOnly) {
  LocalSocket socket = LocalSocket::bind(path_, SocketAccess{});
  EXPECT_EQ(socket.path(), path_);
  EXPECT_TRUE(S_ISSOCK(mode_of(path_)));
  EXPECT_EQ(mode_of(path_) & 07777, 0600u);
  EXPECT_EQ(mode_of(dir_.path() + "/run/sppd") & 07777, 0755u);
  EXPECT_TRUE(fcntl(socket.fd(), F_GETFL) & O_NONBLOCK) << "dnsbl-cache accepts from a loop";
  UniqueFd client = connect_to(path_);
  ASSERT_TRUE(client) << std::strerror(errno);
  UniqueFd accepted(accept4(socket.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted);
  int type = 0;
  socklen_t size = sizeof(type);
  getsockopt(accepted.get(), SOL_SOCKET, SO_TYPE, &type, &size);
  EXPECT_EQ(type, SOCK_SEQPACKET);
}

TEST_F(LocalSocketTest, AsRootTheGroupMayConnect) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
  LocalSocket socket = LocalSocket::bind(path_, SocketAccess{true, 4242});
  struct stat info {};
  ASSERT_EQ(lstat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, 0u);
  EXPECT_EQ(info.st_gid, 4242u);
  EXPECT_EQ(info.st_mode & 07777, 0660u);
}

TEST_F(LocalSocketTest, RemovedWhenItGoesUnlessReplaced) {
  {
    LocalSocket socket = LocalSocket::bind(path_, SocketAccess{});
    LocalSocket moved = std::move(socket);
    EXPECT_EQ(socket.path(), "");
    EXPECT_TRUE(S_ISSOCK(mode_of(path_)));
  }
  EXPECT_EQ(access(path_.c_str(), F_OK), -1);
  {
    LocalSocket socket = LocalSocket::bind(path_, SocketAccess{});
    // Someone else's file now sits at the path (a second master took the stale name).
    ASSERT_EQ(unlink(path_.c_str()), 0);
    test_support::write_file(path_, "theirs\n");
  }
  EXPECT_EQ(test_support::read_file(path_), "theirs\n");
}

TEST_F(LocalSocketTest, ReplacesAStaleSocketButNotALiveOneOrAFile) {
  {
    LocalSocket first = LocalSocket::bind(path_, SocketAccess{});
    try {
      LocalSocket::bind(path_, SocketAccess{});
      FAIL() << "bound over a live socket";
    } catch (const LocalSocketError& e) {
      EXPECT_EQ(std::string(e.what()), "cannot create the dnsbl-cache socket " + path_ +
                                           ": something listens on it (is another "
                                           "sppd-master running?): Address already in use");
    }
    EXPECT_TRUE(connect_to(path_)) << "the live socket was harmed";
    first = LocalSocket();  // goes, and takes its file with it
  }
  // A stale socket: bound, never listened on, closed without unlink (a SIGKILLed master).
  {
    UniqueFd stale(socket(AF_UNIX, SOCK_SEQPACKET, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  }
  LocalSocket fresh = LocalSocket::bind(path_, SocketAccess{});
  EXPECT_TRUE(connect_to(path_));
  fresh = LocalSocket();

  test_support::write_file(path_, "not a socket\n");
  EXPECT_THROW(LocalSocket::bind(path_, SocketAccess{}), LocalSocketError);
  EXPECT_EQ(test_support::read_file(path_), "not a socket\n");
}

TEST_F(LocalSocketTest, PathLongerThanSunPathIsAnError) {
  std::string path = dir_.path() + "/" + std::string(120, 'x');
  EXPECT_THROW(LocalSocket::bind(path, SocketAccess{}), LocalSocketError);
}

}  // namespace
}  // namespace sppd::master
