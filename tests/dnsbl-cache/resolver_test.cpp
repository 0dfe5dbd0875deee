// Tests for dnsbl-cache/resolver and ptr_lookups against a real (fake) DNS server on
// loopback: c-ares driven by libevent, answers, NXDOMAIN, timeouts, caching, coalescing.
#include "dnsbl-cache/resolver.h"

#include <gtest/gtest.h>

#include "dnsbl-cache/ptr_lookups.h"
#include "fake_dns.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;

class ResolverTest : public ::testing::Test {
 protected:
  ResolverTest() : base_(event_base_new()), dns_(base_.get()) {
    ResolverOptions options;
    options.servers = dns_.address();
    options.timeout_ms = 200;
    options.tries = 1;
    resolver_ = std::make_unique<Resolver>(base_.get(), options);
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
    if (done < ips.size()) {
      timeval guard{5, 0};
      event_base_loopexit(base_.get(), &guard);
      event_base_dispatch(base_.get());
    }
    EXPECT_EQ(done, ips.size());
    return results;
  }

  EventBasePtr base_;
  FakeDns dns_;
  std::unique_ptr<Resolver> resolver_;
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
  // Errors are not cached: the next lookup asks again.
  lookup({"10.9.8.7"});
  EXPECT_EQ(dns_.queries, 2);
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
