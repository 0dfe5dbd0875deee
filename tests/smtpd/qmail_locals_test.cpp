// Tests for smtpd/qmail_locals: the worker's "may this recipient be local?" over a temporary
// qmail home (locals, the me fallback, virtualdomains keys, percenthack, unreadable files).
// Every "cannot be local" is checked against pluginrunner's check_mailbox over the same home,
// which must answer kNotLocal there: the pre-check may only skip questions with that answer.
#include "smtpd/qmail_locals.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>

#include "pluginrunner/qmail_files.h"
#include "pluginrunner/realrcptto.h"
#include "tests/common/test_support.h"

namespace sppd::smtpd {
namespace {

using test_support::write_file;

class QmailLocalsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(temp_.create("sppd-qmail-locals-test"));
    home_ = temp_.path();
    ASSERT_EQ(mkdir((home_ + "/control").c_str(), 0755), 0);
  }

  void control(const std::string& name, const std::string& text) {
    write_file(home_ + "/control/" + name, text);
  }

  // Loads the home and checks may_be_local for each recipient; a false one must be
  // kNotLocal for pluginrunner too.
  void expect(const std::map<std::string, bool>& may_be_local) {
    QmailLocals locals = QmailLocals::load(home_);
    EXPECT_EQ(locals.error(), "");
    pluginrunner::SystemQmailFiles files(home_);
    for (const auto& [recipient, expected] : may_be_local) {
      EXPECT_EQ(locals.may_be_local(recipient), expected) << recipient;
      if (!expected) {
        EXPECT_EQ(pluginrunner::check_mailbox(recipient, files).mailbox,
                  pluginrunner::Mailbox::kNotLocal)
            << recipient;
      }
    }
  }

  test_support::TempDir temp_;
  std::string home_;
};

TEST_F(QmailLocalsTest, LocalsAreMatchedWithoutRegardToCase) {
  control("locals", "Local.Test  \n# a comment\n\nother.test\n");
  control("me", "me.test\n");  // locals exists: me does not count
  expect({{"joe@local.test", true},
          {"JOE@LOCAL.TEST", true},
          {"joe@Other.Test", true},
          {"joe@me.test", false},
          {"joe@sub.local.test", false},  // locals has no ".suffix" rule
          {"joe@example.com", false},
          {"joe@local.test.example.com", false}});
}

TEST_F(QmailLocalsTest, MeStandsForMissingLocals) {
  control("me", "Mx.Example.Com\nsecond.example.com\n");
  expect({{"postmaster@mx.example.com", true},
          {"joe@second.example.com", false},
          {"joe@example.com", false}});
}

TEST_F(QmailLocalsTest, LocalsWithoutLinesStillHideMe) {
  control("locals", "# nothing local here\n");
  control("me", "mx.example.com\n");
  expect({{"joe@mx.example.com", false}});
}

TEST_F(QmailLocalsTest, WithoutFilesOnlyAddressesWithoutAtMayBeLocal) {
  expect({{"postmaster", true},  // qmail-send appends envnoathost (else me)
          {"", true},
          {"joe@example.com", false},
          {"joe%host@example.com", false},  // no percenthack: '%' is a plain character
          {"joe@", false}});
}

TEST_F(QmailLocalsTest, VirtualDomainsExactDomainSuffixAndWholeAddress) {
  control("virtualdomains",
          "Virtual.Test:virt\n.sub.test:sub\nJoe@Elsewhere.Test:joe\nno-colon.test\n");
  expect({{"info@virtual.test", true},
          {"INFO@VIRTUAL.TEST", true},
          {"info@deeper.virtual.test", false},  // an exact key does not cover subdomains
          {"info@notvirtual.test", false},
          {"info@a.sub.test", true},  // ".sub.test" covers every subdomain
          {"info@a.b.sub.test", true},
          {"info@sub.test", false},  // but not sub.test itself
          {"joe@elsewhere.test", true},
          {"JOE@elsewhere.test", true},
          {"ann@elsewhere.test", false},
          {"info@no-colon.test", false}});  // a line without ':' is skipped, as by constmap
}

TEST_F(QmailLocalsTest, ACatchAllLineMakesEveryDomainMaybeLocal) {
  control("virtualdomains", ":alias-catchall\n");
  expect({{"joe@example.com", true}, {"joe@anywhere.test", true}, {"joe", true}});
}

TEST_F(QmailLocalsTest, AnExclusionLineIsLeftToPluginRunner) {
  // "remote.test:" says "not local", but which key wins is realrcptto's business.
  control("virtualdomains", ".test:virt\nremote.test:\n");
  expect({{"joe@remote.test", true}, {"joe@any.test", true}, {"joe@example.com", false}});
}

TEST_F(QmailLocalsTest, PercentHackMakesAddressesWithPercentMaybeLocal) {
  control("locals", "local.test\n");
  control("percenthack", "hack.test\n");
  expect({{"joe%local.test@hack.test", true},  // rewritten to joe@local.test
          {"joe%example.com@other.test", true},
          {"joe@hack.test", false},
          {"joe@example.com", false}});
}

TEST_F(QmailLocalsTest, PercentHackWithoutLinesChangesNothing) {
  control("percenthack", "# none\n\n");
  expect({{"joe%local.test@hack.test", false}});
}

// A file that exists but cannot be read: a directory in its place (open succeeds, read fails
// with EISDIR; chmod 000 would not stop root).
TEST_F(QmailLocalsTest, AnUnreadableFileMakesEveryRecipientMaybeLocal) {
  for (const char* name : {"locals", "virtualdomains", "percenthack"}) {
    SCOPED_TRACE(name);
    const std::string path = home_ + "/control/" + name;
    ASSERT_EQ(mkdir(path.c_str(), 0755), 0);
    QmailLocals locals = QmailLocals::load(home_);
    EXPECT_NE(locals.error().find(path), std::string::npos) << locals.error();
    EXPECT_TRUE(locals.may_be_local("joe@example.com"));
    // pluginrunner cannot answer either: its LookupError is a 451 for the recipient.
    pluginrunner::SystemQmailFiles files(home_);
    EXPECT_THROW(pluginrunner::check_mailbox("joe@example.com", files), pluginrunner::LookupError);
    ASSERT_EQ(rmdir(path.c_str()), 0);
  }
}

TEST_F(QmailLocalsTest, AnUnreadableMeCountsOnlyWithoutLocals) {
  ASSERT_EQ(mkdir((home_ + "/control/me").c_str(), 0755), 0);
  EXPECT_TRUE(QmailLocals::load(home_).may_be_local("joe@example.com"));
  EXPECT_NE(QmailLocals::load(home_).error(), "");
  control("locals", "local.test\n");
  expect({{"joe@local.test", true}, {"joe@example.com", false}});
}

TEST(QmailLocalsDefaultTest, NotLoadedMeansEveryRecipientMayBeLocal) {
  QmailLocals locals;
  EXPECT_TRUE(locals.may_be_local("joe@example.com"));
  EXPECT_EQ(locals.error(), "");
}

}  // namespace
}  // namespace sppd::smtpd
