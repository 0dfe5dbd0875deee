// Request implementation (contract in request.h). Plugins of one request run strictly in
// order because each sees the environment the previous ones left (qmail-spp ran them one by
// one in the smtpd process); requests of different sessions run side by side in the loop.
#include "pluginrunner/request.h"

#include "common/log.h"
#include "common/protocol.h"
#include "pluginrunner/output_parser.h"

namespace sppd::pluginrunner {
namespace {

constexpr std::string_view kCommandAttr = "command";
constexpr std::string_view kFailureAttr = "failure";
// A failure text is a fixed phrase around a config line; this is plenty.
constexpr size_t kMaxFailure = 4096;

// Bytes an attribute takes in an encoded frame (see ipc::Frame::encoded_size).
size_t attr_size(std::string_view name, std::string_view value) {
  return name.size() + value.size() + 2;
}

std::string_view env_name(std::string_view entry) { return entry.substr(0, entry.find('=')); }

void unset(std::string_view name, std::vector<std::string>* env) {
  std::erase_if(*env, [name](const std::string& entry) { return env_name(entry) == name; });
}

}  // namespace

void apply_to_env(char section, const std::string& command, std::vector<std::string>* env) {
  if (command.empty()) return;
  std::string_view text = std::string_view(command).substr(1);
  switch (command[0]) {
    case 'S':
      // "S=x" or a bare "S" names nothing; an entry without '=' is kept, as env_put did.
      if (env_name(text).empty()) break;
      unset(env_name(text), env);
      env->emplace_back(text);
      break;
    case 'U':
      unset(text, env);
      break;
    case 'C':
      if (section == 'm' || section == 'r') {
        const char* name = section == 'm' ? "SMTPMAILFROM" : "SMTPRCPTTO";
        unset(name, env);
        env->push_back(std::string(name) + "=" + std::string(text));
      }
      break;
    default:
      break;
  }
}

ipc::Frame result_frame(uint32_t request_id, RunResult result, const std::string& session) {
  ipc::Frame frame(protocol::kPluginResult, request_id);
  std::optional<std::string> terminating;
  if (!result.commands.empty() && is_terminating(result.commands.back()[0])) {
    terminating = std::move(result.commands.back());
    result.commands.pop_back();
  }
  if (result.failure && result.failure->size() > kMaxFailure) result.failure->resize(kMaxFailure);
  size_t room = ipc::kMaxFrameSize - ipc::kHeaderSize;
  if (result.failure) room -= attr_size(kFailureAttr, *result.failure);
  if (terminating && attr_size(kCommandAttr, *terminating) > room) {
    log::warn("session ", session, ": plugin message cut to fit the result frame");
    terminating->resize(room - attr_size(kCommandAttr, ""));
  }
  if (terminating) room -= attr_size(kCommandAttr, *terminating);

  size_t kept = 0;
  for (auto& command : result.commands) {
    size_t size = attr_size(kCommandAttr, command);
    if (size > room) break;  // keep the order: never a later command without an earlier one
    room -= size;
    frame.add(std::string(kCommandAttr), std::move(command));
    ++kept;
  }
  if (kept < result.commands.size()) {
    log::warn("session ", session, ": ", result.commands.size() - kept,
              " plugin command(s) dropped: the result must fit in 64 KiB");
  }
  if (terminating) frame.add(std::string(kCommandAttr), std::move(*terminating));
  if (result.failure) frame.add(std::string(kFailureAttr), std::move(*result.failure));
  return frame;
}

Request::Request(event_base* base, ChildTable& children, RunSettings settings, char section,
                 std::string session, std::vector<std::string> plugins,
                 std::vector<std::string> env, DoneHandler on_done)
    : base_(base),
      children_(children),
      settings_(std::move(settings)),
      section_(section),
      session_(std::move(session)),
      plugins_(std::move(plugins)),
      env_(std::move(env)),
      on_done_(std::move(on_done)) {}

void Request::start() { run_next(); }

void Request::run_next() {
  while (!done_ && next_ < plugins_.size()) {
    PluginSpec spec;
    spec.line = plugins_[next_++];
    spec.session = session_;
    spec.env = env_;
    if (!settings_.dnsbl_socket.empty()) {
      // sppd's own, whatever the session environment says.
      unset("SPPD_DNSBL_SOCKET", &spec.env);
      spec.env.push_back("SPPD_DNSBL_SOCKET=" + settings_.dnsbl_socket);
    }
    spec.qmail_home = settings_.qmail_home;
    spec.timeout = settings_.plugin_timeout;
    spec.max_output = settings_.max_output;
    auto process = std::make_unique<PluginProcess>(base_, children_, std::move(spec),
                                                   [this](PluginOutcome&& outcome) {
                                                     if (take(std::move(outcome))) {
                                                       run_next();
                                                     } else {
                                                       finish();
                                                     }
                                                   });
    PluginProcess* started = process.get();
    processes_.push_back(std::move(process));
    PluginOutcome failed;
    if (started->start(&failed)) return;  // its outcome comes through the callback
    if (!take(std::move(failed))) break;
  }
  finish();
}

bool Request::take(PluginOutcome&& outcome) {
  for (auto& command : outcome.commands) {
    // C means nothing outside [mail] and [rcpt] (qmail-spp ignores it there).
    if (command[0] == 'C' && section_ != 'm' && section_ != 'r') continue;
    apply_to_env(section_, command, &env_);
    result_.commands.push_back(std::move(command));
  }
  if (outcome.failure) {
    result_.failure = std::move(outcome.failure);
    return false;
  }
  return !outcome.terminated;
}

void Request::finish() {
  if (done_) return;
  done_ = true;
  DoneHandler handler = std::move(on_done_);
  if (handler) handler(std::move(result_));
}

}  // namespace sppd::pluginrunner
