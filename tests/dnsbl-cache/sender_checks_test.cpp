// Tests for dnsbl-cache/sender_checks: mfcheck's verdicts against the fake DNS server (MX, an
// A record alone, NXDOMAIN, no records, SERVFAIL, silence, null MX, names that are no domain),
// the caches on a fake clock, coalescing, and level 2's call-back against a scripted SMTP
// server with the mxblacklist.
#include "dnsbl-cache/sender_checks.h"

#include <arpa/nameser.h>
#include <gtest/gtest.h>

#include <optional>

#include "fake_smtp.h"
#include "resolver_fixture.h"
#include "tests/common/test_support.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;
using namespace std::chrono_literals;
using Status = SenderVerdict::Status;

Record mx_record(const std::string& owner, uint16_t preference, const std::string& host,
                 uint32_t ttl) {
  Bytes rdata;
  put16(&rdata, preference);
  Bytes name = encode_name(host);
  rdata.insert(rdata.end(), name.begin(), name.end());
  return Record{owner, ns_t_mx, ttl, rdata};
}

CannedAnswer found(std::vector<Record> records) { return {0, std::move(records), {}}; }

// No records of the asked type (NOERROR, an SOA for the negative TTL).
CannedAnswer no_records(const std::string& zone) { return {0, {}, {soa_record(zone, 300, 300)}}; }

class SenderChecksTest : public FakeDnsTest {
 protected:
  SenderChecksTest()
      : smtp_(base_.get()), checks_(base_.get(), *resolver_, [this] { return now_; }) {
    // mx.test: one exchanger with an address.
    dns_.answers["mx.test"] = no_records("mx.test");
    dns_.typed_answers[{"mx.test", ns_t_mx}] =
        found({mx_record("mx.test", 10, "mail.mx.test", 300)});
    dns_.answers["mail.mx.test"] = no_records("mx.test");
    dns_.typed_answers[{"mail.mx.test", ns_t_a}] =
        found({a_record("mail.mx.test", "127.0.0.1", 300)});
    // aonly.test: no MX, an A record.
    dns_.answers["aonly.test"] = no_records("aonly.test");
    dns_.typed_answers[{"aonly.test", ns_t_a}] = found({a_record("aonly.test", "127.0.0.1", 300)});
    dns_.answers["none.test"] = {3, {}, {soa_record("test", 300, 300)}};  // NXDOMAIN
    dns_.answers["empty.test"] = no_records("empty.test");
    dns_.answers["broken.test"] = {2, {}, {}};  // SERVFAIL
    dns_.typed_answers[{"nullmx.test", ns_t_mx}] = found({mx_record("nullmx.test", 0, "", 300)});
    // cb.test: two exchangers; the preferred one at 127.0.0.9, where nothing listens.
    dns_.typed_answers[{"cb.test", ns_t_mx}] =
        found({mx_record("cb.test", 20, "mx2.cb.test", 300),
               mx_record("cb.test", 10, "mx1.cb.test", 300)});
    for (const char* host : {"mx1.cb.test", "mx2.cb.test"})
      dns_.answers[host] = no_records("cb.test");
    dns_.typed_answers[{"mx1.cb.test", ns_t_a}] =
        found({a_record("mx1.cb.test", "127.0.0.9", 300)});
    dns_.typed_answers[{"mx2.cb.test", ns_t_a}] =
        found({a_record("mx2.cb.test", "127.0.0.1", 300)});
    smtp_.rcpt_replies["known@cb.test"] = "250 2.1.5 ok";
    smtp_.rcpt_replies["known@aonly.test"] = "250 2.1.5 ok";
    smtp_.default_rcpt_reply = "550-no such user\r\n550 here";
    SenderCheckOptions options;
    options.callback.port = smtp_.port();
    options.callback.timeout = 2000ms;
    checks_.set_options(options);
  }

  // Starts a check; its verdict lands in the returned slot once the loop ran.
  std::shared_ptr<std::optional<SenderVerdict>> start(const std::string& sender, int level = 1,
                                                      std::vector<std::string> blacklist = {}) {
    auto slot = std::make_shared<std::optional<SenderVerdict>>();
    checks_.check({sender, level, "mx.us.test", std::move(blacklist)},
                  [slot](const SenderVerdict& verdict) { *slot = verdict; });
    return slot;
  }

  SenderVerdict check(const std::string& sender, int level = 1,
                      std::vector<std::string> blacklist = {}) {
    auto slot = start(sender, level, std::move(blacklist));
    test_support::run_until(
        base_.get(), [&] { return slot->has_value(); }, 10);
    EXPECT_TRUE(slot->has_value()) << sender;
    return slot->value_or(SenderVerdict{});
  }

  SenderChecks::Clock::time_point now_{};
  FakeSmtp smtp_;
  SenderChecks checks_;
};

TEST_F(SenderChecksTest, DomainWithAnMxExistsAndTheAnswerIsCached) {
  SenderVerdict first = check("alice@mx.test");
  EXPECT_EQ(first.status, Status::kOk);
  EXPECT_FALSE(first.cached);
  EXPECT_EQ(first.detail, "MX mail.mx.test");
  SenderVerdict second = check("bob@MX.test");
  EXPECT_EQ(second.status, Status::kOk);
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(dns_.queries, 1);
  EXPECT_EQ(checks_.dns_counters().hits, 1u);
}

TEST_F(SenderChecksTest, DomainWithAnAddressButNoMxExists) {
  SenderVerdict verdict = check("alice@aonly.test");
  EXPECT_EQ(verdict.status, Status::kOk);
  EXPECT_EQ(verdict.detail, "no MX; address 127.0.0.1");
}

TEST_F(SenderChecksTest, NxdomainIsNoDomainAfterOneQuery) {
  EXPECT_EQ(check("alice@none.test").status, Status::kNoDomain);
  EXPECT_EQ(dns_.queries_for["none.test"], 1) << "NXDOMAIN: no A/AAAA asked";
}

TEST_F(SenderChecksTest, NoMxNorAddressIsNoDomain) {
  SenderVerdict verdict = check("alice@empty.test");
  EXPECT_EQ(verdict.status, Status::kNoDomain);
  EXPECT_EQ(dns_.queries_for["empty.test"], 3);  // MX, A, AAAA
}

TEST_F(SenderChecksTest, DnsFailuresAreErrorsAndNotCached) {
  EXPECT_EQ(check("alice@broken.test").status, Status::kDnsError);
  int asked = dns_.queries_for["broken.test"];  // c-ares tries a SERVFAIL again itself
  EXPECT_EQ(check("alice@broken.test").status, Status::kDnsError);
  EXPECT_EQ(dns_.queries_for["broken.test"], 2 * asked);
  SenderVerdict silent = check("alice@silent.test");  // the fake server never answers
  EXPECT_EQ(silent.status, Status::kDnsError);
  EXPECT_EQ(checks_.dns_counters().timeouts, 1u);
}

TEST_F(SenderChecksTest, NullMxSaysTheDomainTakesNoMail) {
  EXPECT_EQ(check("alice@nullmx.test").status, Status::kNullMx);
}

TEST_F(SenderChecksTest, WhatIsNoDomainNameIsNeverAsked) {
  for (const char* sender : {"a@bad..test", "a@localhost", "a@", "a@spa ce.test"}) {
    EXPECT_EQ(check(sender).status, Status::kNoDomain) << sender;
  }
  EXPECT_EQ(check("a@[127.0.0.1]").status, Status::kOk);
  EXPECT_EQ(dns_.queries, 0);
}

TEST_F(SenderChecksTest, ConcurrentChecksShareOneQuery) {
  auto first = start("alice@mx.test");
  auto second = start("bob@mx.test");
  test_support::run_until(
      base_.get(), [&] { return first->has_value() && second->has_value(); }, 10);
  ASSERT_TRUE(first->has_value() && second->has_value());
  EXPECT_EQ((*second)->status, Status::kOk);
  EXPECT_FALSE((*second)->cached);
  EXPECT_EQ(dns_.queries, 1);
  EXPECT_EQ(checks_.dns_counters().coalesced, 1u);
}

TEST_F(SenderChecksTest, AnswersExpireWithTheirTtl) {
  check("alice@mx.test");
  now_ += 299s;
  EXPECT_TRUE(check("alice@mx.test").cached);
  now_ += 2s;
  EXPECT_FALSE(check("alice@mx.test").cached);
  EXPECT_EQ(dns_.queries, 2);
}

TEST_F(SenderChecksTest, CallBackAcceptsAKnownMailboxSkippingBlacklistedExchangers) {
  SenderVerdict verdict = check("known@cb.test", 2, {"127.0.0.9"});
  EXPECT_EQ(verdict.status, Status::kOk);
  EXPECT_EQ(verdict.detail, "call-back accepted by 127.0.0.1");
  EXPECT_EQ(verdict.reply, std::vector<std::string>{"250 2.1.5 ok"});
  EXPECT_EQ(smtp_.connections, 1);
  EXPECT_EQ(smtp_.received, (std::vector<std::string>{"HELO mx.us.test", "MAIL FROM:<>",
                                                      "RCPT TO:<known@cb.test>", "QUIT"}));
  SenderVerdict again = check("known@cb.test", 2, {"127.0.0.9"});
  EXPECT_EQ(again.status, Status::kOk);
  EXPECT_TRUE(again.cached);
  EXPECT_EQ(smtp_.connections, 1);
  EXPECT_EQ(checks_.callback_counters().hits, 1u);
}

TEST_F(SenderChecksTest, CallBackTriesExchangersByPreference) {
  // Without a blacklist the preferred exchanger (127.0.0.9, nobody listening) comes first.
  SenderVerdict verdict = check("known@cb.test", 2);
  EXPECT_EQ(verdict.status, Status::kOk);
  EXPECT_EQ(verdict.detail, "call-back accepted by 127.0.0.1");
}

TEST_F(SenderChecksTest, RefusedMailboxIsRejectedForTheNegativeTime) {
  SenderVerdict verdict = check("nobody@cb.test", 2, {"127.0.0.9"});
  EXPECT_EQ(verdict.status, Status::kRejected);
  EXPECT_EQ(verdict.reply, (std::vector<std::string>{"550-no such user", "550 here"}));
  EXPECT_EQ(check("nobody@cb.test", 2, {"127.0.0.9"}).status, Status::kRejected);
  EXPECT_EQ(smtp_.connections, 1);
  now_ += 601s;
  EXPECT_EQ(check("nobody@cb.test", 2, {"127.0.0.9"}).status, Status::kRejected);
  EXPECT_EQ(smtp_.connections, 2);
}

TEST_F(SenderChecksTest, EveryExchangerBlacklistedIsRefusedWithoutACall) {
  SenderVerdict verdict = check("known@cb.test", 2, {"127.0.0.9", "127.0.0.1"});
  EXPECT_EQ(verdict.status, Status::kMxBlacklisted);
  EXPECT_EQ(smtp_.connections, 0);
  // Level 1 does not look at the exchangers' addresses at all.
  EXPECT_EQ(check("known@cb.test", 1, {"127.0.0.9", "127.0.0.1"}).status, Status::kOk);
}

TEST_F(SenderChecksTest, ImplicitMxIsCalledBack) {
  SenderVerdict verdict = check("known@aonly.test", 2);
  EXPECT_EQ(verdict.status, Status::kOk);
  EXPECT_EQ(smtp_.connections, 1);
}

TEST_F(SenderChecksTest, ConcurrentChecksShareOneCallBack) {
  auto first = start("known@cb.test", 2, {"127.0.0.9"});
  auto second = start("known@cb.test", 2, {"127.0.0.9"});
  test_support::run_until(
      base_.get(), [&] { return first->has_value() && second->has_value(); }, 10);
  ASSERT_TRUE(first->has_value() && second->has_value());
  EXPECT_EQ((*first)->status, Status::kOk);
  EXPECT_EQ((*second)->status, Status::kOk);
  EXPECT_EQ(smtp_.connections, 1);
  EXPECT_EQ(checks_.callback_counters().queries, 1u);
  EXPECT_EQ(checks_.callback_counters().coalesced, 1u);
}

TEST_F(SenderChecksTest, UnreachableExchangersLeaveTheSenderUnverifiedForAWhile) {
  SenderCheckOptions options = checks_.options();
  options.callback.port = closed_port();
  checks_.set_options(options);
  SenderVerdict verdict = check("known@cb.test", 2);
  EXPECT_EQ(verdict.status, Status::kUnverified);
  EXPECT_NE(verdict.detail.find("127.0.0.9: cannot connect"), std::string::npos) << verdict.detail;
  EXPECT_NE(verdict.detail.find("127.0.0.1: cannot connect"), std::string::npos) << verdict.detail;
  EXPECT_TRUE(check("known@cb.test", 2).cached);
  EXPECT_EQ(checks_.callback_counters().queries, 1u);
  EXPECT_EQ(checks_.callback_counters().errors, 1u);
}

TEST(SenderAnswerTest, NegativeAnswersCarryTheSoaTtlAndErrorsNone) {
  Bytes nx = make_response(1, 3, "x.test", ns_t_mx, {}, {soa_record("test", 900, 120)});
  SenderDnsAnswer answer =
      interpret_sender_answer(ns_t_mx, ARES_ENOTFOUND, nx.data(), static_cast<int>(nx.size()));
  EXPECT_EQ(answer.status, SenderDnsAnswer::Status::kNoDomain);
  EXPECT_EQ(answer.ttl, 120s);
  answer = interpret_sender_answer(ns_t_a, ARES_ESERVFAIL, nullptr, 0);
  EXPECT_EQ(answer.status, SenderDnsAnswer::Status::kError);
  EXPECT_EQ(answer.ttl, 0s);
}

TEST(SenderAnswerTest, ExchangersAreSortedAndBadNamesDropped) {
  Bytes mx = make_response(
      1, 0, "x.test", ns_t_mx,
      {mx_record("x.test", 30, "c.x.test", 100), mx_record("x.test", 10, "A.X.test", 100),
       mx_record("x.test", 20, "bad!name.test", 100), mx_record("x.test", 10, "b.x.test", 100)});
  SenderDnsAnswer answer =
      interpret_sender_answer(ns_t_mx, ARES_SUCCESS, mx.data(), static_cast<int>(mx.size()));
  ASSERT_EQ(answer.status, SenderDnsAnswer::Status::kFound);
  std::vector<std::string> hosts;
  for (const MailExchanger& exchanger : answer.exchangers) hosts.push_back(exchanger.host);
  EXPECT_EQ(hosts, (std::vector<std::string>{"a.x.test", "b.x.test", "c.x.test"}));
  EXPECT_EQ(answer.ttl, 100s);
}

TEST(SenderCheckOptionsTest, ReadsTheCallBackSettings) {
  config::Config config = config::parse(
      "[service dnsbl-cache]\ncallback_port = 2525\ncallback_timeout = 7\n"
      "[listener smtp]\naddress = 127.0.0.1:25\n",
      "/etc/sppd.conf");
  SenderCheckOptions options = sender_check_options(config);
  EXPECT_EQ(options.callback.port, 2525);
  EXPECT_EQ(options.callback.timeout, 7s);
  config.services["dnsbl-cache"].settings["callback_timeout"] = "0";
  EXPECT_THROW(sender_check_options(config), config::ConfigError);
  config.services["dnsbl-cache"].settings["callback_timeout"] = "7";
  config.services["dnsbl-cache"].settings["callback_port"] = "70000";
  EXPECT_THROW(sender_check_options(config), config::ConfigError);
}

}  // namespace
}  // namespace sppd::dnsbl_cache
