// Tests for queue-bridge/bridge (with spawn and transaction): an in-process Bridge driven
// through real channels, as the master and a worker would, running real queue programs
// (sppd-maildir-queue, sppd-null-queue and small sh scripts) in a temporary qmail home.
#include "queue-bridge/bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <set>

#include "common/channel.h"
#include "common/protocol.h"
#include "tests/common/test_support.h"

namespace sppd::queue_bridge {
namespace {

using namespace std::string_literals;
using Clock = std::chrono::steady_clock;

using test_support::list_dir;
using test_support::read_file;
using test_support::write_all;
using test_support::write_file;

// qmail's "ok <time> qp <pid>". (Not std::regex: GCC 12's -Wmaybe-uninitialized trips over
// its std::function internals in the sanitizer build.)
bool is_queued_text(const std::string& text, const std::string& pid) {
  std::string tail = " qp " + pid;
  if (!text.starts_with("ok ") || !text.ends_with(tail) || text.size() <= 3 + tail.size()) {
    return false;
  }
  return std::all_of(text.begin() + 3, text.end() - static_cast<long>(tail.size()),
                     [](char c) { return c >= '0' && c <= '9'; });
}

class BridgeTest : public test_support::FakeMasterTest {
 protected:
  void SetUp() override {
    FakeMasterTest::SetUp();
    ASSERT_TRUE(home_dir_.create("sppd-bridge-test"));
    home_ = home_dir_.path();
    ASSERT_EQ(mkdir((home_ + "/bin").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((home_ + "/Maildir").c_str(), 0700), 0);
    config_path_ = home_ + "/sppd.conf";
  }

  void TearDown() override {
    worker_.reset();
    bridge_.reset();
    master_.reset();
    ASSERT_TRUE(home_dir_.remove());
  }

  Settings settings(std::vector<std::string> qmail_queue, int queue_timeout = 30) {
    Settings s;
    s.qmail_home = home_;
    s.qmail_queue = std::move(qmail_queue);
    s.queue_timeout = queue_timeout;
    s.error_fd = 6;
    return s;
  }

  // A queue program as an sh script in $home/bin; returns its path relative to home.
  std::string script(const std::string& name, const std::string& body) {
    write_file(home_ + "/bin/" + name, "#!/bin/sh\n" + body + "\n", 0755);
    return "bin/" + name;
  }

  void start(Settings s) {
    bridge_ = std::make_unique<Bridge>(base_.get(), config_path_, std::move(s),
                                       std::move(service_control_));
    connect_worker();
  }

  const ipc::Frame* wait_reply(uint32_t request_id, uint16_t type, double seconds = 10) {
    run_until([&] { return reply(request_id, type) != nullptr; }, seconds);
    return reply(request_id, type);
  }

  // Sends kQueueOpen; returns kQueueOpened (or nullptr if the answer was a result).
  ipc::Frame* open(uint32_t request_id, std::vector<std::string> env = {}) {
    ipc::Frame frame(protocol::kQueueOpen, request_id);
    for (auto& entry : env) frame.add("env", entry);
    worker_->send(std::move(frame));
    run_until([&] {
      return reply(request_id, protocol::kQueueOpened) || reply(request_id, protocol::kQueueResult);
    });
    return const_cast<ipc::Frame*>(reply(request_id, protocol::kQueueOpened));
  }

  void commit(uint32_t request_id, const std::string& from, std::vector<std::string> to) {
    ipc::Frame frame(protocol::kQueueCommit, request_id);
    frame.add("from", from);
    for (auto& address : to) frame.add("to", address);
    worker_->send(std::move(frame));
  }

  // The whole transaction as a worker runs it; returns the result frame.
  const ipc::Frame* transact(uint32_t request_id, const std::string& message,
                             const std::string& from, std::vector<std::string> to,
                             std::vector<std::string> env = {}) {
    ipc::Frame* opened = open(request_id, std::move(env));
    if (!opened) return reply(request_id, protocol::kQueueResult);
    UniqueFd pipe = std::move(opened->fd);
    EXPECT_TRUE(pipe);
    write_all(pipe.get(), message);
    pipe.reset();
    commit(request_id, from, std::move(to));
    return wait_reply(request_id, protocol::kQueueResult);
  }

  test_support::TempDir home_dir_;
  std::string home_;
  std::string config_path_;
  std::unique_ptr<Bridge> bridge_;
};

TEST_F(BridgeTest, QueuesThroughTheMaildirQueue) {
  start(settings({MAILDIR_QUEUE_BIN, "Maildir"}));
  ipc::Frame* opened = open(7, {"TCPREMOTEIP=192.0.2.1"});
  ASSERT_NE(opened, nullptr);
  ASSERT_NE(opened->get("pid"), nullptr);
  std::string pid = *opened->get("pid");
  UniqueFd pipe = std::move(opened->fd);
  ASSERT_TRUE(pipe);
  ASSERT_TRUE(write_all(pipe.get(), "Subject: hi\n\nbody\n"));
  pipe.reset();
  commit(7, "a@example.org", {"b@example.com"});
  const ipc::Frame* result = wait_reply(7, protocol::kQueueResult);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "ok");
  EXPECT_TRUE(is_queued_text(result->get_or("text", ""), pid)) << result->get_or("text", "");
  EXPECT_EQ(result->get_or("pid", ""), pid);
  auto names = list_dir(home_ + "/Maildir/new");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(read_file(home_ + "/Maildir/new/" + names[0]),
            "Return-Path: <a@example.org>\nDelivered-To: b@example.com\nSubject: hi\n\nbody\n");
  run_until([&] { return served_count() > 0; }, 2);
  EXPECT_EQ(served_count(), 1);
  // A second transaction on the same channel; kServed is not sent again.
  result = transact(8, "x\n", "", {"c@example.com"});
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "ok");
  run_until([] { return false; }, 0.1);
  EXPECT_EQ(served_count(), 1);
}

TEST_F(BridgeTest, EnvelopeLargerThanAPipeBufferAndRecipientsAcrossFrames) {
  start(settings({MAILDIR_QUEUE_BIN, "Maildir"}));
  ipc::Frame* opened = open(1);
  ASSERT_NE(opened, nullptr);
  UniqueFd pipe = std::move(opened->fd);
  std::vector<std::string> all;
  for (int batch = 0; batch < 3; ++batch) {
    ipc::Frame more(protocol::kQueueRecipients, 1);
    for (int i = 0; i < 60; ++i) {
      all.push_back(std::to_string(batch * 60 + i) + "@" + std::string(890, 'd'));
      more.add("to", all.back());
    }
    worker_->send(std::move(more));
  }
  write_all(pipe.get(), "m\n");
  pipe.reset();
  all.push_back("last@example.com");
  commit(1, "s@example.org", {"last@example.com"});
  const ipc::Frame* result = wait_reply(1, protocol::kQueueResult);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "ok") << result->get_or("text", "");
  auto names = list_dir(home_ + "/Maildir/new");
  ASSERT_EQ(names.size(), 1u);
  std::string expected = "Return-Path: <s@example.org>\n";
  for (const auto& to : all) expected += "Delivered-To: " + to + "\n";
  EXPECT_EQ(read_file(home_ + "/Maildir/new/" + names[0]), expected + "m\n");
}

TEST_F(BridgeTest, QmailqueueFromTheSessionWinsAndSeesExactlyItsEnvironment) {
  std::string dump =
      script("dump",
             "cat >/dev/null; cat <&1 >/dev/null\n"
             "tr '\\000' '\\n' < /proc/$$/environ > env.out\n"
             "pwd > pwd.out\n"
             "for fd in 3 4 5 7 8 9; do [ -e /proc/$$/fd/$fd ] && echo $fd; done > fds.out\n"
             "[ -p /proc/$$/fd/6 ] && echo pipe > fd6.out\n"
             "exit 0");
  start(settings({"bin/does-not-exist"}));
  const ipc::Frame* result =
      transact(1, "m\n", "a@b", {"c@d"}, {"TCPREMOTEIP=192.0.2.1", "QMAILQUEUE=" + dump});
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "ok") << result->get_or("text", "");
  EXPECT_EQ(read_file(home_ + "/env.out"),
            "TCPREMOTEIP=192.0.2.1\nQMAILQUEUE=" + dump + "\nPATH=/usr/local/bin:/usr/bin:/bin\n");
  EXPECT_EQ(read_file(home_ + "/pwd.out"), home_ + "\n");
  EXPECT_EQ(read_file(home_ + "/fds.out"), "");
  EXPECT_EQ(read_file(home_ + "/fd6.out"), "pipe\n");
}

TEST_F(BridgeTest, SessionPathIsKept) {
  std::string dump =
      script("dump", "cat >/dev/null; cat <&1 >/dev/null; echo \"$PATH\" > path.out");
  start(settings({dump}));
  const ipc::Frame* result = transact(1, "m\n", "a@b", {"c@d"}, {"PATH=/opt/bin"});
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(read_file(home_ + "/path.out"), "/opt/bin\n");
}

TEST_F(BridgeTest, CustomErrorTextOnExit82) {
  std::string wrapper = script("wrapper",
                               "cat >/dev/null; cat <&1 >/dev/null\n"
                               "printf 'Dvirus found (#5.7.1)\\n' >&6\nexit 82");
  start(settings({wrapper}));
  const ipc::Frame* result = transact(1, "m\n", "a@b", {"c@d"});
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "perm");
  EXPECT_EQ(result->get_or("text", ""), "virus found (#5.7.1)");
}

TEST_F(BridgeTest, ExitBeforeCommitAnswersAtOnceAndLateFramesAreIgnored) {
  start(settings({script("refuse", "exit 31")}));
  ipc::Frame* opened = open(3);
  ASSERT_NE(opened, nullptr);
  UniqueFd pipe = std::move(opened->fd);
  const ipc::Frame* result = wait_reply(3, protocol::kQueueResult);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "perm");
  EXPECT_EQ(result->get_or("text", ""), "mail server permanently rejected message (#5.3.0)");
  // The worker had not seen the result yet: its frames for request 3 must not hurt.
  ipc::Frame more(protocol::kQueueRecipients, 3);
  more.add("to", "x@y");
  worker_->send(std::move(more));
  commit(3, "a@b", {"c@d"});
  worker_->send(ipc::Frame(protocol::kQueueAbort, 3));
  run_until([] { return false; }, 0.2);
  EXPECT_FALSE(worker_closed_);
  size_t results = 0;
  for (const auto& f : worker_frames_) results += f.type == protocol::kQueueResult;
  EXPECT_EQ(results, 1u);
  // The channel still works.
  result = transact(4, "m\n", "a@b", {"c@d"}, {"QMAILQUEUE="s + NULL_QUEUE_BIN});
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "ok");
}

TEST_F(BridgeTest, ExitZeroWithoutTheEnvelopeIsNotQueued) {
  start(settings({script("liar", "exit 0")}));
  ASSERT_NE(open(1), nullptr);
  const ipc::Frame* result = wait_reply(1, protocol::kQueueResult);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "temp");
  EXPECT_EQ(result->get_or("text", ""), "qq read error (#4.3.0)");
}

TEST_F(BridgeTest, TimeoutKillsTheProcessGroup) {
  // Orphaned grandchildren (the sleep) become ours, so the bridge's reaper collects them and
  // the group really disappears, whatever PID 1 does in this container.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  start(settings({script("hang", "cat >/dev/null; cat <&1 >/dev/null; sleep 30 & wait")}, 1));
  auto started = Clock::now();
  ipc::Frame* opened = open(1);
  ASSERT_NE(opened, nullptr);
  pid_t pid = std::stoi(*opened->get("pid"));
  UniqueFd pipe = std::move(opened->fd);
  write_all(pipe.get(), "m\n");
  pipe.reset();
  commit(1, "a@b", {"c@d"});
  const ipc::Frame* result = wait_reply(1, protocol::kQueueResult);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "temp");
  EXPECT_EQ(result->get_or("text", ""), "qq timeout (#4.3.0)");
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(10));
  // The whole group is gone: kill(-pgid, 0) fails once the bridge reaped its child.
  EXPECT_TRUE(run_until([&] { return kill(-pid, 0) < 0 && errno == ESRCH; }, 5));
}

TEST_F(BridgeTest, AbortQueuesNothingAndSendsNoResult) {
  start(settings({MAILDIR_QUEUE_BIN, "Maildir"}));
  ipc::Frame* opened = open(1);
  ASSERT_NE(opened, nullptr);
  pid_t pid = std::stoi(*opened->get("pid"));
  UniqueFd pipe = std::move(opened->fd);
  write_all(pipe.get(), "half a mess");
  worker_->send(ipc::Frame(protocol::kQueueAbort, 1));
  pipe.reset();
  EXPECT_TRUE(run_until([&] { return kill(pid, 0) < 0 && errno == ESRCH; }, 5));
  run_until([] { return false; }, 0.1);
  EXPECT_EQ(reply(1, protocol::kQueueResult), nullptr);
  EXPECT_TRUE(list_dir(home_ + "/Maildir/new").empty());
  EXPECT_TRUE(list_dir(home_ + "/Maildir/tmp").empty());
  EXPECT_FALSE(worker_closed_);
}

TEST_F(BridgeTest, WorkerGoingAwayAbortsItsTransactions) {
  start(settings({MAILDIR_QUEUE_BIN, "Maildir"}));
  ipc::Frame* opened = open(1);
  ASSERT_NE(opened, nullptr);
  pid_t pid = std::stoi(*opened->get("pid"));
  UniqueFd pipe = std::move(opened->fd);
  write_all(pipe.get(), "complete message\n");
  pipe.reset();
  worker_.reset();
  EXPECT_TRUE(run_until([&] { return kill(pid, 0) < 0 && errno == ESRCH; }, 5));
  EXPECT_TRUE(list_dir(home_ + "/Maildir/new").empty());
  connect_worker();
  const ipc::Frame* result = transact(2, "m\n", "a@b", {"c@d"});
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "ok");
}

TEST_F(BridgeTest, MalformedFramesCloseTheWorkerChannel) {
  start(settings({MAILDIR_QUEUE_BIN, "Maildir"}));
  ipc::Frame* opened = open(1);
  ASSERT_NE(opened, nullptr);
  UniqueFd pipe = std::move(opened->fd);
  pipe.reset();
  worker_->send(ipc::Frame(protocol::kQueueCommit, 1));  // no from
  EXPECT_TRUE(run_until([&] { return worker_closed_; }, 5));
  EXPECT_EQ(reply(1, protocol::kQueueResult), nullptr);
  run_until([] { return false; }, 0.2);
  EXPECT_TRUE(list_dir(home_ + "/Maildir/new").empty());

  for (auto make_bad : std::vector<std::function<ipc::Frame()>>{
           [] { return ipc::Frame(99, 1); },
           [] {
             ipc::Frame f(protocol::kQueueOpen, 1);
             f.add("env", "no equals sign");
             return f;
           },
       }) {
    connect_worker();
    worker_->send(make_bad());
    EXPECT_TRUE(run_until([&] { return worker_closed_; }, 5));
  }
}

TEST_F(BridgeTest, ReusingARunningRequestIdIsMalformed) {
  start(settings({MAILDIR_QUEUE_BIN, "Maildir"}));
  ASSERT_NE(open(1), nullptr);
  worker_->send(ipc::Frame(protocol::kQueueOpen, 1));
  EXPECT_TRUE(run_until([&] { return worker_closed_; }, 5));
}

TEST_F(BridgeTest, SpawnFailureAnswersQqtFailure) {
  start(settings({"bin/no-such-queue"}));
  EXPECT_EQ(open(1), nullptr);
  const ipc::Frame* result = reply(1, protocol::kQueueResult);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "temp");
  EXPECT_EQ(result->get_or("text", ""), "qqt failure (#4.3.0)");
  EXPECT_EQ(result->get("pid"), nullptr);
}

TEST_F(BridgeTest, DrainRefusesNewTransactionsAndEndsWhenIdle) {
  start(settings({MAILDIR_QUEUE_BIN, "Maildir"}));
  ipc::Frame* opened = open(1);
  ASSERT_NE(opened, nullptr);
  UniqueFd pipe = std::move(opened->fd);
  bridge_->service().drain("test");
  EXPECT_EQ(open(2), nullptr);
  const ipc::Frame* refused = reply(2, protocol::kQueueResult);
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->get_or("text", ""), "qqt failure (#4.3.0)");
  write_all(pipe.get(), "m\n");
  pipe.reset();
  commit(1, "a@b", {"c@d"});
  // run() returns once transaction 1 is answered; a timer guards against hanging.
  struct Guard {
    event_base* base;
    bool timed_out;
  } guard_state{base_.get(), false};
  EventPtr guard(evtimer_new(
      base_.get(),
      [](evutil_socket_t, short, void* arg) {
        auto* state = static_cast<Guard*>(arg);
        state->timed_out = true;
        event_base_loopexit(state->base, nullptr);
      },
      &guard_state));
  timeval ten{10, 0};
  evtimer_add(guard.get(), &ten);
  bool& timed_out = guard_state.timed_out;
  EXPECT_EQ(bridge_->service().run(), 0);
  EXPECT_FALSE(timed_out);
  run_until([&] { return reply(1, protocol::kQueueResult) != nullptr; }, 2);
  const ipc::Frame* result = reply(1, protocol::kQueueResult);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "ok");
}

TEST_F(BridgeTest, ReloadTakesNewSettingsAndKeepsOldOnError) {
  write_file(config_path_, "qmail_home = " + home_ +
                               "\n[listener smtp]\naddress = 127.0.0.1:2525\n"
                               "[service queue-bridge]\nqmail_queue = " NULL_QUEUE_BIN "\n");
  start(settings({MAILDIR_QUEUE_BIN, "Maildir"}));
  bridge_->service().reload();
  write_file(config_path_, "this is not a config\n");
  bridge_->service().reload();
  const ipc::Frame* result = transact(1, "m\n", "a@b", {"c@d"});
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->get_or("status", ""), "ok");
  EXPECT_TRUE(list_dir(home_ + "/Maildir/new").empty());  // the null queue ran
}

// ---- virus scanning: the bridge connects to clamd for the worker (kQueueScanner)

// A listening stream socket standing in for clamd: AF_UNIX at path, or TCP on loopback.
UniqueFd listen_unix(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(listen(fd.get(), 8), 0);
  return fd;
}

UniqueFd listen_tcp(int backlog, int* port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(listen(fd.get(), backlog), 0);
  socklen_t length = sizeof(address);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
  *port = ntohs(address.sin_port);
  return fd;
}

// The index of the worker's frame of that type for request_id, or -1.
int frame_index(const std::vector<ipc::Frame>& frames, uint32_t request_id, uint16_t type) {
  for (size_t i = 0; i < frames.size(); ++i) {
    if (frames[i].request_id == request_id && frames[i].type == type) return static_cast<int>(i);
  }
  return -1;
}

class BridgeClamdTest : public BridgeTest {
 protected:
  Settings scanning(std::set<std::string> clamds, int connect_timeout = 5) {
    Settings s = settings({MAILDIR_QUEUE_BIN, "Maildir"});
    s.clamds = std::move(clamds);
    s.clamd_connect_timeout = connect_timeout;
    return s;
  }

  // kQueueOpen with clamd=address; returns kQueueOpened (nullptr if a result came instead).
  ipc::Frame* open_scanning(uint32_t request_id, const std::string& address) {
    ipc::Frame frame(protocol::kQueueOpen, request_id);
    frame.add("env", "TCPREMOTEIP=192.0.2.1");
    frame.add("clamd", address);
    worker_->send(std::move(frame));
    run_until([&] {
      return reply(request_id, protocol::kQueueOpened) || reply(request_id, protocol::kQueueResult);
    });
    return const_cast<ipc::Frame*>(reply(request_id, protocol::kQueueOpened));
  }

  // The kQueueScanner of request_id, checked to come just before its kQueueOpened.
  ipc::Frame* scanner(uint32_t request_id) {
    int scanner = frame_index(worker_frames_, request_id, protocol::kQueueScanner);
    int opened = frame_index(worker_frames_, request_id, protocol::kQueueOpened);
    EXPECT_GE(scanner, 0);
    EXPECT_EQ(scanner + 1, opened);
    return scanner < 0 ? nullptr : &worker_frames_[static_cast<size_t>(scanner)];
  }

  // Finishes an opened transaction; true if the message was queued.
  bool deliver(uint32_t request_id, ipc::Frame* opened) {
    UniqueFd pipe = std::move(opened->fd);
    write_all(pipe.get(), "Subject: scanned\n\nclean\n");
    pipe.reset();
    commit(request_id, "a@b", {"c@d"});
    const ipc::Frame* result = wait_reply(request_id, protocol::kQueueResult);
    return result && result->get_or("status", "") == "ok";
  }
};

TEST_F(BridgeClamdTest, HandsAConnectedUnixSocketOverBeforeThePipe) {
  std::string path = home_ + "/clamd.sock";
  UniqueFd clamd = listen_unix(path);
  start(scanning({path}));
  ipc::Frame* opened = open_scanning(1, path);
  ASSERT_NE(opened, nullptr);
  ipc::Frame* handed = scanner(1);
  ASSERT_NE(handed, nullptr);
  EXPECT_EQ(handed->get_or("status", ""), "ok");
  ASSERT_TRUE(handed->fd);
  // The socket really reaches "clamd": what the worker writes, clamd reads.
  UniqueFd accepted(accept4(clamd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  ASSERT_TRUE(write_all(handed->fd.get(), "zPING"s + '\0'));
  char buffer[6] = {};
  ASSERT_EQ(read(accepted.get(), buffer, sizeof(buffer)), 6);
  EXPECT_EQ(std::string(buffer, 6), "zPING"s + '\0');
  EXPECT_TRUE(deliver(1, opened));
}

TEST_F(BridgeClamdTest, ConnectsOverTcp) {
  int port = 0;
  UniqueFd clamd = listen_tcp(8, &port);
  std::string address = "127.0.0.1:" + std::to_string(port);
  start(scanning({address}));
  ipc::Frame* opened = open_scanning(1, address);
  ASSERT_NE(opened, nullptr);
  ipc::Frame* handed = scanner(1);
  ASSERT_NE(handed, nullptr);
  EXPECT_EQ(handed->get_or("status", ""), "ok");
  ASSERT_TRUE(handed->fd);
  UniqueFd accepted(accept4(clamd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted);
  EXPECT_TRUE(deliver(1, opened));
}

TEST_F(BridgeClamdTest, NobodyListeningIsUnavailableAndTheTransactionGoesOn) {
  std::string path = home_ + "/no-clamd.sock";
  int port = 0;
  std::string tcp;
  {
    UniqueFd closed = listen_tcp(1, &port);  // a port that was free a moment ago
    tcp = "127.0.0.1:" + std::to_string(port);
  }
  start(scanning({path, tcp}));
  uint32_t id = 1;
  for (const std::string& address : {path, tcp}) {
    ipc::Frame* opened = open_scanning(id, address);
    ASSERT_NE(opened, nullptr) << address;
    ipc::Frame* handed = scanner(id);
    ASSERT_NE(handed, nullptr);
    EXPECT_EQ(handed->get_or("status", ""), "unavailable");
    EXPECT_FALSE(handed->fd);
    EXPECT_EQ(handed->get_or("text", ""),
              "clamd " + address + ": " +
                  (address == path ? "No such file or directory" : "Connection refused"));
    EXPECT_TRUE(deliver(id, opened));  // whether to go on is the worker's call
    ++id;
  }
}

TEST_F(BridgeClamdTest, AnAddressNoControlFileNamesIsNeverConnected) {
  std::string path = home_ + "/clamd.sock";
  UniqueFd clamd = listen_unix(path);
  ASSERT_EQ(fcntl(clamd.get(), F_SETFL, O_NONBLOCK), 0);
  start(scanning({home_ + "/other.sock"}));
  ipc::Frame* opened = open_scanning(1, path);
  ASSERT_NE(opened, nullptr);
  ipc::Frame* handed = scanner(1);
  ASSERT_NE(handed, nullptr);
  EXPECT_EQ(handed->get_or("status", ""), "unavailable");
  EXPECT_EQ(handed->get_or("text", ""),
            "clamd " + path + ": not in queue-bridge's control/clamd files (reload?)");
  EXPECT_FALSE(accept4(clamd.get(), nullptr, nullptr, SOCK_CLOEXEC) >= 0);
  EXPECT_FALSE(worker_closed_);
  EXPECT_TRUE(deliver(1, opened));
}

TEST_F(BridgeClamdTest, ConnectTimeoutAndAbortWhileConnecting) {
  // A listener whose accept queue is full: the kernel drops further SYNs, connect() hangs.
  int port = 0;
  UniqueFd clamd = listen_tcp(0, &port);
  std::string address = "127.0.0.1:" + std::to_string(port);
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 2; ++i) {
    fillers.emplace_back(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(port));
    connect(fillers.back().get(), reinterpret_cast<sockaddr*>(&to), sizeof(to));
  }
  start(scanning({address}, 1));
  auto started = Clock::now();
  ipc::Frame* opened = open_scanning(1, address);
  ASSERT_NE(opened, nullptr);
  EXPECT_GE(Clock::now() - started, std::chrono::milliseconds(900));
  ipc::Frame* handed = scanner(1);
  ASSERT_NE(handed, nullptr);
  EXPECT_EQ(handed->get_or("status", ""), "unavailable");
  EXPECT_EQ(handed->get_or("text", ""), "clamd " + address + ": connect timed out");
  EXPECT_TRUE(deliver(1, opened));

  // The worker gives up while the bridge still connects: qmail-queue goes, nothing is sent.
  ipc::Frame frame(protocol::kQueueOpen, 2);
  frame.add("clamd", address);
  worker_->send(std::move(frame));
  run_until([] { return false; }, 0.2);
  worker_->send(ipc::Frame(protocol::kQueueAbort, 2));
  run_until([] { return false; }, 1.5);
  EXPECT_EQ(frame_index(worker_frames_, 2, protocol::kQueueScanner), -1);
  EXPECT_EQ(frame_index(worker_frames_, 2, protocol::kQueueOpened), -1);
  EXPECT_EQ(reply(2, protocol::kQueueResult), nullptr);
  EXPECT_EQ(bridge_->in_flight(), 0u);
  EXPECT_EQ(list_dir(home_ + "/Maildir/new").size(), 1u);
}

TEST_F(BridgeClamdTest, RecipientsBeforeThePipeIsHandedOverAreMalformed) {
  int port = 0;
  UniqueFd clamd = listen_tcp(0, &port);
  std::string address = "127.0.0.1:" + std::to_string(port);
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 2; ++i) {
    fillers.emplace_back(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(port));
    connect(fillers.back().get(), reinterpret_cast<sockaddr*>(&to), sizeof(to));
  }
  start(scanning({address}, 5));
  ipc::Frame frame(protocol::kQueueOpen, 1);
  frame.add("clamd", address);
  worker_->send(std::move(frame));
  run_until([] { return false; }, 0.2);
  commit(1, "a@b", {"c@d"});
  EXPECT_TRUE(run_until([&] { return worker_closed_; }, 5));
  EXPECT_EQ(bridge_->in_flight(), 0u);
}

TEST(BridgeSettingsTest, ClamdsAreTheListenersControlFiles) {
  test_support::TempDir home;
  ASSERT_TRUE(home.create("sppd-bridge-clamd"));
  ASSERT_EQ(mkdir((home.path() + "/control").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((home.path() + "/control2").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((home.path() + "/control3").c_str(), 0755), 0);
  write_file(home.path() + "/control/clamd", "127.0.0.1:3310\n");
  write_file(home.path() + "/control2/clamd", "/run/clamav/clamd.ctl  \n");
  config::Config config =
      config::parse("qmail_home = " + home.path() +
                        "\n[listener a]\naddress = 127.0.0.1:25\n"
                        "[listener b]\naddress = 127.0.0.1:26\ncontrol_dir = control2\n"
                        "[listener c]\naddress = 127.0.0.1:27\ncontrol_dir = control3\n"
                        "[service queue-bridge]\nclamd_connect_timeout = 2\n",
                    home.path() + "/sppd.conf");
  Settings s = settings_from(config);
  EXPECT_EQ(s.clamds, (std::set<std::string>{"127.0.0.1:3310", "/run/clamav/clamd.ctl"}));
  EXPECT_EQ(s.clamd_connect_timeout, 2);
  config = config::parse(
      "[listener smtp]\naddress = 127.0.0.1:25\n[service queue-bridge]\n"
      "clamd_connect_timeout = 0\n",
      "/etc/sppd.conf");
  EXPECT_THROW(settings_from(config), config::ConfigError);
}

TEST(BridgeSettingsTest, DefaultsAndValidation) {
  config::Config config = config::parse(
      "qmail_home = /var/qmail\n[listener smtp]\naddress = 127.0.0.1:25\n", "/etc/sppd.conf");
  Settings s = settings_from(config);
  EXPECT_EQ(s.qmail_home, "/var/qmail");
  EXPECT_EQ(s.qmail_queue, std::vector<std::string>{"bin/qmail-queue"});
  EXPECT_EQ(s.queue_timeout, 1200);
  EXPECT_EQ(s.error_fd, 6);

  config = config::parse(
      "[listener smtp]\naddress = 127.0.0.1:25\n[service queue-bridge]\n"
      "qmail_queue =  bin/qmail-qfilter   /usr/bin/filter -x  \nqueue_timeout = 30\nerror_fd = 4\n",
      "/etc/sppd.conf");
  s = settings_from(config);
  EXPECT_EQ(s.qmail_queue,
            (std::vector<std::string>{"bin/qmail-qfilter", "/usr/bin/filter", "-x"}));
  EXPECT_EQ(s.queue_timeout, 30);
  EXPECT_EQ(s.error_fd, 4);

  config = config::parse(
      "[listener smtp]\naddress = 127.0.0.1:25\n[service queue-bridge]\nerror_fd = 300\n",
      "/etc/sppd.conf");
  EXPECT_THROW(settings_from(config), config::ConfigError);
}

TEST(QueueCommandTest, QmailqueueWinsAndRunsWithoutArguments) {
  std::vector<std::string> configured{"bin/qmail-queue", "-x"};
  EXPECT_EQ(queue_command(configured, {"A=1"}), configured);
  EXPECT_EQ(queue_command(configured, {"A=1", "QMAILQUEUE=/usr/bin/simscan"}),
            std::vector<std::string>{"/usr/bin/simscan"});
  EXPECT_EQ(queue_environment({"A=1"}),
            (std::vector<std::string>{"A=1", "PATH=/usr/local/bin:/usr/bin:/bin"}));
  EXPECT_EQ(queue_environment({"PATH=/x"}), std::vector<std::string>{"PATH=/x"});
}

TEST(EnvelopeTest, BuildsQmailQueueEnvelope) {
  std::string records;
  append_recipient(&records, "b@x");
  append_recipient(&records, "c@y");
  EXPECT_EQ(build_envelope("a@z", records), "Fa@z\0Tb@x\0Tc@y\0\0"s);
  EXPECT_EQ(build_envelope("", ""), "F\0\0"s);
}

}  // namespace
}  // namespace sppd::queue_bridge
