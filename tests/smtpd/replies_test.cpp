// Tests for smtpd/replies: qmail texts with "(#x.y.z)" become RFC 2034 replies; texts from
// queue wrappers cannot break the one-line reply or disagree with the reply code's class.
#include "smtpd/replies.h"

#include <gtest/gtest.h>

namespace sppd::smtpd {
namespace {

TEST(QmailReplyTest, MovesTheQmailCodeToTheFront) {
  EXPECT_EQ(qmail_reply("554", "qq permanent problem (#5.3.0)"), "554 5.3.0 qq permanent problem");
  EXPECT_EQ(qmail_reply("554", "envelope address too long for qq (#5.1.3)"),
            "554 5.1.3 envelope address too long for qq");
  EXPECT_EQ(qmail_reply("451", "mail server temporarily rejected message (#4.3.0)"),
            "451 4.3.0 mail server temporarily rejected message");
  EXPECT_EQ(qmail_reply("451", "qq timeout (#4.3.0)"), "451 4.3.0 qq timeout");
  EXPECT_EQ(qmail_reply("553", "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"),
            "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts");
  EXPECT_EQ(qmail_reply("554", "long code (#5.123.456)"), "554 5.123.456 long code");
}

TEST(QmailReplyTest, KeepsAnExistingEnhancedCode) {
  EXPECT_EQ(qmail_reply("250", "2.1.0 ok"), "250 2.1.0 ok");
  EXPECT_EQ(qmail_reply("451", "4.7.1 greylisted, try later"), "451 4.7.1 greylisted, try later");
  EXPECT_EQ(qmail_reply("250", "2.0.0"), "250 2.0.0");
}

TEST(QmailReplyTest, DefaultsWhenThereIsNoCode) {
  EXPECT_EQ(qmail_reply("451", "something odd"), "451 4.3.0 something odd");
  EXPECT_EQ(qmail_reply("554", "something bad"), "554 5.3.0 something bad");
  EXPECT_EQ(qmail_reply("250", "ok"), "250 2.0.0 ok");
  EXPECT_EQ(qmail_reply("554", "rejected", "5.7.1"), "554 5.7.1 rejected");
  EXPECT_EQ(qmail_reply("354", "go ahead"), "354 go ahead");
  EXPECT_EQ(qmail_reply("554", ""), "554 5.3.0");
}

TEST(QmailReplyTest, TextThatOnlyLooksLikeACodeIsText) {
  EXPECT_EQ(qmail_reply("554", "5.3.0x odd"), "554 5.3.0 5.3.0x odd");
  EXPECT_EQ(qmail_reply("554", "1.2.3 version"), "554 5.3.0 1.2.3 version");
  EXPECT_EQ(qmail_reply("554", "see (#notes)"), "554 5.3.0 see (#notes)");
  EXPECT_EQ(qmail_reply("554", "code (#5.3.0) in the middle"),
            "554 5.3.0 code (#5.3.0) in the middle");
}

TEST(QmailReplyTest, EnhancedClassFollowsTheReplyCode) {
  EXPECT_EQ(qmail_reply("554", "wrapper said (#4.3.0)"), "554 5.3.0 wrapper said");
  EXPECT_EQ(qmail_reply("451", "wrapper said (#5.7.1)"), "451 4.7.1 wrapper said");
}

TEST(QmailReplyTest, NeverMoreThanOneLine) {
  EXPECT_EQ(qmail_reply("554", "first line\r\n250 injected (#5.3.0)"), "554 5.3.0 first line");
  EXPECT_EQ(qmail_reply("451", "a\nb"), "451 4.3.0 a");
}

TEST(QmailReplyTest, TrailingSpacesAreDropped) {
  EXPECT_EQ(qmail_reply("554", "text   (#5.3.0)  "), "554 5.3.0 text");
}

}  // namespace
}  // namespace sppd::smtpd
