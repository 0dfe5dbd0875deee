// Tests for master/spawn: the child environment and the descriptor layout a spawned child
// really gets (slots 0..N-1 open, everything else closed).
#include "master/spawn.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "common/fd.h"

namespace sppd::master {
namespace {

TEST(SpawnTest, EnvironmentGetsServiceAndGeneration) {
  const char* parent[] = {"PATH=/bin", "SPPD_SERVICE=stale", "HOME=/root", nullptr};
  auto env = child_environment(const_cast<char**>(parent), "smtpd", 7);
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/bin", "HOME=/root", "SPPD_SERVICE=smtpd",
                                           "SPPD_GENERATION=7"}));
}

TEST(SpawnTest, ChildGetsExactlyTheSlotsItWasGiven) {
  UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  // An extra descriptor without close-on-exec must still not leak into the child.
  UniqueFd leak(open("/dev/null", O_RDONLY));
  SpawnRequest request;
  request.program = "/bin/sh";
  request.argv = {"sh", "-c",
                  "for n in 0 1 2 3; do [ -e /proc/$$/fd/$n ] || exit 1; done; "
                  "for n in 4 5 6 7 8 9 10; do [ -e /proc/$$/fd/$n ] && exit 2; done; "
                  "echo \"$SPPD_SERVICE ok\" >&2; exit 0"};
  request.env = {"SPPD_SERVICE=test"};
  // Slot 3 gets the pipe's read end: a source number that may collide with the slots.
  request.fds = {null.get(), write_end.get(), write_end.get(), read_end.get()};
  std::string why;
  pid_t pid = spawn(request, &why);
  ASSERT_GT(pid, 0) << why;
  write_end.reset();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  char buffer[64] = {};
  ssize_t n = read(read_end.get(), buffer, sizeof(buffer) - 1);
  EXPECT_EQ(std::string(buffer, n > 0 ? static_cast<size_t>(n) : 0), "test ok\n");
}

TEST(SpawnTest, ExecFailureIsReportedByTheChild) {
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  SpawnRequest request;
  request.program = "/nonexistent/sppd-nothing";
  request.argv = {request.program};
  request.fds = {write_end.get(), write_end.get(), write_end.get()};
  std::string why;
  pid_t pid = spawn(request, &why);
  ASSERT_GT(pid, 0);
  write_end.reset();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 127);
  char buffer[256] = {};
  ssize_t n = read(read_end.get(), buffer, sizeof(buffer) - 1);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buffer).find("cannot execute /nonexistent/sppd-nothing"),
            std::string::npos);
}

TEST(SpawnTest, OwnDirectoryIsAnAbsolutePath) {
  std::string dir = own_directory();
  ASSERT_FALSE(dir.empty());
  EXPECT_EQ(dir[0], '/');
}

}  // namespace
}  // namespace sppd::master
