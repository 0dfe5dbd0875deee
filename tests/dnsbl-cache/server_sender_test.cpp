// Tests for dnsbl-cache/server_sender: kSenderCheck answered with kSenderVerdict over a real
// worker channel (verdict, the exchanger's reply lines, cached), a sender domain that is no
// domain answered rather than punished, what only a broken worker sends costing its channel,
// and the sender.* / callback.* status counters.
#include <arpa/nameser.h>
#include <gtest/gtest.h>

#include <memory>

#include "common/protocol.h"
#include "dnsbl-cache/server.h"
#include "fake_dns.h"
#include "fake_smtp.h"
#include "tests/common/test_support.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;
using Attrs = std::vector<std::pair<std::string, std::string>>;

class ServerSenderTest : public test_support::FakeMasterTest {
 protected:
  void SetUp() override {
    FakeMasterTest::SetUp();
    dns_ = std::make_unique<FakeDns>(base_.get());
    smtp_ = std::make_unique<FakeSmtp>(base_.get());
    dns_->answers["sender.test"] = {0, {}, {soa_record("sender.test", 300, 300)}};
    dns_->typed_answers[{"sender.test", ns_t_a}] = {
        0, {a_record("sender.test", "127.0.0.1", 300)}, {}};
    dns_->answers["none.test"] = {3, {}, {soa_record("test", 300, 300)}};
    smtp_->rcpt_replies["known@sender.test"] = "250 ok";
    smtp_->default_rcpt_reply = "550-unknown\r\n550 user";
    ResolverOptions options;
    options.servers = dns_->address();
    resolver_ = std::make_unique<Resolver>(base_.get(), options);
    server_ = std::make_unique<Server>(base_.get(), "/nonexistent/sppd.conf",
                                       std::move(service_control_), *resolver_);
    SenderCheckOptions sender_options;
    sender_options.callback.port = smtp_->port();
    server_->set_sender_check_options(sender_options);
    connect_worker();
  }

  // Sends a kSenderCheck and runs until its verdict (nullptr if the channel closed instead).
  const ipc::Frame* ask(uint32_t id, const Attrs& attrs) {
    ipc::Frame frame(protocol::kSenderCheck, id);
    for (const auto& [name, value] : attrs) frame.add(name, value);
    worker_->send(std::move(frame));
    run_until([&] { return reply(id, protocol::kSenderVerdict) || worker_closed_; });
    return reply(id, protocol::kSenderVerdict);
  }

  uint64_t counter(const std::string& name) {
    for (const auto& [counter, value] : server_->status_counters()) {
      if (counter == name) return value;
    }
    ADD_FAILURE() << "no counter " << name;
    return 0;
  }

  std::unique_ptr<FakeDns> dns_;
  std::unique_ptr<FakeSmtp> smtp_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerSenderTest, LevelOneAnswersFromDns) {
  const ipc::Frame* ok = ask(1, {{"sender", "a@sender.test"}, {"level", "1"}});
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->get_or("verdict", ""), "ok");
  EXPECT_EQ(ok->get_or("cached", ""), "no");
  const ipc::Frame* none = ask(2, {{"sender", "a@none.test"}, {"level", "1"}});
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->get_or("verdict", ""), "no_domain");
  // The client's text, not the worker's fault: answered, the channel stays.
  const ipc::Frame* junk = ask(3, {{"sender", "a@not a domain"}, {"level", "1"}});
  ASSERT_NE(junk, nullptr);
  EXPECT_EQ(junk->get_or("verdict", ""), "no_domain");
  EXPECT_FALSE(worker_closed_);
  EXPECT_EQ(smtp_->connections, 0);
  EXPECT_EQ(counter("sender.queries"), 4u);  // sender.test MX A AAAA, none.test MX
}

TEST_F(ServerSenderTest, LevelTwoCarriesTheRefusalLinesAndCaches) {
  Attrs unknown = {{"sender", "nobody@sender.test"},
                   {"level", "2"},
                   {"helo", "mx.us.test"},
                   {"mxblacklist", "192.0.2.1"}};
  const ipc::Frame* refused = ask(1, unknown);
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->get_or("verdict", ""), "rejected");
  std::vector<std::string> lines;
  for (auto line : refused->all("reply")) lines.emplace_back(line);
  EXPECT_EQ(lines, (std::vector<std::string>{"550-unknown", "550 user"}));
  EXPECT_EQ(refused->get_or("detail", ""), "call-back refused by 127.0.0.1");
  const ipc::Frame* again = ask(2, unknown);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->get_or("verdict", ""), "rejected");
  EXPECT_EQ(again->get_or("cached", ""), "yes");
  EXPECT_EQ(smtp_->connections, 1);
  EXPECT_EQ(counter("callback.queries"), 1u);
  EXPECT_EQ(counter("callback.hits"), 1u);

  const ipc::Frame* blacklisted = ask(3, {{"sender", "known@sender.test"},
                                          {"level", "2"},
                                          {"helo", "mx.us.test"},
                                          {"mxblacklist", "127.0.0.1"}});
  ASSERT_NE(blacklisted, nullptr);
  EXPECT_EQ(blacklisted->get_or("verdict", ""), "mx_blacklisted");
}

TEST_F(ServerSenderTest, WhatOnlyABrokenWorkerSendsClosesItsChannel) {
  for (const Attrs& attrs :
       std::vector<Attrs>{{{"level", "1"}},
                          {{"sender", "no-at-sign"}, {"level", "1"}},
                          {{"sender", "a@sender.test"}, {"level", "3"}},
                          {{"sender", "a@sender.test"}, {"level", "2"}},
                          {{"sender", "a@sender.test"}, {"level", "2"}, {"helo", "two words"}},
                          {{"sender", "a@sender.test"},
                           {"level", "2"},
                           {"helo", "mx.us.test"},
                           {"mxblacklist", "localhost"}}}) {
    SCOPED_TRACE(attrs.size());
    EXPECT_EQ(ask(9, attrs), nullptr);
    EXPECT_TRUE(worker_closed_);
    connect_worker();
  }
}

}  // namespace
}  // namespace sppd::dnsbl_cache
