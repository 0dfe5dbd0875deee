// Channel implementation: recvmsg/sendmsg on a SOCK_SEQPACKET socket with SCM_RIGHTS.
// Privilege: any. Errors: a peer that sends garbage loses its channel (fail-stop for the
// link, not for this process) and the reason is logged by the owner's on_close.
#include "common/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>

#include "common/log.h"

namespace sppd::ipc {

Channel::Channel(event_base* base, UniqueFd fd, FrameHandler on_frame, CloseHandler on_close)
    : fd_(std::move(fd)), on_frame_(std::move(on_frame)), on_close_(std::move(on_close)) {
  evutil_make_socket_nonblocking(fd_.get());
  read_event_.reset(event_new(base, fd_.get(), EV_READ | EV_PERSIST, on_event, this));
  write_event_.reset(event_new(base, fd_.get(), EV_WRITE | EV_PERSIST, on_event, this));
  event_add(read_event_.get(), nullptr);
}

Channel::~Channel() { close(); }

void Channel::close() {
  if (read_event_) event_del(read_event_.get());
  if (write_event_) event_del(write_event_.get());
  for (auto& out : outbound_) explicit_bzero(out.bytes.data(), out.bytes.size());
  outbound_.clear();
  fd_.reset();
}

bool Channel::send(Frame&& frame) {
  if (!open()) return false;
  std::string why;
  auto bytes = encode(frame, &why);
  if (!bytes) {
    log::error("ipc: cannot send frame type ", frame.type, ": ", why);
    return false;
  }
  outbound_.push_back(Outbound{std::move(*bytes), std::move(frame.fd)});
  for (auto& [name, value] : frame.attrs) explicit_bzero(value.data(), value.size());
  write_frames();
  return open();
}

void Channel::on_event(evutil_socket_t, short what, void* self) {
  auto* channel = static_cast<Channel*>(self);
  if (what & EV_WRITE) channel->write_frames();
  if ((what & EV_READ) && channel->open()) channel->read_frames();
}

void Channel::read_frames() {
  // Several frames may be waiting; a handler may close (or destroy the owner of) this
  // channel, so nothing of *this is touched after on_frame_ unless the fd is still open.
  for (int i = 0; i < 64 && open(); ++i) {
    char buffer[kMaxFrameSize + 1];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    iovec iov{buffer, sizeof(buffer)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      fail(std::string("read error: ") + std::strerror(errno));
      return;
    }
    // Take ownership of every passed descriptor first, so none leaks on a reject.
    std::vector<UniqueFd> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; ++k) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
          fds.emplace_back(passed);
        }
      }
    }
    if (n == 0) {
      fail("peer closed the channel");
      return;
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
      fail("malformed frame: larger than 64 KiB or too many descriptors");
      return;
    }
    if (fds.size() > 1) {
      fail("malformed frame: more than one descriptor");
      return;
    }
    std::string why;
    auto frame = decode(std::string_view(buffer, static_cast<size_t>(n)), &why);
    // Frames may carry credentials (smtpd -> authd): no copy stays behind on the stack.
    explicit_bzero(buffer, static_cast<size_t>(n));
    if (!frame) {
      fail("malformed frame: " + why);
      return;
    }
    if (!fds.empty()) frame->fd = std::move(fds.front());
    on_frame_(std::move(*frame));
  }
}

void Channel::write_frames() {
  while (open() && !outbound_.empty()) {
    Outbound& out = outbound_.front();
    iovec iov{out.bytes.data(), out.bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (out.fd) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      int passed = out.fd.get();
      std::memcpy(CMSG_DATA(c), &passed, sizeof(int));
    }
    ssize_t n = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      fail(std::string("write error: ") + std::strerror(errno));
      return;
    }
    explicit_bzero(out.bytes.data(), out.bytes.size());  // may hold credentials, see above
    outbound_.pop_front();
  }
  update_write_interest();
}

void Channel::update_write_interest() {
  if (!open()) return;
  bool want = !outbound_.empty();
  if (want == write_pending_) return;
  write_pending_ = want;
  if (want) {
    event_add(write_event_.get(), nullptr);
  } else {
    event_del(write_event_.get());
  }
}

void Channel::fail(const std::string& why) {
  close();
  // Move the handler out first: it may destroy this Channel.
  CloseHandler handler = std::move(on_close_);
  if (handler) handler(why);
}

std::pair<UniqueFd, UniqueFd> make_socketpair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace sppd::ipc
