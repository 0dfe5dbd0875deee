// Tests for dnsbl-cache/server: the frames a worker and the master exchange with the cache
// over real SOCK_SEQPACKET channels (protocol.h kNewClient, kDnsPtr, kDnsPtrResult, kServed).
#include "dnsbl-cache/server.h"

#include <gtest/gtest.h>

#include <chrono>

#include "common/protocol.h"
#include "fake_dns.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : base_(event_base_new()), dns_(base_.get()) {
    dns_.answers["4.3.2.1.in-addr.arpa"] = {
        0, {ptr_record("4.3.2.1.in-addr.arpa", "host.example", 300)}, {}};
    ResolverOptions options;
    options.servers = dns_.address();
    resolver_ = std::make_unique<Resolver>(base_.get(), options);
    auto [ours, theirs] = ipc::make_socketpair();
    server_ = std::make_unique<Server>(base_.get(), "/nonexistent/sppd.conf", std::move(theirs),
                                       *resolver_);
    master_ = std::make_unique<ipc::Channel>(
        base_.get(), std::move(ours), [this](ipc::Frame&& f) { to_master_.push_back(f.type); },
        [](const std::string&) {});
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

  void run() {
    timeval guard{5, 0};
    event_base_loopexit(base_.get(), &guard);
    event_base_dispatch(base_.get());
  }

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
