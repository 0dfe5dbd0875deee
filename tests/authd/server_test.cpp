// Tests for authd/server: an in-process Server driven through real channels as the master
// and a worker would, running the real sppd-test-checkpassword: answers, the failure delay,
// brute-force refusal without running checkpassword, and frames that break the contract.
#include "authd/server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <functional>

#include "base64_encode.h"
#include "common/channel.h"
#include "common/protocol.h"
#include "tests/common/test_support.h"

namespace sppd::authd {
namespace {

using namespace std::string_literals;
using Clock = std::chrono::steady_clock;

using test_support::read_file;

class ServerTest : public test_support::FakeMasterTest {
 protected:
  void SetUp() override {
    FakeMasterTest::SetUp();
    ASSERT_TRUE(temp_.create("sppd-authd-server-test"));
    dir_ = temp_.path();
    std::ofstream(dir_ + "/passwords") << "alice:secret\n";
  }

  void TearDown() override {
    worker_.reset();
    server_.reset();
    master_.reset();
    ASSERT_TRUE(temp_.remove());
  }

  Settings settings(int max_failures = 10) {
    Settings s;
    s.qmail_home = dir_;
    s.checkpassword = {TEST_CHECKPASSWORD, "-l", dir_ + "/runs", dir_ + "/passwords", "/bin/true"};
    s.max_failures = max_failures;
    return s;
  }

  void start(Settings s) {
    server_ = std::make_unique<Server>(base_.get(), dir_ + "/sppd.conf", std::move(s),
                                       std::move(service_control_));
    connect_worker();
  }

  ipc::Frame check_frame(uint32_t id, const std::string& method, std::vector<std::string> responses,
                         int delay = 0) {
    ipc::Frame frame(protocol::kAuthCheck, id);
    frame.add("method", method);
    for (auto& r : responses) frame.add("response", r);
    frame.add("remote_ip", "192.0.2.1");
    frame.add("delay", std::to_string(delay));
    return frame;
  }

  const ipc::Frame* result(uint32_t id) { return reply(id, protocol::kAuthResult); }

  // Sends a check and returns its answer's status (or "none"); *user gets the user attr.
  std::string check(ipc::Frame frame, std::string* user = nullptr, std::string* text = nullptr) {
    uint32_t id = frame.request_id;
    worker_->send(std::move(frame));
    run_until([&] { return result(id) != nullptr || worker_closed_; }, 15);
    const ipc::Frame* answer = result(id);
    if (!answer) return "none";
    if (user) *user = answer->get_or("user", "");
    if (text) *text = answer->get_or("text", "");
    return answer->get_or("status", "");
  }

  std::string plain(uint32_t id, const std::string& user, const std::string& password,
                    int delay = 0) {
    return check(check_frame(id, "plain", {b64("\0"s + user + "\0"s + password)}, delay));
  }

  test_support::TempDir temp_;
  std::string dir_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, GoodPasswordAnswersOkWithTheUserAndTellsTheMasterOnce) {
  start(settings());
  std::string user;
  EXPECT_EQ(check(check_frame(1, "login", {b64("alice"), b64("secret")}), &user), "ok");
  EXPECT_EQ(user, "alice");
  EXPECT_EQ(plain(2, "alice", "secret"), "ok");
  run_until([] { return false; }, 0.05);
  ASSERT_EQ(master_frames_.size(), 1u);
  EXPECT_EQ(master_frames_[0].type, protocol::kServed);
}

TEST_F(ServerTest, BadPasswordIsHeldForTheDelay) {
  start(settings());
  auto started = Clock::now();
  std::string user = "unset";
  EXPECT_EQ(check(check_frame(1, "plain", {b64("\0alice\0wrong"s)}, 1), &user), "bad");
  EXPECT_GE(Clock::now() - started, std::chrono::milliseconds(990));
  EXPECT_EQ(user, "");
  // Other checks go on meanwhile: the delay is a timer.
  worker_->send(check_frame(2, "plain", {b64("\0alice\0wrong"s)}, 2));
  EXPECT_EQ(plain(3, "alice", "secret"), "ok");
  EXPECT_EQ(result(2), nullptr);
  EXPECT_TRUE(run_until([&] { return result(2) != nullptr; }));
}

TEST_F(ServerTest, RepeatedFailuresAreRefusedWithoutRunningCheckpassword) {
  start(settings(3));
  for (uint32_t id = 1; id <= 3; ++id) EXPECT_EQ(plain(id, "mallory", "guess"), "bad");
  std::string text;
  EXPECT_EQ(check(check_frame(4, "plain", {b64("\0alice\0secret"s)}), nullptr, &text), "temp");
  EXPECT_NE(text.find("3 failures from 192.0.2.1"), std::string::npos) << text;
  EXPECT_EQ(read_file(dir_ + "/runs"), "mallory\nmallory\nmallory\n");
}

TEST_F(ServerTest, UndecodableCredentialsAreMalformed) {
  start(settings());
  std::string text;
  EXPECT_EQ(check(check_frame(1, "plain", {"not base64!"}), nullptr, &text), "malformed");
  EXPECT_EQ(text, "bad base64");
  EXPECT_EQ(check(check_frame(2, "login", {b64("alice"), ""})), "malformed");
  EXPECT_FALSE(worker_closed_);
  EXPECT_EQ(read_file(dir_ + "/runs"), "");
}

TEST_F(ServerTest, NoCheckpasswordConfiguredIsTemporary) {
  Settings s = settings();
  s.checkpassword.clear();
  start(s);
  std::string text;
  EXPECT_EQ(check(check_frame(1, "plain", {b64("\0alice\0secret"s)}), nullptr, &text), "temp");
  EXPECT_EQ(text, "no checkpassword configured");
}

TEST_F(ServerTest, CramCheckPassesTheChallenge) {
  Settings s = settings();
  s.checkpassword = {"/bin/sh", "-c", "tr '\\0' '|' <&3 > '" + dir_ + "/fd3'"};
  start(s);
  ipc::Frame frame = check_frame(1, "cram-md5", {b64("alice 00ff")});
  frame.add("challenge", "<1.2@mx.example>");
  EXPECT_EQ(check(std::move(frame)), "ok");
  EXPECT_EQ(read_file(dir_ + "/fd3"), "alice|00ff|<1.2@mx.example>|");
}

TEST_F(ServerTest, FramesThatBreakTheContractCloseTheChannel) {
  start(settings());
  ipc::Frame frame(protocol::kAuthCheck, 1);
  frame.add("method", "plain");
  frame.add("response", b64("\0alice\0secret"s));
  frame.add("delay", "0");  // no remote_ip
  EXPECT_EQ(check(std::move(frame)), "none");
  EXPECT_TRUE(worker_closed_);
}

TEST_F(ServerTest, HugeDelayIsCutButANonNumberClosesTheChannel) {
  start(settings());
  EXPECT_EQ(check(check_frame(1, "plain", {b64("\0alice\0secret"s)}, 0)), "ok");
  ipc::Frame huge = check_frame(2, "plain", {b64("\0alice\0secret"s)});
  huge.attrs.back().second = "99999999999999999999";
  EXPECT_EQ(check(std::move(huge)), "ok");
  ipc::Frame bad = check_frame(3, "plain", {b64("\0alice\0secret"s)});
  bad.attrs.back().second = "-1";
  EXPECT_EQ(check(std::move(bad)), "none");
  EXPECT_TRUE(worker_closed_);
}

TEST_F(ServerTest, CramWithoutChallengeClosesTheChannel) {
  start(settings());
  EXPECT_EQ(check(check_frame(1, "cram-md5", {b64("alice 00ff")})), "none");
  EXPECT_TRUE(worker_closed_);
}

TEST_F(ServerTest, UnknownFrameTypeClosesTheChannel) {
  start(settings());
  worker_->send(ipc::Frame(protocol::kDnsPtr, 1));
  EXPECT_TRUE(run_until([&] { return worker_closed_; }));
}

TEST_F(ServerTest, ReloadAppliesANewCheckpasswordAndKeepsTheOldOnAnError) {
  start(settings());
  std::ofstream(dir_ + "/new-passwords") << "alice:renewed\n";
  std::ofstream(dir_ + "/sppd.conf")
      << "qmail_home = " << dir_ << "\n[listener smtp]\naddress = 127.0.0.1:2525\n"
      << "[service authd]\ncheckpassword = " << TEST_CHECKPASSWORD << " new-passwords true\n";
  server_->service().reload();
  EXPECT_EQ(plain(1, "alice", "renewed"), "ok");  // relative to qmail_home, subprogram via PATH
  EXPECT_EQ(plain(2, "alice", "secret"), "bad");
  std::ofstream(dir_ + "/sppd.conf")
      << "qmail_home = " << dir_ << "\n[listener smtp]\naddress = 127.0.0.1:2525\n"
      << "[service authd]\ncheckpassword = only-a-program\n";
  server_->service().reload();
  EXPECT_EQ(plain(3, "alice", "renewed"), "ok");
}

TEST_F(ServerTest, DrainWaitsForHeldFailures) {
  start(settings());
  worker_->send(check_frame(1, "plain", {b64("\0alice\0wrong"s)}, 1));
  run_until([&] { return server_->in_flight() == 1 && read_file(dir_ + "/runs") != ""; });
  server_->service().drain("test");
  std::string text;
  EXPECT_EQ(check(check_frame(2, "plain", {b64("\0alice\0secret"s)}), nullptr, &text), "temp");
  EXPECT_EQ(text, "authd is stopping");
  EXPECT_TRUE(run_until([&] { return result(1) != nullptr; }));
  EXPECT_EQ(result(1)->get_or("status", ""), "bad");
}

}  // namespace
}  // namespace sppd::authd
