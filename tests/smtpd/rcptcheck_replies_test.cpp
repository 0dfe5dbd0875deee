// Tests for smtpd/rcptcheck_replies: qmail-md's rcptcheck exit-code table, row by row as the
// seed's README.antispam gives it, plus what sppd does outside the table.
#include "smtpd/rcptcheck_replies.h"

#include <gtest/gtest.h>

namespace sppd::smtpd {
namespace {

using Action = RcptCheckVerdict::Action;

TEST(RcptCheckRepliesTest, ZeroAndHundredAccept) {
  for (int code : {0, 100}) {
    RcptCheckVerdict verdict = rcptcheck_verdict(code);
    EXPECT_EQ(verdict.action, Action::kAccept) << code;
    EXPECT_FALSE(verdict.close);
  }
}

TEST(RcptCheckRepliesTest, EveryRowOfQmailMdsTable) {
  const std::pair<int, const char*> table[] = {
      {1, "553 5.1.1 sorry, no mailbox here by that name."},
      {2, "421 4.3.0 unable to verify recipient/sender (misuse)"},
      {3, "421 4.3.0 unable to verify recipient/sender (internal)"},
      {11, "451 4.1.1 bad destination mailbox address"},
      {12, "451 4.1.2 bad destination system address"},
      {13, "451 4.1.3 bad destination mailbox address syntax"},
      {14, "451 4.1.4 destination mailbox address ambiguous"},
      {16, "451 4.1.6 mailbox has moved"},
      {17, "451 4.1.7 bad sender's mailbox address syntax"},
      {18, "451 4.1.8 bad sender's system address"},
      {21, "452 4.2.1 mailbox disabled, not accepting messages"},
      {22, "452 4.2.2 mailbox full"},
      {111, "421 4.3.0 unable to verify recipient/sender (temporary)"},
      {112, "421 4.3.0 unable to verify recipient/sender (greylisting)"},
  };
  for (const auto& [code, reply] : table) {
    RcptCheckVerdict verdict = rcptcheck_verdict(code);
    EXPECT_EQ(verdict.action, Action::kRefuse) << code;
    EXPECT_EQ(verdict.reply, reply) << code;
    // A 421 ends the session (RFC 5321: the server closes the channel after it).
    EXPECT_EQ(verdict.close, reply[2] == '1' && reply[0] == '4' && reply[1] == '2') << code;
  }
}

TEST(RcptCheckRepliesTest, CodesOutsideTheTableAreFailures) {
  for (int code : {4, 10, 15, 19, 20, 23, 99, 101, 110, 113, 120, 255, -1}) {
    RcptCheckVerdict verdict = rcptcheck_verdict(code);
    EXPECT_EQ(verdict.action, Action::kUnknown) << code;
    EXPECT_EQ(verdict.reply, kRcptCheckFailed) << code;
    EXPECT_FALSE(verdict.close);
  }
  EXPECT_STREQ(kRcptCheckFailed, "451 4.3.0 unable to verify recipient/sender (failure)");
}

}  // namespace
}  // namespace sppd::smtpd
