// DNSBL checks in the session with rblsmtpd's semantics (qmail-protocols.md §3.1): RBLSMTPD
// from tcprules first, then the listener's options in order, each lookup answered by
// dnsbl-cache (one cache for every worker). At connect a listed client gets rblsmtpd's fake
// conversation instead of the SMTP service; deferred to RCPT (rblspp's place) its RCPTs are
// refused, and authenticated sessions are never checked.
#include <unistd.h>

#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "smtpd/session.h"

namespace sppd::smtpd {

void Session::check_rbl(std::function<void()> then) {
  rbl_checked_ = true;
  if (const std::string* rblsmtpd = env("RBLSMTPD")) {
    // tcprules decides: empty = no lookups, "-text" = 553 text, "text" = 451 text.
    if (!rblsmtpd->empty()) {
      if ((*rblsmtpd)[0] == '-') {
        block_rbl("553", rblsmtpd->substr(1));
      } else {
        block_rbl("451", *rblsmtpd);
      }
    }
    then();
    return;
  }
  rbl_step_ = 0;
  rbl_then_ = std::move(then);
  next_rbl_step();
}

void Session::next_rbl_step() {
  for (; rbl_step_ < settings_.rbl.size(); ++rbl_step_) {
    const RblStep& step = settings_.rbl[rbl_step_];
    switch (step.kind) {
      case RblStep::Kind::kPermanent:
        rbl_permanent_ = true;
        continue;
      case RblStep::Kind::kTemporary:
        rbl_permanent_ = false;
        continue;
      case RblStep::Kind::kFailClosed:
        rbl_fail_closed_ = true;
        continue;
      case RblStep::Kind::kFailOpen:
        rbl_fail_closed_ = false;
        continue;
      case RblStep::Kind::kTimeout:
        rbl_seconds_ = step.seconds;
        continue;
      default:
        break;
    }
    ipc::Frame query(protocol::kDnsblQuery, 0);
    query.add("ip", remote_.ip);
    query.add("zone", step.zone);
    query.add("type", step.kind == RblStep::Kind::kListTxt ? "txt" : "a");
    rbl_request_ = context_.dns->request(std::move(query),
                                         [this](ipc::Frame* frame) { on_rbl_answer(frame); });
    if (!rbl_request_) {
      on_rbl_answer(nullptr);  // dnsbl-cache unavailable: a DNS error, per -c / -C
      return;
    }
    set_busy(true);
    return;
  }
  // Every option done without a decision: the client may talk to the SMTP service.
  auto then = std::move(rbl_then_);
  rbl_then_ = nullptr;
  if (then) then();
}

void Session::on_rbl_answer(ipc::Frame* frame) {
  if (rbl_request_) context_.dns->cancel(*rbl_request_);
  bool was_waiting = rbl_request_.has_value();
  rbl_request_.reset();
  if (phase_ == Phase::kFinished) return;
  const RblStep& step = settings_.rbl[rbl_step_];
  std::string status =
      frame && frame->type == protocol::kDnsblResult ? frame->get_or("status", "error") : "error";
  bool decided = false;
  if (status == "error") rbl_dns_error_ = true;
  if (step.kind == RblStep::Kind::kAntiList) {
    // An anti-list answer lets the client in; so does a DNS error when failing open.
    decided = status == "listed" || (status == "error" && !rbl_fail_closed_);
  } else if (status == "listed") {
    std::string text = step.kind == RblStep::Kind::kListTxt ? frame->get_or("text", "")
                                                            : rbl_message(step.text, remote_.ip);
    // rblsmtpd: any DNS error on the way makes the answer temporary, even with -b.
    block_rbl(rbl_permanent_ && !rbl_dns_error_ ? "553" : "451", text);
    decided = true;
  } else if (status == "error" && rbl_fail_closed_) {
    block_rbl("451", "temporary RBL lookup error");  // a DNS error is never permanent
    decided = true;
  }
  if (was_waiting) set_busy(false);
  if (decided) {
    rbl_step_ = settings_.rbl.size();
  } else {
    ++rbl_step_;
  }
  next_rbl_step();
  // Answered asynchronously: go on with what the client sent meanwhile.
  if (was_waiting && !busy_) process_input();
}

void Session::block_rbl(const std::string& code, const std::string& text) {
  rbl_block_ = {code, text};
  log::info("rblsmtpd: ", remote_.ip, " pid ", getpid(), ": ", code, " ", text);
}

void Session::start_rblsmtpd_conversation() {
  phase_ = Phase::kCommands;
  if (rbl_seconds_ == 0) {  // -t 0: say it once and go
    reply(rbl_block_->first + " " + rbl_block_->second);
    close_after_flush();
    return;
  }
  reply("220 rblsmtpd.local");
  flush();
  rbl_timer_.reset(evtimer_new(context_.base, on_rbl_timeout, this));
  timeval limit{rbl_seconds_, 0};
  evtimer_add(rbl_timer_.get(), &limit);
  bufferevent_enable(client_.get(), EV_READ);
  process_input();
}

void Session::on_rbl_timeout(evutil_socket_t, short, void* self) {
  static_cast<Session*>(self)->finish("rblsmtpd timeout");  // rblsmtpd exits silently
}

void Session::rblsmtpd_command(const std::string& verb) {
  if (verb == "quit") {
    reply("221 rblsmtpd.local");
    close_after_flush();
  } else if (verb == "helo" || verb == "ehlo" || verb == "mail" || verb == "rset" ||
             verb == "noop") {
    reply("250 rblsmtpd.local");
  } else {
    reply(rbl_block_->first + " " + rbl_block_->second);
  }
}

}  // namespace sppd::smtpd
