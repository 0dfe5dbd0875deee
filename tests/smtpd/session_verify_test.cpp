// Tests for smtpd/session_verify: realrcptto and rcptcheck as the session asks pluginrunner,
// driven over a real socketpair with pluginrunner faked by a channel that answers as
// scripted (or never, or goes away). Checks the replies, their order under pipelining, what
// the questions carry, the switches (realrcptto = no, NOREALRCPTTO, RCPTCHECK, RELAYCLIENT)
// and the recipients control/locals rules out, which are never asked about. The real
// pluginrunner answering them is in tests/pluginrunner and tests/integration/test_rcptcheck.py,
// test_realrcptto.py.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <map>

#include "common/channel.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "smtpd/session.h"
#include "tests/common/test_support.h"
#include "tests/smtpd/session_client.h"

namespace sppd::smtpd {
namespace {

using Strings = std::vector<std::string>;

// A stand-in for pluginrunner: no plugin file; realrcptto and rcptcheck answers by recipient.
class FakeChecks {
 public:
  FakeChecks(event_base* base, UniqueFd fd)
      : channel_(
            base, std::move(fd), [this](ipc::Frame&& f) { on_frame(std::move(f)); },
            [](const std::string&) {}) {}

  std::map<std::string, std::string> mailbox;  // recipient -> status (default "not_local")
  std::map<std::string, std::string> exit;     // recipient -> rcptcheck exit (default "0")
  std::map<std::string, std::string> failure;  // recipient -> rcptcheck failure instead
  std::string silent;                          // a recipient never answered
  Strings realrcptto_asked;                    // recipients, in order
  Strings rcptcheck_asked;
  std::vector<ipc::Frame> rcptchecks;  // the kRcptCheck frames as received

  void close() { channel_.close(); }
  // Answers the questions about `silent` after all ("exists" / exit 0).
  void answer_late() {
    for (auto& [type, id] : unanswered_) {
      ipc::Frame result(type, id);
      if (type == protocol::kRealRcptToResult) {
        result.add("status", "exists").add("detail", "late");
      } else {
        result.add("exit", "0");
      }
      channel_.send(std::move(result));
    }
    unanswered_.clear();
  }

 private:
  void on_frame(ipc::Frame&& f) {
    std::string recipient = f.get_or("recipient", "");
    if (f.type == protocol::kPluginConfig) {
      ipc::Frame result(protocol::kPluginConfigResult, f.request_id);
      result.add("status", "missing");
      channel_.send(std::move(result));
    } else if (f.type == protocol::kRealRcptTo) {
      realrcptto_asked.push_back(recipient);
      if (recipient == silent) {
        unanswered_.emplace_back(protocol::kRealRcptToResult, f.request_id);
        return;
      }
      ipc::Frame result(protocol::kRealRcptToResult, f.request_id);
      auto it = mailbox.find(recipient);
      result.add("status", it == mailbox.end() ? "not_local" : it->second);
      result.add("detail", "fake");
      channel_.send(std::move(result));
    } else if (f.type == protocol::kRcptCheck) {
      rcptcheck_asked.push_back(recipient);
      if (recipient == silent) {
        unanswered_.emplace_back(protocol::kRcptCheckResult, f.request_id);
        return;
      }
      ipc::Frame result(protocol::kRcptCheckResult, f.request_id);
      if (failure.count(recipient)) {
        result.add("failure", failure[recipient]);
      } else {
        auto it = exit.find(recipient);
        result.add("exit", it == exit.end() ? "0" : it->second);
      }
      rcptchecks.push_back(std::move(f));
      channel_.send(std::move(result));
    }
  }
  std::vector<std::pair<uint16_t, uint32_t>> unanswered_;  // result type, request id
  ipc::Channel channel_;
};

class SessionVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_.reset(event_base_new());
    settings_.listener.name = "test";
    settings_.listener.remote_host_lookup = false;
    settings_.greeting = {"mx.example.com"};
    settings_.me = "mx.example.com";
    settings_.localiphost = "mx.example.com";
    settings_.rcpthosts = std::make_unique<RcptHosts>(
        std::vector<std::string>{"example.com", "local.test"}, "/nonexistent/morercpthosts.cdb");
    settings_.spam.control_dir = "/control/";
    settings_.spam.tarpitdelay = 0;  // the tarpit's timer has its own integration tests
    settings_.tcprules = TcpRules::parse(
        "192.0.2.8:allow,NOREALRCPTTO=\"\"\n"
        "192.0.2.9:allow,RCPTCHECK=\"bin/other\",FOO=\"bar\"\n"
        "192.0.2.10:allow,RCPTCHECK=\"\"\n"
        "192.0.2.11:allow,RELAYCLIENT=\"\"\n"
        "192.0.2.12:allow,RELAYCLIENT=\"\",RCPTCHECKRELAYCLIENT=\"\"\n",
        "test");
    queue_pool_ = std::make_unique<HelperPool>(base_.get(), "queue-bridge");
    dns_link_ = std::make_unique<HelperLink>(base_.get(), "dnsbl-cache");
    plugin_pool_ = std::make_unique<HelperPool>(base_.get(), "pluginrunner");
    auto [pool_end, runner_end] = ipc::make_socketpair();
    plugin_pool_->attach(1, std::move(pool_end));
    runner_ = std::make_unique<FakeChecks>(base_.get(), std::move(runner_end));
  }

  void connect(const std::string& ip = "192.0.2.7") {
    session_ = client_.connect(settings_,
                               {base_.get(), queue_pool_.get(), dns_link_.get(), plugin_pool_.get(),
                                auth_link_.get(), "test/", [this](uint64_t) { finished_ = true; }},
                               ip);
    EXPECT_EQ(replies(1), "220 mx.example.com ESMTP\r\n");
  }

  void send(const std::string& bytes) { client_.send(bytes); }

  std::string replies(size_t lines, double seconds = 5) {
    return client_.replies(base_.get(), lines, seconds);
  }

  // The env entries of a kRcptCheck frame, "NAME=value".
  static Strings env_of(const ipc::Frame& frame) {
    Strings out;
    for (auto entry : frame.all("env")) out.emplace_back(entry);
    return out;
  }

  EventBasePtr base_;
  ListenerSettings settings_;
  std::unique_ptr<HelperPool> queue_pool_;
  std::unique_ptr<HelperLink> dns_link_;
  std::unique_ptr<HelperLink> auth_link_ = std::make_unique<HelperLink>(nullptr, "authd");
  std::unique_ptr<HelperPool> plugin_pool_;
  std::unique_ptr<FakeChecks> runner_;
  SessionClient client_;
  std::unique_ptr<Session> session_;
  bool finished_ = false;
};

TEST_F(SessionVerifyTest, RealRcptToRefusesLocalAddressesWithoutAMailbox) {
  runner_->mailbox = {{"nobody@local.test", "no_mailbox"},
                      {"joe@local.test", "exists"},
                      {"broken@local.test", "error"}};
  connect();
  send(
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@local.test>\r\nRCPT TO:<joe@local.test>\r\n"
      "RCPT TO:<bob@example.com>\r\nRCPT TO:<broken@local.test>\r\nNOOP\r\n");
  EXPECT_EQ(replies(6),
            "250 2.1.0 ok\r\n550 5.1.1 sorry, no mailbox here by that name\r\n250 2.1.5 ok\r\n"
            "250 2.1.5 ok\r\n451 4.3.0 unable to verify recipient (temporary failure)\r\n"
            "250 2.0.0 ok\r\n");
  EXPECT_EQ(runner_->realrcptto_asked, (Strings{"nobody@local.test", "joe@local.test",
                                                "bob@example.com", "broken@local.test"}));
}

TEST_F(SessionVerifyTest, RealRcptToSwitchedOffForTheListenerOrTheClient) {
  runner_->mailbox = {{"nobody@local.test", "no_mailbox"}};
  connect("192.0.2.8");  // NOREALRCPTTO=""
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@local.test>\r\n");
  EXPECT_EQ(replies(2), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
  settings_.listener.realrcptto = false;
  connect();
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@local.test>\r\n");
  EXPECT_EQ(replies(2), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
  EXPECT_TRUE(runner_->realrcptto_asked.empty());
}

TEST_F(SessionVerifyTest, RealRcptToAsksOnlyAboutRecipientsThatMayBeLocal) {
  test_support::TempDir home;
  ASSERT_TRUE(home.create("sppd-session-verify-test"));
  ASSERT_EQ(mkdir((home.path() + "/control").c_str(), 0755), 0);
  test_support::write_file(home.path() + "/control/locals", "local.test\n");
  settings_.qmail_locals = QmailLocals::load(home.path());
  settings_.rcptcheck = "bin/rcptcheck";
  runner_->mailbox = {{"nobody@local.test", "no_mailbox"}, {"joe@Local.Test", "exists"}};
  connect();
  send(
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.com>\r\n"
      "RCPT TO:<nobody@local.test>\r\nRCPT TO:<joe@Local.Test>\r\n");
  EXPECT_EQ(replies(4),
            "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 sorry, no mailbox here by that name\r\n"
            "250 2.1.5 ok\r\n");
  EXPECT_EQ(runner_->realrcptto_asked, (Strings{"nobody@local.test", "joe@Local.Test"}));
  // The skipped question skips nothing after it: rcptcheck still runs for bob@.
  EXPECT_EQ(runner_->rcptcheck_asked, (Strings{"bob@example.com", "joe@Local.Test"}));
}

TEST_F(SessionVerifyTest, RcptCheckRunsAfterRealRcptToWithTheSessionEnvironment) {
  settings_.rcptcheck = "bin/rcptcheck";
  runner_->mailbox = {{"nobody@local.test", "no_mailbox"}};
  runner_->exit = {{"full@example.com", "22"}};
  connect();
  send(
      "MAIL FROM:<>\r\nRCPT TO:<nobody@local.test>\r\nRCPT TO:<full@example.com>\r\n"
      "RCPT TO:<bob@example.com>\r\n");
  EXPECT_EQ(replies(4),
            "250 2.1.0 ok\r\n550 5.1.1 sorry, no mailbox here by that name\r\n"
            "452 4.2.2 mailbox full\r\n250 2.1.5 ok\r\n");
  // realrcptto's refusal stops there: the program is not run for nobody@.
  EXPECT_EQ(runner_->rcptcheck_asked, (Strings{"full@example.com", "bob@example.com"}));
  const ipc::Frame& first = runner_->rcptchecks.front();
  EXPECT_EQ(first.get_or("program", ""), "bin/rcptcheck");
  EXPECT_EQ(first.get_or("sender", "?"), "");
  EXPECT_EQ(first.get_or("session", ""), "test/1");
  Strings env = env_of(first);
  EXPECT_NE(std::find(env.begin(), env.end(), "TCPREMOTEIP=192.0.2.7"), env.end());
}

TEST_F(SessionVerifyTest, RcptCheckFromTcprulesWinsAndEmptySwitchesItOff) {
  settings_.rcptcheck = "bin/rcptcheck";
  connect("192.0.2.9");
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.com>\r\n");
  EXPECT_EQ(replies(2), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
  ASSERT_EQ(runner_->rcptchecks.size(), 1u);
  EXPECT_EQ(runner_->rcptchecks[0].get_or("program", ""), "bin/other");
  Strings env = env_of(runner_->rcptchecks[0]);
  EXPECT_NE(std::find(env.begin(), env.end(), "FOO=bar"), env.end());
  connect("192.0.2.10");
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.com>\r\n");
  EXPECT_EQ(replies(2), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
  EXPECT_EQ(runner_->rcptchecks.size(), 1u);
}

TEST_F(SessionVerifyTest, RelayClientsAreCheckedOnlyWithRcptCheckRelayClient) {
  settings_.rcptcheck = "bin/rcptcheck";
  runner_->exit = {{"bob@elsewhere.org", "1"}};
  connect("192.0.2.11");
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@elsewhere.org>\r\n");
  EXPECT_EQ(replies(2), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
  EXPECT_TRUE(runner_->rcptcheck_asked.empty());
  connect("192.0.2.12");
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@elsewhere.org>\r\n");
  EXPECT_EQ(replies(2), "250 2.1.0 ok\r\n553 5.1.1 sorry, no mailbox here by that name.\r\n");
}

TEST_F(SessionVerifyTest, A421FromRcptCheckEndsTheSession) {
  settings_.rcptcheck = "bin/rcptcheck";
  runner_->exit = {{"grey@example.com", "112"}};
  connect();
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<grey@example.com>\r\nNOOP\r\n");
  EXPECT_EQ(replies(2),
            "250 2.1.0 ok\r\n421 4.3.0 unable to verify recipient/sender (greylisting)\r\n");
  EXPECT_EQ(replies(1, 0.3), "");  // NOOP is never answered
  EXPECT_TRUE(finished_);
}

TEST_F(SessionVerifyTest, FailuresAndUnknownCodesAre451AndTheSessionGoesOn) {
  settings_.rcptcheck = "bin/rcptcheck";
  runner_->exit = {{"odd@example.com", "7"}};
  runner_->failure = {{"crash@example.com", "qmail-spp failure: bin/rcptcheck: child crashed"}};
  connect();
  send(
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<odd@example.com>\r\nRCPT TO:<crash@example.com>\r\n"
      "RCPT TO:<bob@example.com>\r\n");
  EXPECT_EQ(replies(4),
            "250 2.1.0 ok\r\n451 4.3.0 unable to verify recipient/sender (failure)\r\n"
            "451 4.3.0 unable to verify recipient/sender (failure)\r\n250 2.1.5 ok\r\n");
  EXPECT_FALSE(finished_);
}

TEST_F(SessionVerifyTest, PipelinedCommandsWaitForTheAnswer) {
  runner_->silent = "slow@local.test";
  connect();
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<slow@local.test>\r\nNOOP\r\n");
  // Nothing while the question is open, not even MAIL's 250: it waits with its batch, as in
  // qmail-smtpd's buffer, and NOOP is not read before RCPT is answered.
  EXPECT_EQ(replies(1, 0.3), "");
  EXPECT_EQ(runner_->realrcptto_asked, Strings{"slow@local.test"});
  runner_->answer_late();
  EXPECT_EQ(replies(3), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 ok\r\n");
}

TEST_F(SessionVerifyTest, PluginRunnerGoneMeans451) {
  runner_->silent = "slow@local.test";
  connect();
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<slow@local.test>\r\n");
  replies(1, 0.2);
  ASSERT_EQ(runner_->realrcptto_asked, Strings{"slow@local.test"});
  runner_->close();  // the question in flight hears "gone"; a new one finds no runner
  EXPECT_EQ(replies(2),
            "250 2.1.0 ok\r\n"
            "451 4.3.0 unable to verify recipient (plugin runner unavailable)\r\n");
  send("RCPT TO:<bob@example.com>\r\nNOOP\r\n");
  EXPECT_EQ(replies(2),
            "451 4.3.0 unable to verify recipient (plugin runner unavailable)\r\n"
            "250 2.0.0 ok\r\n");
}

TEST_F(SessionVerifyTest, ASessionGoneWhileItWaitsForgetsTheQuestion) {
  settings_.rcptcheck = "bin/rcptcheck";
  settings_.listener.realrcptto = false;  // straight to the program, which never answers
  runner_->silent = "slow@example.com";
  connect();
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<slow@example.com>\r\n");
  replies(1, 0.2);
  ASSERT_EQ(runner_->rcptcheck_asked, Strings{"slow@example.com"});
  session_.reset();  // e.g. the worker stops
  // The late answer finds no callback (under ASan a leftover one would be a use after free).
  runner_->answer_late();
  for (int i = 0; i < 20; ++i) {
    event_base_loop(base_.get(), EVLOOP_NONBLOCK);
    poll(nullptr, 0, 1);
  }
}

}  // namespace
}  // namespace sppd::smtpd
