// Tests for pluginrunner/plugins/rblspp_verdict: what the rblspp plugin decides from its argv
// and the session environment (RBLSPP, SMTPRCPTCOUNT, TCPREMOTEIP) with a fake lookup, and
// the lines it writes. The decision over the lookups is RblCheck's (tests/common).
#include "pluginrunner/plugins/rblspp_verdict.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace sppd::rblspp {
namespace {

const std::vector<std::string> kSeedArgs = {"-r", "relays.ordb.org", "-r", "sbl.spamhaus.org"};

class VerdictTest : public ::testing::Test {
 protected:
  std::optional<RblBlock> decide(const std::vector<std::string>& args) {
    problem_.clear();
    return verdict(
        args, env_,
        [this](const RblStep& step, const std::string& ip) {
          asked_.push_back(ip + " " + step.zone +
                           (step.kind == RblStep::Kind::kListTxt ? " txt" : " a"));
          auto it = answers_.find(step.zone);
          return it == answers_.end() ? LookupAnswer{RblLookup::kClear, ""} : it->second;
        },
        &problem_);
  }

  Environment env_{std::nullopt, std::string("0"), std::string("192.0.2.7")};
  std::map<std::string, LookupAnswer> answers_{
      {"sbl.spamhaus.org", {RblLookup::kListed, "listed in the SBL"}}};
  std::vector<std::string> asked_;
  std::string problem_;
};

TEST_F(VerdictTest, ListedClientIsRefusedAfterTheLookupsInOrder) {
  EXPECT_EQ(decide(kSeedArgs), (RblBlock{"451", "listed in the SBL"}));
  EXPECT_EQ(asked_, (std::vector<std::string>{"192.0.2.7 relays.ordb.org txt",
                                              "192.0.2.7 sbl.spamhaus.org txt"}));
  EXPECT_EQ(decide({"-b", "-r", "sbl.spamhaus.org"}), (RblBlock{"553", "listed in the SBL"}));
  EXPECT_EQ(decide({"-b", "-r", "sbl.spamhaus.org:%IP% is listed"}),
            (RblBlock{"553", "192.0.2.7 is listed"}));
  EXPECT_EQ(asked_.back(), "192.0.2.7 sbl.spamhaus.org a");
  EXPECT_TRUE(problem_.empty());
}

TEST_F(VerdictTest, UnlistedClientAndIpv6) {
  env_.remote_ip = "2001:db8::1";
  EXPECT_EQ(decide({"-r", "relays.ordb.org"}), std::nullopt);
  EXPECT_EQ(asked_, (std::vector<std::string>{"2001:db8::1 relays.ordb.org txt"}));
}

TEST_F(VerdictTest, RblsppFromTcprulesDecidesWithoutLookups) {
  env_.rblspp = "";
  EXPECT_EQ(decide(kSeedArgs), std::nullopt);
  env_.rblspp = "-Go away";
  EXPECT_EQ(decide(kSeedArgs), (RblBlock{"553", "Go away"}));
  env_.rblspp = "Busy";
  EXPECT_EQ(decide(kSeedArgs), (RblBlock{"451", "Busy"}));
  EXPECT_TRUE(asked_.empty());
}

TEST_F(VerdictTest, NothingToDoOnceARecipientWasAccepted) {
  env_.rcpt_count = "1";
  env_.rblspp = "-Go away";
  EXPECT_EQ(decide(kSeedArgs), std::nullopt);
  env_.rcpt_count = "12";
  EXPECT_EQ(decide(kSeedArgs), std::nullopt);
  EXPECT_TRUE(asked_.empty());
  // Zero, unset or not a number: this is the first recipient.
  for (std::optional<std::string> count :
       {std::optional<std::string>("00"), std::optional<std::string>(), {"x1"}}) {
    env_.rcpt_count = count;
    EXPECT_EQ(decide(kSeedArgs), (RblBlock{"553", "Go away"}));
  }
}

TEST_F(VerdictTest, DnsErrorsAndUnusableAddresses) {
  answers_["relays.ordb.org"] = {RblLookup::kError, ""};
  EXPECT_EQ(decide({"-c", "-r", "relays.ordb.org"}),
            (RblBlock{"451", "temporary RBL lookup error"}));
  EXPECT_EQ(decide({"-C", "-r", "relays.ordb.org"}), std::nullopt);
  EXPECT_EQ(decide({"-b", "-r", "relays.ordb.org", "-r", "sbl.spamhaus.org"}),
            (RblBlock{"451", "listed in the SBL"}));
  asked_.clear();
  env_.remote_ip = std::nullopt;
  EXPECT_EQ(decide({"-c", "-r", "sbl.spamhaus.org"}),
            (RblBlock{"451", "temporary RBL lookup error"}));
  EXPECT_EQ(problem_, "TCPREMOTEIP '' is not an IP address");
  env_.remote_ip = "1.2.3.4; rm -rf";
  EXPECT_EQ(decide({"-r", "sbl.spamhaus.org"}), std::nullopt);
  EXPECT_TRUE(asked_.empty()) << "a bad address must never be looked up";
}

TEST_F(VerdictTest, BadCommandLineRefusesTemporarily) {
  env_.rblspp = "";  // even a client tcprules let in: the config line is broken
  EXPECT_EQ(decide({"-r", "sbl.spamhaus.org", "-x"}),
            (RblBlock{"451", "temporary RBL lookup error"}));
  EXPECT_EQ(problem_, "usage: unknown option '-x' (rblsmtpd knows -b -B -c -C -r -a -t)");
  EXPECT_EQ(decide({"-r"}), (RblBlock{"451", "temporary RBL lookup error"}));
}

TEST(RblsppOutputTest, OneCommandLineAndRblsmtpdsLogLine) {
  EXPECT_EQ(plugin_output({"553", "listed, see http://x/"}), "E553 listed, see http://x/\n");
  EXPECT_EQ(plugin_output({"451", "two\nlines\r"}), "E451 two?lines?\n");
  EXPECT_EQ(log_line("192.0.2.7", 4242, {"553", "listed"}),
            "rblspp: 192.0.2.7 pid 4242: 553 listed\n");
}

}  // namespace
}  // namespace sppd::rblspp
