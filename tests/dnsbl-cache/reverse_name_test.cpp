// Tests for dnsbl-cache/reverse_name: what counts as an IP, the in-addr.arpa and ip6.arpa
// names built from it, and DNSBL names (IPv4, IPv6 nibbles, IPv4-mapped reduced to IPv4).
#include "dnsbl-cache/reverse_name.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

namespace sppd::dnsbl_cache {
namespace {

std::string reverse(const std::string& text) {
  auto ip = parse_ip(text);
  return ip ? reverse_name(*ip) : "(not an ip)";
}

TEST(ReverseNameTest, Ipv4) {
  EXPECT_EQ(reverse("1.2.3.4"), "4.3.2.1.in-addr.arpa");
  EXPECT_EQ(reverse("127.0.0.1"), "1.0.0.127.in-addr.arpa");
  EXPECT_EQ(reverse("192.0.2.255"), "255.2.0.192.in-addr.arpa");
}

TEST(ReverseNameTest, Ipv6NibbleForm) {
  EXPECT_EQ(reverse("2001:db8::567:89ab"),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  EXPECT_EQ(reverse("::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
}

TEST(ReverseNameTest, ParseGivesCanonicalText) {
  auto v6 = parse_ip("2001:DB8:0:0::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->size, 16u);
  EXPECT_EQ(v6->text, "2001:db8::1");
  auto v4 = parse_ip("10.0.0.1");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->size, 4u);
  EXPECT_EQ(v4->text, "10.0.0.1");
}

std::string dnsbl(const std::string& text, const std::string& zone) {
  auto ip = parse_ip(text);
  return ip ? dnsbl_name(*ip, zone) : "(not an ip)";
}

TEST(ReverseNameTest, DnsblNames) {
  EXPECT_EQ(dnsbl("1.2.3.4", "zen.example"), "4.3.2.1.zen.example");
  EXPECT_EQ(dnsbl("127.0.0.2", "bl.example.org"), "2.0.0.127.bl.example.org");
  // ucspi-tcp6's form: fe80::1 -> 1.0.0.(29 more nibbles).8.e.f.base
  EXPECT_EQ(dnsbl("2001:db8::567:89ab", "v6.example"),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6.example");
  EXPECT_EQ(dnsbl("::ffff:1.2.3.4", "zen.example"), "4.3.2.1.zen.example");
  EXPECT_EQ(dnsbl("::FFFF:10.0.0.1", "z"), "1.0.0.10.z");
  // Only ::ffff:0:0/96 is mapped; the deprecated compatible form ::1.2.3.4 is IPv6.
  EXPECT_EQ(dnsbl("::1.2.3.4", "z"),
            "4.0.3.0.2.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.z");
}

TEST(ReverseNameTest, UnmappedGivesTheIpv4Address) {
  IpAddress v4 = unmapped(*parse_ip("::ffff:192.0.2.1"));
  EXPECT_EQ(v4.family, AF_INET);
  EXPECT_EQ(v4.size, 4u);
  EXPECT_EQ(v4.text, "192.0.2.1");
  EXPECT_EQ(reverse_name(v4), "1.2.0.192.in-addr.arpa");
  EXPECT_EQ(unmapped(*parse_ip("2001:db8::1")).text, "2001:db8::1");
  EXPECT_EQ(unmapped(*parse_ip("10.1.2.3")).text, "10.1.2.3");
}

TEST(ReverseNameTest, RejectsEverythingElse) {
  for (const char* bad : {"", "localhost", "1.2.3", "1.2.3.4.5", "256.1.1.1", " 1.2.3.4",
                          "1.2.3.4\n", "fe80::1%eth0", "::g", "1.2.3.4.in-addr.arpa"}) {
    EXPECT_FALSE(parse_ip(bad)) << bad;
  }
  EXPECT_FALSE(parse_ip(std::string(100, '1')));
  EXPECT_FALSE(parse_ip(std::string("1.2.3.4\0junk", 12)));
}

}  // namespace
}  // namespace sppd::dnsbl_cache
