// Tests for smtpd/received: the Received line and date822 against qmail's output,
// including the worked example of spec qmail-protocols.md §2.12.
#include "smtpd/received.h"

#include <gtest/gtest.h>

namespace sppd::smtpd {
namespace {

// Every field is spelled out: g++ 12 -O2 gives a false maybe-uninitialized warning when a
// default-constructed ReceivedFacts has its optionals assigned one by one.
constexpr time_t kNov14 = 1700000000;  // 14 Nov 2023 22:13:20 UTC

TEST(Date822Test, FormatsUtcWithoutWeekday) {
  EXPECT_EQ(date822(kNov14), "14 Nov 2023 22:13:20 -0000");
  EXPECT_EQ(date822(0), "1 Jan 1970 00:00:00 -0000");
  EXPECT_EQ(date822(951782400), "29 Feb 2000 00:00:00 -0000");
  EXPECT_EQ(date822(1704067199), "31 Dec 2023 23:59:59 -0000");
}

TEST(ReceivedLineTest, WorkedExample) {
  ReceivedFacts facts{.remote_host = std::nullopt,
                      .helo = "client.example.org",
                      .remote_info = std::nullopt,
                      .remote_ip = "192.0.2.7",
                      .local_host = "mx.example.com",
                      .local_ip = "192.0.2.1",
                      .protocol = "SMTP",
                      .when = kNov14};
  EXPECT_EQ(received_line(facts),
            "Received: from unknown (HELO client.example.org) (192.0.2.7)\n"
            "  by mx.example.com with SMTP; 14 Nov 2023 22:13:20 -0000\n");
}

TEST(ReceivedLineTest, QmailsOwnExampleWithRemoteInfo) {
  ReceivedFacts facts{.remote_host = "relay1.uu.net",
                      .helo = "uunet.uu.net",
                      .remote_info = "7",
                      .remote_ip = "192.48.96.5",
                      .local_host = "silverton.berkeley.edu",
                      .local_ip = std::nullopt,
                      .protocol = "SMTP",
                      .when = 811485000};  // 19 Sep 1995 04:30:00 UTC
  EXPECT_EQ(received_line(facts),
            "Received: from relay1.uu.net (HELO uunet.uu.net) (7@192.48.96.5)\n"
            "  by silverton.berkeley.edu with SMTP; 19 Sep 1995 04:30:00 -0000\n");
}

TEST(ReceivedLineTest, HeloLeftOutWhenAbsentOrSameAsHost) {
  ReceivedFacts facts{.remote_host = "client.example.org",
                      .helo = std::nullopt,
                      .remote_info = std::nullopt,
                      .remote_ip = "192.0.2.7",
                      .local_host = std::nullopt,
                      .local_ip = "192.0.2.1",
                      .protocol = "ESMTP",
                      .when = kNov14};
  const std::string expected =
      "Received: from client.example.org (192.0.2.7)\n"
      "  by 192.0.2.1 with ESMTP; 14 Nov 2023 22:13:20 -0000\n";
  EXPECT_EQ(received_line(facts), expected);
  facts.helo = std::string("CLIENT.Example.ORG");
  EXPECT_EQ(received_line(facts), expected);
  // qmail compares with "unknown" when there is no host name.
  facts.remote_host.reset();
  facts.helo = std::string("Unknown");
  EXPECT_EQ(received_line(facts),
            "Received: from unknown (192.0.2.7)\n"
            "  by 192.0.2.1 with ESMTP; 14 Nov 2023 22:13:20 -0000\n");
}

TEST(ReceivedLineTest, EverythingUnknown) {
  ReceivedFacts facts;
  facts.when = kNov14;
  EXPECT_EQ(received_line(facts),
            "Received: from unknown (unknown)\n"
            "  by unknown with SMTP; 14 Nov 2023 22:13:20 -0000\n");
}

TEST(ReceivedLineTest, SafeputReplacesUnsafeBytes) {
  ReceivedFacts facts{.remote_host = "a b\n",
                      .helo = "x(y)\r\nReceived: <evil>",
                      .remote_info = "us er",
                      .remote_ip = "1.2.3.4;",
                      .local_host = "mx\texample\xff",
                      .local_ip = std::nullopt,
                      .protocol = "ESMTPS (TLS_AES_128_GCM_SHA256 encrypted)",
                      .when = kNov14};
  EXPECT_EQ(received_line(facts),
            "Received: from a?b? (HELO x?y???Received:??evil?) (us?er@1.2.3.4?)\n"
            "  by mx?example? with ESMTPS (TLS_AES_128_GCM_SHA256 encrypted); "
            "14 Nov 2023 22:13:20 -0000\n");
  facts.remote_host = std::string("h");
  facts.helo = std::string("AZaz09.@%+/=:-[]");
  EXPECT_NE(received_line(facts).find("(HELO AZaz09.@%+/=:-[])"), std::string::npos);
}

}  // namespace
}  // namespace sppd::smtpd
