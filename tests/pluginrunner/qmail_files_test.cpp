// Tests for pluginrunner/qmail_files: realrcptto's view of a real qmail home in a temporary
// directory: control files by qmail's rules, users/cdb (built here with tinycdb's cdb_make, as
// qmail-newu lays it out) before users/assign, broken files as LookupError, passwd and stat.
#include "pluginrunner/qmail_files.h"

#include <cdb.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "tests/common/test_support.h"

namespace sppd::pluginrunner {
namespace {

using test_support::write_file;

template <size_t N>
std::string bytes(const char (&text)[N]) {
  return std::string(text, N - 1);
}

class QmailFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(temp_.create("sppd-qmail-files-test"));
    home_ = temp_.path();
    ASSERT_EQ(mkdir((home_ + "/control").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((home_ + "/users").c_str(), 0755), 0);
  }

  // users/cdb with these records, in this order (cdb_find returns the first of a key).
  void write_cdb(const std::vector<std::pair<std::string, std::string>>& records) {
    int fd = open((home_ + "/users/cdb").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    struct cdb_make make {};
    ASSERT_EQ(cdb_make_start(&make, fd), 0);
    for (const auto& [key, value] : records) {
      ASSERT_EQ(cdb_make_add(&make, key.data(), static_cast<unsigned>(key.size()), value.data(),
                             static_cast<unsigned>(value.size())),
                0);
    }
    ASSERT_EQ(cdb_make_finish(&make), 0);
    close(fd);
  }

  test_support::TempDir temp_;
  std::string home_;
};

TEST_F(QmailFilesTest, ControlFilesFollowQmailsRules) {
  write_file(home_ + "/control/locals", "local.test  \n\n# a comment\nother.test\n");
  write_file(home_ + "/control/me", "me.test\t\nsecond line\n");
  SystemQmailFiles files(home_);
  EXPECT_EQ(files.control_lines("locals"), (std::vector<std::string>{"local.test", "other.test"}));
  EXPECT_EQ(files.control_line("me"), "me.test");
  EXPECT_EQ(files.control_lines("virtualdomains"), std::nullopt);
  EXPECT_EQ(files.control_line("envnoathost"), std::nullopt);
}

TEST_F(QmailFilesTest, UsersCdbComesBeforeUsersAssign) {
  write_file(home_ + "/users/assign", "=joe:joe:1:1:/srv/assign:::\n.\n");
  SystemQmailFiles files(home_);
  auto from_assign = files.user_table();
  ASSERT_NE(from_assign, nullptr);
  EXPECT_EQ(from_assign->find(bytes("!joe\0")), bytes("joe\0"
                                                      "1\0"
                                                      "1\0"
                                                      "/srv/assign\0"
                                                      "\0"));

  write_cdb({{"", "-"},
             {bytes("!joe\0"), bytes("joe\0"
                                     "1\0"
                                     "1\0"
                                     "/srv/cdb\0"
                                     "\0")},
             {bytes("!joe\0"), bytes("joe\0"
                                     "1\0"
                                     "1\0"
                                     "/srv/second\0"
                                     "\0")}});
  auto from_cdb = files.user_table();
  ASSERT_NE(from_cdb, nullptr);
  EXPECT_EQ(from_cdb->find(""), "-");
  EXPECT_EQ(from_cdb->find(bytes("!joe\0")), bytes("joe\0"
                                                   "1\0"
                                                   "1\0"
                                                   "/srv/cdb\0"
                                                   "\0"));
  EXPECT_EQ(from_cdb->find("!joe"), std::nullopt);
}

TEST_F(QmailFilesTest, NoUsersFilesMeansNoTable) {
  SystemQmailFiles files(home_);
  EXPECT_EQ(files.user_table(), nullptr);
}

TEST_F(QmailFilesTest, BrokenUsersFilesAreLookupErrors) {
  write_file(home_ + "/users/cdb", "not a cdb");
  SystemQmailFiles files(home_);
  EXPECT_THROW(files.user_table(), LookupError);
  ASSERT_EQ(unlink((home_ + "/users/cdb").c_str()), 0);
  write_file(home_ + "/users/assign", "=joe:joe:1:1:/srv/joe:::\n");  // no final "."
  EXPECT_THROW(files.user_table(), LookupError);
}

TEST_F(QmailFilesTest, PasswdAndStat) {
  SystemQmailFiles files(home_);
  auto root = files.passwd("root");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(files.passwd("sppd-no-such-user"), std::nullopt);
  PathStatus home = files.stat(home_);
  EXPECT_EQ(home.error, 0);
  EXPECT_EQ(home.owner, geteuid());
  EXPECT_EQ(files.stat(home_ + "/nothing").error, ENOENT);
}

TEST_F(QmailFilesTest, CheckMailboxOverARealQmailHome) {
  // The qmail layout the integration tests use too: a catch-all "+" line as the alias user.
  const std::string alias = home_ + "/alias";
  ASSERT_EQ(mkdir(alias.c_str(), 0755), 0);
  write_file(alias + "/.qmail-postmaster", "&root\n");
  write_file(home_ + "/control/locals", "local.test\n");
  write_cdb({{"", ""},
             {"!", bytes("alias\0"
                         "7790\0"
                         "2108\0") +
                       alias + bytes("\0-\0")}});
  SystemQmailFiles files(home_);
  EXPECT_EQ(check_mailbox("postmaster@local.test", files).mailbox, Mailbox::kExists);
  EXPECT_EQ(check_mailbox("nobody@local.test", files).mailbox, Mailbox::kNoMailbox);
  EXPECT_EQ(check_mailbox("nobody@remote.test", files).mailbox, Mailbox::kNotLocal);
  write_file(alias + "/.qmail-default", "&root\n");  // nothing cached: seen at once
  EXPECT_EQ(check_mailbox("nobody@local.test", files).mailbox, Mailbox::kExists);
}

}  // namespace
}  // namespace sppd::pluginrunner
