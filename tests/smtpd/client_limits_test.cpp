// Tests for smtpd/client_limits: the listener's per-client limits with tcprules' MAXCONNIP
// and MAXCONNRATE applied, and the 421 lines of a refused client.
#include "smtpd/client_limits.h"

#include <gtest/gtest.h>

namespace sppd::smtpd {
namespace {

TEST(ClientLimits, ListenerDefaultsLimitConcurrencyOnly) {
  config::Listener listener;
  std::string problem = "stale";
  ClientLimits limits = client_limits(listener, nullptr, nullptr, &problem);
  EXPECT_EQ(limits.max_connections, 50);
  EXPECT_EQ(limits.max_rate, 0);
  EXPECT_EQ(limits.rate_window, 60);
  EXPECT_TRUE(limits.any());
  EXPECT_EQ(problem, "");
}

TEST(ClientLimits, TcprulesOverrideTheListenerAndZeroMeansNoLimit) {
  config::Listener listener;
  listener.max_connection_rate_per_ip = 10;
  listener.connection_rate_window = 30;
  std::string problem, zero = "0", five = "5";
  ClientLimits limits = client_limits(listener, &zero, &five, &problem);
  EXPECT_EQ(limits.max_connections, 0);
  EXPECT_EQ(limits.max_rate, 5);
  EXPECT_EQ(limits.rate_window, 30);
  EXPECT_TRUE(limits.any());
  limits = client_limits(listener, &zero, &zero, &problem);
  EXPECT_FALSE(limits.any());  // an exempt relay: never announced
  EXPECT_EQ(problem, "");
}

TEST(ClientLimits, ABadOverrideIsIgnoredAndReported) {
  config::Listener listener;
  listener.max_connections_per_ip = 7;
  std::string problem;
  for (std::string bad : {"", "-1", "ten", "3 ", "1000001", "99999999999999999999"}) {
    ClientLimits limits = client_limits(listener, &bad, nullptr, &problem);
    EXPECT_EQ(limits.max_connections, 7) << bad;
    EXPECT_NE(problem.find("MAXCONNIP='" + bad.substr(0, 32) + "' is not a whole number"),
              std::string::npos)
        << problem;
  }
  std::string bad = "x";
  client_limits(listener, &bad, &bad, &problem);
  EXPECT_NE(problem.find("MAXCONNIP"), std::string::npos);
  EXPECT_NE(problem.find("; MAXCONNRATE"), std::string::npos);
}

TEST(ClientLimits, RefusalsNameTheClientAndTheWindow) {
  ClientLimits limits{3, 5, 60};
  EXPECT_EQ(client_refusal("too_many", "192.0.2.7", limits),
            "421 4.7.0 too many connections from 192.0.2.7, try again later");
  EXPECT_EQ(client_refusal("too_fast", "2001:db8::7", limits),
            "421 4.7.0 too many connections from 2001:db8::7 in 60 s, try again later");
}

}  // namespace
}  // namespace sppd::smtpd
