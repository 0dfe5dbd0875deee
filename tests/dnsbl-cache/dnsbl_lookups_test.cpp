// Tests for dnsbl-cache/dnsbl_lookups against the fake DNS server on loopback, on a fake
// clock: answers cached for their TTL (and negative TTL), N concurrent requests -> one query,
// mapped addresses sharing the IPv4 entry, timeouts and failures as uncached errors, counters.
#include "dnsbl-cache/dnsbl_lookups.h"

#include <gtest/gtest.h>

#include "resolver_fixture.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;
using std::chrono::seconds;
constexpr char kListed[] = "2.0.0.127.bl.example";
constexpr char kClean[] = "3.0.0.127.bl.example";
constexpr uint16_t kTxt = 16;
constexpr uint16_t kA = 1;

struct Result {
  DnsblAnswer answer;
  bool cached = false;
};

class DnsblLookupsTest : public FakeDnsTest {
 protected:
  DnsblLookupsTest() {
    lookups_ = std::make_unique<DnsblLookups>(*resolver_, [this] { return now_; });
    dns_.typed_answers[{kListed, kTxt}] = {0, {txt_record(kListed, {"listed: spam"}, 600)}, {}};
    dns_.typed_answers[{kListed, kA}] = {0, {a_record(kListed, "127.0.0.2", 900)}, {}};
    dns_.answers[kClean] = {3, {}, {soa_record("bl.example", 3600, 120)}};
  }

  // Looks every ip up in bl.example, runs the loop until all are answered (or 5 s passed).
  std::vector<Result> lookup(const std::vector<std::string>& ips,
                             DnsblType type = DnsblType::kTxt) {
    std::vector<Result> results(ips.size());
    size_t done = 0;
    for (size_t i = 0; i < ips.size(); ++i) {
      lookups_->lookup(*parse_ip(ips[i]), "bl.example", type,
                       [&, i](const DnsblAnswer& answer, bool cached) {
                         results[i] = {answer, cached};
                         if (++done == ips.size()) event_base_loopbreak(base_.get());
                       });
    }
    wait_for_answers(done, ips.size());
    EXPECT_EQ(done, ips.size());
    return results;
  }

  std::unique_ptr<DnsblLookups> lookups_;
  DnsblLookups::Clock::time_point now_{};
};

TEST_F(DnsblLookupsTest, ListingIsCachedForItsTtl) {
  Result first = lookup({"127.0.0.2"})[0];
  EXPECT_EQ(first.answer.status, DnsblAnswer::Status::kListed);
  EXPECT_EQ(first.answer.text, "listed: spam");
  EXPECT_FALSE(first.cached);
  now_ += seconds(599);
  Result second = lookup({"127.0.0.2"})[0];
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(second.answer.text, "listed: spam");
  EXPECT_EQ(dns_.queries, 1);
  now_ += seconds(1);  // the TTL is over: ask again
  EXPECT_FALSE(lookup({"127.0.0.2"})[0].cached);
  EXPECT_EQ(dns_.queries, 2);
}

TEST_F(DnsblLookupsTest, ClearIsCachedForTheNegativeTtl) {
  Result first = lookup({"127.0.0.3"})[0];
  EXPECT_EQ(first.answer.status, DnsblAnswer::Status::kClear);
  now_ += seconds(119);
  EXPECT_TRUE(lookup({"127.0.0.3"})[0].cached);
  now_ += seconds(1);
  EXPECT_FALSE(lookup({"127.0.0.3"})[0].cached);
  EXPECT_EQ(dns_.queries_for[kClean], 2);
}

TEST_F(DnsblLookupsTest, TxtAndAAreSeparateEntries) {
  Result listed = lookup({"127.0.0.2"}, DnsblType::kA)[0];
  EXPECT_EQ(listed.answer.status, DnsblAnswer::Status::kListed);
  EXPECT_EQ(listed.answer.addresses, std::vector<std::string>{"127.0.0.2"});
  EXPECT_EQ(lookup({"127.0.0.2"}, DnsblType::kTxt)[0].answer.text, "listed: spam");
  EXPECT_EQ(dns_.queries, 2);
  EXPECT_EQ(lookups_->cache_size(), 2u);
}

TEST_F(DnsblLookupsTest, ConcurrentRequestsShareOneQuery) {
  std::vector<std::string> ips(50, "127.0.0.2");
  ips.push_back("::ffff:127.0.0.2");  // the same client, as an IPv6 socket sees it
  ips.push_back("127.0.0.3");
  std::vector<Result> results = lookup(ips);
  for (size_t i = 0; i < 51; ++i) {
    EXPECT_EQ(results[i].answer.text, "listed: spam") << i;
    EXPECT_FALSE(results[i].cached) << i;  // each waited for the query
  }
  EXPECT_EQ(results[51].answer.status, DnsblAnswer::Status::kClear);
  EXPECT_EQ(dns_.queries_for[kListed], 1);
  EXPECT_EQ(dns_.queries, 2);
  const LookupCounters& c = lookups_->counters();
  EXPECT_EQ(c.queries, 2u);
  EXPECT_EQ(c.misses, 52u);
  EXPECT_EQ(c.coalesced, 50u);
  EXPECT_EQ(c.hits, 0u);
  lookup({"127.0.0.2", "::ffff:127.0.0.2"});
  EXPECT_EQ(lookups_->counters().hits, 2u);
  EXPECT_EQ(dns_.queries, 2);
}

TEST_F(DnsblLookupsTest, TimeoutIsAnErrorAndNotCached) {
  auto began = std::chrono::steady_clock::now();
  std::vector<Result> results = lookup({"10.9.8.7", "10.9.8.7"});
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(2));
  EXPECT_EQ(results[0].answer.status, DnsblAnswer::Status::kError);
  EXPECT_EQ(results[1].answer.status, DnsblAnswer::Status::kError);
  EXPECT_EQ(lookups_->counters().timeouts, 1u);
  EXPECT_EQ(lookups_->counters().errors, 0u);
  EXPECT_EQ(lookups_->cache_size(), 0u);
  int sent = dns_.queries;  // c-ares tries twice within the timeout
  EXPECT_EQ(lookup({"10.9.8.7"})[0].answer.status, DnsblAnswer::Status::kError);
  EXPECT_GT(dns_.queries, sent);  // asked again
  EXPECT_EQ(lookups_->counters().queries, 2u);
  EXPECT_EQ(lookups_->counters().timeouts, 2u);
}

TEST_F(DnsblLookupsTest, ServfailAndRefusalAreErrorsAndNotCached) {
  dns_.answers["4.0.0.127.bl.example"] = {2, {}, {}};  // SERVFAIL
  dns_.answers["5.0.0.127.bl.example"] = {
      0, {a_record("5.0.0.127.bl.example", "127.255.255.254", 300)}, {}};
  EXPECT_EQ(lookup({"127.0.0.4"})[0].answer.status, DnsblAnswer::Status::kError);
  EXPECT_EQ(lookup({"127.0.0.5"}, DnsblType::kA)[0].answer.status, DnsblAnswer::Status::kError);
  EXPECT_EQ(lookups_->counters().errors, 2u);
  EXPECT_EQ(lookups_->counters().timeouts, 0u);
  EXPECT_EQ(lookups_->cache_size(), 0u);
  EXPECT_FALSE(lookup({"127.0.0.5"}, DnsblType::kA)[0].cached);
  EXPECT_EQ(dns_.queries_for["5.0.0.127.bl.example"], 2);
}

TEST_F(DnsblLookupsTest, CacheIsBounded) {
  lookups_ = std::make_unique<DnsblLookups>(
      *resolver_, [this] { return now_; }, 1);
  lookup({"127.0.0.2"});
  lookup({"127.0.0.3"});  // evicts 127.0.0.2
  EXPECT_EQ(lookups_->cache_size(), 1u);
  EXPECT_FALSE(lookup({"127.0.0.2"})[0].cached);
  EXPECT_EQ(dns_.queries_for[kListed], 2);
}

TEST_F(DnsblLookupsTest, TooLongNamesAreErrorsWithoutAQuery) {
  std::string zone =
      std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + ".example";
  bool answered = false;
  lookups_->lookup(*parse_ip("2001:db8::1"), zone, DnsblType::kTxt,
                   [&](const DnsblAnswer& answer, bool) {
                     answered = true;
                     EXPECT_EQ(answer.status, DnsblAnswer::Status::kError);
                   });
  EXPECT_TRUE(answered);
  EXPECT_EQ(lookups_->counters().queries, 0u);
}

TEST_F(DnsblLookupsTest, CachedVerdictsArePublishedInTheSharedTable) {
  DnsblTableReader table(lookups_->table_descriptor());
  EXPECT_EQ(table.slot_count(), lookups_->table_slots());
  auto key = [](const char* ip, DnsblTableKey::Type type = DnsblTableKey::Type::kTxt) {
    return *DnsblTableKey::make(ip, "bl.example", type);
  };
  EXPECT_FALSE(table.find(key("127.0.0.2"), now_));
  lookup({"::ffff:127.0.0.2", "127.0.0.3"});
  lookup({"127.0.0.2"}, DnsblType::kA);
  dns_.answers["4.0.0.127.bl.example"] = {2, {}, {}};  // SERVFAIL: an error, never published
  lookup({"127.0.0.4"});

  EXPECT_EQ(table.find(key("127.0.0.2"), now_), (DnsblTableVerdict{true, "listed: spam", {}}));
  EXPECT_EQ(table.find(key("127.0.0.2", DnsblTableKey::Type::kA), now_),
            (DnsblTableVerdict{true, "", {"127.0.0.2"}}));
  EXPECT_EQ(table.find(key("127.0.0.3"), now_), DnsblTableVerdict{});
  EXPECT_FALSE(table.find(key("127.0.0.4"), now_));
  // Each expires with its cache entry: TXT after 600 s, the negative answer after 120 s.
  EXPECT_TRUE(table.find(key("127.0.0.2"), now_ + seconds(599)));
  EXPECT_FALSE(table.find(key("127.0.0.2"), now_ + seconds(600)));
  EXPECT_TRUE(table.find(key("127.0.0.3"), now_ + seconds(119)));
  EXPECT_FALSE(table.find(key("127.0.0.3"), now_ + seconds(120)));
}

TEST_F(DnsblLookupsTest, WithoutATableNothingIsPublished) {
  lookups_ = std::make_unique<DnsblLookups>(
      *resolver_, [this] { return now_; }, 10, 0);
  EXPECT_FALSE(lookups_->table_descriptor());
  EXPECT_EQ(lookups_->table_slots(), 0u);
  EXPECT_EQ(lookup({"127.0.0.2"})[0].answer.text, "listed: spam");
}

}  // namespace
}  // namespace sppd::dnsbl_cache
