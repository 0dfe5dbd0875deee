// Runner's recipient checks (issue 6 items 4 and 11; frames in common/protocol.h):
// kRcptCheck runs qmail-md's rcptcheck program as a plugin is run, many at once in the loop;
// kRealRcptTo answers at once from qmail's files (realrcptto.h), read afresh every time so
// nothing outlives a change or a reload. A malformed frame closes the worker's channel.
#include <optional>
#include <vector>

#include "common/log.h"
#include "common/protocol.h"
#include "pluginrunner/qmail_files.h"
#include "pluginrunner/realrcptto.h"
#include "pluginrunner/runner.h"

namespace sppd::pluginrunner {
namespace {

// The one value of name, or nullptr if it is absent or repeated.
const std::string* single(const ipc::Frame& frame, std::string_view name) {
  return frame.all(name).size() == 1 ? frame.get(name) : nullptr;
}

const char* status_name(Mailbox mailbox) {
  switch (mailbox) {
    case Mailbox::kExists:
      return "exists";
    case Mailbox::kNoMailbox:
      return "no_mailbox";
    case Mailbox::kNotLocal:
      return "not_local";
  }
  return "error";
}

}  // namespace

bool Runner::request_id_in_use(RequestKey key) const {
  return requests_.count(key) || rcptchecks_.count(key);
}

void Runner::start_rcptcheck(helper::Client& client, const ipc::Frame& frame) {
  RequestKey key{client.id, frame.request_id};
  if (request_id_in_use(key)) {
    return service_.malformed(client,
                              "request id " + std::to_string(frame.request_id) + " already in use");
  }
  const std::string* program = single(frame, "program");
  const std::string* session = single(frame, "session");
  const std::string* sender = single(frame, "sender");
  const std::string* recipient = single(frame, "recipient");
  if (!program || program->empty() || !session || !sender || !recipient) {
    return service_.malformed(client,
                              "kRcptCheck needs one program, session, sender and recipient");
  }
  std::optional<std::vector<std::string>> env = helper::env_of(frame);
  if (!env) return service_.malformed(client, "env entry is not NAME=value");
  if (service_.draining()) {
    log::info("worker ", client.worker_pid, " session ", *session,
              ": refusing to run rcptcheck while stopping");
    answer(client,
           rcptcheck_result_frame(frame.request_id, {std::nullopt, "plugin runner is stopping"}));
    return;
  }
  RcptCheckSpec spec{*program, *session, *sender, *recipient, std::move(*env)};
  auto check = std::make_unique<RcptCheck>(
      base_, children_, settings_.run, std::move(spec),
      [this, key](RcptCheckResult&& result) { finish_rcptcheck(key, std::move(result)); });
  RcptCheck* started = check.get();
  rcptchecks_[key] = std::move(check);
  started->start();  // may finish at once (the program cannot be started)
}

void Runner::finish_rcptcheck(RequestKey key, RcptCheckResult&& result) {
  auto it = rcptchecks_.find(key);
  if (it == rcptchecks_.end()) return;
  std::unique_ptr<RcptCheck> check = std::move(it->second);
  rcptchecks_.erase(it);
  if (helper::Client* client = service_.find_client(key.first)) {
    answer(*client, rcptcheck_result_frame(key.second, result));
  }
  service_.destroy_later(std::move(check));
  service_.check_drained();
}

void Runner::abandon_rcptchecks(helper::Client& client) {
  for (auto check = rcptchecks_.lower_bound({client.id, 0});
       check != rcptchecks_.end() && check->first.first == client.id;) {
    log::info("worker ", client.worker_pid, " session ", check->second->session(),
              ": rcptcheck abandoned, the worker went away");
    check->second->cancel();
    service_.destroy_later(std::move(check->second));
    check = rcptchecks_.erase(check);
  }
}

void Runner::check_realrcptto(helper::Client& client, const ipc::Frame& frame) {
  const std::string* recipient = single(frame, "recipient");
  const std::string* session = single(frame, "session");
  if (!recipient || !session) {
    return service_.malformed(client, "kRealRcptTo needs one recipient and one session");
  }
  ipc::Frame reply(protocol::kRealRcptToResult, frame.request_id);
  // As qmail-lspawn: relative to the qmail home, read now (never cached, so a reload or an
  // edited users/assign needs nothing more).
  SystemQmailFiles files(settings_.run.qmail_home);
  try {
    MailboxVerdict verdict = check_mailbox(*recipient, files);
    if (!verdict.warning.empty()) {
      log::warn("session ", *session, ": realrcptto <", *recipient, ">: ", verdict.warning,
                "; accepted");
    }
    std::string detail = verdict.why.empty() ? verdict.warning : verdict.why;
    if (verdict.mailbox == Mailbox::kNoMailbox) {
      log::info("session ", *session, ": realrcptto <", *recipient, ">: no mailbox: ", detail);
    } else {
      log::debug("session ", *session, ": realrcptto <", *recipient,
                 ">: ", status_name(verdict.mailbox), ": ", detail);
    }
    reply.add("status", status_name(verdict.mailbox)).add("detail", detail);
  } catch (const LookupError& e) {
    log::error("session ", *session, ": realrcptto <", *recipient,
               ">: unable to verify: ", e.what());
    reply.add("status", "error").add("detail", e.what());
  }
  answer(client, std::move(reply));
}

}  // namespace sppd::pluginrunner
