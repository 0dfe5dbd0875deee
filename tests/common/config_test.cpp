// Tests for common/config: the sppd.conf format, its defaults and its error messages.
#include "common/config.h"

#include <gtest/gtest.h>

namespace sppd::config {
namespace {

TEST(ConfigTest, ParsesListenersServicesAndRelativePaths) {
  Config c = parse(
      "# comment\n"
      "qmail_home = /srv/qmail\n"
      "drain_timeout = 5\n"
      "[service smtpd]\n"
      "processes = 3\n"
      "sessions_per_worker = 1\n"
      "user = sppd-smtpd\n"
      "chroot = /var/empty\n"
      "[service queue-bridge]\n"
      "qmail_queue = bin/qmail-queue\n"
      "queue_timeout = 30\n"
      "[listener smtp]\n"
      "address = 127.0.0.1:2525\n"
      "control_dir = control\n"
      "tcprules = tcp.smtp\n"
      "databytes = 1000\n"
      "[listener smtp6]\n"
      "address = [::1]:2526\n"
      "remote_host_lookup = no\n",
      "/etc/sppd/sppd.conf");
  EXPECT_EQ(c.qmail_home, "/srv/qmail");
  EXPECT_EQ(c.drain_timeout, 5);
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].host, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 2525);
  EXPECT_EQ(c.listeners[0].control_dir, "/etc/sppd/control");
  EXPECT_EQ(c.listeners[0].tcprules, "/etc/sppd/tcp.smtp");
  EXPECT_EQ(c.listeners[0].databytes, 1000);
  EXPECT_FALSE(c.listeners[0].maxhops);
  EXPECT_EQ(c.listeners[1].host, "::1");
  EXPECT_EQ(c.listeners[1].control_dir, "/srv/qmail/control");
  EXPECT_FALSE(c.listeners[1].remote_host_lookup);
  EXPECT_EQ(c.service("smtpd").processes, 3);
  EXPECT_EQ(c.service("smtpd").sessions_per_worker, 1);
  EXPECT_EQ(c.service("queue-bridge").get("qmail_queue", ""), "bin/qmail-queue");
  EXPECT_EQ(c.service("queue-bridge").get_long("queue_timeout", 0), 30);
  EXPECT_EQ(c.service("dnsbl-cache").processes, 1);
}

void expect_error(const std::string& text, const std::string& message) {
  try {
    parse(text, "/x/sppd.conf");
    FAIL() << "no error for: " << text;
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.what(), message);
  }
}

TEST(ConfigTest, ErrorsNameFileLineAndWhat) {
  expect_error("[listener a]\naddress = 1.2.3.4\n",
               "/x/sppd.conf:2: address must be IPv4:port or [IPv6]:port, got '1.2.3.4'");
  expect_error("bogus = 1\n", "/x/sppd.conf:1: unknown global setting 'bogus'");
  expect_error("[service smtpd]\nprocesses = many\n",
               "/x/sppd.conf:2: processes must be a whole number");
  expect_error("[service smtpd]\nqmail_queue = x\n",
               "/x/sppd.conf:2: unknown setting 'qmail_queue' in [service smtpd]");
  expect_error("[service nope]\n", "/x/sppd.conf:1: unknown service 'nope'");
  expect_error("[listener a]\n", "/x/sppd.conf:1: [listener a] has no address");
  expect_error("drain_timeout = 1\n",
               "/x/sppd.conf: no [listener ...] section: sppd would accept no mail");
  expect_error("[listener a]\naddress = 127.0.0.1:1\naddress = 127.0.0.1:2\n",
               "/x/sppd.conf:3: address given twice in this section");
  expect_error("[listener a]\nno equals sign\n", "/x/sppd.conf:2: expected 'key = value'");
}

TEST(ConfigTest, PerClientLimitsDefaultToFiftyConcurrentAndNoRate) {
  Config c = parse(
      "[listener smtp]\naddress = 127.0.0.1:25\n"
      "[listener relay]\naddress = 127.0.0.1:26\nmax_connections_per_ip = 0\n"
      "max_connection_rate_per_ip = 30\nconnection_rate_window = 10\n",
      "/x/sppd.conf");
  EXPECT_EQ(c.listeners[0].max_connections_per_ip, 50);
  EXPECT_EQ(c.listeners[0].max_connection_rate_per_ip, 0);
  EXPECT_EQ(c.listeners[0].connection_rate_window, 60);
  EXPECT_EQ(c.listeners[1].max_connections_per_ip, 0);
  EXPECT_EQ(c.listeners[1].max_connection_rate_per_ip, 30);
  EXPECT_EQ(c.listeners[1].connection_rate_window, 10);
  expect_error("[listener a]\naddress = 127.0.0.1:1\nconnection_rate_window = 0\n",
               "/x/sppd.conf:3: connection_rate_window must be between 1 and 86400");
  expect_error("[listener a]\naddress = 127.0.0.1:1\nmax_connections_per_ip = -1\n",
               "/x/sppd.conf:3: max_connections_per_ip must be between 0 and 1000000");
}

TEST(ConfigTest, DnsblSocketIsRelativeToTheConfigWithADefault) {
  Config c = parse("[listener smtp]\naddress = 127.0.0.1:25\n", "/x/sppd.conf");
  EXPECT_EQ(dnsbl_socket(c), "/run/sppd/dnsbl-cache.sock");
  c = parse(
      "[service dnsbl-cache]\nsocket = ../var/run/dnsbl-cache.sock\n"
      "[listener smtp]\naddress = 127.0.0.1:25\n",
      "/nonexistent-sppd/etc/sppd.conf");
  EXPECT_EQ(dnsbl_socket(c), "/nonexistent-sppd/etc/../var/run/dnsbl-cache.sock");
  c = parse(
      "[service dnsbl-cache]\nsocket = /tmp/../tmp/x.sock\n"
      "[listener smtp]\naddress = 127.0.0.1:25\n",
      "/x/sppd.conf");
  EXPECT_EQ(dnsbl_socket(c), "/tmp/x.sock");  // an existing directory is normalized
  expect_error("[service dnsbl-cache]\nsocket = /" + std::string(110, 's') + "\n",
               "/x/sppd.conf:2: socket must be a path of 1 to 107 bytes");
}

TEST(ConfigTest, RealRcptToIsOnUnlessAListenerSaysNo) {
  Config c = parse(
      "[listener smtp]\naddress = 127.0.0.1:25\n"
      "[listener backend]\naddress = 127.0.0.1:26\nrealrcptto = no\n",
      "/x/sppd.conf");
  EXPECT_TRUE(c.listeners[0].realrcptto);
  EXPECT_FALSE(c.listeners[1].realrcptto);
  expect_error("[listener a]\naddress = 127.0.0.1:1\nrealrcptto = maybe\n",
               "/x/sppd.conf:3: realrcptto must be yes or no");
}

TEST(ConfigTest, ClamdUnavailableIsTempfailUnlessAListenerAccepts) {
  Config c = parse(
      "[listener smtp]\naddress = 127.0.0.1:25\n"
      "[listener relay]\naddress = 127.0.0.1:26\nclamd_unavailable = accept\n"
      "clamd_timeout = 300\n",
      "/x/sppd.conf");
  EXPECT_FALSE(c.listeners[0].clamd_accept_unavailable);
  EXPECT_EQ(c.listeners[0].clamd_timeout, 60);
  EXPECT_TRUE(c.listeners[1].clamd_accept_unavailable);
  EXPECT_EQ(c.listeners[1].clamd_timeout, 300);
  expect_error("[listener a]\naddress = 127.0.0.1:1\nclamd_unavailable = yes\n",
               "/x/sppd.conf:3: clamd_unavailable must be tempfail or accept");
  expect_error("[listener a]\naddress = 127.0.0.1:1\nclamd_timeout = 0\n",
               "/x/sppd.conf:3: clamd_timeout must be between 1 and 3600");
}

TEST(ConfigTest, SplitAddress) {
  std::string host;
  int port = 0;
  EXPECT_TRUE(split_address("[::1]:25", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 25);
  EXPECT_FALSE(split_address("::1:25", &host, &port));
  EXPECT_FALSE(split_address("localhost:25", &host, &port));
  EXPECT_FALSE(split_address("1.2.3.4:99999", &host, &port));
}

}  // namespace
}  // namespace sppd::config
