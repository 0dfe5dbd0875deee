// SMTP commands before DATA, with qmail-smtpd's order of checks and replies (spec §2.3):
// HELO/EHLO, MAIL, RCPT, DATA (up to asking queue-bridge for qmail-queue), RSET, NOOP,
// VRFY, HELP, QUIT. Each reply carries its RFC 2034 code (DECISIONS.md).
#include <cstdlib>

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
  helo_ = arg;
  esmtp_ = esmtp;
  reset_transaction();
  if (!esmtp) {
    reply("250 " + settings_.me);
    return;
  }
  // The keyword list is data, so later capabilities (STARTTLS, AUTH) slot in without ever
  // producing a malformed multi-line reply.
  std::vector<std::string> keywords = {"PIPELINING", "8BITMIME"};
  unsigned long long limit = databytes();
  keywords.push_back(limit ? "SIZE " + std::to_string(limit) : "SIZE");
  keywords.push_back("ENHANCEDSTATUSCODES");
  std::string text = "250-" + settings_.me;
  for (size_t i = 0; i < keywords.size(); ++i) {
    text += (i + 1 < keywords.size() ? "\r\n250-" : "\r\n250 ") + keywords[i];
  }
  reply(text);
}

void Session::cmd_mail(const std::string& arg) {
  auto parsed = parse_address(arg, static_cast<size_t>(settings_.maxaddrlen), settings_.local_ips,
                              settings_.localiphost);
  if (!parsed) {
    reply("555 5.5.4 syntax error");
    return;
  }
  unsigned long long limit = databytes();
  if (auto size = size_parameter(parsed->parameters); size && limit && *size > limit) {
    reply("552 5.3.4 sorry, that message size exceeds my databytes limit");
    return;
  }
  sender_ = parsed->address;
  sender_badmailfrom_ = !sender_.empty() && settings_.badmailfrom->listed(sender_);
  seen_mail_ = true;
  recipients_.clear();
  reply("250 2.1.0 ok");
}

void Session::cmd_rcpt(const std::string& arg) {
  if (!seen_mail_) {
    reply("503 5.5.1 MAIL first");
    return;
  }
  auto parsed = parse_address(arg, static_cast<size_t>(settings_.maxaddrlen), settings_.local_ips,
                              settings_.localiphost);
  if (!parsed) {
    reply("555 5.5.4 syntax error");
    return;
  }
  if (sender_badmailfrom_) {
    reply("553 5.7.1 sorry, your envelope sender is in my badmailfrom list");
    return;
  }
  std::string recipient = parsed->address;
  if (const std::string* relayclient = env("RELAYCLIENT")) {
    recipient += *relayclient;  // qmail appends RELAYCLIENT's value to every recipient
  } else if (!settings_.rcpthosts->allowed(recipient)) {
    reply("553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts");
    return;
  }
  recipients_.push_back(std::move(recipient));
  reply("250 2.1.5 ok");
}

void Session::cmd_data() {
  if (!seen_mail_) {
    reply("503 5.5.1 MAIL first");
    return;
  }
  if (recipients_.empty()) {
    reply("503 5.5.1 RCPT first");
    return;
  }
  seen_mail_ = false;  // as qmail-smtpd: whatever happens now, the next message needs MAIL
  ipc::Frame open(protocol::kQueueOpen, 0);
  for (const auto& [name, value] : env_) open.add("env", name + "=" + value);
  queue_request_ = context_.queue->request(std::move(open),
                                           [this](ipc::Frame* frame) { on_queue_frame(frame); });
  if (!queue_request_) {
    reply("451 4.3.0 qqt failure");
    return;
  }
  set_busy(true);
}

void Session::cmd_rset() {
  reset_transaction();
  reply("250 2.0.0 flushed");
}

void Session::cmd_quit() {
  reply("221 2.0.0 " + settings_.me);
  close_after_flush();
}

}  // namespace sppd::smtpd
