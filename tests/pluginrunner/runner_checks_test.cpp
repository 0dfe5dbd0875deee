// Tests for pluginrunner's recipient checks (runner_checks.cpp, rcptcheck.cpp) through real
// channels: kRcptCheck runs a real sh program (what it sees, its exit status, crashes,
// timeouts, a missing program, the worker going away) and kRealRcptTo reads a real qmail
// home written by the test (no cache: an edit counts at once).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "pluginrunner/rcptcheck.h"
#include "runner_fixture.h"

namespace sppd::pluginrunner {
namespace {

class RunnerChecksTest : public RunnerTest {
 protected:
  void send_rcptcheck(uint32_t id, const std::string& program, const Strings& env = {},
                      const std::string& sender = "alice@client.test",
                      const std::string& recipient = "bob@local.test") {
    ipc::Frame frame(protocol::kRcptCheck, id);
    frame.add("program", program).add("session", "s1").add("sender", sender);
    frame.add("recipient", recipient);
    for (const auto& entry : env) frame.add("env", entry);
    worker_->send(std::move(frame));
  }

  const ipc::Frame* rcptcheck(const std::string& program, const Strings& env = {},
                              const std::string& sender = "alice@client.test", double seconds = 5) {
    uint32_t id = next_id_++;
    send_rcptcheck(id, program, env, sender);
    run_until([&] { return reply(id, protocol::kRcptCheckResult) != nullptr; }, seconds);
    return reply(id, protocol::kRcptCheckResult);
  }

  // kRealRcptTo's answer: "status: detail".
  std::string realrcptto(const std::string& recipient) {
    uint32_t id = next_id_++;
    ipc::Frame frame(protocol::kRealRcptTo, id);
    frame.add("recipient", recipient).add("session", "s1");
    worker_->send(std::move(frame));
    run_until([&] { return reply(id, protocol::kRealRcptToResult) != nullptr; });
    const ipc::Frame* answer = reply(id, protocol::kRealRcptToResult);
    if (!answer) return "(no answer)";
    return answer->get_or("status", "?") + ": " + answer->get_or("detail", "?");
  }
};

TEST(RcptCheckEnvironmentTest, SenderAndRecipientReplaceTheClientsOwn) {
  EXPECT_EQ(rcptcheck_environment({"SENDER=forged", "TCPREMOTEIP=192.0.2.1", "RECIPIENT=x"}, "",
                                  "bob@local.test"),
            (Strings{"TCPREMOTEIP=192.0.2.1", "SENDER=", "RECIPIENT=bob@local.test"}));
}

TEST_F(RunnerChecksTest, RcptCheckReportsTheExitStatusAndSeesTheSession) {
  start();
  std::string seen = home_ + "/seen";
  std::string program = script("check", "env > " + seen + "; pwd >> " + seen + "; exit 11");
  const ipc::Frame* result = rcptcheck(program, {"SENDER=forged", "TCPREMOTEIP=192.0.2.7"}, "");
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("exit", ""), "11");
  EXPECT_EQ(result->get("failure"), nullptr);
  std::string env = read_file(seen);
  EXPECT_NE(env.find("\nSENDER=\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("forged"), std::string::npos) << env;
  EXPECT_NE(env.find("RECIPIENT=bob@local.test\n"), std::string::npos) << env;
  EXPECT_NE(env.find("TCPREMOTEIP=192.0.2.7\n"), std::string::npos) << env;
  EXPECT_NE(env.find("\n" + home_ + "\n"), std::string::npos) << env;  // cwd = qmail_home
  EXPECT_EQ(served_count(), 1);
}

TEST_F(RunnerChecksTest, EveryExitStatusComesBackAsItIs) {
  start();
  for (int code : {0, 1, 100, 111, 112, 120, 255}) {
    const ipc::Frame* result = rcptcheck(":exit " + std::to_string(code));
    ASSERT_NE(result, nullptr);
    EXPECT_EQ(result->get_or("exit", "-"), std::to_string(code));
  }
}

TEST_F(RunnerChecksTest, ACrashATimeoutOrAMissingProgramIsAFailure) {
  settings_.run.plugin_timeout = std::chrono::milliseconds(300);
  start();
  const ipc::Frame* crashed = rcptcheck(":kill -9 $$");
  ASSERT_NE(crashed, nullptr);
  EXPECT_EQ(crashed->get("exit"), nullptr);
  EXPECT_NE(crashed->get_or("failure", "").find("child crashed"), std::string::npos);
  auto began = Clock::now();
  const ipc::Frame* slow = rcptcheck(":exec sleep 30");
  ASSERT_NE(slow, nullptr);
  EXPECT_LT(Clock::now() - began, std::chrono::seconds(3));
  EXPECT_EQ(slow->get("exit"), nullptr);
  const ipc::Frame* missing = rcptcheck("bin/no-such-check");
  ASSERT_NE(missing, nullptr);
  EXPECT_NE(missing->get_or("failure", "").find("can't execute"), std::string::npos);
}

TEST_F(RunnerChecksTest, WorkerGoingAwayKillsTheProgram) {
  start();
  std::string pid_file = home_ + "/check.pid";
  send_rcptcheck(1, ":echo $$ > " + pid_file + "; exec sleep 30");
  ASSERT_TRUE(run_until([&] { return !read_file(pid_file).empty(); }));
  pid_t pid = std::atoi(read_file(pid_file).c_str());
  EXPECT_EQ(runner_->in_flight(), 1u);
  worker_.reset();
  ASSERT_TRUE(run_until([&] { return runner_->in_flight() == 0; }));
  run_until([] { return false; }, 0.05);
  EXPECT_TRUE(run_until([&] {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    return stat.empty() || stat.find(") Z") != std::string::npos;
  }));
}

TEST_F(RunnerChecksTest, MalformedCheckFramesCloseTheWorkerChannel) {
  start();
  ipc::Frame frame(protocol::kRcptCheck, 1);
  frame.add("program", "").add("session", "s1").add("sender", "").add("recipient", "b@x");
  worker_->send(std::move(frame));
  EXPECT_TRUE(run_until([&] { return worker_closed_; }, 2));

  worker_closed_ = false;
  connect_worker();
  ipc::Frame no_recipient(protocol::kRealRcptTo, 2);
  no_recipient.add("session", "s1");
  worker_->send(std::move(no_recipient));
  EXPECT_TRUE(run_until([&] { return worker_closed_; }, 2));
}

TEST_F(RunnerChecksTest, RealRcptToReadsTheQmailHomeEveryTime) {
  write_file(home_ + "/control/locals", "local.test\n");
  ASSERT_EQ(mkdir((home_ + "/users").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((home_ + "/alias").c_str(), 0755), 0);
  write_file(home_ + "/users/assign", "+:alias:1:1:" + home_ + "/alias:-::\n.\n");
  write_file(home_ + "/alias/.qmail-postmaster", "&root\n");
  start();
  EXPECT_EQ(realrcptto("postmaster@local.test"),
            "exists: delivered by " + home_ + "/alias/.qmail-postmaster");
  EXPECT_EQ(realrcptto("nobody@local.test").substr(0, 12), "no_mailbox: ");
  EXPECT_EQ(realrcptto("nobody@remote.test"), "not_local: not in locals or virtualdomains");
  write_file(home_ + "/alias/.qmail-default", "&root\n");
  EXPECT_EQ(realrcptto("nobody@local.test").substr(0, 8), "exists: ");
  write_file(home_ + "/users/assign", "broken\n.\n");
  EXPECT_EQ(realrcptto("nobody@local.test").substr(0, 7), "error: ");
}

}  // namespace
}  // namespace sppd::pluginrunner
