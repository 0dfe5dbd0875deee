// Tests for dnsbl-cache/client_counters: concurrency and rate limits per (listener, IP),
// release by session and by a gone worker, the sliding rate window on a fake clock, sweeping,
// the full-table fail-open and re-announced connections after a cache restart.
#include "dnsbl-cache/client_counters.h"

#include <gtest/gtest.h>

namespace sppd::dnsbl_cache {
namespace {

using std::chrono::seconds;

class ClientCountersTest : public ::testing::Test {
 protected:
  explicit ClientCountersTest(size_t max_tracked = ClientCounters::kDefaultMaxTracked)
      : counters_(max_tracked, [this] { return now_; }) {}

  // Connection `session` of worker 1 from ip on listener "smtp" with these limits.
  ConnectOutcome connect(uint64_t session, const std::string& ip, ClientLimits limits,
                         uint64_t worker = 1, const std::string& listener = "smtp") {
    auto outcome = counters_.connect({{worker, session}, listener, ip, limits, std::nullopt});
    EXPECT_TRUE(outcome) << "session " << session << " was counted already";
    return outcome.value_or(ConnectOutcome{});
  }

  ClientCounters::TimePoint now_{seconds(1000)};
  ClientCounters counters_;
};

constexpr ClientLimits kThreeAtOnce{3, 0, seconds(60)};
constexpr ClientLimits kTwoPerMinute{0, 2, seconds(60)};

TEST_F(ClientCountersTest, RefusesTheConnectionOverTheLimitAndCountsOthersApart) {
  for (uint64_t session = 1; session <= 3; ++session) {
    ConnectOutcome outcome = connect(session, "192.0.2.1", kThreeAtOnce);
    EXPECT_EQ(outcome.verdict, ClientVerdict::kOk);
    EXPECT_EQ(outcome.connections, session);
    EXPECT_TRUE(outcome.counted);
  }
  ConnectOutcome fourth = connect(4, "192.0.2.1", kThreeAtOnce);
  EXPECT_EQ(fourth.verdict, ClientVerdict::kTooMany);
  EXPECT_EQ(fourth.connections, 4u);
  EXPECT_EQ(verdict_text(fourth.verdict), "too_many");
  // Another IP, and the same IP on another listener, have counters of their own.
  EXPECT_EQ(connect(5, "192.0.2.2", kThreeAtOnce).verdict, ClientVerdict::kOk);
  EXPECT_EQ(connect(6, "192.0.2.1", kThreeAtOnce, 1, "submission").verdict, ClientVerdict::kOk);

  ClientStats stats = counters_.stats();
  EXPECT_EQ(stats.tracked, 3u);
  EXPECT_EQ(stats.connections, 5u);  // the refused one is not counted
  EXPECT_EQ(stats.refused_concurrency, 1u);
  EXPECT_EQ(stats.refused_rate, 0u);
}

TEST_F(ClientCountersTest, NoLimitCountsButNeverRefuses) {
  for (uint64_t session = 1; session <= 100; ++session) {
    EXPECT_EQ(connect(session, "192.0.2.1", ClientLimits{}).verdict, ClientVerdict::kOk);
  }
  EXPECT_EQ(counters_.stats().connections, 100u);
}

TEST_F(ClientCountersTest, DisconnectFreesASlotAndForgetsTheClient) {
  for (uint64_t session = 1; session <= 3; ++session) connect(session, "192.0.2.1", kThreeAtOnce);
  EXPECT_TRUE(counters_.disconnect({1, 2}));
  EXPECT_FALSE(counters_.disconnect({1, 2}));   // released already
  EXPECT_FALSE(counters_.disconnect({1, 99}));  // never counted (e.g. refused)
  EXPECT_EQ(connect(4, "192.0.2.1", kThreeAtOnce).verdict, ClientVerdict::kOk);
  EXPECT_EQ(connect(5, "192.0.2.1", kThreeAtOnce).verdict, ClientVerdict::kTooMany);
  for (uint64_t session : {1, 3, 4}) EXPECT_TRUE(counters_.disconnect({1, session}));
  // No connection and no rate limit: nothing of the client is kept.
  EXPECT_EQ(counters_.stats().tracked, 0u);
  EXPECT_EQ(counters_.stats().connections, 0u);
}

TEST_F(ClientCountersTest, ACountedConnectionAnnouncedTwiceIsAProtocolError) {
  connect(1, "192.0.2.1", kThreeAtOnce);
  EXPECT_FALSE(counters_.connect({{1, 1}, "smtp", "192.0.2.1", kThreeAtOnce, std::nullopt}));
  EXPECT_EQ(counters_.stats().connections, 1u);
}

TEST_F(ClientCountersTest, AGoneWorkersConnectionsAreAllReleased) {
  connect(1, "192.0.2.1", kThreeAtOnce, /*worker=*/7);
  connect(2, "192.0.2.1", kThreeAtOnce, /*worker=*/7);
  connect(1, "192.0.2.1", kThreeAtOnce, /*worker=*/8);  // same session id, other worker
  connect(3, "192.0.2.9", kThreeAtOnce, /*worker=*/7);
  EXPECT_EQ(connect(5, "192.0.2.1", kThreeAtOnce, /*worker=*/9).verdict, ClientVerdict::kTooMany);

  EXPECT_EQ(counters_.release_worker(7), 3u);
  EXPECT_EQ(counters_.release_worker(7), 0u);
  EXPECT_EQ(counters_.stats().connections, 1u);
  EXPECT_EQ(counters_.stats().tracked, 1u);  // 192.0.2.9 had nothing else
  EXPECT_EQ(connect(6, "192.0.2.1", kThreeAtOnce, /*worker=*/9).connections, 2u);
  EXPECT_TRUE(counters_.disconnect({8, 1}));
}

TEST_F(ClientCountersTest, RateLimitSlidesWithTheClock) {
  EXPECT_EQ(connect(1, "192.0.2.1", kTwoPerMinute).rate, 1u);
  now_ += seconds(30);
  EXPECT_EQ(connect(2, "192.0.2.1", kTwoPerMinute).rate, 2u);
  // Closing connections does not give back rate: it counts connections made.
  EXPECT_TRUE(counters_.disconnect({1, 1}));
  EXPECT_TRUE(counters_.disconnect({1, 2}));
  now_ += seconds(29);
  ConnectOutcome third = connect(3, "192.0.2.1", kTwoPerMinute);
  EXPECT_EQ(third.verdict, ClientVerdict::kTooFast);
  EXPECT_EQ(third.rate, 3u);
  EXPECT_EQ(verdict_text(third.verdict), "too_fast");
  // Refused attempts do not count: 60 s after the first connection one slot is free again.
  now_ += seconds(1);
  EXPECT_EQ(connect(4, "192.0.2.1", kTwoPerMinute).verdict, ClientVerdict::kOk);
  EXPECT_EQ(connect(5, "192.0.2.1", kTwoPerMinute).verdict, ClientVerdict::kTooFast);
  EXPECT_EQ(counters_.stats().refused_rate, 2u);
  EXPECT_EQ(counters_.stats().refused_concurrency, 0u);
  // Other clients are not affected.
  EXPECT_EQ(connect(6, "192.0.2.2", kTwoPerMinute).verdict, ClientVerdict::kOk);
}

TEST_F(ClientCountersTest, ConcurrencyIsCheckedBeforeRate) {
  ClientLimits both{1, 1, seconds(60)};
  connect(1, "192.0.2.1", both);
  EXPECT_EQ(connect(2, "192.0.2.1", both).verdict, ClientVerdict::kTooMany);
  EXPECT_TRUE(counters_.disconnect({1, 1}));
  EXPECT_EQ(connect(3, "192.0.2.1", both).verdict, ClientVerdict::kTooFast);
}

TEST_F(ClientCountersTest, SweepDropsIdleClientsOnceTheirWindowHasPassed) {
  connect(1, "192.0.2.1", kTwoPerMinute);
  connect(2, "192.0.2.2", kTwoPerMinute);
  connect(3, "192.0.2.3", kThreeAtOnce);
  counters_.disconnect({1, 1});
  counters_.disconnect({1, 3});  // no rate limit: dropped at once
  EXPECT_EQ(counters_.stats().tracked, 2u);
  EXPECT_EQ(counters_.sweep(), 0u);  // 192.0.2.1's connection is still inside its window
  now_ += seconds(60);
  EXPECT_EQ(counters_.sweep(), 1u);  // 192.0.2.2 still has a connection
  EXPECT_EQ(counters_.stats().tracked, 1u);
  EXPECT_EQ(connect(4, "192.0.2.1", kTwoPerMinute).rate, 1u);  // a fresh start
}

TEST_F(ClientCountersTest, ReannouncedConnectionsAreCountedNeverRefused) {
  // dnsbl-cache restarted while a worker held four connections of a client whose limit is
  // three (one was admitted while the cache was away): all are counted again.
  for (uint64_t session = 1; session <= 4; ++session) {
    auto outcome = counters_.connect({{1, session}, "smtp", "192.0.2.1", kThreeAtOnce, seconds(5)});
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->verdict, ClientVerdict::kOk);
  }
  EXPECT_EQ(connect(5, "192.0.2.1", kThreeAtOnce).verdict, ClientVerdict::kTooMany);
  counters_.disconnect({1, 1});
  EXPECT_EQ(connect(6, "192.0.2.1", kThreeAtOnce).verdict, ClientVerdict::kTooMany);
  counters_.disconnect({1, 2});
  EXPECT_EQ(connect(7, "192.0.2.1", kThreeAtOnce).verdict, ClientVerdict::kOk);
}

TEST_F(ClientCountersTest, ReannouncedConnectionsKeepTheirPlaceInTheRateWindow) {
  // Connected 50 s and 70 s before the restart: only the first still counts in a minute.
  counters_.connect({{1, 1}, "smtp", "192.0.2.1", kTwoPerMinute, seconds(50)});
  counters_.connect({{1, 2}, "smtp", "192.0.2.1", kTwoPerMinute, seconds(70)});
  EXPECT_EQ(connect(3, "192.0.2.1", kTwoPerMinute).verdict, ClientVerdict::kOk);
  EXPECT_EQ(connect(4, "192.0.2.1", kTwoPerMinute).verdict, ClientVerdict::kTooFast);
  now_ += seconds(10);  // the one of 50 s ago leaves the window
  EXPECT_EQ(connect(5, "192.0.2.1", kTwoPerMinute).verdict, ClientVerdict::kOk);
}

class FullClientCountersTest : public ClientCountersTest {
 protected:
  FullClientCountersTest() : ClientCountersTest(2) {}
};

TEST_F(FullClientCountersTest, AFullTableAdmitsNewClientsUncounted) {
  connect(1, "192.0.2.1", kThreeAtOnce);
  connect(2, "192.0.2.2", kTwoPerMinute);
  ConnectOutcome third = connect(3, "192.0.2.3", kThreeAtOnce);
  EXPECT_EQ(third.verdict, ClientVerdict::kOk);
  EXPECT_FALSE(third.counted);
  EXPECT_FALSE(counters_.disconnect({1, 3}));
  // Known clients are still counted and limited.
  EXPECT_TRUE(connect(4, "192.0.2.1", kThreeAtOnce).counted);
  EXPECT_EQ(counters_.stats().uncounted, 1u);
  EXPECT_EQ(counters_.stats().tracked, 2u);

  // Room comes back when a client is released, or when the sweep drops an idle one (a full
  // table sweeps by itself, at most once a second).
  counters_.disconnect({1, 2});
  now_ += seconds(60);
  EXPECT_TRUE(connect(5, "192.0.2.3", kThreeAtOnce).counted);
}

}  // namespace
}  // namespace sppd::dnsbl_cache
