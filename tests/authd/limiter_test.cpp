// Tests for authd/limiter: failures per IP and per user name over the window, what a
// success resets, expiry, and the bound on remembered keys. Times are a fake clock.
#include "authd/limiter.h"

#include <gtest/gtest.h>

namespace sppd::authd {
namespace {

FailureLimiter::Limits limits(int max_failures, int window, size_t max_keys = 100000) {
  FailureLimiter::Limits l;
  l.max_failures = max_failures;
  l.window = window;
  l.max_keys = max_keys;
  return l;
}

TEST(FailureLimiter, BlocksAnIpAfterMaxFailuresWhateverTheUser) {
  FailureLimiter limiter(limits(3, 600));
  int64_t t = 1000;
  limiter.record_failure("192.0.2.1", "alice", t);
  limiter.record_failure("192.0.2.1", "bob", t + 1);
  EXPECT_FALSE(limiter.blocked("192.0.2.1", "carol", t + 2));
  limiter.record_failure("192.0.2.1", "carol", t + 2);
  auto why = limiter.blocked("192.0.2.1", "dave", t + 3);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "3 failures from 192.0.2.1 in the last 3 s");
  EXPECT_FALSE(limiter.blocked("192.0.2.2", "dave", t + 3));
}

TEST(FailureLimiter, BlocksAUserAfterMaxFailuresFromAnyIp) {
  FailureLimiter limiter(limits(3, 600));
  limiter.record_failure("192.0.2.1", "alice", 10);
  limiter.record_failure("192.0.2.2", "Alice", 11);  // user names fold case
  limiter.record_failure("2001:db8::3", "ALICE", 12);
  auto why = limiter.blocked("198.51.100.7", "alice", 13);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "3 failures for user alice in the last 3 s");
  EXPECT_FALSE(limiter.blocked("198.51.100.7", "bob", 13));
}

TEST(FailureLimiter, ForgetsFailuresOnceTheWindowHasPassed) {
  FailureLimiter limiter(limits(2, 600));
  limiter.record_failure("192.0.2.1", "alice", 100);
  limiter.record_failure("192.0.2.1", "alice", 200);
  EXPECT_TRUE(limiter.blocked("192.0.2.1", "x", 699));
  EXPECT_FALSE(limiter.blocked("192.0.2.1", "x", 700));
  EXPECT_EQ(limiter.size(), 0u);
  // A new window opens with the next failure.
  limiter.record_failure("192.0.2.1", "alice", 701);
  EXPECT_FALSE(limiter.blocked("192.0.2.1", "alice", 702));
  EXPECT_EQ(limiter.size(), 2u);
}

TEST(FailureLimiter, SuccessClearsOnlyThatUser) {
  FailureLimiter limiter(limits(2, 600));
  limiter.record_failure("192.0.2.1", "alice", 1);
  limiter.record_failure("192.0.2.1", "alice", 2);
  limiter.record_failure("192.0.2.9", "bob", 2);
  limiter.record_failure("192.0.2.8", "bob", 2);
  limiter.record_success("ALICE");
  EXPECT_FALSE(limiter.blocked("192.0.2.5", "alice", 3));
  EXPECT_TRUE(limiter.blocked("192.0.2.1", "mallory", 3));  // the IP's count stays
  EXPECT_TRUE(limiter.blocked("192.0.2.5", "bob", 3));      // other users' counts stay
}

TEST(FailureLimiter, KeepsAtMostMaxKeysEvictingTheOldest) {
  FailureLimiter limiter(limits(1, 600, 4));
  limiter.record_failure("10.0.0.1", "u1", 1);  // two keys each
  limiter.record_failure("10.0.0.2", "u2", 2);
  limiter.record_failure("10.0.0.3", "u3", 3);
  EXPECT_EQ(limiter.size(), 4u);
  EXPECT_FALSE(limiter.blocked("10.0.0.1", "x", 4));
  EXPECT_FALSE(limiter.blocked("y", "u1", 4));
  EXPECT_TRUE(limiter.blocked("10.0.0.2", "x", 4));
  EXPECT_TRUE(limiter.blocked("10.0.0.3", "x", 4));
}

TEST(FailureLimiter, ManyKeysStayBounded) {
  FailureLimiter limiter(limits(10, 600, 1000));
  for (int i = 0; i < 20000; ++i) {
    limiter.record_failure("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                           "user" + std::to_string(i), i / 100);
  }
  EXPECT_LE(limiter.size(), 1000u);
}

TEST(FailureLimiter, NewLimitsApplyToExistingCounts) {
  FailureLimiter limiter(limits(5, 600));
  limiter.record_failure("192.0.2.1", "alice", 1);
  limiter.record_failure("192.0.2.1", "alice", 2);
  EXPECT_FALSE(limiter.blocked("192.0.2.1", "x", 3));
  limiter.set_limits(limits(2, 600));
  EXPECT_TRUE(limiter.blocked("192.0.2.1", "x", 3));
  limiter.set_limits(limits(2, 600, 1));
  EXPECT_EQ(limiter.size(), 1u);
}

}  // namespace
}  // namespace sppd::authd
