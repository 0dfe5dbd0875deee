// The client end of a Session under test: one end of a socketpair, raw writes, and whole
// reply lines read while the session's event loop runs (with a deadline, never a sleep).
// Shared by the session test files (session_test, session_sender_test, session_verify_test).
#pragma once

#include <event2/event.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "common/fd.h"
#include "smtpd/session.h"

namespace sppd::smtpd {

class SessionClient {
 public:
  // Makes a new connection; returns the server end, for the Session.
  UniqueFd open() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    fd_.reset(fds[0]);
    received_.clear();
    return UniqueFd(fds[1]);
  }

  // Makes a new connection from ip and starts a Session on its server end (the greeting is
  // on its way once the event loop runs).
  std::unique_ptr<Session> connect(const ListenerSettings& settings, SessionContext context,
                                   const std::string& ip = "192.0.2.7") {
    auto session =
        std::make_unique<Session>(1, open(), Endpoint{ip, 40000, false},
                                  Endpoint{"192.0.2.1", 25, false}, settings, std::move(context));
    session->start();
    return session;
  }

  void send(const std::string& bytes) {
    ASSERT_EQ(write(fd_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  // Runs base until `lines` complete reply lines arrived (or `seconds` passed); returns them.
  std::string replies(event_base* base, size_t lines, double seconds = 5) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(seconds));
    while (std::count(received_.begin(), received_.end(), '\n') < static_cast<long>(lines) &&
           std::chrono::steady_clock::now() < deadline) {
      event_base_loop(base, EVLOOP_NONBLOCK);
      char buffer[4096];
      ssize_t n = read(fd_.get(), buffer, sizeof(buffer));
      if (n > 0) received_.append(buffer, n);
      if (n <= 0) poll(nullptr, 0, 1);
    }
    std::string out;
    for (size_t i = 0; i < lines; ++i) {
      size_t eol = received_.find('\n');
      if (eol == std::string::npos) break;
      out += received_.substr(0, eol + 1);
      received_.erase(0, eol + 1);
    }
    return out;
  }

  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
  std::string received_;
};

}  // namespace sppd::smtpd
