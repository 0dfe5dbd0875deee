// Children's log lines to the master's stderr (contract in log_relay.h). Runs in the master;
// a read error on a pipe ends that relay only.
#include "master/log_relay.h"

#include <errno.h>
#include <unistd.h>

#include "common/log.h"

namespace sppd::master {

void LineSplitter::feed(std::string_view bytes, const Emit& emit) {
  while (!bytes.empty()) {
    size_t newline = bytes.find('\n');
    std::string_view piece = bytes.substr(0, newline);
    if (!discarding_) {
      size_t room = max_line_ - pending_.size();
      pending_.append(piece.substr(0, room));
      if (piece.size() > room) {
        emit_pending(emit);
        discarding_ = true;
      }
    }
    if (newline == std::string_view::npos) return;
    if (discarding_) {
      discarding_ = false;
    } else {
      emit_pending(emit);
    }
    bytes.remove_prefix(newline + 1);
  }
}

void LineSplitter::finish(const Emit& emit) {
  if (!pending_.empty()) emit_pending(emit);
  discarding_ = false;
}

void LineSplitter::emit_pending(const Emit& emit) {
  if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
  emit(pending_);
  pending_.clear();
}

LogRelay::LogRelay(event_base* base, UniqueFd pipe, std::string tag, std::function<void()> on_eof)
    : pipe_(std::move(pipe)), tag_(std::move(tag)), on_eof_(std::move(on_eof)) {
  evutil_make_socket_nonblocking(pipe_.get());
  event_.reset(event_new(base, pipe_.get(), EV_READ | EV_PERSIST, on_readable, this));
  event_add(event_.get(), nullptr);
}

bool LogRelay::drain() { return read_chunks(1024); }

void LogRelay::on_readable(evutil_socket_t, short, void* self) {
  auto* relay = static_cast<LogRelay*>(self);
  // A bounded number of reads per wake-up keeps one chatty child from starving the loop.
  if (relay->read_chunks(16)) return;
  std::function<void()> on_eof = std::move(relay->on_eof_);
  if (on_eof) on_eof();
}

bool LogRelay::read_chunks(int max_reads) {
  if (!pipe_) return false;
  auto emit = [this](std::string_view line) { log::write_tagged(tag_, line); };
  for (int i = 0; i < max_reads; ++i) {
    char buffer[4096];
    ssize_t n = read(pipe_.get(), buffer, sizeof(buffer));
    if (n > 0) {
      splitter_.feed(std::string_view(buffer, static_cast<size_t>(n)), emit);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    // EOF, or an error that will not go away: flush and stop watching.
    splitter_.finish(emit);
    event_del(event_.get());
    pipe_.reset();
    return false;
  }
  return true;
}

}  // namespace sppd::master
