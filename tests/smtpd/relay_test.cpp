// Tests for smtpd/relay: rcpthosts (+ a real morercpthosts.cdb built with tinycdb's
// cdb_make, as qmail-newmrh builds it).
#include "smtpd/relay.h"

#include <cdb.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace sppd::smtpd {
namespace {

using Lines = std::vector<std::string>;

class RcptHostsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sppd-relay-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { ASSERT_EQ(system(("rm -rf '" + dir_ + "'").c_str()), 0); }

  // Writes a cdb with the given keys and empty data, like qmail-newmrh.
  std::string make_cdb(const Lines& keys) {
    std::string path = dir_ + "/morercpthosts.cdb";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    struct cdb_make maker;
    EXPECT_EQ(cdb_make_start(&maker, fd), 0);
    for (const std::string& key : keys) {
      EXPECT_EQ(cdb_make_add(&maker, key.data(), static_cast<unsigned>(key.size()), "", 0), 0);
    }
    EXPECT_EQ(cdb_make_finish(&maker), 0);
    ::close(fd);
    return path;
  }

  std::string dir_;
};

TEST_F(RcptHostsTest, ExactHostAndDotSuffixes) {
  RcptHosts hosts(Lines{"example.com", ".example.net", "Upper.Example.ORG"}, "");
  EXPECT_TRUE(hosts.configured());
  EXPECT_TRUE(hosts.allowed("bob@example.com"));
  EXPECT_TRUE(hosts.allowed("bob@EXAMPLE.Com"));
  EXPECT_FALSE(hosts.allowed("bob@sub.example.com"));
  EXPECT_TRUE(hosts.allowed("bob@sub.example.net"));
  EXPECT_TRUE(hosts.allowed("bob@a.b.example.net"));
  EXPECT_FALSE(hosts.allowed("bob@example.net"));
  EXPECT_FALSE(hosts.allowed("bob@notexample.net"));
  EXPECT_TRUE(hosts.allowed("bob@upper.example.org"));
  EXPECT_FALSE(hosts.allowed("bob@example.org"));
}

TEST_F(RcptHostsTest, HostIsAfterTheLastAt) {
  RcptHosts hosts(Lines{"example.com"}, "");
  EXPECT_TRUE(hosts.allowed("a@evil.example@example.com"));
  EXPECT_FALSE(hosts.allowed("a@example.com@evil.example"));
  EXPECT_FALSE(hosts.allowed("bob@"));
}

TEST_F(RcptHostsTest, AddressWithoutAtIsAllowed) {
  RcptHosts hosts(Lines{"example.com"}, "");
  EXPECT_TRUE(hosts.allowed("postmaster"));
  EXPECT_TRUE(hosts.allowed(""));
}

TEST_F(RcptHostsTest, NoFileAllowsNothing) {
  RcptHosts hosts(std::nullopt, make_cdb({"example.com"}));
  EXPECT_FALSE(hosts.configured());
  EXPECT_FALSE(hosts.allowed("bob@example.com"));
  EXPECT_FALSE(hosts.allowed("postmaster"));
}

TEST_F(RcptHostsTest, EmptyFileAllowsOnlyAddressesWithoutAt) {
  RcptHosts hosts(Lines{}, "");
  EXPECT_TRUE(hosts.configured());
  EXPECT_FALSE(hosts.allowed("bob@example.com"));
  EXPECT_TRUE(hosts.allowed("postmaster"));
}

TEST_F(RcptHostsTest, MoreRcptHostsCdb) {
  RcptHosts hosts(Lines{"example.com"}, make_cdb({"more.example", ".sub.example"}));
  EXPECT_TRUE(hosts.allowed("bob@example.com"));
  EXPECT_TRUE(hosts.allowed("bob@more.example"));
  EXPECT_TRUE(hosts.allowed("bob@MORE.Example"));
  EXPECT_FALSE(hosts.allowed("bob@x.more.example"));
  EXPECT_TRUE(hosts.allowed("bob@x.sub.example"));
  EXPECT_FALSE(hosts.allowed("bob@sub.example"));
  EXPECT_FALSE(hosts.allowed("bob@other.example"));
}

TEST_F(RcptHostsTest, MissingCdbIsFineUnreadableCdbIsAnError) {
  RcptHosts hosts(Lines{"example.com"}, dir_ + "/absent.cdb");
  EXPECT_TRUE(hosts.allowed("bob@example.com"));
  EXPECT_FALSE(hosts.allowed("bob@more.example"));
  std::ofstream(dir_ + "/short.cdb") << "not a cdb";
  EXPECT_THROW(RcptHosts(Lines{"example.com"}, dir_ + "/short.cdb"), std::runtime_error);
  // A directory cannot be mapped as a cdb.
  EXPECT_THROW(RcptHosts(Lines{"example.com"}, dir_), std::runtime_error);
  if (geteuid() != 0) {
    std::string path = make_cdb({"more.example"});
    ASSERT_EQ(chmod(path.c_str(), 0), 0);
    EXPECT_THROW(RcptHosts(Lines{"example.com"}, path), std::runtime_error);
  }
}

}  // namespace
}  // namespace sppd::smtpd
