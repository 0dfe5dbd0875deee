// LocalClient implementation (contract in local_client.h): connect, sendmsg and poll+recvmsg
// on a blocking AF_UNIX SOCK_SEQPACKET socket. A descriptor that comes with an answer (the
// kDnsblTable segment) is kept in the frame; answers to earlier, abandoned questions are
// skipped.
#include "dnsbl-cache/local_client.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <vector>

#include "common/log.h"

namespace sppd::dnsbl_cache {
namespace {

using Clock = std::chrono::steady_clock;

timeval timeval_of(std::chrono::milliseconds timeout) {
  return timeval{static_cast<time_t>(timeout.count() / 1000),
                 static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
}

}  // namespace

std::optional<LocalClient> LocalClient::connect(const std::string& path,
                                                std::chrono::milliseconds timeout,
                                                std::string* why) {
  auto fail = [&](const std::string& reason) {
    *why = "cannot connect to " + path + ": " + reason;
    return std::nullopt;
  };
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) return fail("path too long");
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return fail(std::string("socket: ") + std::strerror(errno));
  // A full accept queue makes connect() wait; SO_SNDTIMEO bounds that wait (and sends).
  timeval limit = timeval_of(timeout);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) < 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) return fail("no room in its queue");
    return fail(std::strerror(errno));
  }
  return LocalClient(path, std::move(fd));
}

std::optional<ipc::Frame> LocalClient::ask(ipc::Frame request, std::chrono::milliseconds timeout,
                                           std::string* why) {
  uint32_t id = next_request_id_++;
  request.request_id = id;
  std::string encode_why;
  std::optional<std::string> bytes = ipc::encode(request, &encode_why);
  if (!bytes) {
    *why = "cannot encode the question: " + encode_why;
    return std::nullopt;
  }
  if (send(fd_.get(), bytes->data(), bytes->size(), MSG_NOSIGNAL) < 0) {
    *why = "cannot send to " + path_ + ": " + std::strerror(errno);
    return std::nullopt;
  }
  Clock::time_point deadline = Clock::now() + timeout;
  std::vector<char> buffer(ipc::kMaxFrameSize + 1);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd ready{fd_.get(), POLLIN, 0};
    int polled = left.count() > 0 ? poll(&ready, 1, static_cast<int>(left.count())) : 0;
    if (polled < 0 && errno == EINTR) continue;
    if (polled < 0) {
      *why = std::string("poll: ") + std::strerror(errno);
      return std::nullopt;
    }
    if (polled == 0) {
      *why = log::concat("no answer from ", path_, " within ", timeout.count() / 1000.0, " s");
      return std::nullopt;
    }
    iovec iov{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_.get(), &message, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    std::vector<UniqueFd> fds;
    if (n >= 0) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++k) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
          fds.emplace_back(passed);
        }
      }
    }
    if (n <= 0) {
      // A reset is a close with our question unread: the same news.
      bool closed = n == 0 || errno == ECONNRESET;
      *why = closed ? path_ + " closed the connection (dnsbl-cache stopped or refused us)"
                    : "cannot read from " + path_ + ": " + std::strerror(errno);
      return std::nullopt;
    }
    std::string decode_why;
    std::optional<ipc::Frame> answer =
        ipc::decode(std::string_view(buffer.data(), static_cast<size_t>(n)), &decode_why);
    if (!answer || (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
      *why = "malformed answer from " + path_ + ": " + (answer ? "truncated" : decode_why);
      return std::nullopt;
    }
    if (answer->request_id != id) continue;  // a late answer to a question given up on
    if (!fds.empty()) answer->fd = std::move(fds.front());
    return answer;
  }
}

}  // namespace sppd::dnsbl_cache
