// Tests for dnsbl-cache/ttl_cache on a fake clock: TTL expiry, zero TTLs never kept, LRU
// eviction, replacement, and keys that are structs (the DNSBL key).
#include "dnsbl-cache/ttl_cache.h"

#include <gtest/gtest.h>

#include <string>

#include "dnsbl-cache/dnsbl_lookups.h"

namespace sppd::dnsbl_cache {
namespace {

using std::chrono::seconds;
using Cache = TtlCache<std::string, std::string>;

TEST(TtlCacheTest, KeepsValuesForTheirTtl) {
  Cache cache(10);
  Cache::Clock::time_point now{};
  cache.store("1.2.3.4", "a.example", seconds(10), now);
  ASSERT_NE(cache.find("1.2.3.4", now + seconds(9)), nullptr);
  EXPECT_EQ(*cache.find("1.2.3.4", now + seconds(9)), "a.example");
  EXPECT_EQ(cache.find("1.2.3.4", now + seconds(10)), nullptr);
  EXPECT_EQ(cache.size(), 0u);  // an expired entry goes when found
}

TEST(TtlCacheTest, ZeroTtlsAreNotKept) {
  Cache cache(10);
  Cache::Clock::time_point now{};
  cache.store("a", "x", seconds(0), now);
  cache.store("b", "x", seconds(-5), now);
  EXPECT_EQ(cache.size(), 0u);
  Cache none(0);
  none.store("a", "x", seconds(60), now);
  EXPECT_EQ(none.size(), 0u);
}

TEST(TtlCacheTest, EvictsLeastRecentlyUsed) {
  Cache cache(2);
  Cache::Clock::time_point now{};
  cache.store("a", "a", seconds(60), now);
  cache.store("b", "b", seconds(60), now);
  EXPECT_NE(cache.find("a", now), nullptr);  // a is now more recent than b
  cache.store("c", "c", seconds(60), now);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.find("a", now), nullptr);
  EXPECT_EQ(cache.find("b", now), nullptr);
  EXPECT_NE(cache.find("c", now), nullptr);
  cache.store("c", "c2", seconds(60), now);  // replacing does not grow the cache
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(*cache.find("c", now), "c2");
  // c was used last, so storing d evicts a.
  cache.store("d", "d", seconds(60), now);
  EXPECT_EQ(cache.find("a", now), nullptr);
  EXPECT_NE(cache.find("c", now), nullptr);
}

TEST(TtlCacheTest, ReplacingRenewsTheTtl) {
  Cache cache(10);
  Cache::Clock::time_point now{};
  cache.store("a", "old", seconds(10), now);
  cache.store("a", "new", seconds(10), now + seconds(5));
  ASSERT_NE(cache.find("a", now + seconds(14)), nullptr);
  EXPECT_EQ(*cache.find("a", now + seconds(14)), "new");
}

TEST(TtlCacheTest, ManyEntriesStayBounded) {
  // Enough entries to make the map rehash: the LRU list points into map nodes.
  TtlCache<DnsblKey, int, DnsblKeyHash> cache(1000);
  Cache::Clock::time_point now{};
  for (int i = 0; i < 5000; ++i) {
    cache.store({"10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), "zone",
                 i % 2 ? DnsblType::kA : DnsblType::kTxt},
                i, seconds(60), now);
  }
  EXPECT_EQ(cache.size(), 1000u);
  const int* last = cache.find({"10.0.19.135", "zone", DnsblType::kA}, now);  // i = 4999
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(*last, 4999);
  EXPECT_EQ(cache.find({"10.0.19.135", "zone", DnsblType::kTxt}, now), nullptr);
  EXPECT_EQ(cache.find({"10.0.0.0", "zone", DnsblType::kTxt}, now), nullptr);
}

}  // namespace
}  // namespace sppd::dnsbl_cache
