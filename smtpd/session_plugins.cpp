// qmail-spp in the session: loading the plugin file at connect (NOSPP, SPPCONFFILE), running
// a section's plugins in pluginrunner, and applying what they printed with qmail-spp 0.42's
// semantics (spec qmail-spp.md §4–§6) and sppd's documented fixes (DECISIONS.md). The hooks
// themselves sit in the command handlers (session_commands.cpp) at qmail-spp's call sites.
// Plugin output is admin-trusted, but it is applied only as data: nothing here runs a shell.
#include <unistd.h>

#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/helper_pool.h"
#include "smtpd/replies.h"
#include "smtpd/session.h"

namespace sppd::smtpd {
void Session::load_plugins() {
  if (env("NOSPP")) {  // set, even empty: qmail-spp is off for this session
    greet(true);
    return;
  }
  const std::string* conffile = env("SPPCONFFILE");
  std::string path =
      conffile && !conffile->empty() ? *conffile : settings_.listener.control_dir + "/smtpplugins";
  ipc::Frame request(protocol::kPluginConfig, 0);
  request.add("path", path);
  plugin_request_ = context_.plugins->request(
      std::move(request), [this](ipc::Frame* frame) { on_plugin_config(frame); });
  if (!plugin_request_) {
    reply("421 4.3.0 qmail-spp failure: plugin runner unavailable");
    close_after_flush();
  }
}

void Session::on_plugin_config(ipc::Frame* frame) {
  if (plugin_request_) context_.plugins->cancel(*plugin_request_);
  plugin_request_.reset();
  if (phase_ != Phase::kConnecting) return;
  if (!frame || frame->type != protocol::kPluginConfigResult) {
    reply("421 4.3.0 qmail-spp failure: plugin runner unavailable");
    close_after_flush();
    return;
  }
  std::string status = frame->get_or("status", "error");
  if (status == "error") {
    log::error("session ", id_, ": unable to read plugin file: ", frame->get_or("error", "?"));
    reply("421 4.3.0 unable to read controls");
    close_after_flush();
    return;
  }
  // "missing": no plugins (pkgsrc/eQmail behaviour; the runner logged a warning).
  plugins_enabled_ = status == "ok";
  for (std::string_view entry : frame->all("plugin")) {
    if (entry.size() >= 2) plugins_.emplace_back(entry[0], std::string(entry.substr(1)));
  }
  run_plugins('c', [this](PluginVerdict verdict) {
    if (verdict == PluginVerdict::kClosing) return;
    // E in [connection]: the plugin's text replaces the greeting, the session goes on.
    greet(verdict != PluginVerdict::kRefused);
  });
}

void Session::run_plugins(char section, PluginContinuation then) {
  ipc::Frame request(protocol::kPluginRun, 0);
  for (const auto& [letter, line] : plugins_) {
    if (letter == section) request.add("plugin", line);
  }
  if (!plugins_enabled_ || !plugins_running_ || request.attrs.empty()) {
    then(PluginVerdict::kAccept);
    return;
  }
  request.add("section", std::string(1, section));
  request.add("session", context_.log_tag + std::to_string(id_));
  for (const auto& [name, value] : env_) request.add("env", name + "=" + value);
  auto done = [this, section, then](ipc::Frame* frame) {
    if (plugin_request_) context_.plugins->cancel(*plugin_request_);
    plugin_request_.reset();
    if (phase_ == Phase::kFinished) return;
    PluginVerdict verdict;
    if (frame && frame->type == protocol::kPluginResult) {
      verdict = apply_plugin_result(section, *frame);
    } else {
      reply("451 4.3.0 qmail-spp failure: plugin runner unavailable");
      verdict = PluginVerdict::kRefused;
    }
    if (verdict != PluginVerdict::kClosing) set_busy(false);
    then(verdict);
    if (verdict != PluginVerdict::kClosing) process_input();
  };
  plugin_request_ = context_.plugins->request(std::move(request), done);
  if (!plugin_request_) {
    reply("451 4.3.0 qmail-spp failure: plugin runner unavailable");
    then(PluginVerdict::kRefused);
    return;
  }
  set_busy(true);
}

Session::PluginVerdict Session::apply_plugin_result(char section, const ipc::Frame& result) {
  PluginVerdict verdict = PluginVerdict::kAccept;
  bool close = false;
  for (std::string_view command : result.all("command")) {
    if (command.empty()) continue;
    std::string text(command.substr(1));
    switch (command[0]) {
      case 'H':
        plugin_headers_ += text + "\n";
        break;
      case 'C':
        // Only MAIL and RCPT have an address to change; rcpthosts was already decided on
        // the original (spec §5.3).
        if (section == 'm' || section == 'r') {
          plugin_address_ = text;
          set_env(section == 'm' ? "SMTPMAILFROM" : "SMTPRCPTTO", text);
        }
        break;
      case 'S':
        if (size_t eq = text.find('='); eq != std::string::npos && eq > 0) {
          set_env(text.substr(0, eq), text.substr(eq + 1));
        }
        break;
      case 'U':
        unset_env(text);
        break;
      case 'P':
        reply(text);
        break;
      case 'L': {
        LaterErrors* queue = text.empty()     ? nullptr
                             : text[0] == 'M' ? &later_mail_
                             : text[0] == 'R' ? &later_rcpt_
                             : text[0] == 'D' ? &later_data_
                                              : nullptr;
        // Once shown, a queue takes no more text until it is reset (spec §5.1).
        if (queue && !queue->shown) queue->text += text.substr(1) + "\r\n";
        break;
      }
      case 'E':
        reply(text);
        verdict = PluginVerdict::kRefused;
        break;
      case 'R':
        reply(text);
        close = true;
        break;
      case 'D':
        close = true;
        break;
      case 'O':
        verdict = PluginVerdict::kSkipChecks;
        break;
      case 'A':
        plugins_running_ = false;  // for the rest of the connection
        break;
      default:  // N, and letters qmail-spp ignores
        break;
    }
  }
  if (const std::string* failure = result.get("failure")) {
    // qmail-spp prints this even after a plugin's own E or R text.
    reply(qmail_reply("451", *failure));
    if (!close) verdict = PluginVerdict::kRefused;
  }
  if (close) {
    log::info("session ", id_, ": connection closed by a plugin");
    close_after_flush();
    return PluginVerdict::kClosing;
  }
  return verdict;
}

bool Session::refuse_with_later_errors(LaterErrors& queue) {
  if (queue.text.empty()) return false;
  queue.shown = true;
  pending_replies_ += queue.text;
  return true;
}

void Session::reset_plugin_transaction() {
  plugin_headers_.clear();
  later_mail_ = LaterErrors{};
  later_rcpt_ = LaterErrors{};
  later_data_ = LaterErrors{};
  rcpt_count_ = 0;
  rcpt_count_all_ = 0;
}

}  // namespace sppd::smtpd
