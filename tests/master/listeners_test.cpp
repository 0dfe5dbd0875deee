// Tests for master/listeners: canonical addresses, the reload plan (keep sockets whose
// address is unchanged) and real binds on loopback with port 0.
#include "master/listeners.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace sppd::master {
namespace {

config::Listener listener(const std::string& name, const std::string& host, int port) {
  config::Listener l;
  l.name = name;
  l.host = host;
  l.port = port;
  return l;
}

TEST(ListenersTest, CanonicalAddressNormalisesIpv6) {
  EXPECT_EQ(canonical_address("127.0.0.1", 25), "127.0.0.1:25");
  EXPECT_EQ(canonical_address("0:0::1", 2525), "[::1]:2525");
  EXPECT_EQ(canonical_address("::1", 2525), canonical_address("0::0:1", 2525));
}

TEST(ListenersTest, PlanKeepsUnchangedAddressesOnce) {
  std::vector<std::string> bound = {"127.0.0.1:25", "[::1]:25", "127.0.0.1:587"};
  std::vector<std::string> wanted = {"127.0.0.1:587", "127.0.0.1:465", "127.0.0.1:25",
                                     "127.0.0.1:25"};
  EXPECT_EQ(plan_rebind(bound, wanted), (std::vector<int>{2, -1, 0, -1}));
  EXPECT_EQ(plan_rebind({}, {"127.0.0.1:25"}), (std::vector<int>{-1}));
  EXPECT_TRUE(plan_rebind(bound, {}).empty());
}

TEST(ListenersTest, BindsNonBlockingSocketsAndKeepsThemOnRebind) {
  ListenerSet set = ListenerSet::bind_all({listener("a", "127.0.0.1", 0)});
  ASSERT_EQ(set.items().size(), 1u);
  const BoundListener& a = set.items()[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.address, "127.0.0.1:0");
  EXPECT_NE(a.bound, "127.0.0.1:0");
  int fd = a.fd.get();
  int flags = fcntl(fd, F_GETFL);
  EXPECT_TRUE(flags & O_NONBLOCK);
  EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);

  // Same address under a new name is kept (same socket); a new one is bound.
  ListenerSet next = set.rebind({listener("renamed", "127.0.0.1", 0), listener("b", "::1", 0)});
  ASSERT_EQ(next.items().size(), 2u);
  EXPECT_EQ(next.items()[0].fd.get(), fd);
  EXPECT_EQ(next.items()[0].name, "renamed");
  EXPECT_EQ(next.items()[1].address, "[::1]:0");
  EXPECT_TRUE(set.items().empty());
  int v6only = 0;
  socklen_t len = sizeof(v6only);
  getsockopt(next.items()[1].fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
  EXPECT_EQ(v6only, 1);
}

TEST(ListenersTest, FailedRebindLeavesTheSetAlone) {
  ListenerSet set = ListenerSet::bind_all({listener("a", "127.0.0.1", 0)});
  int fd = set.items()[0].fd.get();
  // Binding the port another socket holds fails: the whole rebind must change nothing.
  ListenerSet other = ListenerSet::bind_all({listener("x", "127.0.0.1", 0)});
  std::string taken = other.items()[0].bound;
  int port = std::stoi(taken.substr(taken.rfind(':') + 1));
  try {
    set.rebind({listener("a", "127.0.0.1", 0), listener("clash", "127.0.0.1", port)});
    FAIL() << "rebind should have failed";
  } catch (const ListenError& e) {
    EXPECT_NE(std::string(e.what()).find("[listener clash]"), std::string::npos) << e.what();
  }
  ASSERT_EQ(set.items().size(), 1u);
  EXPECT_EQ(set.items()[0].fd.get(), fd);
}

}  // namespace
}  // namespace sppd::master
