// Tests for smtpd/session_sender: the MAIL that waits for dnsbl-cache's sender verdict
// (control/mfcheck), driven over a real socketpair with dnsbl-cache faked by a Channel that
// answers kSenderCheck with a scripted verdict: what is asked (level, HELO name,
// mxblacklist), each verdict's reply, who is never checked, pipelined commands waiting for the
// verdict, and failing open when dnsbl-cache is unavailable. Also how control/mfcheck and
// control/mxblacklist are read.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>

#include "common/channel.h"
#include "common/control.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "smtpd/session.h"
#include "tests/common/test_support.h"
#include "tests/smtpd/session_client.h"

namespace sppd::smtpd {
namespace {

// dnsbl-cache's side: every kSenderCheck is recorded and answered with `verdict` (and
// `reply` lines); a connecting client is admitted.
class FakeSenderChecks {
 public:
  FakeSenderChecks(event_base* base, UniqueFd fd)
      : channel_(
            base, std::move(fd), [this](ipc::Frame&& f) { on_frame(std::move(f)); },
            [](const std::string&) {}) {}

  std::string verdict = "ok";
  std::vector<std::string> reply;
  std::vector<ipc::Frame> asked;

 private:
  void on_frame(ipc::Frame&& f) {
    if (f.type == protocol::kClientConnect) {  // the per-client limits at connect
      ipc::Frame admitted(protocol::kClientVerdict, f.request_id);
      admitted.add("verdict", "ok").add("connections", "1").add("rate", "0");
      channel_.send(std::move(admitted));
      return;
    }
    if (f.type != protocol::kSenderCheck) return;
    ipc::Frame answer(protocol::kSenderVerdict, f.request_id);
    answer.add("verdict", verdict);
    for (const std::string& line : reply) answer.add("reply", line);
    answer.add("detail", "scripted");
    answer.add("cached", "no");
    asked.push_back(std::move(f));
    channel_.send(std::move(answer));
  }
  ipc::Channel channel_;
};

// pluginrunner's side: no plugin file.
class NoPlugins {
 public:
  NoPlugins(event_base* base, UniqueFd fd)
      : channel_(
            base, std::move(fd),
            [this](ipc::Frame&& f) {
              ipc::Frame result(protocol::kPluginConfigResult, f.request_id);
              result.add("status", "missing");
              channel_.send(std::move(result));
            },
            [](const std::string&) {}) {}

 private:
  ipc::Channel channel_;
};

class SessionSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_.reset(event_base_new());
    settings_.listener.name = "test";
    settings_.listener.remote_host_lookup = false;
    settings_.greeting = {"mx.example.com ESMTP ready"};
    settings_.me = "mx.example.com ESMTP ready";
    settings_.localiphost = "mx.example.com";
    settings_.rcpthosts = std::make_unique<RcptHosts>(std::vector<std::string>{"example.com"},
                                                      "/nonexistent/morercpthosts.cdb");
    settings_.spam.control_dir = "/control/";
    settings_.spam.pattern_files["/control/goodmailfrom"] = std::make_shared<PatternFile>(
        std::vector<std::string>{"^boss@"}, "/control/goodmailfrom", nullptr);
    settings_.spam.tarpitdelay = 0;
    settings_.spam.mfcheck = 2;
    settings_.spam.mxblacklist = {"127.0.0.1", "::1"};
    queue_ = std::make_unique<HelperPool>(base_.get(), "queue-bridge");
    dns_ = std::make_unique<HelperLink>(base_.get(), "dnsbl-cache");
    auto [dns_end, cache_end] = ipc::make_socketpair();
    dns_->attach(std::move(dns_end));
    cache_ = std::make_unique<FakeSenderChecks>(base_.get(), std::move(cache_end));
    plugins_ = std::make_unique<HelperPool>(base_.get(), "pluginrunner");
    auto [pool_end, runner_end] = ipc::make_socketpair();
    plugins_->attach(1, std::move(pool_end));
    runner_ = std::make_unique<NoPlugins>(base_.get(), std::move(runner_end));
  }

  void connect(bool with_dns = true) {
    HelperLink* dns = with_dns ? dns_.get() : unavailable_.get();
    session_ = client_.connect(settings_, {base_.get(), queue_.get(), dns, plugins_.get(),
                                           authd_.get(), "test/", [](uint64_t) {}});
    ASSERT_EQ(replies(1).substr(0, 19), "220 mx.example.com ");
  }

  void send(const std::string& bytes) { client_.send(bytes); }

  std::string replies(size_t lines) { return client_.replies(base_.get(), lines); }

  std::string mail(const std::string& sender) {
    send("MAIL FROM:<" + sender + ">\r\n");
    return replies(1);
  }

  EventBasePtr base_;
  ListenerSettings settings_;
  std::unique_ptr<HelperPool> queue_;
  std::unique_ptr<HelperLink> dns_;
  std::unique_ptr<HelperLink> unavailable_ = std::make_unique<HelperLink>(nullptr, "dnsbl-cache");
  std::unique_ptr<HelperLink> authd_ = std::make_unique<HelperLink>(nullptr, "authd");
  std::unique_ptr<FakeSenderChecks> cache_;
  std::unique_ptr<HelperPool> plugins_;
  std::unique_ptr<NoPlugins> runner_;
  SessionClient client_;
  std::unique_ptr<Session> session_;
};

TEST_F(SessionSenderTest, LevelTwoAsksWithTheHeloNameAndTheBlacklist) {
  connect();
  EXPECT_EQ(mail("alice@sender.example"), "250 2.1.0 ok\r\n");
  ASSERT_EQ(cache_->asked.size(), 1u);
  const ipc::Frame& asked = cache_->asked[0];
  EXPECT_EQ(asked.get_or("sender", ""), "alice@sender.example");
  EXPECT_EQ(asked.get_or("level", ""), "2");
  EXPECT_EQ(asked.get_or("helo", ""), "mx.example.com") << "one word of the greeting";
  auto blacklist = asked.all("mxblacklist");
  EXPECT_EQ(std::vector<std::string>(blacklist.begin(), blacklist.end()),
            (std::vector<std::string>{"127.0.0.1", "::1"}));
}

TEST_F(SessionSenderTest, ControlMeIsTheHeloName) {
  settings_.spam.me = "me.example.com";
  settings_.spam.mfcheck = 1;
  connect();
  mail("alice@sender.example");
  ASSERT_EQ(cache_->asked.size(), 1u);
  EXPECT_EQ(cache_->asked[0].get_or("level", ""), "1");
  EXPECT_EQ(cache_->asked[0].get("helo"), nullptr) << "level 1 makes no call-back";
  EXPECT_TRUE(cache_->asked[0].all("mxblacklist").empty());
}

TEST_F(SessionSenderTest, EachVerdictHasItsReply) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ok", "250 2.1.0 ok"},
      {"unverified", "250 2.1.0 ok"},
      {"no_domain", "553 5.1.8 sorry, your envelope sender domain must exist"},
      {"null_mx", "550 5.7.27 sorry, your envelope sender domain does not accept mail"},
      {"mx_blacklisted", "451 4.1.8 bad sender's system address, your mx is blacklisted!"},
      {"rejected", "550 5.1.8 bad sender's mailbox address, RCPT TO:<alice@sender.example> failed"},
      {"dns_error",
       "451 4.4.3 sorry, DNS temporary failure while checking your envelope sender domain"},
      {"nonsense", "250 2.1.0 ok"},  // not a verdict: fail open
  };
  connect();
  for (const auto& [verdict, reply] : cases) {
    cache_->verdict = verdict;
    EXPECT_EQ(mail("alice@sender.example"), reply + "\r\n") << verdict;
  }
}

TEST_F(SessionSenderTest, RefusedSenderLeavesNoTransaction) {
  cache_->verdict = "rejected";
  connect();
  send("MAIL FROM:<alice@sender.example>\r\nRCPT TO:<bob@example.com>\r\n");
  EXPECT_EQ(replies(2),
            "550 5.1.8 bad sender's mailbox address, RCPT TO:<alice@sender.example> failed\r\n"
            "503 5.5.1 MAIL first\r\n");
}

TEST_F(SessionSenderTest, PipelinedCommandsWaitForTheVerdict) {
  connect();
  // The RCPT is read only once MAIL was answered: it meets the accepted sender (so the
  // rcpthosts check, not "MAIL first").
  send("MAIL FROM:<alice@sender.example>\r\nRCPT TO:<bob@elsewhere.example>\r\nNOOP\r\n");
  EXPECT_EQ(replies(3),
            "250 2.1.0 ok\r\n"
            "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts\r\n"
            "250 2.0.0 ok\r\n");
}

TEST_F(SessionSenderTest, NullSenderGoodmailfromAndBareNamesAreNeverChecked) {
  cache_->verdict = "rejected";
  connect();
  EXPECT_EQ(mail(""), "250 2.1.0 ok\r\n");
  EXPECT_EQ(mail("boss@anywhere.example"), "250 2.1.0 ok\r\n");
  EXPECT_EQ(mail("root"), "250 2.1.0 ok\r\n");
  EXPECT_TRUE(cache_->asked.empty());
}

TEST_F(SessionSenderTest, OffByDefault) {
  settings_.spam.mfcheck = 0;
  connect();
  EXPECT_EQ(mail("alice@sender.example"), "250 2.1.0 ok\r\n");
  EXPECT_TRUE(cache_->asked.empty());
}

TEST_F(SessionSenderTest, DnsblCacheUnavailableFailsOpen) {
  connect(false);
  EXPECT_EQ(mail("alice@sender.example"), "250 2.1.0 ok\r\n");
}

TEST(SenderControlsTest, ReadsMfcheckAndMxblacklist) {
  test_support::TempDir dir;
  ASSERT_TRUE(dir.create("sppd-sender-controls"));
  SpamControls defaults = load_spam_controls(dir.path(), "/var/qmail", nullptr);
  EXPECT_EQ(defaults.mfcheck, 0);
  EXPECT_TRUE(defaults.mxblacklist.empty());
  test_support::write_file(dir.path() + "/mfcheck", "2\n");
  test_support::write_file(dir.path() + "/me", "mx.example.com\n");
  test_support::write_file(dir.path() + "/mxblacklist",
                           "127.0.0.1\n# comment\n2001:DB8:0:0::1\nnot-an-ip\n10.0.0.1\n");
  SpamControls controls = load_spam_controls(dir.path(), "/var/qmail", nullptr);
  EXPECT_EQ(controls.mfcheck, 2);
  EXPECT_EQ(controls.me, "mx.example.com");
  EXPECT_EQ(controls.mxblacklist,
            (std::vector<std::string>{"127.0.0.1", "2001:db8::1", "10.0.0.1"}));
  test_support::write_file(dir.path() + "/mfcheck", "3\n");
  EXPECT_THROW(load_spam_controls(dir.path(), "/var/qmail", nullptr), control::ControlError);
}

}  // namespace
}  // namespace sppd::smtpd
