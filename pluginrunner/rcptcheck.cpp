// RcptCheck implementation (contract in rcptcheck.h). The log line per run follows the seed's
// rcptcheck script ("mysqlcheck: pid 4431 <> to <x@y> not okay (code:1)") minus the verdict,
// which is the worker's to give: pid, sender, recipient and the exit status.
#include "pluginrunner/rcptcheck.h"

#include "common/log.h"
#include "common/protocol.h"

namespace sppd::pluginrunner {

std::vector<std::string> rcptcheck_environment(std::vector<std::string> env,
                                               const std::string& sender,
                                               const std::string& recipient) {
  std::erase_if(env, [](const std::string& entry) {
    std::string_view name = std::string_view(entry).substr(0, entry.find('='));
    return name == "SENDER" || name == "RECIPIENT";
  });
  env.push_back("SENDER=" + sender);
  env.push_back("RECIPIENT=" + recipient);
  return env;
}

ipc::Frame rcptcheck_result_frame(uint32_t request_id, const RcptCheckResult& result) {
  ipc::Frame frame(protocol::kRcptCheckResult, request_id);
  if (result.exit_status) {
    frame.add("exit", std::to_string(*result.exit_status));
  } else {
    frame.add("failure", result.failure.value_or("no exit status"));
  }
  return frame;
}

RcptCheck::RcptCheck(event_base* base, ChildTable& children, const RunSettings& settings,
                     RcptCheckSpec spec, DoneHandler on_done)
    : base_(base),
      children_(children),
      settings_(settings),
      spec_(std::move(spec)),
      on_done_(std::move(on_done)) {}

void RcptCheck::start() {
  PluginSpec plugin;
  plugin.line = spec_.program;
  plugin.session = spec_.session;
  plugin.env = rcptcheck_environment(std::move(spec_.env), spec_.sender, spec_.recipient);
  spec_.env.clear();
  plugin.qmail_home = settings_.qmail_home;
  plugin.timeout = settings_.plugin_timeout;
  plugin.max_output = settings_.max_output;
  process_ = std::make_unique<PluginProcess>(
      base_, children_, std::move(plugin),
      [this](PluginOutcome&& outcome) { finish(std::move(outcome)); });
  PluginOutcome failed;
  if (!process_->start(&failed)) finish(std::move(failed));
}

void RcptCheck::finish(PluginOutcome&& outcome) {
  if (done_) return;
  done_ = true;
  RcptCheckResult result;
  // An exit status wins over the plugin view of it (exit 120 is "can't execute" for a
  // plugin, an unknown code for rcptcheck).
  std::string pid = process_ && process_->pid() > 0 ? std::to_string(process_->pid()) : "-";
  if (outcome.exit_status) {
    result.exit_status = outcome.exit_status;
    log::info("session ", spec_.session, ": rcptcheck ", spec_.program, " pid ", pid, " <",
              spec_.sender, "> to <", spec_.recipient, "> (code:", *outcome.exit_status, ")");
  } else {
    result.failure = outcome.failure.value_or("no exit status");
    log::warn("session ", spec_.session, ": rcptcheck ", spec_.program, " pid ", pid, " <",
              spec_.sender, "> to <", spec_.recipient, ">: ", *result.failure);
  }
  DoneHandler handler = std::move(on_done_);
  if (handler) handler(std::move(result));
}

}  // namespace sppd::pluginrunner
