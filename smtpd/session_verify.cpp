// Recipient checks other processes answer (issue 6 items 4 and 11), once every local check
// of a RCPT has passed (session_commands.cpp cmd_rcpt): realrcptto first (Paul Jarc's patch
// in qmail-md: does qmail have a mailbox for this local address?), then qmail-md's rcptcheck
// program. pluginrunner answers both, as it may read qmail's files and start programs; the
// worker sends the question, waits without reading (like a plugin run), and turns the answer
// into the reply. Refusals are tarpitted, as qmail-md tarpits failed recipient checks; a
// pluginrunner that cannot answer gives 451, never 250. Runs in the sandboxed worker.
#include <charconv>

#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/helper_pool.h"
#include "smtpd/rcptcheck_replies.h"
#include "smtpd/session.h"

namespace sppd::smtpd {
namespace {

// realrcptto's refusal, as the issue gives it (Paul Jarc's patch: "550 sorry, no mailbox here
// by that name. (#5.1.1)", in sppd's RFC 2034 style).
constexpr char kNoMailbox[] = "550 5.1.1 sorry, no mailbox here by that name";
// realrcptto could not read qmail's files (a broken users/cdb, an NFS error).
constexpr char kMailboxUnknown[] = "451 4.3.0 unable to verify recipient (temporary failure)";
constexpr char kRunnerUnavailable[] =
    "451 4.3.0 unable to verify recipient (plugin runner unavailable)";

}  // namespace

void Session::verify_recipient(const std::string& recipient, std::function<void()> accept) {
  check_real_recipient(recipient, [this, recipient, accept = std::move(accept)]() mutable {
    run_rcptcheck(recipient, std::move(accept));
  });
}

bool Session::ask_plugin_runner(ipc::Frame&& request, std::function<void(ipc::Frame*)> answer) {
  request.add("session", context_.log_tag + std::to_string(id_));
  auto done = [this, answer = std::move(answer)](ipc::Frame* frame) {
    if (verify_request_) context_.plugins->cancel(*verify_request_);
    verify_request_.reset();
    if (phase_ == Phase::kFinished) return;
    set_busy(false);
    answer(frame);  // may ask again (rcptcheck after realrcptto), tarpit or close
    process_input();
  };
  verify_request_ = context_.plugins->request(std::move(request), std::move(done));
  if (!verify_request_) return false;
  set_busy(true);
  return true;
}

void Session::check_real_recipient(const std::string& recipient, std::function<void()> then) {
  // Off for the listener (sppd.conf realrcptto = no) or for this client (NOREALRCPTTO, set
  // even empty, from tcprules: e.g. hosts whose users qmail's files do not show).
  if (!settings_.listener.realrcptto || env("NOREALRCPTTO")) {
    then();
    return;
  }
  // A domain qmail would not deliver here can only be "not_local": no round trip for it, which
  // is most recipients on a relay. The files were read when the worker started, as Paul Jarc's
  // realrcptto_init reads them when qmail-smtpd starts.
  if (!settings_.qmail_locals.may_be_local(recipient)) {
    then();
    return;
  }
  ipc::Frame request(protocol::kRealRcptTo, 0);
  request.add("recipient", recipient);
  bool sent = ask_plugin_runner(std::move(request), [this, recipient, then](ipc::Frame* frame) {
    if (!frame || frame->type != protocol::kRealRcptToResult) {
      reply(kRunnerUnavailable);
      return;
    }
    const std::string status = frame->get_or("status", "error");
    if (status == "exists" || status == "not_local") {
      then();
      return;
    }
    if (status == "no_mailbox") {
      tarpit("realrcptto: no mailbox", decision_context(sender_, recipient),
             [this] { reply(kNoMailbox); });
      return;
    }
    log::warn("session ", id_, ": realrcptto <", recipient,
              ">: unable to verify: ", frame->get_or("detail", status));
    reply(kMailboxUnknown);
  });
  if (!sent) reply(kRunnerUnavailable);
}

void Session::run_rcptcheck(const std::string& recipient, std::function<void()> accept) {
  // RCPTCHECK (from tcprules) wins over control/rcptcheck; set but empty, it switches the
  // check off for that client.
  const std::string* variable = env("RCPTCHECK");
  const std::string& program = variable ? *variable : settings_.rcptcheck;
  // Relay clients (RELAYCLIENT, which a successful AUTH sets) are not checked unless
  // RCPTCHECKRELAYCLIENT is set, as in Jay Soffian's and sagredo's rcptcheck patches: their
  // recipients are mostly elsewhere, and a script that only knows local mailboxes would
  // refuse them all.
  if (program.empty() || (env("RELAYCLIENT") && !env("RCPTCHECKRELAYCLIENT"))) {
    accept();
    return;
  }
  ipc::Frame request(protocol::kRcptCheck, 0);
  request.add("program", program).add("sender", sender_).add("recipient", recipient);
  for (const auto& [name, value] : env_) request.add("env", name + "=" + value);
  bool sent = ask_plugin_runner(std::move(request), [this, recipient, accept](ipc::Frame* frame) {
    on_rcptcheck_result(frame, recipient, accept);
  });
  if (!sent) reply(kRunnerUnavailable);
}

void Session::on_rcptcheck_result(ipc::Frame* frame, const std::string& recipient,
                                  const std::function<void()>& accept) {
  if (!frame || frame->type != protocol::kRcptCheckResult) {
    reply(kRunnerUnavailable);
    return;
  }
  const std::string exit = frame->get_or("exit", "");
  int code = -1;
  auto [end, error] = std::from_chars(exit.data(), exit.data() + exit.size(), code);
  if (exit.empty() || error != std::errc() || end != exit.data() + exit.size()) {
    log::warn("session ", id_, ": rcptcheck <", sender_, "> to <", recipient,
              "> failed: ", frame->get_or("failure", "no exit status"));
    reply(kRcptCheckFailed);
    return;
  }
  // The seed's rcptcheck log line: "<sender> to <recipient> not okay (code:1)".
  const std::string what = "<" + sender_ + "> to <" + recipient + ">";
  RcptCheckVerdict verdict = rcptcheck_verdict(code);
  switch (verdict.action) {
    case RcptCheckVerdict::Action::kAccept:
      log::debug("session ", id_, ": rcptcheck: ", what, " okay (code:", code, ")");
      accept();
      return;
    case RcptCheckVerdict::Action::kUnknown:
      log::warn("session ", id_, ": rcptcheck: ", what, " exit code ", code,
                " is not in qmail-md's table: answered as a failure");
      reply(kRcptCheckFailed);
      return;
    case RcptCheckVerdict::Action::kRefuse:
      log::info("session ", id_, ": rcptcheck: ", what, " not okay (code:", code, ")");
      tarpit("rcptcheck code " + std::to_string(code), decision_context(sender_, recipient),
             [this, verdict] {
               reply(verdict.reply);
               if (verdict.close) close_after_flush();
             });
      return;
  }
}

}  // namespace sppd::smtpd
