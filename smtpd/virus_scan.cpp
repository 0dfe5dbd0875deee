// VirusScan implementation (contract in virus_scan.h). Error policy: nothing here throws or
// retries (qmail-md: "if the connection to clamd breaks down, don't try to reconnect"); every
// failure becomes one kError verdict with a reason, and the session decides what it means.
#include "smtpd/virus_scan.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sppd::smtpd {
namespace {

constexpr size_t kMaxVirusName = 100;

std::string printable(std::string_view text, size_t limit) {
  std::string out(text.substr(0, limit));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e || c == '"') c = '?';
  }
  return out;
}

}  // namespace

std::string instream_chunk(std::string_view bytes) {
  uint32_t length = static_cast<uint32_t>(bytes.size());
  std::string chunk;
  chunk.reserve(4 + bytes.size());
  chunk.push_back(static_cast<char>(length >> 24));
  chunk.push_back(static_cast<char>(length >> 16));
  chunk.push_back(static_cast<char>(length >> 8));
  chunk.push_back(static_cast<char>(length));
  chunk.append(bytes);
  return chunk;
}

ScanVerdict parse_instream_reply(std::string_view reply) {
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\0' || reply.back() == ' ')) {
    reply.remove_suffix(1);
  }
  constexpr std::string_view kStream = "stream: ";
  constexpr std::string_view kFound = " FOUND";
  constexpr std::string_view kError = " ERROR";
  if (reply.starts_with(kStream)) {
    std::string_view result = reply.substr(kStream.size());
    if (result == "OK") return {ScanVerdict::Kind::kClean, ""};
    if (result.ends_with(kFound) && result.size() > kFound.size()) {
      result.remove_suffix(kFound.size());
      return {ScanVerdict::Kind::kVirus, printable(result, kMaxVirusName)};
    }
  }
  if (reply.ends_with(kError)) {
    reply.remove_suffix(kError.size());
    return {ScanVerdict::Kind::kError, "clamd: " + printable(reply, VirusScan::kMaxAnswer)};
  }
  return {ScanVerdict::Kind::kError,
          "unexpected answer from clamd: \"" + printable(reply, VirusScan::kMaxAnswer) + "\""};
}

VirusScan::VirusScan(event_base* base, UniqueFd socket, int timeout_seconds, size_t drained_below,
                     VerdictHandler on_verdict, DrainHandler on_drained)
    : socket_(bufferevent_socket_new(base, socket.release(), BEV_OPT_CLOSE_ON_FREE)),
      timeout_seconds_(timeout_seconds),
      on_verdict_(std::move(on_verdict)),
      on_drained_(std::move(on_drained)) {
  bufferevent_setcb(socket_.get(), on_read, on_write, on_event, this);
  bufferevent_setwatermark(socket_.get(), EV_WRITE, drained_below, 0);
  // Only the writing may stall while the message streams: clamd answers after the end
  // marker (or early, to refuse), and the client may be slow.
  timeval timeout{timeout_seconds_, 0};
  bufferevent_set_timeouts(socket_.get(), nullptr, &timeout);
  bufferevent_enable(socket_.get(), EV_READ | EV_WRITE);
  bufferevent_write(socket_.get(), kInstreamCommand.data(), kInstreamCommand.size());
}

void VirusScan::feed(std::string_view bytes) {
  if (reported_ || finished_) return;
  fed_ += bytes.size();
  while (!bytes.empty()) {
    size_t take = std::min(bytes.size(), kChunkSize - chunk_.size());
    chunk_.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    if (chunk_.size() == kChunkSize) send_chunk();
  }
}

void VirusScan::finish() {
  if (reported_ || finished_) return;
  if (!chunk_.empty()) send_chunk();
  std::string end = instream_chunk("");
  bufferevent_write(socket_.get(), end.data(), end.size());
  finished_ = true;
  timeval timeout{timeout_seconds_, 0};
  bufferevent_set_timeouts(socket_.get(), &timeout, &timeout);
}

size_t VirusScan::pending() const {
  return chunk_.size() + evbuffer_get_length(bufferevent_get_output(socket_.get()));
}

void VirusScan::send_chunk() {
  std::string chunk = instream_chunk(chunk_);
  bufferevent_write(socket_.get(), chunk.data(), chunk.size());
  chunk_.clear();
}

bool VirusScan::collect_answer() {
  evbuffer* input = bufferevent_get_input(socket_.get());
  while (evbuffer_get_length(input) > 0) {
    char byte;
    evbuffer_remove(input, &byte, 1);
    if (byte == '\0') return true;
    answer_.push_back(byte);
    if (answer_.size() > kMaxAnswer) return true;
  }
  return false;
}

void VirusScan::on_read(bufferevent*, void* self) {
  auto* scan = static_cast<VirusScan*>(self);
  if (!scan->collect_answer()) return;
  if (scan->answer_.size() > kMaxAnswer) {
    return scan->report({ScanVerdict::Kind::kError, "clamd's answer is too long"});
  }
  ScanVerdict verdict = parse_instream_reply(scan->answer_);
  if (verdict.kind == ScanVerdict::Kind::kClean && !scan->finished_) {
    verdict = {ScanVerdict::Kind::kError, "clamd said OK before the end of the message"};
  }
  scan->report(std::move(verdict));
}

void VirusScan::on_write(bufferevent*, void* self) {
  auto* scan = static_cast<VirusScan*>(self);
  if (scan->reported_ || scan->finished_) return;
  // A copy: the handler may destroy this scan (and with it on_drained_).
  DrainHandler drained = scan->on_drained_;
  if (drained) drained();
}

void VirusScan::on_event(bufferevent* bev, short what, void* self) {
  auto* scan = static_cast<VirusScan*>(self);
  int error = EVUTIL_SOCKET_ERROR();
  if (what & BEV_EVENT_TIMEOUT) {
    std::string seconds = std::to_string(scan->timeout_seconds_) + " s";
    return scan->report({ScanVerdict::Kind::kError,
                         scan->finished_ ? "clamd did not answer within " + seconds
                                         : "clamd took none of the message for " + seconds});
  }
  if (what & BEV_EVENT_ERROR) {
    // A write failed because clamd closed, maybe after saying why (its size limit): read
    // what it said before the connection went.
    evbuffer_read(bufferevent_get_input(bev), bufferevent_getfd(bev), kMaxAnswer);
  }
  scan->collect_answer();
  if (!scan->answer_.empty() && scan->answer_.size() <= kMaxAnswer) {
    return scan->report(parse_instream_reply(scan->answer_));
  }
  if (what & BEV_EVENT_EOF) {
    return scan->report({ScanVerdict::Kind::kError,
                         scan->finished_ ? "clamd closed the connection without an answer"
                                         : "clamd closed the connection during the message"});
  }
  std::string why = evutil_socket_error_to_string(error);
  if (!scan->finished_) {
    // clamd answers "INSTREAM size limit exceeded" and closes at once, so the answer can
    // be lost with the connection (its close resets it while our chunks are in flight).
    return scan->report(
        {ScanVerdict::Kind::kError, "clamd closed the connection during the message (" + why +
                                        "; is the message over clamd's StreamMaxLength?)"});
  }
  scan->report({ScanVerdict::Kind::kError, "clamd connection failed: " + why});
}

void VirusScan::report(ScanVerdict verdict) {
  if (reported_) return;
  reported_ = true;
  bufferevent_disable(socket_.get(), EV_READ | EV_WRITE);
  chunk_.clear();
  VerdictHandler handler = std::move(on_verdict_);
  // Last: the handler may destroy this scan.
  if (handler) handler(verdict);
}

}  // namespace sppd::smtpd
