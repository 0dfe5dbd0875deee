// MessagePipe implementation (contract in message_pipe.h). The descriptor is made
// non-blocking here (its flags are shared with no one: queue-bridge closed its copy once it
// was sent), so a qmail-queue that stops reading can never block the worker.
#include "smtpd/message_pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace sppd::smtpd {

MessagePipe::MessagePipe(event_base* base, UniqueFd pipe, int stall_timeout,
                         std::function<void()> on_progress,
                         std::function<void(bool timed_out)> on_failed)
    : pipe_(std::move(pipe)),
      buffer_(evbuffer_new()),
      stall_timeout_{stall_timeout, 0},
      on_progress_(std::move(on_progress)),
      on_failed_(std::move(on_failed)) {
  int flags = fcntl(pipe_.get(), F_GETFL);
  if (flags < 0 || fcntl(pipe_.get(), F_SETFL, flags | O_NONBLOCK) < 0) failed_ = true;
  event_.reset(event_new(base, pipe_.get(), EV_WRITE, on_event, this));
  if (failed_) event_active(event_.get(), EV_WRITE, 0);
}

size_t MessagePipe::pending() const { return evbuffer_get_length(buffer_.get()); }

void MessagePipe::write(std::string_view data) {
  if (failed_ || data.empty()) return;
  if (pending() > 0) {
    evbuffer_add(buffer_.get(), data.data(), data.size());
    if (!waiting_) write_now();  // held bytes and these, in one writev
    return;
  }
  while (!data.empty()) {
    ssize_t n = ::write(pipe_.get(), data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      // Reported from the event loop: our owner may be in the middle of feeding us.
      failed_ = true;
      event_active(event_.get(), EV_WRITE, 0);
      return;
    }
  }
  if (data.empty()) return;
  evbuffer_add(buffer_.get(), data.data(), data.size());
  wait_for_room();
}

void MessagePipe::hold(std::string_view data) {
  if (!failed_) evbuffer_add(buffer_.get(), data.data(), data.size());
}

void MessagePipe::flush() {
  if (!failed_ && !waiting_ && pending() > 0) write_now();
}

void MessagePipe::write_now() {
  if (!write_buffered()) {
    failed_ = true;
    event_active(event_.get(), EV_WRITE, 0);
    return;
  }
  if (pending() > 0) wait_for_room();
}

void MessagePipe::wait_for_room() {
  // Re-armed after every write that made progress: the timeout measures a stall.
  waiting_ = true;
  event_add(event_.get(), &stall_timeout_);
}

bool MessagePipe::write_buffered() {
  while (pending() > 0) {
    int n = evbuffer_write(buffer_.get(), pipe_.get());
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  return true;
}

void MessagePipe::on_event(evutil_socket_t, short what, void* self) {
  auto* pipe = static_cast<MessagePipe*>(self);
  if (pipe->failed_) {
    pipe->on_failed_(false);
    return;
  }
  if (what & EV_TIMEOUT) {
    pipe->failed_ = true;
    pipe->on_failed_(true);
    return;
  }
  pipe->waiting_ = false;
  const size_t before = pipe->pending();
  if (!pipe->write_buffered()) {
    pipe->failed_ = true;
    pipe->on_failed_(false);
    return;
  }
  if (pipe->pending() > 0) pipe->wait_for_room();
  if (pipe->pending() < before) pipe->on_progress_();
}

}  // namespace sppd::smtpd
