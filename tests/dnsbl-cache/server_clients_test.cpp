// Tests for dnsbl-cache/server_clients: kClientConnect answered with kClientVerdict over real
// worker channels, kClientDisconnect freeing a slot, a gone worker's connections released,
// re-announced connections counted without an answer, the clients.* status counters, and a
// malformed frame costing the worker its channel.
#include <gtest/gtest.h>

#include <memory>

#include "common/protocol.h"
#include "dnsbl-cache/server.h"
#include "fake_dns.h"
#include "tests/common/test_support.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;
using Attrs = std::vector<std::pair<std::string, std::string>>;

// kClientConnect for session from ip on "smtp" with at most max concurrent connections.
Attrs connect_attrs(uint64_t session, const std::string& ip = "192.0.2.7",
                    const std::string& max = "2") {
  return {{"ip", ip},        {"listener", "smtp"},  {"max_connections", max},
          {"max_rate", "0"}, {"rate_window", "60"}, {"session", std::to_string(session)}};
}

class ServerClientsTest : public test_support::FakeMasterTest {
 protected:
  void SetUp() override {
    FakeMasterTest::SetUp();
    dns_ = std::make_unique<FakeDns>(base_.get());
    ResolverOptions options;
    options.servers = dns_->address();
    resolver_ = std::make_unique<Resolver>(base_.get(), options);
    server_ = std::make_unique<Server>(base_.get(), "/nonexistent/sppd.conf",
                                       std::move(service_control_), *resolver_);
    connect_worker();
  }

  // Sends the frame on channel and runs until the verdict for id (nullptr if none came).
  const ipc::Frame* ask(ipc::Channel& channel, std::vector<ipc::Frame>& frames, uint32_t id,
                        const Attrs& attrs) {
    ipc::Frame frame(protocol::kClientConnect, id);
    for (const auto& [name, value] : attrs) frame.add(name, value);
    channel.send(std::move(frame));
    auto verdict = [&]() -> const ipc::Frame* {
      for (const auto& f : frames) {
        if (f.request_id == id && f.type == protocol::kClientVerdict) return &f;
      }
      return nullptr;
    };
    run_until([&] { return verdict() != nullptr || worker_closed_; });
    return verdict();
  }
  std::string verdict(uint32_t id, const Attrs& attrs) {
    const ipc::Frame* answer = ask(*worker_, worker_frames_, id, attrs);
    return answer ? answer->get_or("verdict", "") : "<none>";
  }

  void send(uint16_t type, const Attrs& attrs) {
    ipc::Frame frame(type, 0);
    for (const auto& [name, value] : attrs) frame.add(name, value);
    worker_->send(std::move(frame));
  }

  uint64_t status(const std::string& name) const {
    for (const auto& [counter, value] : server_->status_counters()) {
      if (counter == name) return value;
    }
    ADD_FAILURE() << "no " << name << " counter";
    return 0;
  }

  std::unique_ptr<FakeDns> dns_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerClientsTest, VerdictsAndDisconnects) {
  const ipc::Frame* first = ask(*worker_, worker_frames_, 1, connect_attrs(1));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->get_or("verdict", ""), "ok");
  EXPECT_EQ(first->get_or("connections", ""), "1");
  EXPECT_EQ(first->get_or("rate", ""), "0");
  EXPECT_EQ(verdict(2, connect_attrs(2)), "ok");
  const ipc::Frame* third = ask(*worker_, worker_frames_, 3, connect_attrs(3));
  ASSERT_TRUE(third);
  EXPECT_EQ(third->get_or("verdict", ""), "too_many");
  EXPECT_EQ(third->get_or("connections", ""), "3");
  EXPECT_EQ(verdict(4, connect_attrs(4, "2001:db8::7")), "ok");  // another client

  send(protocol::kClientDisconnect, {{"session", "3"}});  // refused: not counted, ignored
  send(protocol::kClientDisconnect, {{"session", "1"}});
  EXPECT_EQ(verdict(5, connect_attrs(5)), "ok");
  EXPECT_EQ(verdict(6, connect_attrs(6)), "too_many");
  EXPECT_EQ(status("clients.tracked"), 2u);
  EXPECT_EQ(status("clients.connections"), 3u);
  EXPECT_EQ(status("clients.refused_concurrency"), 2u);
  EXPECT_EQ(status("clients.refused_rate"), 0u);
  EXPECT_FALSE(worker_closed_);
}

TEST_F(ServerClientsTest, AGoneWorkersConnectionsAreReleased) {
  EXPECT_EQ(verdict(1, connect_attrs(1)), "ok");
  EXPECT_EQ(verdict(2, connect_attrs(2)), "ok");
  // A second worker: the same client is over its limit there too.
  auto [other_end, service_end] = ipc::make_socketpair();
  ipc::Frame hello(protocol::kNewClient, 0);
  hello.add("worker_pid", "4712");
  hello.fd = std::move(service_end);
  master_->send(std::move(hello));
  std::vector<ipc::Frame> other_frames;
  ipc::Channel other(
      base_.get(), std::move(other_end),
      [&other_frames](ipc::Frame&& f) { other_frames.push_back(std::move(f)); },
      [](const std::string&) {});
  const ipc::Frame* refused = ask(other, other_frames, 1, connect_attrs(1));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->get_or("verdict", ""), "too_many");

  worker_.reset();  // the first worker dies
  ASSERT_TRUE(run_until([&] { return status("clients.connections") == 0; }));
  const ipc::Frame* admitted = ask(other, other_frames, 2, connect_attrs(2));
  ASSERT_TRUE(admitted);
  EXPECT_EQ(admitted->get_or("verdict", ""), "ok");
}

TEST_F(ServerClientsTest, ReannouncedConnectionsAreCountedWithoutAnAnswer) {
  for (uint64_t session : {7, 8, 9}) {
    Attrs attrs = connect_attrs(session);
    attrs.emplace_back("reannounce", "yes");
    attrs.emplace_back("age", "30");
    send(protocol::kClientConnect, attrs);
  }
  EXPECT_EQ(verdict(1, connect_attrs(1)), "too_many");
  EXPECT_EQ(status("clients.connections"), 3u);
  for (const auto& f : worker_frames_) EXPECT_EQ(f.request_id, 1u);  // no other answer
}

TEST_F(ServerClientsTest, RateLimitRefusesTooFast) {
  Attrs attrs = connect_attrs(1, "192.0.2.9", "0");
  attrs[3].second = "1";  // max_rate
  EXPECT_EQ(verdict(1, attrs), "ok");
  send(protocol::kClientDisconnect, {{"session", "1"}});
  attrs[5].second = "2";
  const ipc::Frame* second = ask(*worker_, worker_frames_, 2, attrs);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->get_or("verdict", ""), "too_fast");
  EXPECT_EQ(second->get_or("rate", ""), "2");
  EXPECT_EQ(status("clients.refused_rate"), 1u);
}

Attrs with(Attrs attrs, const std::string& name, const std::string& value) {
  for (auto& [n, v] : attrs) {
    if (n == name) {
      v = value;
      return attrs;
    }
  }
  attrs.emplace_back(name, value);
  return attrs;
}

Attrs without(Attrs attrs, const std::string& name) {
  std::erase_if(attrs, [&](const auto& attr) { return attr.first == name; });
  return attrs;
}

// A kClientConnect that breaks the contract, and what is wrong with it (the test's name).
struct BadConnect {
  std::string name;
  Attrs attrs;
};
void PrintTo(const BadConnect& bad, std::ostream* out) { *out << bad.name; }

class MalformedClientFrameTest : public ServerClientsTest,
                                 public ::testing::WithParamInterface<BadConnect> {};

TEST_P(MalformedClientFrameTest, CostsTheWorkerItsChannel) {
  EXPECT_EQ(verdict(1, connect_attrs(1)), "ok");
  send(protocol::kClientConnect, GetParam().attrs);
  ASSERT_TRUE(run_until([&] { return worker_closed_; }));
  EXPECT_EQ(status("clients.connections"), 0u);  // and its connection is released
}

INSTANTIATE_TEST_SUITE_P(
    Frames, MalformedClientFrameTest,
    ::testing::Values(BadConnect{"CountedAlready", connect_attrs(1)},
                      BadConnect{"NoRateWindow", without(connect_attrs(2), "rate_window")},
                      BadConnect{"ZeroRateWindow", with(connect_attrs(2), "rate_window", "0")},
                      BadConnect{"HostNotIp", with(connect_attrs(2), "ip", "host.example")},
                      BadConnect{"BadListener", with(connect_attrs(2), "listener", "two words")},
                      BadConnect{"NegativeLimit", with(connect_attrs(2), "max_connections", "-1")},
                      BadConnect{"BadSession", with(connect_attrs(2), "session", "2x")},
                      BadConnect{"BadReannounce", with(connect_attrs(2), "reannounce", "maybe")},
                      BadConnect{"ReannounceWithoutAge",
                                 with(connect_attrs(2), "reannounce", "yes")}),
    [](const ::testing::TestParamInfo<BadConnect>& info) { return info.param.name; });

}  // namespace
}  // namespace sppd::dnsbl_cache
