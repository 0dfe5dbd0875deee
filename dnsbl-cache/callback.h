// Callback: qmail-md's "test bounce" for mfcheck 2 — asks a sender's mail exchangers whether
// they would take a bounce to the sender: HELO <our name>, MAIL FROM:<>, RCPT TO:<sender>,
// QUIT, one address after the other, each within its own timeout, on libevent bufferevents.
// Runs in sppd-dnsbl-cache, unprivileged (it may open TCP sockets; the workers may not).
// What the remote host says is data: replies are read line by line within fixed limits, and
// every failure (refused, timed out, a 4xx, garbage, a 5xx before RCPT) only moves on to the
// next address; only RCPT's own answer is a verdict.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/event.h"

namespace sppd::dnsbl_cache {

struct CallbackOptions {
  int port = 25;  // [service dnsbl-cache] callback_port (tests use an unprivileged one)
  // One address's whole conversation, connect to RCPT's answer ([service dnsbl-cache]
  // callback_timeout).
  std::chrono::milliseconds timeout{15000};
  // After RCPT's answer: how long QUIT's 221 (or the close) is waited for before giving up.
  std::chrono::milliseconds quit_grace{2000};
};

struct CallbackOutcome {
  // kAccepted: RCPT got a 2xx; kRejected: a 5xx; kUnverified: no address gave either.
  enum class Kind { kAccepted, kRejected, kUnverified };
  Kind kind = Kind::kUnverified;
  std::string address;             // the one that answered RCPT (kAccepted, kRejected)
  std::vector<std::string> reply;  // its reply lines to RCPT as sent, without CRLF
  std::string detail;              // kUnverified: what went wrong at each address
};

// The mailbox as RCPT TO's argument: local part quoted (RFC 5321 §4.1.2) when it is not a
// dot-string. Empty when it cannot be sent at all (a control character, no '@').
std::string callback_path(const std::string& sender);

class Callback {
 public:
  using Done = std::function<void(const CallbackOutcome& outcome)>;

  // addresses: numeric IPs in the order to try; helo: our name; sender: local@domain.
  Callback(event_base* base, std::vector<std::string> addresses, std::string helo,
           std::string sender, const CallbackOptions& options, Done done);
  ~Callback();
  Callback(const Callback&) = delete;
  Callback& operator=(const Callback&) = delete;

  // Starts trying. done runs exactly once, from the event loop (never inside start()), and
  // may destroy the Callback.
  void start();

 private:
  enum class Stage { kGreeting, kHelo, kMail, kRcpt, kQuit };

  // Connects to the next address, or reports kUnverified when none is left.
  void next_address();
  // This address gave no verdict: note why, send QUIT if the conversation allows, move on.
  void give_up(const std::string& why, bool say_quit);
  // RCPT answered: QUIT, then report.
  void decided(CallbackOutcome::Kind kind);
  // Sends QUIT and waits (quit_grace) for its answer or the close; then finish_address().
  void say_quit();
  // The address is done with: close it, then report or try the next.
  void finish_address();
  void on_reply();
  void send(const std::string& line);
  void arm_timer(std::chrono::milliseconds after);
  static void on_read(bufferevent*, void* self);
  static void on_event(bufferevent*, short what, void* self);
  static void on_timer(evutil_socket_t, short, void* self);

  event_base* base_;
  std::vector<std::string> addresses_;
  std::string helo_;
  std::string sender_;
  std::string path_;  // callback_path(sender_)
  CallbackOptions options_;
  Done done_;
  size_t next_ = 0;  // index of the next address to try
  std::string current_;
  BuffereventPtr connection_;
  EventPtr timer_;
  Stage stage_ = Stage::kGreeting;
  std::vector<std::string> lines_;  // the reply being read
  std::vector<std::string> failures_;
  bool have_verdict_ = false;
  CallbackOutcome outcome_;
};

}  // namespace sppd::dnsbl_cache
