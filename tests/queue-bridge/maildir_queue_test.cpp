// Tests for queue-bridge/maildir_queue.cpp: runs the built sppd-maildir-queue with real pipes
// in a temporary directory, as qmail's qmail_open() would (fd 0 message, fd 1 envelope).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/common/test_support.h"

namespace {

using namespace std::string_literals;

using sppd::test_support::list_dir;
using sppd::test_support::read_file;
using sppd::test_support::write_all;

class MaildirQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(temp_.create("sppd-maildir-test"));
    dir_ = temp_.path();
    maildir_ = dir_ + "/Maildir";
    for (const char* sub : {"", "/tmp", "/new", "/cur"}) {
      ASSERT_EQ(mkdir((maildir_ + sub).c_str(), 0700), 0);
    }
  }
  void TearDown() override { ASSERT_TRUE(temp_.remove()); }

  // Runs the queue with cwd = dir_ and argv[1] = maildir_arg; returns its exit code (or
  // 1000 + signal). The message pipe is closed before the envelope is written, as qmail does.
  // file_size_limit > 0 makes writes beyond it fail (EFBIG, the program ignores SIGXFSZ):
  // a full disk that root cannot write past either.
  int run(const std::string& message, const std::string& envelope,
          const std::string& maildir_arg = "Maildir", rlim_t file_size_limit = 0) {
    int message_pipe[2], envelope_pipe[2];
    if (pipe(message_pipe) < 0 || pipe(envelope_pipe) < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(message_pipe[0], 0);
      dup2(envelope_pipe[0], 1);
      for (int fd : {message_pipe[0], message_pipe[1], envelope_pipe[0], envelope_pipe[1]})
        close(fd);
      if (chdir(dir_.c_str()) < 0) _exit(61);
      if (file_size_limit > 0) {
        rlimit limit{file_size_limit, file_size_limit};
        setrlimit(RLIMIT_FSIZE, &limit);
      }
      execl(MAILDIR_QUEUE_BIN, MAILDIR_QUEUE_BIN, maildir_arg.c_str(), static_cast<char*>(nullptr));
      _exit(120);
    }
    close(message_pipe[0]);
    close(envelope_pipe[0]);
    // A failed write means the queue program gave up (EPIPE): its exit code says why.
    write_all(message_pipe[1], message);
    close(message_pipe[1]);
    write_all(envelope_pipe[1], envelope);
    close(envelope_pipe[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
  }

  std::vector<std::string> delivered() { return list_dir(maildir_ + "/new"); }
  std::string only_message() {
    auto names = delivered();
    EXPECT_EQ(names.size(), 1u);
    return names.empty() ? "" : read_file(maildir_ + "/new/" + names.front());
  }
  void expect_nothing_left() {
    EXPECT_TRUE(delivered().empty());
    EXPECT_TRUE(list_dir(maildir_ + "/tmp").empty());
  }

  sppd::test_support::TempDir temp_;
  std::string dir_;
  std::string maildir_;
};

TEST_F(MaildirQueueTest, DeliversOneFileWithExactBytes) {
  std::string message = "Received: from x\n  by y; Mon\nSubject: hi\n\nbody\n.dot\n\r\nno newline";
  ASSERT_EQ(run(message, "Fsender@example.org\0Trcpt@example.com\0\0"s), 0);
  EXPECT_EQ(only_message(),
            "Return-Path: <sender@example.org>\nDelivered-To: rcpt@example.com\n" + message);
  EXPECT_TRUE(list_dir(maildir_ + "/tmp").empty());
}

TEST_F(MaildirQueueTest, FileNameIsAMaildirUniqueName) {
  ASSERT_EQ(run("x\n", "Fa\0Tb\0\0"s), 0);
  auto names = delivered();
  ASSERT_EQ(names.size(), 1u);
  const std::string& name = names.front();
  // time.M<usec>P<pid>.<host>
  size_t m = name.find(".M"), p = name.find('P', m), host = name.find('.', p);
  ASSERT_NE(m, std::string::npos);
  ASSERT_NE(p, std::string::npos);
  ASSERT_NE(host, std::string::npos);
  EXPECT_EQ(name.find_first_not_of("0123456789"), m);
  EXPECT_EQ(name.find(':'), std::string::npos);
}

TEST_F(MaildirQueueTest, MultipleRecipientsAndEmptySender) {
  ASSERT_EQ(run("m\n", "F\0Ta@x\0Tb@y\0Tc@z\0\0"s), 0);
  EXPECT_EQ(only_message(),
            "Return-Path: <>\nDelivered-To: a@x\nDelivered-To: b@y\nDelivered-To: c@z\nm\n");
}

TEST_F(MaildirQueueTest, LargeMessageStreamsByteExact) {
  std::string message;
  for (int i = 0; message.size() < 3 * 1024 * 1024; ++i) {
    message += "line " + std::to_string(i) + " \x01\xff binary-ish\n";
  }
  ASSERT_EQ(run(message, "Fs\0Tr\0\0"s), 0);
  EXPECT_EQ(only_message(), "Return-Path: <s>\nDelivered-To: r\n" + message);
}

TEST_F(MaildirQueueTest, EnvelopeNotStartingWithFIs91) {
  EXPECT_EQ(run("m\n", "Ts\0Tr\0\0"s), 91);
  expect_nothing_left();
}

TEST_F(MaildirQueueTest, RecipientRecordNotStartingWithTIs91) {
  EXPECT_EQ(run("m\n", "Fs\0Xr\0\0"s), 91);
  expect_nothing_left();
}

TEST_F(MaildirQueueTest, EofBeforeFinalNulIs54) {
  EXPECT_EQ(run("m\n", "Fs\0Tr\0"s), 54);
  expect_nothing_left();
  EXPECT_EQ(run("m\n", "Fs\0Tr"s), 54);
  expect_nothing_left();
  EXPECT_EQ(run("m\n", ""), 54);
  expect_nothing_left();
}

TEST_F(MaildirQueueTest, AddressOfMoreThan1002BytesIs11) {
  std::string longest(1002, 'a');
  EXPECT_EQ(run("m\n", "F" + longest + "\0Tr\0\0"s), 0);
  EXPECT_EQ(delivered().size(), 1u);
  std::string too_long(1003, 'a');
  EXPECT_EQ(run("m\n", "F" + too_long + "\0Tr\0\0"s), 11);
  EXPECT_EQ(run("m\n", "Fs\0T" + too_long + "\0\0"s), 11);
  EXPECT_EQ(delivered().size(), 1u);
  EXPECT_TRUE(list_dir(maildir_ + "/tmp").empty());
}

TEST_F(MaildirQueueTest, MissingMaildirIs61) {
  EXPECT_EQ(run("m\n", "Fs\0Tr\0\0"s, "NoSuchMaildir"), 61);
}

TEST_F(MaildirQueueTest, CreatesMissingSubdirectories) {
  ASSERT_EQ(mkdir((dir_ + "/Fresh").c_str(), 0700), 0);
  ASSERT_EQ(run("m\n", "Fs\0Tr\0\0"s, "Fresh"), 0);
  EXPECT_EQ(list_dir(dir_ + "/Fresh/new").size(), 1u);
  EXPECT_TRUE(list_dir(dir_ + "/Fresh/tmp").empty());
  struct stat st {};
  EXPECT_EQ(stat((dir_ + "/Fresh/cur").c_str(), &st), 0);
}

TEST_F(MaildirQueueTest, UnwritableTmpIs53AndLeavesNothing) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  ASSERT_EQ(chmod((maildir_ + "/tmp").c_str(), 0500), 0);
  EXPECT_EQ(run("m\n", "Fs\0Tr\0\0"s), 53);
  chmod((maildir_ + "/tmp").c_str(), 0700);
  expect_nothing_left();
}

TEST_F(MaildirQueueTest, WriteFailureOfTheSpoolIs53AndLeavesNothing) {
  EXPECT_EQ(run(std::string(20000, 'x'), "Fs\0Tr\0\0"s, "Maildir", 8192), 53);
  expect_nothing_left();
}

TEST_F(MaildirQueueTest, WriteFailureOfTheDraftIs53AndRemovesIt) {
  // The body fits under the limit, body plus headers does not.
  EXPECT_EQ(run(std::string(8180, 'x'), "Fs\0Tr\0\0"s, "Maildir", 8192), 53);
  expect_nothing_left();
}

}  // namespace
