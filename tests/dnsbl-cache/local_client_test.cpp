// Tests for dnsbl-cache/local_client: connecting (and the sentence when it fails), an answer
// found among stale ones by its request id, and every wait ending: no answer in time, the
// peer closing. The peer is a thread with a plain listening socket.
#include "dnsbl-cache/local_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <thread>

#include "common/protocol.h"
#include "tests/common/test_support.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace std::chrono_literals;

class LocalClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.create("sppd-local-client"));
    path_ = dir_.path() + "/dnsbl-cache.sock";
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    listener_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    ASSERT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(listen(listener_.get(), 4), 0);
  }
  void TearDown() override {
    if (peer_.joinable()) peer_.join();
  }

  // The peer accepts one connection, reads one question and does what `serve` says.
  template <typename Serve>
  void start_peer(Serve serve) {
    peer_ = std::thread([this, serve] {
      UniqueFd connection(accept(listener_.get(), nullptr, nullptr));
      char buffer[4096];
      ssize_t n = recv(connection.get(), buffer, sizeof(buffer), 0);
      std::string why;
      auto question = ipc::decode(std::string_view(buffer, n > 0 ? n : 0), &why);
      if (question) serve(connection.get(), *question);
    });
  }

  static void send_frame(int fd, const ipc::Frame& frame) {
    std::string bytes = *ipc::encode(frame);
    send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  test_support::TempDir dir_;
  std::string path_;
  UniqueFd listener_;
  std::thread peer_;
};

TEST_F(LocalClientTest, FindsItsAnswerAmongStaleOnes) {
  start_peer([](int fd, const ipc::Frame& question) {
    ipc::Frame stale(protocol::kStatusReport, question.request_id + 100);
    stale.add("counter", "stale=1");
    send_frame(fd, stale);
    ipc::Frame answer(protocol::kStatusReport, question.request_id);
    answer.add("counter", "dnsbl.queries=3");
    send_frame(fd, answer);
  });
  std::string why;
  auto client = LocalClient::connect(path_, 1s, &why);
  ASSERT_TRUE(client) << why;
  auto answer = client->ask(ipc::Frame(protocol::kStatusQuery, 0), 5s, &why);
  ASSERT_TRUE(answer) << why;
  EXPECT_EQ(answer->get_or("counter", ""), "dnsbl.queries=3");
}

TEST_F(LocalClientTest, EveryWaitEnds) {
  std::string why;
  EXPECT_FALSE(LocalClient::connect(dir_.path() + "/none.sock", 1s, &why));
  EXPECT_EQ(why, "cannot connect to " + dir_.path() + "/none.sock: No such file or directory");

  // Nobody accepts: the connection waits in the queue, the question times out.
  auto client = LocalClient::connect(path_, 1s, &why);
  ASSERT_TRUE(client) << why;
  auto began = std::chrono::steady_clock::now();
  EXPECT_FALSE(client->ask(ipc::Frame(protocol::kStatusQuery, 0), 200ms, &why));
  EXPECT_EQ(why, "no answer from " + path_ + " within 0.2 s");
  EXPECT_LT(std::chrono::steady_clock::now() - began, 2s);

  // The peer closes without answering.
  start_peer([](int, const ipc::Frame&) {});
  EXPECT_FALSE(client->ask(ipc::Frame(protocol::kStatusQuery, 0), 5s, &why));
  EXPECT_EQ(why, path_ + " closed the connection (dnsbl-cache stopped or refused us)");
}

}  // namespace
}  // namespace sppd::dnsbl_cache
