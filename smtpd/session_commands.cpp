// SMTP commands before DATA, with qmail-smtpd's order of checks and replies (spec §2.3):
// HELO/EHLO, MAIL, RCPT, DATA (up to asking queue-bridge for qmail-queue), RSET, NOOP,
// VRFY, HELP, QUIT. Each reply carries its RFC 2034 code (DECISIONS.md). qmail-md's checks
// (§6: bad*/goodmailfrom, maxrcpt, reqbrackets, datechecks, tarpitting) come after the
// qmail-spp plugins of their command, so a plugin's O skips them as it skips qmail's own.
#include <chrono>
#include <cstdlib>

#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/address.h"
#include "smtpd/commands.h"
#include "smtpd/helper_link.h"
#include "smtpd/replies.h"
#include "smtpd/session.h"

namespace sppd::smtpd {

void Session::handle_command(const std::string& line) {
  if (line.find('\0') != std::string::npos) {
    reply("500 5.5.2 syntax error, NUL byte in command");
    return;
  }
  CommandLine command = split_command(line);
  const std::string& verb = command.verb;
  if (rbl_block_ && !settings_.listener.rbl_at_rcpt) {
    rblsmtpd_command(verb);  // a client listed at connect talks to rblsmtpd, not to us
    flush();
    return;
  }
  if (verb == "helo") {
    cmd_helo(command.argument, false);
  } else if (verb == "ehlo") {
    cmd_helo(command.argument, true);
  } else if (verb == "mail") {
    cmd_mail(command.argument);
  } else if (verb == "rcpt") {
    cmd_rcpt(command.argument);
  } else if (verb == "data") {
    cmd_data();
  } else if (verb == "rset") {
    cmd_rset();
  } else if (verb == "noop") {
    reply("250 2.0.0 ok");
  } else if (verb == "vrfy") {
    reply("252 2.0.0 send some mail, i'll try my best");
  } else if (verb == "help") {
    reply("214 2.0.0 sppd: qmail-compatible SMTP service");
  } else if (verb == "starttls") {
    cmd_starttls(command.argument);
  } else if (verb == "auth") {
    cmd_auth(command.argument);
  } else if (verb == "quit") {
    cmd_quit();
    return;
  } else {
    reply("502 5.5.1 unimplemented");
  }
  // qmail-smtpd flushes after these; MAIL, RCPT and RSET replies wait for the batch.
  if (verb != "mail" && verb != "rcpt" && verb != "rset") flush();
}

unsigned long long Session::databytes() const {
  // qmail-md: a BLACKLISTED session's mail goes to the trap, limited by control/databytes+.
  if (blacklisted() && settings_.spam.databytes_plus > 0) return settings_.spam.databytes_plus;
  if (const std::string* value = env("DATABYTES")) return strtoull(value->c_str(), nullptr, 10);
  return settings_.databytes;
}

void Session::reset_transaction() {
  seen_mail_ = false;
  sender_badmailfrom_ = false;
  sender_.clear();
  recipients_.clear();
}

void Session::cmd_helo(const std::string& arg, bool esmtp) {
  if (arg.empty()) {
    reply("501 5.5.4 syntax error, I need your hostname");
    return;
  }
  set_env("SMTPHELOHOST", arg);  // qmail-spp: before the plugins, even when they are off
  run_plugins('h', [this, arg, esmtp](PluginVerdict verdict) {
    if (verdict == PluginVerdict::kRefused || verdict == PluginVerdict::kClosing) return;
    if (verdict != PluginVerdict::kSkipChecks) {
      if (auto hit = pattern_match("badhelo", arg)) {
        tarpit("badhelo: " + hit->line, "helo(" + arg + ")",
               [this] { reply("553 5.7.1 sorry, your helo or ehlo is incorrect"); });
        return;
      }
    }
    helo_ = arg;
    esmtp_ = esmtp;
    reset_transaction();
    if (!esmtp) {
      reply("250 " + greeting_name());
      return;
    }
    // The keyword list is data, so later capabilities (STARTTLS, AUTH) slot in without
    // ever producing a malformed multi-line reply.
    std::vector<std::string> keywords = {"PIPELINING", "8BITMIME"};
    unsigned long long limit = databytes();
    keywords.push_back(limit ? "SIZE " + std::to_string(limit) : "SIZE");
    if (settings_.tls && !tls_active_) keywords.push_back("STARTTLS");
    if (std::string auth = auth_keyword(); !auth.empty()) {
      keywords.push_back(auth);
      if (settings_.auth_oldauth) keywords.push_back("AUTH=" + auth.substr(5));
    }
    keywords.push_back("ENHANCEDSTATUSCODES");
    std::string text = "250-" + greeting_name();
    for (size_t i = 0; i < keywords.size(); ++i) {
      text += (i + 1 < keywords.size() ? "\r\n250-" : "\r\n250 ") + keywords[i];
    }
    reply(text);
  });
}

std::optional<ParsedAddress> Session::parse_client_address(const std::string& arg) {
  auto parsed = parse_address(arg, static_cast<size_t>(settings_.maxaddrlen), settings_.local_ips,
                              settings_.localiphost);
  if (!parsed) {
    // Longer than maxaddrlen: qmail's answer, after qmail-md's tarpit.
    tarpit("maxaddrlen", decision_context(seen_mail_ ? sender_ : "", ""),
           [this] { reply("555 5.5.4 syntax error"); });
    return std::nullopt;
  }
  if (!parsed->bracketed && settings_.spam.reqbrackets) {
    reply("555 5.5.4 syntax error, the address must be in angle brackets");
    return std::nullopt;
  }
  return parsed;
}

void Session::cmd_mail(const std::string& arg) {
  // Submission policy per listener (issue: require TLS, then AUTH, before any MAIL).
  if (settings_.listener.require_tls && !tls_active_) {
    reply("530 5.7.0 must issue a STARTTLS command first");
    return;
  }
  if (settings_.listener.require_auth && !authenticated_) {
    reply("530 5.7.0 authentication required");
    return;
  }
  auto parsed = parse_client_address(arg);
  if (!parsed) return;
  unsigned long long limit = databytes();
  if (auto size = size_parameter(parsed->parameters); size && limit && *size > limit) {
    reply("552 5.3.4 sorry, that message size exceeds my databytes limit");
    return;
  }
  if (refuse_with_later_errors(later_mail_)) return;  // an LM from an earlier plugin
  rcpt_count_ = 0;
  rcpt_count_all_ = 0;
  plugin_address_ = parsed->address;
  if (plugins_enabled_ && plugins_running_) set_env("SMTPMAILFROM", plugin_address_);
  run_plugins('m', [this](PluginVerdict verdict) {
    if (verdict == PluginVerdict::kRefused || verdict == PluginVerdict::kClosing) return;
    // O skips the sender checks; unlike qmail-spp it also clears an earlier MAIL's verdict
    // (DECISIONS.md), so no stale flag refuses this transaction. The null sender is never
    // checked (qregex), and a goodmailfrom match skips the rest.
    sender_badmailfrom_ = false;
    bool check = verdict != PluginVerdict::kSkipChecks && !plugin_address_.empty();
    if (check) {
      if (auto good = pattern_match("goodmailfrom", plugin_address_)) {
        log::info("session ", id_, ": goodmailfrom: <", plugin_address_, "> matches ", good->line,
                  ": sender checks skipped");
        check = false;
      }
    }
    if (check) {
      if (auto hit = pattern_match("badmailfrom", plugin_address_)) {
        if (hit->plain) {
          sender_badmailfrom_ = true;  // vanilla qmail: refused at every RCPT
        } else {
          tarpit("badmailfrom: " + hit->line, decision_context(plugin_address_, ""),
                 [this] { reply("553 5.7.1 sorry, your envelope sender has been denied"); });
          return;
        }
      }
    }
    verify_sender(check);  // control/mfcheck (session_sender.cpp), then the 250
  });
}

void Session::cmd_rcpt(const std::string& arg) {
  if (!seen_mail_) {
    reply("503 5.5.1 MAIL first");
    return;
  }
  auto parsed = parse_client_address(arg);
  if (!parsed) return;
  if (sender_badmailfrom_) {
    reply("553 5.7.1 sorry, your envelope sender is in my badmailfrom list");
    return;
  }
  // qmail-md: an unauthenticated session may name maxrcpt recipients; the next is refused
  // (and not delivered) after a tarpit.
  if (long limit = maxrcpt(); limit > 0 && !authenticated_ && rcpt_count_ >= limit) {
    tarpit("maxrcpt " + std::to_string(limit), decision_context(sender_, parsed->address),
           [this] { reply("452 4.5.3 sorry, too many recipients"); });
    return;
  }
  // DNSBL deferred to RCPT (rblspp + ifauthskip): authenticated clients are not checked.
  if (!settings_.rbl.empty() && settings_.listener.rbl_at_rcpt && !authenticated_) {
    if (!rbl_checked_) {
      check_rbl([this, arg] { cmd_rcpt(arg); });
      return;
    }
    if (rbl_block_) {
      reply(rbl_block_->first + " " + rbl_block_->second);
      return;
    }
  }
  // rcpthosts is decided on the address the client gave, before any plugin's C.
  bool allowed = env("RELAYCLIENT") || settings_.rcpthosts->allowed(parsed->address);
  if (refuse_with_later_errors(later_rcpt_)) return;
  ++rcpt_count_all_;
  // qmail-spp exports these for every RCPT that gets this far, plugins or not; the count
  // excludes the current recipient (so it is one behind at DATA, as plugins expect).
  set_env("SMTPRCPTCOUNT", std::to_string(rcpt_count_));
  set_env("SMTPRCPTCOUNTALL", std::to_string(rcpt_count_all_));
  set_env("SMTPRCPTHOSTSOK", allowed ? "1" : "0");
  plugin_address_ = parsed->address;
  if (plugins_enabled_ && plugins_running_) set_env("SMTPRCPTTO", plugin_address_);
  run_plugins('r', [this, allowed](PluginVerdict verdict) {
    if (verdict == PluginVerdict::kRefused || verdict == PluginVerdict::kClosing) return;
    if (const std::string* trap = blacklisted()) {
      // qmail-md: whatever the spammer names, the message goes to the trap address, once.
      log::info("session ", id_, ": BLACKLISTED: <", plugin_address_, "> becomes <", *trap, ">");
      ++rcpt_count_;
      add_recipient(*trap);
      reply("250 2.1.5 I feed spamassassin now!");
      return;
    }
    std::string recipient = plugin_address_;
    if (verdict != PluginVerdict::kSkipChecks && !recipient_checks_pass()) return;
    if (const std::string* relayclient = env("RELAYCLIENT")) {
      recipient += *relayclient;  // qmail appends RELAYCLIENT's value to every recipient
    } else if (verdict != PluginVerdict::kSkipChecks && !allowed) {
      reply("553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts");
      return;
    }
    if (verdict == PluginVerdict::kSkipChecks) {
      accept_recipient(std::move(recipient));
      return;
    }
    // realrcptto and rcptcheck ask other processes; the RCPT waits for their verdict.
    verify_recipient(recipient,
                     [this, recipient]() mutable { accept_recipient(std::move(recipient)); });
  });
}

void Session::accept_recipient(std::string recipient) {
  ++rcpt_count_;
  if (const std::string* fixed = env("RCPTTOFIXED"); fixed && !fixed->empty()) {
    log::info("session ", id_, ": RCPTTOFIXED: <", recipient, "> becomes <", *fixed, ">");
    add_recipient(*fixed);
  } else {
    recipients_.push_back(std::move(recipient));
  }
  // Chris Johnson's tarpit: from the tarpitcount-th accepted recipient on, every 250 waits.
  long count = tarpit_count();
  delay_reply(count > 0 && rcpt_count_ >= count ? tarpit_delay() : 0,
              [this] { reply("250 2.1.5 ok"); });
}

bool Session::recipient_checks_pass() {
  const std::string& recipient = plugin_address_;
  for (const char* name : {"badmailto", "badrcptto"}) {
    if (auto hit = pattern_match(name, recipient)) {
      tarpit(std::string(name) + ": " + hit->line, decision_context(sender_, recipient),
             [this] { reply("553 5.7.1 sorry, your envelope recipient has been denied"); });
      return false;
    }
  }
  if (!settings_.spam.datechecks.empty()) {
    using namespace std::chrono;
    long today = duration_cast<days>(system_clock::now().time_since_epoch()).count();
    if (date_expired(recipient, settings_.spam.datechecks, today)) {
      log::info("session ", id_, ": datechecks: <", recipient, "> has expired");
      reply("553 5.1.1 sorry, this address has expired");
      return false;
    }
  }
  return true;
}

void Session::cmd_data() {
  if (!seen_mail_) {
    reply("503 5.5.1 MAIL first");
    return;
  }
  if (recipients_.empty()) {
    // qmail-md (Postfix's words): a client that sends DATA after every RCPT failed is a
    // spammer's ratware, not a confused user.
    reply("221 2.0.0 error: I can break rules, too. goodbye.");
    close_after_flush();
    return;
  }
  if (refuse_with_later_errors(later_data_)) return;
  run_plugins('d', [this](PluginVerdict verdict) {
    // A refused DATA leaves the transaction open: the client may try DATA again.
    if (verdict == PluginVerdict::kRefused || verdict == PluginVerdict::kClosing) return;
    seen_mail_ = false;  // as qmail-smtpd: whatever happens now, the next message needs MAIL
    ipc::Frame open(protocol::kQueueOpen, 0);
    for (const auto& [name, value] : env_) open.add("env", name + "=" + value);
    request_scanner(open);
    queue_request_ = context_.queue->request(std::move(open),
                                             [this](ipc::Frame* frame) { on_queue_frame(frame); });
    if (!queue_request_) {
      reply("451 4.3.0 qqt failure");
      return;
    }
    set_busy(true);
  });
}

void Session::cmd_rset() {
  reset_plugin_transaction();
  reset_transaction();
  reply("250 2.0.0 flushed");
}

void Session::cmd_quit() {
  reply("221 2.0.0 " + greeting_name());
  close_after_flush();
}

}  // namespace sppd::smtpd
