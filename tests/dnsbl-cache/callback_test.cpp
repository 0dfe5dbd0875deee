// Tests for dnsbl-cache/callback: the call-back client against a scripted SMTP server on
// loopback (fake_smtp.h): the exact dialogue, multi-line refusals, each kind of failure moving
// on to the next address, the timeout, and how RCPT TO's argument is quoted.
#include "dnsbl-cache/callback.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "fake_smtp.h"
#include "tests/common/test_support.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;
using namespace std::chrono_literals;
using Kind = CallbackOutcome::Kind;

class CallbackTest : public ::testing::Test {
 protected:
  CallbackTest() : base_(event_base_new()), smtp_(base_.get()) {
    options_.port = smtp_.port();
    options_.timeout = 2000ms;
  }

  // Runs one call-back to addresses for sender; the outcome (nullopt if done never ran).
  std::optional<CallbackOutcome> call(std::vector<std::string> addresses,
                                      const std::string& sender = "alice@sender.test") {
    std::optional<CallbackOutcome> result;
    callback_ = std::make_unique<Callback>(base_.get(), std::move(addresses), "mx.us.test", sender,
                                           options_, [&](const CallbackOutcome& outcome) {
                                             result = outcome;
                                             callback_.reset();  // done may destroy it
                                           });
    callback_->start();
    EXPECT_FALSE(result) << "done must not run inside start()";
    test_support::run_until(
        base_.get(), [&] { return result.has_value(); }, 10);
    return result;
  }

  EventBasePtr base_;
  FakeSmtp smtp_;
  CallbackOptions options_;
  std::unique_ptr<Callback> callback_;
};

TEST_F(CallbackTest, AcceptedMailboxAfterTheWholeDialogue) {
  smtp_.rcpt_replies["alice@sender.test"] = "250 2.1.5 ok";
  auto outcome = call({"127.0.0.1"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kAccepted);
  EXPECT_EQ(outcome->address, "127.0.0.1");
  EXPECT_EQ(outcome->reply, std::vector<std::string>{"250 2.1.5 ok"});
  EXPECT_EQ(smtp_.received, (std::vector<std::string>{"HELO mx.us.test", "MAIL FROM:<>",
                                                      "RCPT TO:<alice@sender.test>", "QUIT"}));
}

TEST_F(CallbackTest, RefusedMailboxKeepsEveryReplyLine) {
  smtp_.rcpt_replies["bob@sender.test"] =
      "550-This account doesn't exist\r\n550-or isn't currently\r\n550 functioning.";
  auto outcome = call({"127.0.0.1"}, "bob@sender.test");
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kRejected);
  EXPECT_EQ(outcome->reply,
            (std::vector<std::string>{"550-This account doesn't exist", "550-or isn't currently",
                                      "550 functioning."}));
  EXPECT_EQ(smtp_.received.back(), "QUIT");
}

TEST_F(CallbackTest, TemporaryRefusalIsNoVerdictAndTheNextAddressIsAsked) {
  FakeSmtp second(base_.get(), "127.0.0.2", smtp_.port());
  smtp_.default_rcpt_reply = "451 4.7.1 greylisted, try later";
  second.rcpt_replies["alice@sender.test"] = "250 ok";
  auto outcome = call({"127.0.0.1", "127.0.0.2"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kAccepted);
  EXPECT_EQ(outcome->address, "127.0.0.2");
  EXPECT_EQ(smtp_.received.back(), "QUIT") << "the first host is left politely";

  // The only address says 4xx: no verdict, and why.
  outcome = call({"127.0.0.1"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kUnverified);
  EXPECT_NE(outcome->detail.find("127.0.0.1: RCPT TO: 451 4.7.1 greylisted"), std::string::npos)
      << outcome->detail;
}

TEST_F(CallbackTest, RefusedConnectionMovesOnToTheNextAddress) {
  // Nobody listens on 127.0.0.2 at this port (the server is bound to 127.0.0.1 only).
  smtp_.rcpt_replies["alice@sender.test"] = "250 ok";
  auto outcome = call({"127.0.0.2", "127.0.0.1"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kAccepted);
  EXPECT_EQ(outcome->address, "127.0.0.1");
  EXPECT_EQ(smtp_.connections, 1);
}

TEST_F(CallbackTest, EveryAddressFailingIsUnverifiedWithEachReason) {
  options_.port = closed_port();
  auto outcome = call({"127.0.0.1", "127.0.0.2"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kUnverified);
  EXPECT_NE(outcome->detail.find("127.0.0.1: cannot connect"), std::string::npos)
      << outcome->detail;
  EXPECT_NE(outcome->detail.find("127.0.0.2: cannot connect"), std::string::npos)
      << outcome->detail;
}

TEST_F(CallbackTest, SilentHostTimesOut) {
  smtp_.silent = true;
  options_.timeout = 300ms;
  auto started = std::chrono::steady_clock::now();
  auto outcome = call({"127.0.0.1"});
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kUnverified);
  EXPECT_NE(outcome->detail.find("timed out waiting for the greeting"), std::string::npos)
      << outcome->detail;
  // libevent times with the coarse monotonic clock: its timer may fire a tick (a few ms)
  // before 300 ms of the precise clock the test measures with.
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 3s);
}

TEST_F(CallbackTest, RefusedGreetingOrNullSenderIsNoVerdict) {
  smtp_.greeting = "554 go away";
  auto outcome = call({"127.0.0.1"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kUnverified);
  EXPECT_EQ(smtp_.received, std::vector<std::string>{"QUIT"});

  smtp_.greeting = "220 fake";
  smtp_.mail_reply = "550 we do not take bounces";
  smtp_.received.clear();
  outcome = call({"127.0.0.1"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kUnverified) << "a 5xx to MAIL FROM:<> says nothing of the box";
  EXPECT_EQ(smtp_.received, (std::vector<std::string>{"HELO mx.us.test", "MAIL FROM:<>", "QUIT"}));
}

TEST_F(CallbackTest, GarbageInsteadOfAReplyIsNoVerdict) {
  smtp_.greeting = "hello there";
  auto outcome = call({"127.0.0.1"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kUnverified);
  EXPECT_NE(outcome->detail.find("not an SMTP reply: hello there"), std::string::npos);
}

TEST_F(CallbackTest, NoAddressesIsUnverifiedFromTheLoop) {
  auto outcome = call({});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::kUnverified);
}

TEST(CallbackPathTest, QuotesWhatIsNotADotString) {
  EXPECT_EQ(callback_path("alice@example.org"), "alice@example.org");
  EXPECT_EQ(callback_path("a.b+c@example.org"), "a.b+c@example.org");
  EXPECT_EQ(callback_path("john doe@example.org"), "\"john doe\"@example.org");
  EXPECT_EQ(callback_path("a..b@example.org"), "\"a..b\"@example.org");
  EXPECT_EQ(callback_path("say\"hi\\@example.org"), "\"say\\\"hi\\\\\"@example.org");
  EXPECT_EQ(callback_path("@example.org"), "\"\"@example.org");
  EXPECT_EQ(callback_path("bad\rbox@example.org"), "") << "nothing may end the command early";
  EXPECT_EQ(callback_path("nodomain"), "");
  EXPECT_EQ(callback_path("nodomain@"), "");
}

}  // namespace
}  // namespace sppd::dnsbl_cache
