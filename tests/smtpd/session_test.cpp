// Tests for smtpd/session: the SMTP state machine driven over a real socketpair, with the
// queue-bridge boundary faked by a Channel that hands out a real pipe and answers like
// queue-bridge would. (End-to-end with the real bridge is in tests/integration.)
#include "smtpd/session.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <map>

#include "common/channel.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "tests/smtpd/session_client.h"

namespace sppd::smtpd {
namespace {

// A stand-in for queue-bridge: on open, gives the session the write end of a pipe; on
// commit, reads what arrived and answers with the configured result.
class FakeQueueBridge {
 public:
  FakeQueueBridge(event_base* base, UniqueFd fd)
      : channel_(
            base, std::move(fd), [this](ipc::Frame&& f) { on_frame(std::move(f)); },
            [](const std::string&) {}) {}

  std::string status = "ok";
  std::string text = "ok 1700000000 qp 4242";
  std::string message;
  std::string sender;
  std::vector<std::string> recipients;
  int opens = 0;
  bool aborted = false;

  void close() { channel_.close(); }

 private:
  void on_frame(ipc::Frame&& f) {
    if (f.type == protocol::kQueueOpen) {
      ++opens;
      int fds[2];
      ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
      fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
      read_end_.reset(fds[0]);
      ipc::Frame opened(protocol::kQueueOpened, f.request_id);
      opened.add("pid", "4242");
      opened.fd = UniqueFd(fds[1]);
      channel_.send(std::move(opened));
    } else if (f.type == protocol::kQueueCommit) {
      char buffer[65536];
      ssize_t n;
      while ((n = read(read_end_.get(), buffer, sizeof(buffer))) > 0) message.append(buffer, n);
      sender = f.get_or("from", "?");
      for (auto to : f.all("to")) recipients.emplace_back(to);
      ipc::Frame result(protocol::kQueueResult, f.request_id);
      result.add("status", status).add("text", text);
      channel_.send(std::move(result));
    } else if (f.type == protocol::kQueueAbort) {
      aborted = true;
    }
  }
  ipc::Channel channel_;
  UniqueFd read_end_;
};

// A stand-in for pluginrunner: serves a fixed plugin list and answers each section's run
// with scripted commands, recording the environment each run was given.
class FakePluginRunner {
 public:
  FakePluginRunner(event_base* base, UniqueFd fd)
      : channel_(
            base, std::move(fd), [this](ipc::Frame&& f) { on_frame(std::move(f)); },
            [](const std::string&) {}) {}

  std::string config_status = "missing";
  std::vector<std::string> plugins;                   // "<section><line>"
  std::map<char, std::vector<std::string>> commands;  // section -> commands printed
  std::map<char, std::string> failure;                // section -> failure text
  std::map<char, std::vector<std::string>> seen_env;  // section -> env of last run
  std::map<char, int> runs;

 private:
  void on_frame(ipc::Frame&& f) {
    if (f.type == protocol::kPluginConfig) {
      ipc::Frame result(protocol::kPluginConfigResult, f.request_id);
      result.add("status", config_status);
      for (const auto& p : plugins) result.add("plugin", p);
      channel_.send(std::move(result));
    } else if (f.type == protocol::kPluginRun) {
      char section = f.get_or("section", "?")[0];
      ++runs[section];
      seen_env[section].clear();
      for (auto e : f.all("env")) seen_env[section].emplace_back(e);
      ipc::Frame result(protocol::kPluginResult, f.request_id);
      for (const auto& c : commands[section]) result.add("command", c);
      if (failure.count(section)) result.add("failure", failure[section]);
      channel_.send(std::move(result));
    } else if (f.type == protocol::kRealRcptTo) {
      // realrcptto is on by default; session_verify_test.cpp tests its answers.
      ipc::Frame result(protocol::kRealRcptToResult, f.request_id);
      result.add("status", "not_local").add("detail", "fake");
      channel_.send(std::move(result));
    }
  }
  ipc::Channel channel_;
};

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_.reset(event_base_new());
    settings_.listener.name = "test";
    settings_.listener.remote_host_lookup = false;
    settings_.greeting = {"mx.example.com"};
    settings_.me = "mx.example.com";
    settings_.localiphost = "mx.example.com";
    settings_.rcpthosts = std::make_unique<RcptHosts>(std::vector<std::string>{"example.com"},
                                                      "/nonexistent/morercpthosts.cdb");
    settings_.spam.control_dir = "/control/";
    settings_.spam.pattern_files["/control/badmailfrom"] = std::make_shared<PatternFile>(
        std::vector<std::string>{"@bad.example"}, "/control/badmailfrom", nullptr);
    settings_.spam.tarpitdelay = 0;  // the tarpit's timer has its own integration tests
    settings_.databytes = 1000;
    queue_link_ = std::make_unique<HelperPool>(base_.get(), "queue-bridge");
    dns_link_ = std::make_unique<HelperLink>(base_.get(), "dnsbl-cache");
    auto [ours, theirs] = ipc::make_socketpair();
    queue_link_->attach(1, std::move(ours));
    bridge_ = std::make_unique<FakeQueueBridge>(base_.get(), std::move(theirs));
    plugin_pool_ = std::make_unique<HelperPool>(base_.get(), "pluginrunner");
    auto [pool_end, runner_end] = ipc::make_socketpair();
    plugin_pool_->attach(1, std::move(pool_end));
    runner_ = std::make_unique<FakePluginRunner>(base_.get(), std::move(runner_end));
  }

  // Makes the fake runner serve one plugin in each of the given sections.
  void use_plugins(const std::string& sections) {
    runner_->config_status = "ok";
    for (char c : sections) runner_->plugins.push_back(std::string(1, c) + "plugins/p");
  }

  std::string env_seen(char section, const std::string& name) {
    for (const auto& e : runner_->seen_env[section]) {
      if (e.rfind(name + "=", 0) == 0) return e.substr(name.size() + 1);
    }
    return "<unset>";
  }

  void connect() {
    session_ = client_.connect(settings_,
                               {base_.get(), queue_link_.get(), dns_link_.get(), plugin_pool_.get(),
                                auth_link_.get(), "test/", [this](uint64_t) { finished_ = true; }});
  }

  void send(const std::string& bytes) { client_.send(bytes); }

  std::string replies(size_t lines) { return client_.replies(base_.get(), lines); }

  EventBasePtr base_;
  ListenerSettings settings_;
  std::unique_ptr<HelperPool> queue_link_;
  std::unique_ptr<HelperLink> dns_link_;
  std::unique_ptr<HelperLink> auth_link_ = std::make_unique<HelperLink>(nullptr, "authd");
  std::unique_ptr<FakeQueueBridge> bridge_;
  std::unique_ptr<HelperPool> plugin_pool_;
  std::unique_ptr<FakePluginRunner> runner_;
  SessionClient client_;
  std::unique_ptr<Session> session_;
  bool finished_ = false;
};

TEST_F(SessionTest, PipelinedTransactionIsQueuedAndAnswered) {
  connect();
  EXPECT_EQ(replies(1), "220 mx.example.com ESMTP\r\n");
  send("EHLO client.example.org\r\n");
  EXPECT_EQ(replies(5),
            "250-mx.example.com\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 1000\r\n"
            "250 ENHANCEDSTATUSCODES\r\n");
  send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n");
  EXPECT_EQ(replies(3), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
  send("Subject: hi\r\n\r\n..dot line\r\n.\r\nQUIT\r\n");
  EXPECT_EQ(replies(2), "250 2.6.0 ok 1700000000 qp 4242\r\n221 2.0.0 mx.example.com\r\n");
  EXPECT_EQ(bridge_->sender, "alice@example.org");
  EXPECT_EQ(bridge_->recipients, std::vector<std::string>{"bob@example.com"});
  EXPECT_NE(bridge_->message.find("Received: from unknown (HELO client.example.org) (192.0.2.7)\n"
                                  "  by 192.0.2.1 with ESMTP; "),
            std::string::npos);
  EXPECT_NE(bridge_->message.find("\nSubject: hi\n\n.dot line\n"), std::string::npos);
  EXPECT_TRUE(finished_);
}

TEST_F(SessionTest, OrderOfChecksBeforeData) {
  connect();
  replies(1);
  send(
      "RCPT TO:<bob@example.com>\r\nDATA\r\nHELO\r\nFOO\r\nMAIL FROM:<x@bad.example>\r\n"
      "RCPT TO:<bob@example.com>\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<c@elsewhere.org>\r\n"
      "DATA\r\nNOOP\r\n");
  // DATA after every RCPT failed ends the session (qmail-md): NOOP is never answered.
  EXPECT_EQ(replies(9),
            "503 5.5.1 MAIL first\r\n503 5.5.1 MAIL first\r\n"
            "501 5.5.4 syntax error, I need your hostname\r\n502 5.5.1 unimplemented\r\n"
            "250 2.1.0 ok\r\n553 5.7.1 sorry, your envelope sender is in my badmailfrom list\r\n"
            "250 2.1.0 ok\r\n553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts\r\n"
            "221 2.0.0 error: I can break rules, too. goodbye.\r\n");
  EXPECT_TRUE(finished_);
  EXPECT_EQ(bridge_->opens, 0);
}

TEST_F(SessionTest, OversizedMessageIsRefusedAndAborted) {
  connect();
  replies(1);
  send(
      "MAIL FROM:<a@example.org> SIZE=5000\r\nMAIL FROM:<a@example.org>\r\n"
      "RCPT TO:<b@example.com>\r\nDATA\r\n");
  EXPECT_EQ(replies(4),
            "552 5.3.4 sorry, that message size exceeds my databytes limit\r\n"
            "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
  send(std::string(2000, 'x') + "\r\n.\r\n");
  EXPECT_EQ(replies(1), "552 5.3.4 sorry, that message size exceeds my databytes limit\r\n");
  EXPECT_TRUE(bridge_->aborted);
}

TEST_F(SessionTest, BareLinefeedInDataIsRefusedAndCloses) {
  connect();
  replies(1);
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
  replies(3);
  send("line one\nline two\r\n.\r\n");
  EXPECT_EQ(replies(1), "451 4.5.0 See https://cr.yp.to/docs/smtplf.html.\r\n");
  EXPECT_TRUE(bridge_->aborted);
  EXPECT_TRUE(finished_);
}

TEST_F(SessionTest, QueueFailureTextGetsEnhancedCodeInFront) {
  bridge_->status = "perm";
  bridge_->text = "envelope address too long for qq (#5.1.3)";
  connect();
  replies(1);
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
  replies(3);
  send("hello\r\n.\r\n");
  EXPECT_EQ(replies(1), "554 5.1.3 envelope address too long for qq\r\n");
}

TEST_F(SessionTest, QueueBridgeGoneMeansTemporaryFailure) {
  bridge_->close();
  connect();
  replies(1);
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
  EXPECT_EQ(replies(3), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n451 4.3.0 qqt failure\r\n");
}

TEST_F(SessionTest, OverlongCommandLineIsRefusedAndSessionContinues) {
  connect();
  replies(1);
  send("NOOP " + std::string(996, 'a') + "\r\n");  // 1001 bytes without CRLF
  send("NOOP " + std::string(995, 'a') + "\r\n");  // 1000 bytes
  send(std::string("NO\0OP\r\n", 7));
  EXPECT_EQ(replies(3),
            "500 5.5.2 line too long\r\n250 2.0.0 ok\r\n"
            "500 5.5.2 syntax error, NUL byte in command\r\n");
}

TEST_F(SessionTest, NullSenderAndRcpthostsMatchExactHostOnly) {
  connect();
  replies(1);
  // "example.com" in rcpthosts does not cover sub.example.com (that needs ".example.com").
  send("MAIL FROM:<>\r\nRCPT TO:<x@example.com>\r\nRCPT TO:<y@sub.example.com>\r\n");
  EXPECT_EQ(replies(3),
            "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
            "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts\r\n");
}

// ---- qmail-spp semantics (spec qmail-spp.md §4-§6), the runner's answers scripted.

TEST_F(SessionTest, ConnectionErrorReplacesGreetingAndSessionGoesOn) {
  use_plugins("c");
  runner_->commands['c'] = {"E554 go away"};
  connect();
  send("NOOP\r\n");
  EXPECT_EQ(replies(2), "554 go away\r\n250 2.0.0 ok\r\n");
}

TEST_F(SessionTest, RejectInConnectionClosesWithoutGreeting) {
  use_plugins("c");
  runner_->commands['c'] = {"R421 not here"};
  connect();
  EXPECT_EQ(replies(1), "421 not here\r\n");
  EXPECT_TRUE(finished_);
}

TEST_F(SessionTest, HeadersFollowReceivedAndEnvReachesQueue) {
  use_plugins("mr");
  runner_->commands['m'] = {"HX-First: 1", "SSPAM=yes", "N"};
  runner_->commands['r'] = {"HX-Second: 2"};
  connect();
  replies(1);
  send(
      "HELO  Foo.Example \r\nMAIL FROM:<\"john doe\"@Example.COM> SIZE=10\r\n"
      "RCPT TO:<b@example.com>\r\nDATA\r\n");
  EXPECT_EQ(replies(4), "250 mx.example.com\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
  EXPECT_EQ(env_seen('m', "SMTPHELOHOST"), "Foo.Example ");
  EXPECT_EQ(env_seen('m', "SMTPMAILFROM"), "john doe@Example.COM");
  EXPECT_EQ(env_seen('r', "SPAM"), "yes");
  EXPECT_EQ(env_seen('r', "SMTPRCPTCOUNT"), "0");
  EXPECT_EQ(env_seen('r', "SMTPRCPTCOUNTALL"), "1");
  EXPECT_EQ(env_seen('r', "SMTPRCPTHOSTSOK"), "1");
  send("body\r\n.\r\n");
  replies(1);
  size_t received_end = bridge_->message.find("\n  by ");
  size_t first = bridge_->message.find("X-First: 1\nX-Second: 2\nbody\n");
  EXPECT_NE(first, std::string::npos);
  EXPECT_LT(received_end, first);
}

TEST_F(SessionTest, LaterErrorsPersistAcrossMailUntilRset) {
  use_plugins("m");
  runner_->commands['m'] = {"LR550-first", "LR550 second"};
  connect();
  replies(1);
  send(
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n"
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n"
      "RSET\r\nMAIL FROM:<a@example.org>\r\n");
  EXPECT_EQ(replies(8),
            "250 2.1.0 ok\r\n550-first\r\n550 second\r\n250 2.1.0 ok\r\n550-first\r\n"
            "550 second\r\n250 2.0.0 flushed\r\n250 2.1.0 ok\r\n");
}

TEST_F(SessionTest, ChangedRecipientKeepsTheOriginalRcpthostsVerdict) {
  use_plugins("r");
  runner_->commands['r'] = {"Cother@elsewhere.example"};
  connect();
  replies(1);
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@foreign.org>\r\n");
  EXPECT_EQ(replies(3),
            "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
            "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts\r\n");
  send("DATA\r\nx\r\n.\r\n");
  replies(2);
  EXPECT_EQ(bridge_->recipients, std::vector<std::string>{"other@elsewhere.example"});
}

TEST_F(SessionTest, OkSkipsRcpthostsAndBadmailfrom) {
  use_plugins("mr");
  runner_->commands['m'] = {"O"};
  runner_->commands['r'] = {"O"};
  connect();
  replies(1);
  send("MAIL FROM:<x@bad.example>\r\nRCPT TO:<c@foreign.org>\r\n");
  EXPECT_EQ(replies(2), "250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
}

TEST_F(SessionTest, FailureTextAndAcceptStopsPlugins) {
  use_plugins("hm");
  runner_->failure['h'] = "qmail-spp failure: plugins/p: child crashed (#4.3.0)";
  runner_->commands['m'] = {"A"};
  connect();
  replies(1);
  send("HELO x\r\nMAIL FROM:<a@example.org>\r\nMAIL FROM:<a@example.org>\r\n");
  EXPECT_EQ(replies(3),
            "451 4.3.0 qmail-spp failure: plugins/p: child crashed\r\n250 2.1.0 ok\r\n"
            "250 2.1.0 ok\r\n");
  EXPECT_EQ(runner_->runs['m'], 1);  // A: no more plugins this session
}

TEST_F(SessionTest, StaleRcptCountAtData) {
  use_plugins("d");
  connect();
  replies(1);
  send(
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n"
      "DATA\r\n");
  replies(4);
  EXPECT_EQ(env_seen('d', "SMTPRCPTCOUNT"), "1");
  EXPECT_EQ(env_seen('d', "SMTPRCPTTO"), "c@example.com");
}

// ---- rblsmtpd semantics (qmail-protocols.md §3.1); lookups are covered with rbldnsd in
// tests/integration.

TEST_F(SessionTest, RblsmtpdVariableFromTcprulesGivesTheFakeConversation) {
  settings_.tcprules = TcpRules::parse("192.0.2.7:allow,RBLSMTPD=\"-go away\"\n", "test");
  std::string why;
  settings_.rbl = *parse_rbl_options("-r bl.test", &why);
  connect();
  EXPECT_EQ(replies(1), "220 rblsmtpd.local\r\n");
  send("EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nQUIT\r\n");
  EXPECT_EQ(replies(5),
            "250 rblsmtpd.local\r\n250 rblsmtpd.local\r\n553 go away\r\n553 go away\r\n"
            "221 rblsmtpd.local\r\n");
  EXPECT_TRUE(finished_);
}

TEST_F(SessionTest, DeferredRblFailsClosedWhenTheCacheIsGone) {
  std::string why;
  settings_.rbl = *parse_rbl_options("-c -r bl.test", &why);
  settings_.listener.rbl_at_rcpt = true;
  connect();  // dnsbl-cache is not attached here: every lookup is a DNS error
  EXPECT_EQ(replies(1), "220 mx.example.com ESMTP\r\n");
  send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n");
  EXPECT_EQ(replies(3),
            "250 2.1.0 ok\r\n451 temporary RBL lookup error\r\n"
            "451 temporary RBL lookup error\r\n");
}

TEST_F(SessionTest, EmptyRblsmtpdSkipsTheLookups) {
  settings_.tcprules = TcpRules::parse("192.0.2.7:allow,RBLSMTPD=\"\"\n", "test");
  std::string why;
  settings_.rbl = *parse_rbl_options("-c -r bl.test", &why);
  connect();
  EXPECT_EQ(replies(1), "220 mx.example.com ESMTP\r\n");
}

}  // namespace
}  // namespace sppd::smtpd
