// MessagePipe: the worker's end of qmail-queue's message pipe (qmail-queue's fd 0, handed
// over by queue-bridge). Bytes go straight into the pipe; only what does not fit waits in a
// buffer behind a write event with a stall timeout, so a message the pipe can hold costs no
// event changes at all. Runs in the sandboxed worker.
#pragma once

#include <functional>
#include <string_view>

#include "common/event.h"
#include "common/fd.h"

namespace sppd::smtpd {

class MessagePipe {
 public:
  // on_progress: buffered bytes went into the pipe (the caller may feed more or commit).
  // on_failed: the pipe broke (qmail-queue exited: EPIPE) or qmail-queue read nothing for
  // stall_timeout seconds (timed_out). Neither is ever called from inside write(), so the
  // owner may destroy the pipe in them.
  MessagePipe(event_base* base, UniqueFd pipe, int stall_timeout, std::function<void()> on_progress,
              std::function<void(bool timed_out)> on_failed);
  MessagePipe(const MessagePipe&) = delete;
  MessagePipe& operator=(const MessagePipe&) = delete;

  void write(std::string_view data);
  // Keeps data to go out with the next write() or flush(): the Received line joins the first
  // body bytes, one wake-up of qmail-queue less per message.
  void hold(std::string_view data);
  // Writes what hold() kept, if nothing else has.
  void flush();
  // Bytes accepted by write() that are not in the pipe yet.
  size_t pending() const;

 private:
  static void on_event(evutil_socket_t, short what, void* self);
  // Writes the buffer until it is empty or the pipe is full; false: the pipe broke.
  bool write_buffered();
  void wait_for_room();
  // Writes the buffer now, or waits for room if the pipe is full.
  void write_now();

  UniqueFd pipe_;
  EvbufferPtr buffer_;
  EventPtr event_;
  timeval stall_timeout_;
  bool failed_ = false;
  bool waiting_ = false;  // the pipe was full: event_ is armed
  std::function<void()> on_progress_;
  std::function<void(bool)> on_failed_;
};

}  // namespace sppd::smtpd
