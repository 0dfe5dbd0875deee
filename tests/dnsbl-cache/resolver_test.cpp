// Tests for dnsbl-cache/resolver and ptr_lookups against a real (fake) DNS server on
// loopback: c-ares driven by libevent, answers, NXDOMAIN, timeouts, caching, coalescing.
#include "dnsbl-cache/resolver.h"

#include <gtest/gtest.h>

#include "dnsbl-cache/ptr_lookups.h"
#include "resolver_fixture.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;

class ResolverTest : public FakeDnsTest {
 protected:
  ResolverTest() {
    lookups_ = std::make_unique<PtrLookups>(*resolver_);
    dns_.answers["4.3.2.1.in-addr.arpa"] = {
        0, {ptr_record("4.3.2.1.in-addr.arpa", "Mail.Example.org", 300)}, {}};
    dns_.answers["5.3.2.1.in-addr.arpa"] = {3, {}, {soa_record("in-addr.arpa", 900, 30)}};
  }

  // Looks up every ip, runs the loop until all answered (or 5 s passed).
  std::vector<PtrAnswer> lookup(const std::vector<std::string>& ips) {
    std::vector<PtrAnswer> results(ips.size());
    size_t done = 0;
    for (size_t i = 0; i < ips.size(); ++i) {
      lookups_->lookup(*parse_ip(ips[i]), [&, i](const PtrAnswer& a) {
        results[i] = a;
        if (++done == ips.size()) event_base_loopbreak(base_.get());
      });
    }
    wait_for_answers(done, ips.size());
    EXPECT_EQ(done, ips.size());
    return results;
  }

  std::unique_ptr<PtrLookups> lookups_;
};

TEST_F(ResolverTest, FindsNameAndCachesIt) {
  auto first = lookup({"1.2.3.4"});
  EXPECT_EQ(first[0].status, PtrAnswer::Status::kOk);
  EXPECT_EQ(first[0].name, "mail.example.org");
  EXPECT_EQ(dns_.queries, 1);
  auto second = lookup({"1.2.3.4"});
  EXPECT_EQ(second[0].name, "mail.example.org");
  EXPECT_EQ(dns_.queries, 1);
}

TEST_F(ResolverTest, NxdomainIsNone) {
  auto result = lookup({"1.2.3.5"});
  EXPECT_EQ(result[0].status, PtrAnswer::Status::kNone);
  EXPECT_EQ(result[0].ttl, std::chrono::seconds(30));
}

TEST_F(ResolverTest, ConcurrentLookupsShareOneQuery) {
  auto results = lookup({"1.2.3.4", "1.2.3.4", "1.2.3.5"});
  EXPECT_EQ(results[0].name, "mail.example.org");
  EXPECT_EQ(results[1].name, "mail.example.org");
  EXPECT_EQ(results[2].status, PtrAnswer::Status::kNone);
  EXPECT_EQ(dns_.queries, 2);
}

TEST_F(ResolverTest, SilenceIsATimeoutError) {
  auto result = lookup({"10.9.8.7"});
  EXPECT_EQ(result[0].status, PtrAnswer::Status::kError);
  EXPECT_EQ(dns_.queries, 2);  // c-ares tried twice within the timeout
  // Errors are not cached: the next lookup asks again.
  lookup({"10.9.8.7"});
  EXPECT_EQ(dns_.queries, 4);
}

TEST_F(ResolverTest, PtrCountersCountHitsMissesAndTimeouts) {
  lookup({"1.2.3.4", "1.2.3.4", "10.9.8.7"});
  lookup({"1.2.3.4"});
  const LookupCounters& c = lookups_->counters();
  EXPECT_EQ(c.queries, 2u);
  EXPECT_EQ(c.misses, 3u);
  EXPECT_EQ(c.coalesced, 1u);
  EXPECT_EQ(c.hits, 1u);
  EXPECT_EQ(c.timeouts, 1u);
  EXPECT_EQ(c.errors, 0u);
}

TEST_F(ResolverTest, DeadlineHoldsWithSeveralSilentServers) {
  // c-ares alone would try both servers twice (100 + 100 + 200 + 200 ms); the deadline
  // answers at 300 ms.
  FakeDns silent(base_.get());
  resolver_->set_servers(silent.address() + "," + silent.address());
  auto began = std::chrono::steady_clock::now();
  int calls = 0;
  int status = ARES_SUCCESS;
  resolver_->query("nothing.example", 1, [&](int s, const unsigned char*, int) {
    ++calls;
    status = s;
    event_base_loopbreak(base_.get());
  });
  timeval guard{5, 0};
  event_base_loopexit(base_.get(), &guard);
  event_base_dispatch(base_.get());
  auto took = std::chrono::steady_clock::now() - began;
  EXPECT_EQ(status, ARES_ETIMEOUT);
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::milliseconds(500));
  // c-ares's own end of the query later is not a second answer.
  timeval rest{0, 500000};
  event_base_loopexit(base_.get(), &rest);
  event_base_dispatch(base_.get());
  EXPECT_EQ(calls, 1);
}

TEST_F(ResolverTest, ServerChangeResendsTheQueriesOut) {
  // c-ares 1.18 refuses new servers while a query is out: the resolver takes the queries
  // back and asks the new servers, long before the deadline.
  FakeDns silent(base_.get());
  resolver_->set_servers(silent.address());
  PtrAnswer answer;
  lookups_->lookup(*parse_ip("1.2.3.4"), [&](const PtrAnswer& a) {
    answer = a;
    event_base_loopbreak(base_.get());
  });
  resolver_->set_servers(silent.address());  // unchanged: nothing happens
  EXPECT_THROW(resolver_->set_servers("nonsense"), ResolverError);
  resolver_->set_servers(dns_.address());
  auto began = std::chrono::steady_clock::now();
  timeval guard{5, 0};
  event_base_loopexit(base_.get(), &guard);
  event_base_dispatch(base_.get());
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(200));
  EXPECT_EQ(answer.status, PtrAnswer::Status::kOk);
  EXPECT_EQ(silent.queries, 1);
  EXPECT_EQ(dns_.queries, 1);
}

TEST_F(ResolverTest, ServersCanBeChangedAndBadOnesAreRefused) {
  EXPECT_THROW(resolver_->set_servers("not an address"), ResolverError);
  EXPECT_NO_THROW(resolver_->set_servers("[::1]:5353"));
  EXPECT_NO_THROW(resolver_->set_servers(""));
  resolver_->set_servers(dns_.address());
  EXPECT_EQ(lookup({"1.2.3.4"})[0].status, PtrAnswer::Status::kOk);
}

}  // namespace
}  // namespace sppd::dnsbl_cache
