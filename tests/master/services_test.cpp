// Tests for master/services: the restart policy (backoff 1, 2, 4 ... 60 s for children that
// die before serving anyone, reset by a success) and the process table's counts.
#include "master/services.h"

#include <gtest/gtest.h>

namespace sppd::master {
namespace {

using std::chrono::seconds;
using Clock = RestartPolicy::Clock;

TEST(RestartPolicyTest, ChildThatServedRestartsAtOnce) {
  RestartPolicy policy;
  Clock::time_point now{};
  EXPECT_EQ(policy.on_death(true, now), seconds(0));
  EXPECT_TRUE(policy.may_start(now));
}

TEST(RestartPolicyTest, StartupFailuresBackOffExponentiallyUpToAMinute) {
  RestartPolicy policy;
  Clock::time_point now{};
  std::vector<long> delays;
  for (int i = 0; i < 9; ++i) {
    seconds delay = policy.on_death(false, now);
    delays.push_back(delay.count());
    EXPECT_FALSE(policy.may_start(now));
    now += delay;  // the throttle timer fires, a child starts and dies again at once
    EXPECT_TRUE(policy.may_start(now));
  }
  EXPECT_EQ(delays, (std::vector<long>{1, 2, 4, 8, 16, 32, 60, 60, 60}));
}

TEST(RestartPolicyTest, ServingResetsTheBackoff) {
  RestartPolicy policy;
  Clock::time_point now{};
  now += policy.on_death(false, now);
  now += policy.on_death(false, now);
  EXPECT_EQ(policy.next_delay(), seconds(4));
  policy.on_served();
  EXPECT_EQ(policy.next_delay(), seconds(1));
  EXPECT_EQ(policy.on_death(false, now), seconds(1));
}

TEST(RestartPolicyTest, SiblingsDyingDuringAThrottleCountOnce) {
  RestartPolicy policy;
  Clock::time_point now{};
  EXPECT_EQ(policy.on_death(false, now), seconds(1));
  EXPECT_EQ(policy.on_death(false, now + std::chrono::milliseconds(10)), seconds(0));
  EXPECT_EQ(policy.on_death(true, now + std::chrono::milliseconds(20)), seconds(0));
  EXPECT_EQ(policy.next_delay(), seconds(2));
  EXPECT_EQ(policy.throttled_until(), now + seconds(1));
}

TEST(ProcessTableTest, CountsActiveChildrenPerServiceAndRole) {
  ProcessTable table;
  auto add = [&](pid_t pid, const char* service, bool retiring) {
    Child child;
    child.pid = pid;
    child.service = service;
    child.retiring = retiring;
    table.add(std::move(child));
  };
  add(10, "queue-bridge", false);
  add(11, "dnsbl-cache", false);
  add(12, "smtpd", false);
  add(13, "smtpd", true);
  add(14, "smtpd", false);
  EXPECT_EQ(table.count_active("smtpd"), 2);
  EXPECT_EQ(table.count_active("queue-bridge"), 1);
  EXPECT_EQ(table.count_role(Role::kWorker), 3);
  EXPECT_EQ(table.count_role(Role::kHelper), 2);
  ASSERT_EQ(table.with_role(Role::kHelper).size(), 2u);
  EXPECT_EQ(table.with_role(Role::kHelper)[0]->pid, 10);

  Child gone = table.remove(13);
  EXPECT_EQ(gone.service, "smtpd");
  EXPECT_TRUE(table.remove(99).service.empty());
  EXPECT_EQ(table.find(13), nullptr);
  ASSERT_NE(table.find(14), nullptr);
  EXPECT_FALSE(table.find(14)->reachable());
  EXPECT_EQ(table.size(), 4u);
}

TEST(ServicesTest, OnlySmtpdIsAWorker) {
  EXPECT_EQ(role_of("smtpd"), Role::kWorker);
  EXPECT_EQ(role_of("queue-bridge"), Role::kHelper);
  EXPECT_EQ(role_of("dnsbl-cache"), Role::kHelper);
}

}  // namespace
}  // namespace sppd::master
