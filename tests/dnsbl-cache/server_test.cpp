// Tests for dnsbl-cache/server: the frames a worker and the master exchange with the cache
// over real SOCK_SEQPACKET channels (protocol.h kNewClient, kDnsPtr, kDnsPtrResult,
// kDnsblQuery, kDnsblResult, kServed), and what a malformed question costs the worker.
#include "dnsbl-cache/server.h"

#include <gtest/gtest.h>

#include <chrono>

#include "common/protocol.h"
#include "resolver_fixture.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : base_(event_base_new()), dns_(base_.get()) {
    dns_.answers["4.3.2.1.in-addr.arpa"] = {
        0, {ptr_record("4.3.2.1.in-addr.arpa", "host.example", 300)}, {}};
    dns_.typed_answers[{"2.0.0.127.bl.example", 16}] = {
        0, {txt_record("2.0.0.127.bl.example", {"spam ", "source"}, 300)}, {}};
    dns_.typed_answers[{"2.0.0.127.bl.example", 1}] = {
        0,
        {a_record("2.0.0.127.bl.example", "127.0.0.2", 300),
         a_record("2.0.0.127.bl.example", "127.0.0.4", 300)},
        {}};
    dns_.answers["1.0.0.127.bl.example"] = {3, {}, {soa_record("bl.example", 300, 300)}};
    ResolverOptions options;
    options.servers = dns_.address();
    resolver_ = std::make_unique<Resolver>(base_.get(), options);
    auto [ours, theirs] = ipc::make_socketpair();
    server_ = std::make_unique<Server>(base_.get(), "/nonexistent/sppd.conf", std::move(theirs),
                                       *resolver_);
    master_ = std::make_unique<ipc::Channel>(
        base_.get(), std::move(ours), [this](ipc::Frame&& f) { to_master_.push_back(f.type); },
        [](const std::string&) {});
    connect_worker();
  }

  // Gives the cache a (new) worker channel, as the master does when a worker starts.
  void connect_worker() {
    replies_.clear();
    worker_closed_.clear();
    auto [worker_end, cache_end] = ipc::make_socketpair();
    ipc::Frame hello(protocol::kNewClient, 0);
    hello.add("worker_pid", "4242");
    hello.fd = std::move(cache_end);
    master_->send(std::move(hello));
    worker_ = std::make_unique<ipc::Channel>(
        base_.get(), std::move(worker_end),
        [this](ipc::Frame&& f) {
          replies_.push_back(std::move(f));
          event_base_loopbreak(base_.get());
        },
        [this](const std::string& why) {
          worker_closed_ = why;
          event_base_loopbreak(base_.get());
        });
  }

  // Sends a kDnsblQuery with these attributes and runs the loop until a reply or a close.
  void ask_dnsbl(uint32_t id, const std::vector<std::pair<std::string, std::string>>& attrs) {
    ipc::Frame ask(protocol::kDnsblQuery, id);
    for (const auto& [name, value] : attrs) ask.add(name, value);
    worker_->send(std::move(ask));
    run();
  }

  void run() { run_guarded(base_.get()); }

  EventBasePtr base_;
  FakeDns dns_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<ipc::Channel> master_;
  std::unique_ptr<ipc::Channel> worker_;
  std::vector<uint16_t> to_master_;
  std::vector<ipc::Frame> replies_;
  std::string worker_closed_;
};

TEST_F(ServerTest, AnswersPtrAndReportsServedOnce) {
  for (uint32_t id : {7u, 8u}) {
    ipc::Frame ask(protocol::kDnsPtr, id);
    ask.add("ip", "1.2.3.4");
    worker_->send(std::move(ask));
    run();
  }
  ASSERT_EQ(replies_.size(), 2u);
  EXPECT_EQ(replies_[0].type, protocol::kDnsPtrResult);
  EXPECT_EQ(replies_[0].request_id, 7u);
  EXPECT_EQ(replies_[0].get_or("status", ""), "ok");
  EXPECT_EQ(replies_[0].get_or("name", ""), "host.example");
  EXPECT_EQ(replies_[1].request_id, 8u);
  // Let the kServed frame arrive.
  timeval short_wait{0, 100000};
  event_base_loopexit(base_.get(), &short_wait);
  event_base_dispatch(base_.get());
  EXPECT_EQ(to_master_, (std::vector<uint16_t>{protocol::kServed}));
}

TEST_F(ServerTest, BadIpClosesTheWorkersChannel) {
  ipc::Frame ask(protocol::kDnsPtr, 1);
  ask.add("ip", "example.com");
  worker_->send(std::move(ask));
  run();
  EXPECT_TRUE(replies_.empty());
  EXPECT_EQ(worker_closed_, "peer closed the channel");
}

TEST_F(ServerTest, AnswersDnsblTxtThenFromTheCache) {
  ask_dnsbl(1, {{"ip", "127.0.0.2"}, {"zone", "BL.example."}, {"type", "txt"}});
  ask_dnsbl(2, {{"ip", "::ffff:127.0.0.2"}, {"zone", "bl.example"}, {"type", "txt"}});
  ASSERT_EQ(replies_.size(), 2u);
  EXPECT_EQ(replies_[0].type, protocol::kDnsblResult);
  EXPECT_EQ(replies_[0].request_id, 1u);
  EXPECT_EQ(replies_[0].get_or("status", ""), "listed");
  EXPECT_EQ(replies_[0].get_or("text", ""), "spam source");
  EXPECT_EQ(replies_[0].get_or("cached", ""), "no");
  EXPECT_TRUE(replies_[0].all("address").empty());
  EXPECT_EQ(replies_[1].request_id, 2u);
  EXPECT_EQ(replies_[1].get_or("text", ""), "spam source");
  EXPECT_EQ(replies_[1].get_or("cached", ""), "yes");
  EXPECT_EQ(dns_.queries, 1);
  EXPECT_EQ(server_->dnsbl_counters().hits, 1u);
  EXPECT_EQ(server_->dnsbl_counters().queries, 1u);
}

TEST_F(ServerTest, AnswersDnsblAWithAddressesAndClear) {
  ask_dnsbl(3, {{"ip", "127.0.0.2"}, {"zone", "bl.example"}, {"type", "a"}});
  ask_dnsbl(4, {{"ip", "127.0.0.1"}, {"zone", "bl.example"}, {"type", "a"}});
  ASSERT_EQ(replies_.size(), 2u);
  EXPECT_EQ(replies_[0].get_or("status", ""), "listed");
  auto addresses = replies_[0].all("address");
  EXPECT_EQ(std::vector<std::string>(addresses.begin(), addresses.end()),
            (std::vector<std::string>{"127.0.0.2", "127.0.0.4"}));
  EXPECT_EQ(replies_[0].get("text"), nullptr);
  EXPECT_EQ(replies_[1].get_or("status", ""), "clear");
  EXPECT_EQ(replies_[1].get("text"), nullptr);
  EXPECT_TRUE(replies_[1].all("address").empty());
}

TEST_F(ServerTest, MalformedDnsblQueriesCloseTheWorkersChannel) {
  const std::vector<std::vector<std::pair<std::string, std::string>>> bad = {
      {{"zone", "bl.example"}, {"type", "txt"}},
      {{"ip", "127.0.0.2"}, {"type", "txt"}},
      {{"ip", "127.0.0.2"}, {"zone", "bl.example"}},
      {{"ip", "bl.example"}, {"zone", "bl.example"}, {"type", "txt"}},
      {{"ip", "127.0.0.2"}, {"zone", "bl example"}, {"type", "txt"}},
      {{"ip", "127.0.0.2"}, {"zone", "bl.example"}, {"type", "mx"}},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    if (i > 0) connect_worker();
    ask_dnsbl(9, bad[i]);
    EXPECT_TRUE(replies_.empty());
    EXPECT_EQ(worker_closed_, "peer closed the channel");
  }
  EXPECT_EQ(dns_.queries, 0);
}

TEST_F(ServerTest, MasterClosingEndsTheService) {
  master_.reset();
  auto began = std::chrono::steady_clock::now();
  timeval guard{5, 0};
  event_base_loopexit(base_.get(), &guard);
  EXPECT_EQ(server_->service().run(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(2));
}

}  // namespace
}  // namespace sppd::dnsbl_cache
