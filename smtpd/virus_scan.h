// VirusScan: one message sent to clamd with its INSTREAM protocol (spec qmail-protocols.md
// §6.4), over a socket queue-bridge connected and handed to the worker (the sandboxed worker
// never connects: it only reads and writes the descriptor it was given). The session feeds
// it the bytes qmail-queue gets, while they stream; the verdict comes once, after the end
// marker: clean, a virus name, or an error (clamd closed, stalled past the timeout, refused
// the size, or said something else), which the session maps to its clamd_unavailable policy.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/event.h"
#include "common/fd.h"

namespace sppd::smtpd {

struct ScanVerdict {
  enum class Kind { kClean, kVirus, kError };
  Kind kind = Kind::kError;
  std::string text;  // kVirus: the virus name as clamd reported it; kError: why, for the log
};

// Starts a scan: "zINSTREAM" and its NUL (the z form: clamd's answer ends in a NUL too).
inline constexpr std::string_view kInstreamCommand{"zINSTREAM\0", 10};

// One INSTREAM chunk: the length as 4 bytes big-endian, then the bytes. An empty chunk
// ends the stream.
std::string instream_chunk(std::string_view bytes);

// What clamd's answer to INSTREAM means (without its NUL): "stream: OK", "stream: <name>
// FOUND", or "<why> ERROR" (e.g. "INSTREAM size limit exceeded. ERROR" when the message is
// over clamd's StreamMaxLength). A virus name is cut to 100 bytes, and bytes outside
// printable ASCII and '"' become '?': it goes into a reply line and the log.
ScanVerdict parse_instream_reply(std::string_view reply);

class VirusScan {
 public:
  // Bytes collected before they go out as one chunk (clamd reads chunk by chunk).
  static constexpr size_t kChunkSize = 64 * 1024;
  // Longest answer accepted from clamd; a longer one is an error.
  static constexpr size_t kMaxAnswer = 1024;

  using VerdictHandler = std::function<void(const ScanVerdict&)>;
  using DrainHandler = std::function<void()>;

  // Starts the scan on socket (connected to clamd) by sending the INSTREAM command.
  // timeout_seconds: how long clamd may stall taking our bytes, and answering after the end.
  // on_verdict is called once, from the event loop (the owner may destroy the scan inside
  // it); on_drained whenever clamd has taken enough that fewer than drained_below bytes wait.
  VirusScan(event_base* base, UniqueFd socket, int timeout_seconds, size_t drained_below,
            VerdictHandler on_verdict, DrainHandler on_drained);
  VirusScan(const VirusScan&) = delete;
  VirusScan& operator=(const VirusScan&) = delete;

  // Sends bytes of the message. Ignored once there is a verdict.
  void feed(std::string_view bytes);
  // Sends the last chunk and the end marker; the verdict follows.
  void finish();
  // Bytes not yet written to clamd: the caller stops reading its client above its limit.
  size_t pending() const;
  // Message bytes fed so far (for the log).
  size_t fed() const { return fed_; }

 private:
  static void on_read(bufferevent*, void* self);
  static void on_write(bufferevent*, void* self);
  static void on_event(bufferevent*, short what, void* self);
  void send_chunk();
  // Collects clamd's answer; true once it is complete (NUL) or can no longer be.
  bool collect_answer();
  void report(ScanVerdict verdict);

  BuffereventPtr socket_;
  int timeout_seconds_;
  VerdictHandler on_verdict_;
  DrainHandler on_drained_;
  std::string chunk_;   // message bytes not yet sent as a chunk
  std::string answer_;  // clamd's answer so far
  size_t fed_ = 0;
  bool finished_ = false;  // the end marker is sent
  bool reported_ = false;
};

}  // namespace sppd::smtpd
