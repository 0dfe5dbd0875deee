// Session: one SMTP client, from accept to close, with qmail-smtpd's behaviour (spec
// qmail-protocols.md §2) and sppd's reply style (DECISIONS.md). The engine is split along
// its states: session.cpp (connect, input, replies, close), session_commands.cpp (commands
// before DATA), session_data.cpp (DATA streaming into qmail-queue and the final reply).
// Runs in the sandboxed worker; all waiting is on libevent (PTR answer, queue-bridge), so
// one session never blocks another. Errors from the peer are SMTP replies, never
// exceptions; a helper that is unavailable gives a 4xx.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/event.h"
#include "common/fd.h"
#include "common/frame.h"
#include "smtpd/data_decoder.h"
#include "smtpd/settings.h"

namespace sppd::smtpd {

class HelperLink;

// What a session needs from its worker.
struct SessionContext {
  event_base* base = nullptr;
  HelperLink* queue = nullptr;
  HelperLink* dns = nullptr;
  // Called once when the session has ended; the worker destroys it later.
  std::function<void(uint64_t id)> on_finished;
};

struct Endpoint {
  std::string ip;  // textual; IPv4-mapped IPv6 shown as plain IPv4
  int port = 0;
  bool ipv6 = false;
};

class Session {
 public:
  Session(uint64_t id, UniqueFd client, Endpoint remote, Endpoint local,
          const ListenerSettings& settings, SessionContext context);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts the session: PTR lookup (if configured), tcprules, greeting.
  void start();
  // Asks the session to end soon: a drain does not cut sessions; used only at shutdown.
  uint64_t id() const { return id_; }
  bool finished() const { return phase_ == Phase::kFinished; }

 private:
  enum class Phase { kConnecting, kCommands, kData, kFinished };

  // --- session.cpp: lifecycle and I/O
  void lookup_remote_host();
  void on_remote_host(std::optional<std::string> host);
  void apply_rules_and_greet();
  void process_input();
  bool take_command_line(std::string* line);
  void reply(std::string text);  // text without CRLF; may hold embedded "\r\n" lines
  void flush();
  void close_after_flush();
  void finish(const char* why);
  void set_busy(bool busy);
  static void on_read(bufferevent*, void* self);
  static void on_write(bufferevent*, void* self);
  static void on_event(bufferevent*, short what, void* self);
  const std::string* env(const std::string& name) const;
  void set_env(const std::string& name, std::string value);

  // --- session_commands.cpp: commands before DATA
  void handle_command(const std::string& line);
  void cmd_helo(const std::string& arg, bool esmtp);
  void cmd_mail(const std::string& arg);
  void cmd_rcpt(const std::string& arg);
  void cmd_data();
  void cmd_rset();
  void cmd_quit();
  void reset_transaction();
  unsigned long long databytes() const;

  // --- session_data.cpp: the message
  void on_queue_frame(ipc::Frame* frame);
  void begin_data(UniqueFd message_pipe, const std::string& qp);
  void feed_data();
  void end_of_data();
  void stop_writing_message();
  void on_pipe_drained();
  void commit_envelope();
  void abort_transaction();
  void finish_transaction();
  static void on_pipe_write(bufferevent*, void* self);
  static void on_pipe_event(bufferevent*, short what, void* self);

  const uint64_t id_;
  const ListenerSettings& settings_;
  SessionContext context_;
  Endpoint remote_, local_;
  BuffereventPtr client_;
  EventPtr lookup_timer_;
  Phase phase_ = Phase::kConnecting;
  bool busy_ = false;             // waiting for a helper: input is not processed
  bool closing_ = false;          // reply queued, closing once it is written
  bool discarding_line_ = false;  // inside a command line longer than maxcmdlen
  std::string pending_replies_;
  std::optional<uint32_t> lookup_request_;
  std::vector<std::pair<std::string, std::string>> env_;  // tcpserver + tcprules variables

  // SMTP state (qmail-smtpd's seenmail, helohost, mailfrom, rcpt list, flagbarf)
  std::optional<std::string> helo_;
  bool esmtp_ = false;
  bool seen_mail_ = false;
  bool sender_badmailfrom_ = false;
  std::string sender_;
  std::vector<std::string> recipients_;

  // DATA transaction state
  std::optional<uint32_t> queue_request_;
  BuffereventPtr message_pipe_;
  std::unique_ptr<DataDecoder> decoder_;
  bool data_complete_ = false;   // the client's "." was seen
  bool message_closed_ = false;  // our end of the message pipe is closed
  bool committed_ = false;
  std::optional<std::pair<std::string, std::string>> queue_result_;  // reply code, qmail text
};

}  // namespace sppd::smtpd
