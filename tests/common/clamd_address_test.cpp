// Tests for common/clamd_address: control/clamd's forms (ip:port, [ipv6]:port, an absolute
// socket path) become sockaddrs; anything else is refused with a reason.
#include "common/clamd_address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

namespace sppd {
namespace {

TEST(ClamdAddressTest, Ipv4Ipv6AndUnixSocket) {
  std::string why;
  auto v4 = parse_clamd_address("127.0.0.1:3310", &why);
  ASSERT_TRUE(v4) << why;
  EXPECT_EQ(v4->family, AF_INET);
  const auto* in4 = reinterpret_cast<const sockaddr_in*>(&v4->sockaddr);
  EXPECT_EQ(ntohs(in4->sin_port), 3310);
  EXPECT_EQ(ntohl(in4->sin_addr.s_addr), INADDR_LOOPBACK);
  EXPECT_EQ(v4->length, sizeof(sockaddr_in));

  auto v6 = parse_clamd_address("[::1]:3311", &why);
  ASSERT_TRUE(v6) << why;
  EXPECT_EQ(v6->family, AF_INET6);
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&v6->sockaddr);
  EXPECT_EQ(ntohs(in6->sin6_port), 3311);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));

  auto local = parse_clamd_address("/run/clamav/clamd.ctl", &why);
  ASSERT_TRUE(local) << why;
  EXPECT_EQ(local->family, AF_UNIX);
  EXPECT_STREQ(reinterpret_cast<const sockaddr_un*>(&local->sockaddr)->sun_path,
               "/run/clamav/clamd.ctl");
}

TEST(ClamdAddressTest, RefusesNamesRelativePathsAndBadPorts) {
  std::string why;
  EXPECT_FALSE(parse_clamd_address("localhost:3310", &why));  // no name lookups
  EXPECT_EQ(why, "\"localhost:3310\" is neither ip:port, [ipv6]:port nor an absolute socket path");
  EXPECT_FALSE(parse_clamd_address("clamd.ctl", &why));
  EXPECT_FALSE(parse_clamd_address("127.0.0.1", &why));
  EXPECT_FALSE(parse_clamd_address("127.0.0.1:0", &why));
  EXPECT_FALSE(parse_clamd_address("127.0.0.1:65536", &why));
  EXPECT_FALSE(parse_clamd_address("::1:3310", &why));
  EXPECT_FALSE(parse_clamd_address("", &why));
  EXPECT_TRUE(parse_clamd_address("/" + std::string(106, 's'), &why));
  EXPECT_FALSE(parse_clamd_address("/" + std::string(107, 's'), &why));
  EXPECT_EQ(why, "socket path \"/" + std::string(107, 's') + "\" is longer than 107 bytes");
}

}  // namespace
}  // namespace sppd
