// DNSBL checks in the session with rblsmtpd's semantics (qmail-protocols.md §3.1): RBLSMTPD
// from tcprules first, then the listener's options in order, each lookup answered by
// dnsbl-cache (one cache for every worker): from its shared-memory table when the verdict is
// there, else over the channel. At connect a listed client gets rblsmtpd's fake conversation
// instead of the SMTP service; deferred to RCPT (rblspp's place) its RCPTs are refused, and
// authenticated sessions are never checked.
#include <unistd.h>

#include <optional>

#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/dnsbl_table_client.h"
#include "smtpd/helper_link.h"
#include "smtpd/session.h"

namespace sppd::smtpd {
namespace {

// The verdict of step for ip from dnsbl-cache's shared table, as the kDnsblResult frame
// dnsbl-cache would have sent, so both paths end in the same code; nullopt = ask.
std::optional<ipc::Frame> table_answer(DnsblTableClient* table, const std::string& ip,
                                       const RblStep& step) {
  if (!table) return std::nullopt;
  bool txt = step.kind == RblStep::Kind::kListTxt;
  std::optional<DnsblTableVerdict> verdict =
      table->find(ip, step.zone, txt ? DnsblTableKey::Type::kTxt : DnsblTableKey::Type::kA);
  if (!verdict) return std::nullopt;
  ipc::Frame answer(protocol::kDnsblResult, 0);
  answer.add("status", verdict->listed ? "listed" : "clear");
  if (verdict->listed && txt) answer.add("text", verdict->text);
  if (verdict->listed && !txt) {
    for (const std::string& address : verdict->addresses) answer.add("address", address);
  }
  answer.add("cached", "yes");
  return answer;
}

}  // namespace

void Session::check_rbl(std::function<void()> then) {
  rbl_checked_ = true;
  if (const std::string* rblsmtpd = env("RBLSMTPD")) {
    // tcprules decides: empty = no lookups, "-text" = 553 text, "text" = 451 text.
    if (std::optional<RblBlock> block = rbl_block_from_env(*rblsmtpd)) block_rbl(*block);
    then();
    return;
  }
  rbl_check_.emplace(settings_.rbl, remote_.ip);
  rbl_then_ = std::move(then);
  next_rbl_step();
}

void Session::next_rbl_step() {
  while (const RblStep* step = rbl_check_->next_lookup()) {
    if (std::optional<ipc::Frame> answer = table_answer(context_.dnsbl_table, remote_.ip, *step)) {
      apply_rbl_answer(&*answer);  // from shared memory: no round trip
      continue;
    }
    ipc::Frame query(protocol::kDnsblQuery, 0);
    query.add("ip", remote_.ip);
    query.add("zone", step->zone);
    query.add("type", step->kind == RblStep::Kind::kListTxt ? "txt" : "a");
    rbl_request_ = context_.dns->request(std::move(query),
                                         [this](ipc::Frame* frame) { on_rbl_answer(frame); });
    if (!rbl_request_) {
      apply_rbl_answer(nullptr);  // dnsbl-cache unavailable: a DNS error, per -c / -C
      continue;
    }
    set_busy(true);
    return;
  }
  // Every option acted on, or one decided.
  rbl_seconds_ = rbl_check_->seconds();
  if (rbl_check_->block()) block_rbl(*rbl_check_->block());
  auto then = std::move(rbl_then_);
  rbl_then_ = nullptr;
  if (then) then();
}

void Session::apply_rbl_answer(const ipc::Frame* frame) {
  std::string status =
      frame && frame->type == protocol::kDnsblResult ? frame->get_or("status", "error") : "error";
  RblLookup lookup = status == "listed"  ? RblLookup::kListed
                     : status == "clear" ? RblLookup::kClear
                                         : RblLookup::kError;
  rbl_check_->answer(lookup, frame ? frame->get_or("text", "") : "");
}

void Session::on_rbl_answer(ipc::Frame* frame) {
  if (rbl_request_) context_.dns->cancel(*rbl_request_);
  rbl_request_.reset();
  if (phase_ == Phase::kFinished) return;
  apply_rbl_answer(frame);
  set_busy(false);
  next_rbl_step();
  // Answered asynchronously: go on with what the client sent meanwhile.
  if (!busy_) process_input();
}

void Session::block_rbl(const RblBlock& block) {
  rbl_block_ = {block.code, block.text};
  log::info("rblsmtpd: ", remote_.ip, " pid ", getpid(), ": ", block.code, " ", block.text);
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
