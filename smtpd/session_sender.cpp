// qmail-md's sender checks at MAIL (control/mfcheck, MFCHECK; spec qmail-protocols.md §6.4):
// 1 = the sender's domain must exist in DNS, 2 = its mail exchangers must also accept
// RCPT TO:<sender> in a call-back. They run after the [mail] plugins and badmailfrom /
// goodmailfrom; a plugin's O, a goodmailfrom match, the null sender and authenticated sessions
// skip them. Runs in the sandboxed worker, which can neither resolve nor connect: dnsbl-cache
// does both (protocol.h kSenderCheck) while the MAIL waits, without holding up other sessions.
// Refusals are tarpitted and logged as qmail-md does (TARPIT:, BounceTest:). It is a spam
// check, so it fails open: dnsbl-cache unavailable, gone or silent, or no exchanger answering
// the call-back, and the sender is accepted with a log line.
#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "smtpd/session.h"

namespace sppd::smtpd {
namespace {

// dnsbl-cache ends every check well within this (DNS lookup_timeout per step, at most 60 s
// per call-back address, three addresses); a verdict this late means it is stuck.
constexpr int kSenderVerdictTimeout = 240;  // seconds

}  // namespace

int Session::mfcheck_level() const {
  const std::string* value = env("MFCHECK");
  if (value && value->size() == 1 && (*value)[0] >= '0' && (*value)[0] <= '2') {
    return (*value)[0] - '0';
  }
  if (value && !value->empty()) {
    log::warn("session ", id_, ": MFCHECK=", *value, " is not 0, 1 or 2; control/mfcheck applies");
  }
  return settings_.spam.mfcheck;
}

std::string Session::callback_helo() const {
  // dnsbl-cache sends it as the HELO argument: one word of printable ASCII.
  const std::string& name = settings_.spam.me.empty() ? settings_.me : settings_.spam.me;
  std::string word;
  for (char c : name) {
    if (c == ' ' || c == '\t') break;
    if (c > ' ' && c < 0x7f) word.push_back(c);
  }
  return word.empty() ? "localhost" : word;
}

void Session::verify_sender(bool check) {
  // A plain badmailfrom hit is refused at every RCPT anyway: no DNS, no call-back for it.
  int level = check && !sender_badmailfrom_ && !authenticated_ ? mfcheck_level() : 0;
  size_t at = plugin_address_.rfind('@');
  // qmail-md checks only addresses with a domain (a bare "root" has nothing to look up).
  if (level == 0 || at == std::string::npos || at + 1 == plugin_address_.size() || !context_.dns) {
    accept_sender();
    return;
  }
  ipc::Frame request(protocol::kSenderCheck, 0);
  request.add("sender", plugin_address_);
  request.add("level", std::to_string(level));
  if (level == 2) {
    request.add("helo", callback_helo());
    for (const std::string& ip : settings_.spam.mxblacklist) request.add("mxblacklist", ip);
  }
  sender_request_ = context_.dns->request(std::move(request), [this](ipc::Frame* frame) {
    on_sender_verdict(frame, frame ? "" : "dnsbl-cache went away");
  });
  if (!sender_request_) {
    on_sender_verdict(nullptr, "dnsbl-cache unavailable");
    return;
  }
  set_busy(true);
  sender_timer_.reset(evtimer_new(
      context_.base,
      [](evutil_socket_t, short, void* self) {
        static_cast<Session*>(self)->on_sender_verdict(nullptr, "no answer from dnsbl-cache");
      },
      this));
  timeval limit{kSenderVerdictTimeout, 0};
  evtimer_add(sender_timer_.get(), &limit);
}

void Session::on_sender_verdict(ipc::Frame* frame, const char* failure) {
  bool was_waiting = sender_request_.has_value();
  if (sender_request_) context_.dns->cancel(*sender_request_);
  sender_request_.reset();
  sender_timer_.reset();
  if (phase_ == Phase::kFinished) return;
  if (was_waiting) set_busy(false);
  const std::string sender = plugin_address_;
  std::string verdict, detail;
  if (frame && frame->type == protocol::kSenderVerdict) {
    verdict = frame->get_or("verdict", "");
    detail = frame->get_or("detail", "");
    if (verdict == "rejected") {
      // The exchanger's own words, as qmail-md logs its test bounce.
      for (std::string_view line : frame->all("reply")) {
        log::info("session ", id_, ": BounceTest: ", line);
      }
    }
  }
  auto refuse = [this, &sender, &verdict, &detail](std::string text) {
    tarpit("mfcheck " + verdict + ": " + detail, decision_context(sender, ""),
           [this, text = std::move(text)] { reply(text); });
  };
  if (verdict == "no_domain") {
    refuse("553 5.1.8 sorry, your envelope sender domain must exist");
  } else if (verdict == "null_mx") {
    refuse("550 5.7.27 sorry, your envelope sender domain does not accept mail");
  } else if (verdict == "mx_blacklisted") {
    refuse("451 4.1.8 bad sender's system address, your mx is blacklisted!");
  } else if (verdict == "rejected") {
    refuse("550 5.1.8 bad sender's mailbox address, RCPT TO:<" + sender + "> failed");
  } else if (verdict == "dns_error") {
    // Not the client's doing: no tarpit, and a temporary answer so it tries again later.
    log::info("session ", id_, ": mfcheck: <", sender, ">: ", detail);
    reply("451 4.4.3 sorry, DNS temporary failure while checking your envelope sender domain");
  } else {
    if (verdict == "unverified") {
      log::info("session ", id_, ": mfcheck: <", sender, "> accepted unverified: ", detail);
    } else if (verdict != "ok") {
      log::warn("session ", id_, ": ", *failure ? failure : "unexpected answer from dnsbl-cache",
                ": <", sender, "> accepted without its sender check (fail open)");
    }
    accept_sender();
  }
  // Answered asynchronously: go on with what the client sent meanwhile.
  if (was_waiting && !busy_) process_input();
}

void Session::accept_sender() {
  sender_ = plugin_address_;  // a plugin's C replaces the sender
  seen_mail_ = true;
  recipients_.clear();
  reply(blacklisted() ? "250 2.1.0 welcome spammer :)" : "250 2.1.0 ok");
}

}  // namespace sppd::smtpd
