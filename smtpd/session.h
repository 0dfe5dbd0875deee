// Session: one SMTP client, from accept to close, with qmail-smtpd's behaviour (spec
// qmail-protocols.md §2), qmail-spp 0.42's plugin hooks (spec qmail-spp.md) and sppd's reply
// style (DECISIONS.md). The engine is split along its states: session.cpp (connect, input,
// replies, close), session_commands.cpp (commands before DATA), session_data.cpp (DATA
// streaming into qmail-queue and the final reply), session_plugins.cpp (qmail-spp),
// session_tls.cpp (STARTTLS, SMTPS) and session_auth.cpp (SMTP AUTH through authd).
// Runs in the sandboxed worker; all waiting is on libevent (PTR answer, queue-bridge), so
// one session never blocks another. Errors from the peer are SMTP replies, never
// exceptions; a helper that is unavailable gives a 4xx.
#pragma once

#include <chrono>
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
#include "smtpd/address.h"
#include "smtpd/client_limits.h"
#include "smtpd/data_decoder.h"
#include "smtpd/helper_pool.h"
#include "smtpd/message_pipe.h"
#include "smtpd/patterns.h"
#include "smtpd/settings.h"
#include "smtpd/virus_scan.h"

namespace sppd::smtpd {

class DnsblTableClient;
class HelperLink;
class HelperPool;

// What a session needs from its worker.
struct SessionContext {
  event_base* base = nullptr;
  HelperPool* queue = nullptr;  // queue-bridge processes (a pool: spawns run in parallel)
  HelperLink* dns = nullptr;
  HelperPool* plugins = nullptr;
  HelperLink* authd = nullptr;
  std::string log_tag;  // "<worker pid>/" : prefixes the session id in plugin log lines
  // Called once when the session has ended; the worker destroys it later.
  std::function<void(uint64_t id)> on_finished;
  // dnsbl-cache's shared DNSBL table, asked before dnsbl-cache itself; may be null.
  DnsblTableClient* dnsbl_table = nullptr;
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
  // dnsbl-cache restarted (the worker has a new channel to it): has this session's client
  // counted there again, if it was; true if so (session_limits.cpp).
  bool reannounce_client();

 private:
  enum class Phase { kConnecting, kCommands, kData, kFinished };

  // --- session.cpp: lifecycle and I/O
  void lookup_remote_host();
  void on_remote_host(std::optional<std::string> host);
  void apply_rules_and_greet();
  void process_input();
  bool take_command_line(std::string* line);
  void refuse_overlong_line();
  void reply(std::string text);  // text without CRLF; may hold embedded "\r\n" lines
  void flush();
  void close_after_flush();
  void finish(const char* why);
  void set_busy(bool busy);
  // Stops reading from the client now (set_busy(false) resumes): for STARTTLS, whose
  // client hello must stay unread in the kernel.
  void pause_reading();
  static void on_read(bufferevent*, void* self);
  static void on_write(bufferevent*, void* self);
  static void on_event(bufferevent*, short what, void* self);
  const std::string* env(const std::string& name) const;
  void set_env(const std::string& name, std::string value);
  void unset_env(const std::string& name);
  // Starts the command phase, with the 220 banner unless a [connection] plugin refused.
  void greet(bool banner);

  // --- session_commands.cpp: commands before DATA
  void handle_command(const std::string& line);
  void cmd_helo(const std::string& arg, bool esmtp);
  // MAIL/RCPT argument with qmail's addrparse; nullopt (and the 555 queued) if unusable.
  std::optional<ParsedAddress> parse_client_address(const std::string& arg);
  void cmd_mail(const std::string& arg);
  void cmd_rcpt(const std::string& arg);
  // badmailto/badrcptto and datechecks for plugin_address_; false (reply queued) if refused.
  bool recipient_checks_pass();
  // Checks a recipient that passed everything local with other processes (realrcptto,
  // rcptcheck); calls accept if it may be delivered, else queues the refusal.
  // (session_verify.cpp)
  void verify_recipient(const std::string& recipient, std::function<void()> accept);
  // Puts an accepted recipient into the envelope (RCPTTOFIXED applied) and answers 250.
  void accept_recipient(std::string recipient);
  void cmd_data();
  void cmd_rset();
  void cmd_quit();
  void reset_transaction();
  unsigned long long databytes() const;

  // --- session_plugins.cpp: qmail-spp
  // How a section's plugins decided (spec qmail-spp.md §5.5): go on with qmail's checks,
  // go on but skip them (O), the command is refused (its reply is already queued), or the
  // connection is closing (R, D).
  enum class PluginVerdict { kAccept, kSkipChecks, kRefused, kClosing };
  using PluginContinuation = std::function<void(PluginVerdict)>;
  struct LaterErrors {  // an L-queue: shown at every MAIL/RCPT/DATA until reset
    std::string text;
    bool shown = false;
  };
  void load_plugins();
  void on_plugin_config(ipc::Frame* frame);
  void run_plugins(char section, PluginContinuation then);
  PluginVerdict apply_plugin_result(char section, const ipc::Frame& result);
  bool refuse_with_later_errors(LaterErrors& queue);
  void reset_plugin_transaction();

  // --- session_tls.cpp: STARTTLS and implicit TLS
  void cmd_starttls(const std::string& arg);
  void start_tls();
  void on_tls_established();
  std::string received_protocol() const;
  static void on_tls_timeout(evutil_socket_t, short, void* self);

  // --- session_auth.cpp: SMTP AUTH
  enum class AuthStage { kNone, kPlain, kLoginUser, kLoginPassword, kCram };
  int auth_methods_now() const;      // the qmail-md bitmask that applies on this connection
  std::string auth_keyword() const;  // "AUTH LOGIN PLAIN ..." or "" when not offered
  void cmd_auth(const std::string& arg);
  void auth_continue(const std::string& line);
  void submit_auth();
  void on_auth_result(ipc::Frame* frame);
  void reset_auth_exchange();
  void set_auth_env(const std::string& name, const std::string& value);
  void forget_authentication();

  // --- session_rbl.cpp: DNSBL checks with rblsmtpd's semantics
  void check_rbl(std::function<void()> then);
  void next_rbl_step();
  void on_rbl_answer(ipc::Frame* frame);
  // Feeds a kDnsblResult (nullptr: no answer, a DNS error) to the check.
  void apply_rbl_answer(const ipc::Frame* frame);
  void block_rbl(const RblBlock& block);
  void start_rblsmtpd_conversation();
  void rblsmtpd_command(const std::string& verb);
  static void on_rbl_timeout(evutil_socket_t, short, void* self);

  // --- session_limits.cpp: per-client connection limits, counted by dnsbl-cache
  void check_client_limits(std::function<void()> then);
  void on_client_verdict(ipc::Frame* frame, const char* failure);
  ipc::Frame client_connect_frame() const;
  void release_client();  // the session ended: dnsbl-cache stops counting it

  // --- session_sender.cpp: qmail-md's sender checks (control/mfcheck) done by dnsbl-cache
  // The end of MAIL: check is false for a plugin's O, a goodmailfrom match and the null
  // sender; otherwise the sender is checked when mfcheck applies, then accepted or refused.
  void verify_sender(bool check);
  void on_sender_verdict(ipc::Frame* frame, const char* failure);
  void accept_sender();               // plugin_address_ becomes the sender: 250 to MAIL
  int mfcheck_level() const;          // MFCHECK from tcprules, else control/mfcheck
  std::string callback_helo() const;  // the call-back's HELO name: control/me, one word

  // --- session_spam.cpp: qmail-md's pattern files, tarpitting, limits, SMTP log
  // The pattern file for name ("badhelo", ...) in this session: NO_<NAME> switches it off,
  // <NAME>=path picks another file (read at worker start); nullptr = no check.
  const PatternFile* pattern_file(const std::string& name) const;
  std::optional<PatternFile::Match> pattern_match(const std::string& name,
                                                  const std::string& subject) const;
  long tarpit_delay() const;  // 0 with NO_TARPITTING
  long tarpit_count() const;  // 0 = no RCPT tarpitting
  long maxrcpt() const;       // 0 = no limit
  // The greeting's first line, for HELO/EHLO/QUIT: SMTPGREETING, else control/smtpgreeting.
  const std::string& greeting_name() const;
  // "<sender> to <recipient> | helo(name)" for TARPIT: and decision log lines.
  std::string decision_context(const std::string& sender, const std::string& recipient) const;
  // Logs "TARPIT: context | why", waits tarpit_delay() without reading, then calls then
  // (which queues the error reply).
  void tarpit(const std::string& why, const std::string& context, std::function<void()> then);
  // Stops reading for seconds, then calls then and goes on with the client's input.
  void delay_reply(long seconds, std::function<void()> then);
  static void on_tarpit_timer(evutil_socket_t, short, void* self);
  // $BLACKLISTED (qmail-md: the trap address every recipient becomes) for an unauthenticated
  // session; nullptr otherwise.
  const std::string* blacklisted() const;
  // Adds a rewritten recipient (trap, RCPTTOFIXED) to the envelope unless it is there.
  void add_recipient(std::string recipient);
  // The recipients qmail-queue gets: the accepted ones plus control/bigbrother's copies for
  // mail from or to a watched address.
  std::vector<std::string> envelope_recipients() const;
  void log_client_line(const std::string& line) const;  // control/log/smtp_in
  void log_reply(const std::string& text) const;        // control/log/smtp_out

  // --- session_verify.cpp: realrcptto and rcptcheck, answered by pluginrunner
  // realrcptto (unless switched off): then if qmail has a mailbox or the domain is not local.
  void check_real_recipient(const std::string& recipient, std::function<void()> then);
  // qmail-md's rcptcheck program, if this session has one: accept if it passes.
  void run_rcptcheck(const std::string& recipient, std::function<void()> accept);
  void on_rcptcheck_result(ipc::Frame* frame, const std::string& recipient,
                           const std::function<void()>& accept);
  // Sends a recipient check to pluginrunner and stops reading until answer (frame, or
  // nullptr if pluginrunner went away) has run. false: no pluginrunner (nothing sent).
  bool ask_plugin_runner(ipc::Frame&& request, std::function<void(ipc::Frame*)> answer);

  // --- session_data.cpp: the message
  void on_queue_frame(ipc::Frame* frame);
  void begin_data(UniqueFd message_pipe, const std::string& qp);
  void feed_data();
  void end_of_data();
  void stop_writing_message();
  // Commits the envelope once the message is all in qmail-queue's pipe and clamd (if it
  // scans) said it is clean.
  void commit_when_ready();
  void commit_envelope();
  void abort_transaction();
  void finish_transaction();
  // The message pipe took buffered bytes (decode more, or commit after the dot), or broke.
  void on_pipe_progress();
  void on_pipe_failed(bool timed_out);
  // Virus scanning (control/clamd; session_data.cpp): asks queue-bridge for clamd in the
  // kQueueOpen frame; at kQueueOpened starts the scan or applies clamd_unavailable (false:
  // the transaction was refused, the reply is queued); then clamd's verdict.
  void request_scanner(ipc::Frame& open);
  bool start_scan();
  void on_scan_verdict(const ScanVerdict& verdict);

  const uint64_t id_;
  const ListenerSettings& settings_;
  SessionContext context_;
  Endpoint remote_, local_;
  BuffereventPtr client_;
  EventPtr lookup_timer_;
  Phase phase_ = Phase::kConnecting;
  bool busy_ = false;  // waiting for a helper: input is not processed
  // Reading stopped because input (or EOF) arrived while busy_; set_busy(false) resumes it.
  bool reading_paused_ = false;
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

  // qmail-spp state (lifetimes in spec qmail-spp.md §6)
  bool plugins_enabled_ = false;                       // a plugin file was loaded (NOSPP unset)
  bool plugins_running_ = true;                        // false for the rest of the session after A
  std::vector<std::pair<char, std::string>> plugins_;  // section letter, config line
  std::optional<HelperPool::Ticket> plugin_request_;
  std::string plugin_headers_;  // H lines for the next message
  LaterErrors later_mail_, later_rcpt_, later_data_;
  int rcpt_count_ = 0;          // recipients accepted in this transaction
  int rcpt_count_all_ = 0;      // RCPTs that reached the plugins, accepted or not
  std::string plugin_address_;  // the MAIL/RCPT address plugins may change with C

  // TLS and AUTH
  bool tls_active_ = false;
  bool tls_handshaking_ = false;
  bool starttls_pending_ = false;  // 220 sent, TLS starts when it has been written
  EventPtr tls_timer_;
  bool authenticated_ = false;
  // What a successful AUTH changed in the environment, with the values before it, so that a
  // later STARTTLS can forget the login completely (RFC 3207 §4.2).
  std::vector<std::pair<std::string, std::optional<std::string>>> env_before_auth_;
  AuthStage auth_stage_ = AuthStage::kNone;
  std::string auth_method_;                  // "plain", "login", "cram-md5", ... (SMTPAUTHMETHOD)
  std::vector<std::string> auth_responses_;  // the client's base64 lines, wiped when sent
  std::string auth_challenge_;
  std::optional<uint32_t> auth_request_;

  // DNSBL state (rblsmtpd)
  bool rbl_checked_ = false;
  std::optional<std::pair<std::string, std::string>> rbl_block_;  // code, text
  std::optional<RblCheck> rbl_check_;  // rblsmtpd's decision, one lookup at a time
  int rbl_seconds_ = 60;               // -t
  std::function<void()> rbl_then_;
  std::optional<uint32_t> rbl_request_;
  EventPtr rbl_timer_;

  // Per-client limits (session_limits.cpp)
  ClientLimits client_limits_;
  bool client_counted_ = false;  // dnsbl-cache may be counting this session
  std::chrono::steady_clock::time_point client_announced_at_;
  std::optional<uint32_t> client_request_;
  EventPtr client_timer_;
  std::function<void()> client_then_;

  // Recipient checks in flight (session_verify.cpp)
  std::optional<HelperPool::Ticket> verify_request_;

  // Sender checks (session_sender.cpp)
  std::optional<uint32_t> sender_request_;
  EventPtr sender_timer_;

  // Tarpitting (session_spam.cpp)
  EventPtr tarpit_timer_;
  std::function<void()> tarpit_then_;

  // DATA transaction state
  std::optional<HelperPool::Ticket> queue_request_;
  std::unique_ptr<MessagePipe> message_pipe_;
  std::unique_ptr<DataDecoder> decoder_;
  bool data_complete_ = false;   // the client's "." was seen
  bool message_closed_ = false;  // our end of the message pipe is closed
  bool committed_ = false;
  std::optional<std::pair<std::string, std::string>> queue_result_;  // reply code, qmail text

  // Virus scanning of the transaction's message (session_data.cpp)
  bool scan_requested_ = false;      // kQueueOpen named control/clamd
  UniqueFd scanner_socket_;          // kQueueScanner's socket, until kQueueOpened
  std::string scanner_unavailable_;  // kQueueScanner's reason when it had no socket
  std::unique_ptr<VirusScan> virus_scan_;
  std::optional<std::string> virus_;  // what clamd found: the 554 comes after a tarpit
};

}  // namespace sppd::smtpd
