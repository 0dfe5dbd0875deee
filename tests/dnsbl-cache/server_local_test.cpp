// Tests for dnsbl-cache/server's local clients (protocol.h kDnsblLocalFd): over a real
// listening socket, a local client gets DNSBL and PTR answers from the same cache as the
// workers and the status report (kStatusQuery -> kStatusReport with every counter), and
// loses its channel for a frame only workers may send (kClientConnect, kDnsblShmHits).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "dnsbl-cache/server.h"
#include "resolver_fixture.h"
#include "tests/common/test_support.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;

class ServerLocalTest : public ::testing::Test {
 protected:
  ServerLocalTest() : base_(event_base_new()), dns_(base_.get()) {
    dns_.typed_answers[{"2.0.0.127.bl.example", 16}] = {
        0, {txt_record("2.0.0.127.bl.example", {"spam source"}, 300)}, {}};
    dns_.answers["4.3.2.1.in-addr.arpa"] = {
        0, {ptr_record("4.3.2.1.in-addr.arpa", "host.example", 300)}, {}};
    ResolverOptions options;
    options.servers = dns_.address();
    resolver_ = std::make_unique<Resolver>(base_.get(), options);
    auto [ours, theirs] = ipc::make_socketpair();
    master_end_ = std::move(ours);
    server_ = std::make_unique<Server>(base_.get(), "/nonexistent/sppd.conf", std::move(theirs),
                                       *resolver_);
    EXPECT_TRUE(dir_.create("sppd-dnsbl-local"));
    address_.sun_family = AF_UNIX;
    std::string path = dir_.path() + "/dnsbl-cache.sock";
    std::strncpy(address_.sun_path, path.c_str(), sizeof(address_.sun_path) - 1);
    UniqueFd listener(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    EXPECT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&address_), sizeof(address_)), 0);
    EXPECT_EQ(listen(listener.get(), 16), 0);
    server_->service().accept_local_clients(std::move(listener), Server::kMaxLocalClients);
    connect_local();
  }

  // A local client on the test's loop (what rblspp or sppd-dnsbl-status would be).
  void connect_local() {
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&address_), sizeof(address_)), 0);
    closed_.clear();
    local_ = std::make_unique<ipc::Channel>(
        base_.get(), std::move(fd),
        [this](ipc::Frame&& f) {
          replies_.push_back(std::move(f));
          event_base_loopbreak(base_.get());
        },
        [this](const std::string& why) {
          closed_ = why;
          event_base_loopbreak(base_.get());
        });
  }

  void ask(ipc::Frame frame) {
    local_->send(std::move(frame));
    run_guarded(base_.get());
  }

  EventBasePtr base_;
  FakeDns dns_;
  std::unique_ptr<Resolver> resolver_;
  UniqueFd master_end_;
  std::unique_ptr<Server> server_;
  test_support::TempDir dir_;
  sockaddr_un address_{};
  std::unique_ptr<ipc::Channel> local_;
  std::vector<ipc::Frame> replies_;
  std::string closed_;
};

TEST_F(ServerLocalTest, AnswersDnsblAndPtrQuestions) {
  ipc::Frame query(protocol::kDnsblQuery, 3);
  query.add("ip", "127.0.0.2").add("zone", "bl.example").add("type", "txt");
  ask(std::move(query));
  ipc::Frame ptr(protocol::kDnsPtr, 4);
  ptr.add("ip", "1.2.3.4");
  ask(std::move(ptr));
  ASSERT_EQ(replies_.size(), 2u);
  EXPECT_EQ(replies_[0].type, protocol::kDnsblResult);
  EXPECT_EQ(replies_[0].request_id, 3u);
  EXPECT_EQ(replies_[0].get_or("text", ""), "spam source");
  EXPECT_EQ(replies_[1].type, protocol::kDnsPtrResult);
  EXPECT_EQ(replies_[1].get_or("name", ""), "host.example");
}

TEST_F(ServerLocalTest, StatusReportCarriesEveryCounterInOrder) {
  ipc::Frame query(protocol::kDnsblQuery, 1);
  query.add("ip", "127.0.0.2").add("zone", "bl.example").add("type", "txt");
  ask(std::move(query));
  ipc::Frame again(protocol::kDnsblQuery, 2);
  again.add("ip", "127.0.0.2").add("zone", "bl.example").add("type", "txt");
  ask(std::move(again));
  ask(ipc::Frame(protocol::kStatusQuery, 9));
  ASSERT_EQ(replies_.size(), 3u);
  const ipc::Frame& report = replies_[2];
  EXPECT_EQ(report.type, protocol::kStatusReport);
  EXPECT_EQ(report.request_id, 9u);
  std::vector<std::string> names;
  std::map<std::string, std::string> values;
  for (std::string_view counter : report.all("counter")) {
    size_t eq = counter.find('=');
    ASSERT_NE(eq, std::string_view::npos) << counter;
    names.emplace_back(counter.substr(0, eq));
    values[names.back()] = counter.substr(eq + 1);
  }
  EXPECT_EQ(report.all("counter").size(), report.attrs.size()) << "only counter attributes";
  // The lookup counters in this order; others (shared memory, per-client) among them.
  std::vector<std::string> lookups;
  for (const char* kind : {"dnsbl", "ptr"}) {
    for (const char* name :
         {"queries", "hits", "misses", "coalesced", "errors", "timeouts", "entries"}) {
      lookups.push_back(std::string(kind) + "." + name);
    }
  }
  std::vector<std::string> found;
  for (const std::string& name : names) {
    if (std::find(lookups.begin(), lookups.end(), name) != lookups.end()) found.push_back(name);
  }
  EXPECT_EQ(found, lookups);
  EXPECT_EQ(values["dnsbl.queries"], "1");
  EXPECT_EQ(values["dnsbl.hits"], "1");
  EXPECT_EQ(values["dnsbl.misses"], "1");
  EXPECT_EQ(values["dnsbl.entries"], "1");
  EXPECT_EQ(values["ptr.queries"], "0");
  EXPECT_EQ(server_->status_counters().size(), names.size());
}

TEST_F(ServerLocalTest, WorkersOnlyFramesCloseALocalClient) {
  for (uint16_t type : {protocol::kClientConnect, protocol::kClientDisconnect,
                        protocol::kDnsblShmHits, protocol::kQueueOpen}) {
    SCOPED_TRACE(type);
    replies_.clear();
    ipc::Frame frame(type, 1);
    frame.add("ip", "192.0.2.1").add("session", "1").add("count", "1");
    ask(std::move(frame));
    EXPECT_TRUE(replies_.empty());
    EXPECT_EQ(closed_, "peer closed the channel");
    connect_local();
  }
  EXPECT_TRUE(test_support::run_until(
      base_.get(), [&] { return server_->service().local_clients() == 1; }, 5));
}

}  // namespace
}  // namespace sppd::dnsbl_cache
