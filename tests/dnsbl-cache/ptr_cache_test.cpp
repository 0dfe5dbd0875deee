// Tests for dnsbl-cache/ptr_cache: TTL expiry, errors never cached, LRU eviction.
#include "dnsbl-cache/ptr_cache.h"

#include <gtest/gtest.h>

namespace sppd::dnsbl_cache {
namespace {

using std::chrono::seconds;

PtrAnswer ok(const std::string& name, int ttl) {
  return PtrAnswer{PtrAnswer::Status::kOk, name, seconds(ttl)};
}

TEST(PtrCacheTest, KeepsAnswersForTheirTtl) {
  PtrCache cache;
  PtrCache::Clock::time_point now{};
  cache.store("1.2.3.4", ok("a.example", 10), now);
  ASSERT_NE(cache.find("1.2.3.4", now + seconds(9)), nullptr);
  EXPECT_EQ(cache.find("1.2.3.4", now + seconds(9))->name, "a.example");
  EXPECT_EQ(cache.find("1.2.3.4", now + seconds(10)), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(PtrCacheTest, ErrorsAndZeroTtlsAreNotKept) {
  PtrCache cache;
  PtrCache::Clock::time_point now{};
  cache.store("1.2.3.4", PtrAnswer{PtrAnswer::Status::kError, "", seconds(60)}, now);
  cache.store("1.2.3.5", ok("b", 0), now);
  EXPECT_EQ(cache.size(), 0u);
  cache.store("1.2.3.6", PtrAnswer{PtrAnswer::Status::kNone, "", seconds(60)}, now);
  ASSERT_NE(cache.find("1.2.3.6", now), nullptr);
  EXPECT_EQ(cache.find("1.2.3.6", now)->status, PtrAnswer::Status::kNone);
}

TEST(PtrCacheTest, EvictsLeastRecentlyUsed) {
  PtrCache cache(2);
  PtrCache::Clock::time_point now{};
  cache.store("a", ok("a", 60), now);
  cache.store("b", ok("b", 60), now);
  EXPECT_NE(cache.find("a", now), nullptr);  // a is now more recent than b
  cache.store("c", ok("c", 60), now);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.find("a", now), nullptr);
  EXPECT_EQ(cache.find("b", now), nullptr);
  EXPECT_NE(cache.find("c", now), nullptr);
  cache.store("c", ok("c2", 60), now);  // replacing does not grow the cache
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find("c", now)->name, "c2");
}

}  // namespace
}  // namespace sppd::dnsbl_cache
