// Tests for common/helper_service's local clients: connections accepted on a listening
// SOCK_SEQPACKET socket become Clients with worker = false and a label naming the peer,
// reach the program like a worker's frames, are capped (the extra one is closed at once),
// free their place when they go, and are no longer accepted once the service drains.
#include "common/helper_service.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "tests/common/test_support.h"

namespace sppd::helper {
namespace {

using test_support::TempDir;

constexpr uint16_t kEcho = 60;  // any type: this program answers every frame

// Answers every frame with its own type, and notes who asked.
class EchoProgram final : public Program {
 public:
  void on_worker_frame(Client& client, ipc::Frame&& frame) override {
    seen.push_back({client.worker, client.label});
    client.channel->send(ipc::Frame(frame.type, frame.request_id));
  }
  void on_client_gone(Client&) override { ++gone; }
  size_t in_flight() const override { return 0; }
  std::string reload(const config::Config&) override { return ""; }

  struct Seen {
    bool worker;
    std::string label;
  };
  std::vector<Seen> seen;
  int gone = 0;
};

class LocalClientsTest : public test_support::FakeMasterTest {
 protected:
  void SetUp() override {
    FakeMasterTest::SetUp();
    ASSERT_TRUE(dir_.create("sppd-helper-local"));
    address_.sun_family = AF_UNIX;
    std::string path = dir_.path() + "/local.sock";
    std::strncpy(address_.sun_path, path.c_str(), sizeof(address_.sun_path) - 1);
    UniqueFd listener(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&address_), sizeof(address_)), 0);
    ASSERT_EQ(listen(listener.get(), 16), 0);
    service_ = std::make_unique<Service>(base_.get(), "/nonexistent/sppd.conf",
                                         std::move(service_control_), program_,
                                         DrainPolicy{1, "request(s)", "dropped"});
    service_->accept_local_clients(std::move(listener), 2);
  }

  // A blocking client of the local socket.
  UniqueFd connect_local() {
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&address_), sizeof(address_)), 0);
    timeval limit{0, 200000};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    return fd;
  }

  // Sends one frame on fd and runs the loop until its answer (true) or a close (false).
  bool ask(int fd, uint32_t id) {
    std::string bytes = *ipc::encode(ipc::Frame(kEcho, id));
    if (send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) return false;
    return answered(fd, id);
  }

  bool answered(int fd, uint32_t id) {
    std::optional<bool> result;
    run_until([&] {
      char buffer[256];
      ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n == 0) result = false;
      if (n > 0) {
        std::string why;
        auto frame = ipc::decode(std::string_view(buffer, static_cast<size_t>(n)), &why);
        result = frame && frame->request_id == id;
      }
      return result.has_value();
    });
    return result.value_or(false);
  }

  // Whether the peer closed fd (recv sees the end) while the loop runs.
  bool closed_by_service(int fd) {
    return run_until([&] {
      char byte;
      return recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
    });
  }

  TempDir dir_;
  sockaddr_un address_{};
  EchoProgram program_;
  std::unique_ptr<Service> service_;
};

TEST_F(LocalClientsTest, LocalClientsAreClientsThatAreNotWorkers) {
  UniqueFd local = connect_local();
  ASSERT_TRUE(ask(local.get(), 5));
  connect_worker();
  worker_->send(ipc::Frame(kEcho, 6));
  ASSERT_TRUE(run_until([&] { return reply(6, kEcho) != nullptr; }));
  ASSERT_EQ(program_.seen.size(), 2u);
  EXPECT_FALSE(program_.seen[0].worker);
  EXPECT_EQ(program_.seen[0].label,
            "local client pid " + std::to_string(getpid()) + " uid " + std::to_string(getuid()));
  EXPECT_TRUE(program_.seen[1].worker);
  EXPECT_EQ(program_.seen[1].label, "worker 4711");
  EXPECT_EQ(service_->local_clients(), 1u);
}

TEST_F(LocalClientsTest, TheOneTooManyIsClosedAndAPlaceFreesUp) {
  UniqueFd first = connect_local(), second = connect_local();
  ASSERT_TRUE(ask(first.get(), 1));
  ASSERT_TRUE(ask(second.get(), 2));
  UniqueFd third = connect_local();
  EXPECT_TRUE(closed_by_service(third.get()));
  EXPECT_EQ(service_->local_clients(), 2u);

  first.reset();
  ASSERT_TRUE(run_until([&] { return service_->local_clients() == 1; }));
  EXPECT_EQ(program_.gone, 1);
  UniqueFd fourth = connect_local();
  EXPECT_TRUE(ask(fourth.get(), 4));
  EXPECT_TRUE(ask(second.get(), 5));
}

TEST_F(LocalClientsTest, MalformedLocalClientLosesItsChannel) {
  UniqueFd local = connect_local();
  ASSERT_TRUE(ask(local.get(), 1));
  Client* client = service_->find_client(1);
  ASSERT_NE(client, nullptr);
  service_->malformed(*client, "test");
  EXPECT_TRUE(closed_by_service(local.get()));
  EXPECT_EQ(service_->local_clients(), 0u);
}

TEST_F(LocalClientsTest, DrainingStopsAccepting) {
  UniqueFd before = connect_local();
  ASSERT_TRUE(ask(before.get(), 1));
  service_->drain("test");
  UniqueFd after = connect_local();  // queued in the socket for a successor
  std::string bytes = *ipc::encode(ipc::Frame(kEcho, 2));
  ASSERT_GT(send(after.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL), 0);
  run_until([] { return false; }, 0.3);
  EXPECT_EQ(service_->local_clients(), 1u);
  EXPECT_EQ(program_.seen.size(), 1u);
}

}  // namespace
}  // namespace sppd::helper
