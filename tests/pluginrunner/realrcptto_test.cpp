// Tests for pluginrunner/realrcptto: qmail's delivery rules over a fake qmail home (control
// files, users/assign or raw users/cdb records, passwd entries, files that exist). Each case
// names the qmail rule it checks; the stat log shows qmail-local's search order.
#include "pluginrunner/realrcptto.h"

#include <errno.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace sppd::pluginrunner {
namespace {

using Strings = std::vector<std::string>;

// A string literal with its NUL bytes (and without the terminating one).
template <size_t N>
std::string bytes(const char (&text)[N]) {
  return std::string(text, N - 1);
}

// users/cdb records given as they would be in the cdb (for records AssignTable cannot make).
class RecordTable final : public UserTable {
 public:
  explicit RecordTable(std::map<std::string, std::string> records) : records_(std::move(records)) {}
  std::optional<std::string> find(std::string_view key) const override {
    auto it = records_.find(std::string(key));
    if (it == records_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::map<std::string, std::string> records_;
};

class FakeQmailFiles final : public QmailFiles {
 public:
  std::map<std::string, Strings> control;                     // control/NAME -> its lines
  std::optional<std::string> assign;                          // users/assign
  std::optional<std::map<std::string, std::string>> records;  // users/cdb, raw
  std::map<std::string, PasswdEntry> users;
  std::map<std::string, PathStatus> paths;  // what exists (or fails); the rest is ENOENT
  Strings stats;                            // every path stat'ed, in order

  std::optional<Strings> control_lines(const std::string& name) override {
    auto it = control.find(name);
    if (it == control.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> control_line(const std::string& name) override {
    auto lines = control_lines(name);
    if (!lines) return std::nullopt;
    return lines->empty() ? std::string() : lines->front();
  }
  std::unique_ptr<UserTable> user_table() override {
    if (records) return std::make_unique<RecordTable>(*records);
    if (assign) return std::make_unique<AssignTable>(*assign);
    return nullptr;
  }
  std::optional<PasswdEntry> passwd(const std::string& name) override {
    auto it = users.find(name);
    if (it == users.end()) return std::nullopt;
    return it->second;
  }
  PathStatus stat(const std::string& path) override {
    stats.push_back(path);
    auto it = paths.find(path);
    return it == paths.end() ? PathStatus{ENOENT, 0} : it->second;
  }

  // A passwd user whose home exists and is theirs (what qmail-getpw wants).
  void add_user(const std::string& name, uid_t uid) {
    users[name] = {name, uid, "/home/" + name};
    paths["/home/" + name] = {0, uid};
  }
  void add_file(const std::string& path) { paths[path] = {0, 0}; }
};

class RealRcptToTest : public ::testing::Test {
 protected:
  void SetUp() override {
    files_.control["me"] = {"mx.local.test"};
    files_.control["locals"] = {"local.test", "Other.Test"};
    files_.users["alias"] = {"alias", 7790, "/var/qmail/alias"};
  }

  Mailbox check(const std::string& recipient) {
    files_.stats.clear();
    last_ = check_mailbox(recipient, files_);
    return last_.mailbox;
  }

  FakeQmailFiles files_;
  MailboxVerdict last_;
};

// ---- qmail-send rewrite(): which addresses are local

TEST_F(RealRcptToTest, DomainsOutsideLocalsAndVirtualdomainsAreNotLocal) {
  EXPECT_EQ(check("bob@elsewhere.test"), Mailbox::kNotLocal);
  EXPECT_EQ(check("bob@sub.local.test"), Mailbox::kNotLocal);  // locals is exact
  EXPECT_TRUE(files_.stats.empty());  // nothing of qmail-local's is looked at
}

TEST_F(RealRcptToTest, LocalsMatchWithoutRegardToCase) {
  EXPECT_EQ(check("nobody@LOCAL.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(check("nobody@other.TEST"), Mailbox::kNoMailbox);
}

TEST_F(RealRcptToTest, WithoutLocalsControlMeIsTheLocalDomain) {
  files_.control.erase("locals");
  EXPECT_EQ(check("nobody@mx.local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(check("nobody@local.test"), Mailbox::kNotLocal);
  files_.control.erase("me");
  EXPECT_EQ(check("nobody@mx.local.test"), Mailbox::kNotLocal);
}

TEST_F(RealRcptToTest, AnAddressWithoutDomainGetsEnvnoathost) {
  EXPECT_EQ(check("nobody"), Mailbox::kNotLocal);  // control/me: mx.local.test, not a local
  files_.control["envnoathost"] = {"local.test"};
  EXPECT_EQ(check("nobody"), Mailbox::kNoMailbox);
}

TEST_F(RealRcptToTest, PercenthackTurnsTheLastPercentIntoTheDomain) {
  files_.control["percenthack"] = {"hack.test"};
  EXPECT_EQ(check("nobody%local.test@hack.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(check("nobody%elsewhere.test@hack.test"), Mailbox::kNotLocal);
  EXPECT_EQ(check("nobody@hack.test"), Mailbox::kNotLocal);
}

TEST_F(RealRcptToTest, VirtualdomainsPrefixTheLocalPart) {
  files_.control["virtualdomains"] = {"virtual.test:virt"};
  files_.add_file("/var/qmail/alias/.qmail-virt-info");
  EXPECT_EQ(check("info@Virtual.Test"), Mailbox::kExists);
  EXPECT_EQ(last_.why, "delivered by /var/qmail/alias/.qmail-virt-info");
  EXPECT_EQ(check("sales@virtual.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats,
            (Strings{"/var/qmail/alias/.qmail-virt-sales", "/var/qmail/alias/.qmail-virt-default",
                     "/var/qmail/alias/.qmail-default"}));
}

TEST_F(RealRcptToTest, VirtualdomainsTryAddressThenDomainThenSuffixesThenCatchAll) {
  files_.control["virtualdomains"] = {"joe@v.test:joe", "v.test:dom", ".v.test:sub",
                                      ".test:tld",      ":all",       "no colon here"};
  for (const char* prefix : {"joe-joe", "dom-ann", "sub-ann", "tld-ann", "all-ann"}) {
    files_.add_file(std::string("/var/qmail/alias/.qmail-") + prefix);
  }
  EXPECT_EQ(check("joe@v.test"), Mailbox::kExists);
  EXPECT_EQ(check("ann@v.test"), Mailbox::kExists);
  EXPECT_EQ(check("ann@a.b.v.test"), Mailbox::kExists);
  EXPECT_EQ(last_.why, "delivered by /var/qmail/alias/.qmail-sub-ann");
  EXPECT_EQ(check("ann@x.test"), Mailbox::kExists);
  EXPECT_EQ(last_.why, "delivered by /var/qmail/alias/.qmail-tld-ann");
  EXPECT_EQ(check("ann@example.org"), Mailbox::kExists);
  EXPECT_EQ(last_.why, "delivered by /var/qmail/alias/.qmail-all-ann");
}

TEST_F(RealRcptToTest, AnEmptyVirtualdomainsPrefixExcludesAndLocalsWin) {
  files_.control["virtualdomains"] = {".v.test:sub", "remote.v.test:", "local.test:shadowed"};
  EXPECT_EQ(check("ann@remote.v.test"), Mailbox::kNotLocal);
  EXPECT_EQ(last_.why, "virtualdomains line \"remote.v.test:\" excludes it");
  EXPECT_EQ(check("ann@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats.front(), "/var/qmail/alias/.qmail-ann");
}

TEST_F(RealRcptToTest, ALaterVirtualdomainsLineForTheSameKeyWins) {
  files_.control["virtualdomains"] = {"v.test:first", "V.test:second"};
  files_.add_file("/var/qmail/alias/.qmail-second-ann");
  EXPECT_EQ(check("ann@v.test"), Mailbox::kExists);
}

// ---- qmail-getpw: passwd users

TEST_F(RealRcptToTest, APasswdUserHasAMailboxWithoutAnyDotQmail) {
  files_.add_file("/var/qmail/alias/.qmail-default");  // would take anything: not reached
  files_.add_file("/home/bob");
  files_.add_user("bob", 1000);
  EXPECT_EQ(check("Bob@local.test"), Mailbox::kExists);
  EXPECT_EQ(last_.why, "user bob without extension");
}

TEST_F(RealRcptToTest, ExtensionsNeedADotQmailFileSearchedLongestFirst) {
  files_.add_user("bob", 1000);
  EXPECT_EQ(check("bob-Foo-Bar.Baz@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats, (Strings{"/home/bob", "/home/bob/.qmail-foo-bar:baz",
                                   "/home/bob/.qmail-foo-default", "/home/bob/.qmail-default"}));
  files_.add_file("/home/bob/.qmail-foo-default");
  EXPECT_EQ(check("bob-foo-bar.baz@local.test"), Mailbox::kExists);
  EXPECT_EQ(check("bob-foo-other@local.test"), Mailbox::kExists);
  EXPECT_EQ(check("bob-bar@local.test"), Mailbox::kNoMailbox);
  files_.add_file("/home/bob/.qmail-default");
  EXPECT_EQ(check("bob-bar@local.test"), Mailbox::kExists);
  EXPECT_EQ(last_.why, "delivered by /home/bob/.qmail-default");
}

TEST_F(RealRcptToTest, ATrailingDashSearchesExtDashDefault) {
  files_.add_user("bob", 1000);
  files_.add_file("/home/bob/.qmail-x-default");
  EXPECT_EQ(check("bob-x-@local.test"), Mailbox::kExists);
  EXPECT_EQ(files_.stats,
            (Strings{"/home/bob", "/home/bob/.qmail-x-", "/home/bob/.qmail-x-default"}));
}

TEST_F(RealRcptToTest, TheLongestExistingUserTakesTheAddress) {
  files_.add_user("bob", 1000);
  files_.add_user("bob-lists", 1001);
  files_.add_file("/home/bob/.qmail-lists-x");
  // bob-lists owns bob-lists-x: his home has no .qmail-x, bob's .qmail-lists-x is not looked at.
  EXPECT_EQ(check("bob-lists-x@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats.front(), "/home/bob-lists");
  EXPECT_EQ(files_.stats[1], "/home/bob-lists/.qmail-x");
}

TEST_F(RealRcptToTest, RootIsNeverAUserAndNeitherIsAnOwnerlessHome) {
  files_.users["root"] = {"root", 0, "/root"};
  files_.paths["/root"] = {0, 0};
  files_.users["carol"] = {"carol", 1002, "/home/carol"};
  files_.paths["/home/carol"] = {0, 1003};              // someone else's directory
  files_.users["dave"] = {"dave", 1004, "/home/dave"};  // no home at all
  files_.add_file("/var/qmail/alias/.qmail-root");
  EXPECT_EQ(check("root@local.test"), Mailbox::kExists);
  EXPECT_EQ(last_.why, "delivered by /var/qmail/alias/.qmail-root");
  EXPECT_EQ(check("carol@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(check("dave@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats.back(), "/var/qmail/alias/.qmail-default");
}

TEST_F(RealRcptToTest, UserNamesOf32BytesOrMoreAreNotLookedUp) {
  std::string name31(31, 'u'), name32(32, 'u');
  files_.add_user(name31, 1000);
  files_.add_user(name32, 1001);
  EXPECT_EQ(check(name31 + "@local.test"), Mailbox::kExists);
  EXPECT_EQ(check(name32 + "@local.test"), Mailbox::kNoMailbox);
}

TEST_F(RealRcptToTest, ATemporaryErrorOnAHomeDirectoryMeansUnableToVerify) {
  files_.users["bob"] = {"bob", 1000, "/home/bob"};
  files_.paths["/home/bob"] = {EIO, 0};
  EXPECT_THROW(check("bob@local.test"), LookupError);
  files_.paths["/home/bob"] = {EACCES, 0};  // not temporary: bob is not a user then
  EXPECT_EQ(check("bob@local.test"), Mailbox::kNoMailbox);
}

TEST_F(RealRcptToTest, AnUnreadableDotQmailIsAcceptedWithAWarning) {
  files_.add_user("bob", 1000);
  files_.paths["/home/bob/.qmail-x"] = {EACCES, 0};
  EXPECT_EQ(check("bob-x@local.test"), Mailbox::kExists);
  EXPECT_NE(last_.warning.find("unable to stat /home/bob/.qmail-x"), std::string::npos);
}

// ---- the alias user

TEST_F(RealRcptToTest, TheAliasUserTakesWhatNoUserTakes) {
  files_.add_file("/var/qmail/alias/.qmail-postmaster");
  EXPECT_EQ(check("PostMaster@local.test"), Mailbox::kExists);
  EXPECT_EQ(check("nobody@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats,
            (Strings{"/var/qmail/alias/.qmail-nobody", "/var/qmail/alias/.qmail-default"}));
  files_.add_file("/var/qmail/alias/.qmail-default");
  EXPECT_EQ(check("nobody@local.test"), Mailbox::kExists);
}

TEST_F(RealRcptToTest, WithoutAnAliasUserNobodyElseHasAMailbox) {
  files_.users.erase("alias");
  EXPECT_EQ(check("postmaster@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(last_.why, "no user for \"postmaster\" and no user alias");
}

// ---- qmail-lspawn: users/assign (as users/cdb)

TEST_F(RealRcptToTest, AnExactAssignLineWithoutDashIsAMailbox) {
  files_.assign = "=joe:joe:1001:1001:/srv/joe:::\n.\n";
  EXPECT_EQ(check("JOE@local.test"), Mailbox::kExists);
  EXPECT_TRUE(files_.stats.empty());                          // no passwd, no .qmail search
  EXPECT_EQ(check("joe-x@local.test"), Mailbox::kNoMailbox);  // exact means exact
}

TEST_F(RealRcptToTest, AnExactAssignLineWithDashSearchesItsExtension) {
  files_.assign = "=info:lists:1001:1001:/srv/lists:-:info:\n.\n";
  EXPECT_EQ(check("info@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats, (Strings{"/srv/lists/.qmail-info", "/srv/lists/.qmail-default"}));
  files_.add_file("/srv/lists/.qmail-info");
  EXPECT_EQ(check("info@local.test"), Mailbox::kExists);
}

TEST_F(RealRcptToTest, AWildcardAssignLineAppendsTheRestToItsExtension) {
  files_.assign =
      "+list-:lists:1001:1001:/srv/lists:-:l-:\n"
      "+list-big-:big:1002:1002:/srv/big:-::\n"
      "=list-exact:exact:1003:1003:/srv/exact:::\n.\n";
  files_.add_file("/srv/lists/.qmail-l-default");
  EXPECT_EQ(check("list-Anything@local.test"), Mailbox::kExists);
  EXPECT_EQ(files_.stats, (Strings{"/srv/lists/.qmail-l-anything", "/srv/lists/.qmail-l-default"}));
  // The longest prefix wins: list-big- has no .qmail files at all.
  EXPECT_EQ(check("list-big-x@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats.front(), "/srv/big/.qmail-x");
  // An exact line beats every prefix.
  EXPECT_EQ(check("list-exact@local.test"), Mailbox::kExists);
  // No line fits: passwd, then the alias user.
  EXPECT_EQ(check("lis@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats.front(), "/var/qmail/alias/.qmail-lis");
}

TEST_F(RealRcptToTest, ACatchAllAssignLineReplacesTheAliasUser) {
  files_.users.erase("alias");
  files_.assign = "+:alias:7790:2108:/srv/alias:-::\n.\n";
  files_.add_file("/srv/alias/.qmail-postmaster");
  EXPECT_EQ(check("postmaster@local.test"), Mailbox::kExists);
  EXPECT_EQ(check("nobody@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats, (Strings{"/srv/alias/.qmail-nobody", "/srv/alias/.qmail-default"}));
}

TEST_F(RealRcptToTest, TheFirstAssignLineOfAKeyWins) {
  files_.assign = "=joe:joe:1:1:/srv/first:-:a:\n=Joe:joe:1:1:/srv/second:::\n.\n";
  EXPECT_EQ(check("joe@local.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats.front(), "/srv/first/.qmail-a");
}

TEST_F(RealRcptToTest, VirtualdomainsAndAssignTogether) {
  files_.control["virtualdomains"] = {"virtual.test:virt"};
  files_.assign = "+virt-:vmail:89:89:/srv/virtual:-::\n.\n";
  files_.add_file("/srv/virtual/.qmail-sales-default");
  EXPECT_EQ(check("sales-eu@virtual.test"), Mailbox::kExists);
  EXPECT_EQ(check("support@virtual.test"), Mailbox::kNoMailbox);
  EXPECT_EQ(files_.stats, (Strings{"/srv/virtual/.qmail-support", "/srv/virtual/.qmail-default"}));
}

TEST_F(RealRcptToTest, AMalformedCdbRecordIsAcceptedWithAWarning) {
  files_.records = std::map<std::string, std::string>{{"", ""},
                                                      {bytes("!joe\0"), bytes("joe\0"
                                                                              "1\0"
                                                                              "1\0"
                                                                              "/srv/joe")}};
  EXPECT_EQ(check("joe@local.test"), Mailbox::kExists);
  EXPECT_NE(last_.warning.find("fewer than six fields"), std::string::npos);
}

TEST_F(RealRcptToTest, ACdbWithoutItsWildcardRecordIsUnableToVerify) {
  files_.records = std::map<std::string, std::string>{};
  EXPECT_THROW(check("joe@local.test"), LookupError);
}

TEST_F(RealRcptToTest, AssignWithABadLineOrWithoutItsFinalDotIsUnableToVerify) {
  for (const char* text :
       {"=joe:joe:1:1:/srv/joe:::\n", "=joe:joe:1:1:/srv/joe::\n.\n", "# comment\n.\n", "\n.\n",
        ":joe:1:1:/h:::\n.\n", "=joe:joe:1:1:/srv/joe:::"}) {
    files_.assign = text;
    EXPECT_THROW(check("joe@local.test"), LookupError) << text;
  }
}

TEST(AssignTableTest, HoldsTheRecordsQmailNewuWrites) {
  AssignTable table(
      "=Joe:joe:1001:1002:/srv/joe:-:ext:extra:fields\n+Pre-:p:1:2:/srv/p:-::\n+:all:3:4:/a:::\n"
      ".\nanything after the dot is ignored\n");
  EXPECT_EQ(table.find(bytes("!joe\0")), bytes("joe\0"
                                               "1001\0"
                                               "1002\0"
                                               "/srv/joe\0"
                                               "-\0"
                                               "ext"));
  EXPECT_EQ(table.find("!pre-"), bytes("p\0"
                                       "1\0"
                                       "2\0"
                                       "/srv/p\0"
                                       "-\0"));
  EXPECT_EQ(table.find("!"), bytes("all\0"
                                   "3\0"
                                   "4\0"
                                   "/a\0"
                                   "\0"));
  EXPECT_EQ(table.find(""), "-");  // the last characters of the "+" prefixes ("+:" has none)
  EXPECT_EQ(table.find("!joe"), std::nullopt);
}

TEST(TemporaryErrorTest, FollowsQmailsErrorTemp) {
  EXPECT_TRUE(temporary_error(EIO));
  EXPECT_TRUE(temporary_error(ESTALE));
  EXPECT_TRUE(temporary_error(EAGAIN));
  EXPECT_FALSE(temporary_error(ENOENT));
  EXPECT_FALSE(temporary_error(EACCES));
  EXPECT_FALSE(temporary_error(ENOTDIR));
}

}  // namespace
}  // namespace sppd::pluginrunner
