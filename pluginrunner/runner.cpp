// Runner implementation (contract in runner.h): worker frame validation, request
// bookkeeping, settings on SIGHUP. A request that ends inside a callback is destroyed on the
// next loop pass (helper::Service::destroy_later): its caller may still be running on it.
#include "pluginrunner/runner.h"

#include <optional>
#include <vector>

#include "common/protocol.h"

namespace sppd::pluginrunner {
namespace {

constexpr std::string_view kSections = "chmrda";

// Said to the worker for a kPluginRun that arrives while we stop; the worker answers 451.
std::string stopping_failure() { return "qmail-spp failure: plugin runner is stopping (#4.3.0)"; }

// The one value of name, or nullptr if it is absent or repeated.
const std::string* single(const ipc::Frame& frame, std::string_view name) {
  return frame.all(name).size() == 1 ? frame.get(name) : nullptr;
}

}  // namespace

Settings settings_from(const config::Config& config) {
  const config::Service& service = config.service("pluginrunner");
  auto fail = [&](const std::string& what) {
    throw config::ConfigError(config.path + ":" + std::to_string(service.line) +
                              ": [service pluginrunner] " + what);
  };
  Settings settings;
  settings.run.qmail_home = config.qmail_home;
  settings.run.dnsbl_socket = config::dnsbl_socket(config);
  settings.user = service.user;
  long timeout = service.get_long("plugin_timeout", 300);
  if (timeout < 0) fail("plugin_timeout must be 0 (none) or a number of seconds");
  settings.run.plugin_timeout = std::chrono::seconds(timeout);
  long max_output = service.get_long("max_output", 65536);
  if (max_output < 1) fail("max_output must be at least 1 byte");
  settings.run.max_output = static_cast<size_t>(max_output);
  return settings;
}

Runner::Runner(event_base* base, std::string config_path, Settings settings, UniqueFd control)
    : base_(base),
      settings_(std::move(settings)),
      service_(base, std::move(config_path), std::move(control), *this,
               {kDrainCap, "request(s)", "their plugins are killed"}) {}

Runner::~Runner() {
  // Unfinished requests kill their plugins' process groups.
  requests_.clear();
  rcptchecks_.clear();
}

std::string Runner::reload(const config::Config& config) {
  Settings fresh = settings_from(config);
  if (fresh.user != settings_.user || fresh.run.qmail_home != settings_.run.qmail_home) {
    log::warn("reload: a new user or qmail_home takes effect when the master restarts ",
              "pluginrunner");
    fresh.user = settings_.user;
    fresh.run.qmail_home = settings_.run.qmail_home;
  }
  // The master keeps the socket it bound at start (a new path needs a master restart).
  fresh.run.dnsbl_socket = settings_.run.dnsbl_socket;
  settings_ = std::move(fresh);
  return log::concat(": plugin_timeout ", settings_.run.plugin_timeout.count() / 1000,
                     " s, max_output ", settings_.run.max_output, " bytes");
}

void Runner::on_worker_frame(helper::Client& client, ipc::Frame&& frame) {
  if (frame.type == protocol::kPluginConfig) return read_config(client, frame);
  if (frame.type == protocol::kPluginRun) return start_request(client, frame);
  if (frame.type == protocol::kRcptCheck) return start_rcptcheck(client, frame);
  if (frame.type == protocol::kRealRcptTo) return check_realrcptto(client, frame);
  service_.malformed(client, "unexpected frame type " + std::to_string(frame.type));
}

void Runner::read_config(helper::Client& client, const ipc::Frame& frame) {
  const std::string* path = single(frame, "path");
  if (!path || path->empty())
    return service_.malformed(client, "kPluginConfig needs one non-empty path");
  PluginConfig config = plugin_files_.read(*path, settings_.run.qmail_home);
  if (config.status == ConfigStatus::kMissing) {
    if (missing_warned_.insert(*path).second) {
      log::warn("plugin file ", *path, " does not exist (relative to ", settings_.run.qmail_home,
                "): sessions using it run no plugins");
    }
  } else {
    missing_warned_.erase(*path);
  }
  if (config.status == ConfigStatus::kError) log::error(config.error);

  ipc::Frame reply(protocol::kPluginConfigResult, frame.request_id);
  reply.add("status", status_name(config.status));
  if (config.status == ConfigStatus::kError) reply.add("error", config.error);
  for (auto& plugin : config.plugins) reply.add("plugin", std::move(plugin));
  if (reply.encoded_size() > ipc::kMaxFrameSize) {
    std::string why = "plugin file " + *path + " has more plugins than fit in one 64 KiB frame";
    log::error(why);
    reply = ipc::Frame(protocol::kPluginConfigResult, frame.request_id);
    reply.add("status", "error").add("error", why);
  }
  answer(client, std::move(reply));
}

void Runner::start_request(helper::Client& client, const ipc::Frame& frame) {
  RequestKey key{client.id, frame.request_id};
  if (request_id_in_use(key)) {
    return service_.malformed(client,
                              "request id " + std::to_string(frame.request_id) + " already in use");
  }
  const std::string* section = single(frame, "section");
  if (!section || section->size() != 1 || kSections.find((*section)[0]) == std::string::npos) {
    return service_.malformed(client, "kPluginRun needs one section (c, h, m, r, d or a)");
  }
  const std::string* session = single(frame, "session");
  if (!session) return service_.malformed(client, "kPluginRun needs one session");
  std::vector<std::string> plugins;
  for (auto line : frame.all("plugin")) {
    if (line.empty()) return service_.malformed(client, "empty plugin line");
    plugins.emplace_back(line);
  }
  std::optional<std::vector<std::string>> env = helper::env_of(frame);
  if (!env) return service_.malformed(client, "env entry is not NAME=value");
  if (service_.draining()) {
    log::info("worker ", client.worker_pid, " session ", *session,
              ": refusing to run plugins while stopping");
    RunResult refused;
    refused.failure = stopping_failure();
    answer(client, result_frame(frame.request_id, std::move(refused), *session));
    return;
  }

  auto request = std::make_unique<Request>(
      base_, children_, settings_.run, (*section)[0], *session, std::move(plugins), std::move(*env),
      [this, key](RunResult&& result) { finish_request(key, std::move(result)); });
  Request* started = request.get();
  requests_[key] = std::move(request);
  started->start();  // may finish at once (no plugins, or none could start)
}

void Runner::finish_request(RequestKey key, RunResult&& result) {
  auto it = requests_.find(key);
  if (it == requests_.end()) return;
  std::unique_ptr<Request> request = std::move(it->second);
  requests_.erase(it);
  helper::Client* client = service_.find_client(key.first);
  if (client) {
    answer(*client, result_frame(key.second, std::move(result), request->session()));
  }
  service_.destroy_later(std::move(request));
  service_.check_drained();
}

void Runner::answer(helper::Client& client, ipc::Frame&& reply) {
  client.channel->send(std::move(reply));
  service_.served();
}

void Runner::on_client_gone(helper::Client& client) {
  // Its requests are abandoned: nobody would read their results. Destroying a request kills
  // its running plugin's process group.
  for (auto request = requests_.lower_bound({client.id, 0});
       request != requests_.end() && request->first.first == client.id;) {
    log::info("worker ", client.worker_pid, " session ", request->second->session(),
              ": plugins abandoned, the worker went away");
    request->second->cancel();
    service_.destroy_later(std::move(request->second));
    request = requests_.erase(request);
  }
  abandon_rcptchecks(client);
}

}  // namespace sppd::pluginrunner
