// Relays a child's stderr (a pipe; protocol.h kLogFd) to the master's stderr as tagged
// lines "sppd-smtpd[1234]: text". Partial lines wait for their newline (or EOF); overlong
// lines are cut, control characters replaced, so a child cannot forge the master's lines.
// Runs in the master; the pipe may outlive the child (a grandchild such as qmail-queue may
// hold it), so a relay lives until EOF, not until the child is reaped.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/event.h"
#include "common/fd.h"

namespace sppd::master {

// Splits a byte stream into lines of at most max_line bytes. Pure.
class LineSplitter {
 public:
  using Emit = std::function<void(std::string_view line)>;
  explicit LineSplitter(size_t max_line = 4000) : max_line_(max_line) {}

  // Feeds bytes; emits every completed line without its "\n" (or "\r\n"). A line longer
  // than max_line is emitted cut to max_line bytes and the rest of it dropped.
  void feed(std::string_view bytes, const Emit& emit);
  // End of stream: emits the pending partial line, if any.
  void finish(const Emit& emit);

 private:
  void emit_pending(const Emit& emit);

  size_t max_line_;
  std::string pending_;
  bool discarding_ = false;  // inside a line already cut: drop bytes up to its newline
};

// Reads one child's log pipe from the master's event loop.
class LogRelay {
 public:
  // on_eof runs (as the last thing the relay does in that callback) once the pipe is at
  // EOF or fails; the owner may destroy the relay in it.
  LogRelay(event_base* base, UniqueFd pipe, std::string tag, std::function<void()> on_eof);
  LogRelay(const LogRelay&) = delete;
  LogRelay& operator=(const LogRelay&) = delete;

  // Relays what the pipe holds right now (called when the child is reaped, so its last
  // words precede the line about its death). Returns false once the pipe reached EOF; then
  // on_eof is not called and the owner should drop the relay.
  bool drain();

 private:
  static void on_readable(evutil_socket_t fd, short what, void* self);
  // Reads up to max_reads chunks; false at EOF or error (pending text flushed).
  bool read_chunks(int max_reads);

  UniqueFd pipe_;
  std::string tag_;
  LineSplitter splitter_;
  EventPtr event_;
  std::function<void()> on_eof_;
};

}  // namespace sppd::master
