// Runner implementation (contract in runner.h): frame validation, request bookkeeping,
// signals. A channel or request that ends inside a callback is destroyed on the next loop
// pass, because the callback's caller may still be running on it.
#include "pluginrunner/runner.h"

#include <signal.h>

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
  settings.user = service.user;
  long timeout = service.get_long("plugin_timeout", 300);
  if (timeout < 0) fail("plugin_timeout must be 0 (none) or a number of seconds");
  settings.run.plugin_timeout = std::chrono::seconds(timeout);
  long max_output = service.get_long("max_output", 65536);
  if (max_output < 1) fail("max_output must be at least 1 byte");
  settings.run.max_output = static_cast<size_t>(max_output);
  settings.log_level = log::level_named(config.log_level);
  return settings;
}

Runner::Runner(event_base* base, std::string config_path, Settings settings, UniqueFd control)
    : base_(base), config_path_(std::move(config_path)), settings_(std::move(settings)) {
  control_ = std::make_unique<ipc::Channel>(
      base_, std::move(control), [this](ipc::Frame&& frame) { on_control_frame(std::move(frame)); },
      [this](const std::string& why) { drain("control channel: " + why); });
  sigchld_event_.reset(evsignal_new(base_, SIGCHLD, on_signal, this));
  sighup_event_.reset(evsignal_new(base_, SIGHUP, on_signal, this));
  sigterm_event_.reset(evsignal_new(base_, SIGTERM, on_signal, this));
  for (auto* ev : {sigchld_event_.get(), sighup_event_.get(), sigterm_event_.get()}) {
    event_add(ev, nullptr);
  }
  cleanup_event_.reset(event_new(base_, -1, 0, on_cleanup, this));
  drain_cap_event_.reset(evtimer_new(base_, on_drain_cap, this));
}

Runner::~Runner() {
  // Unfinished requests kill their plugins' process groups.
  requests_.clear();
  dead_requests_.clear();
  clients_.clear();
}

int Runner::run() {
  event_base_dispatch(base_);
  return 0;
}

void Runner::on_signal(evutil_socket_t signal, short, void* self) {
  auto* runner = static_cast<Runner*>(self);
  if (signal == SIGCHLD) runner->children_.reap();
  if (signal == SIGHUP) runner->reload();
  if (signal == SIGTERM) runner->drain("SIGTERM");
}

void Runner::reload() {
  try {
    Settings fresh = settings_from(config::load(config_path_));
    if (fresh.user != settings_.user || fresh.run.qmail_home != settings_.run.qmail_home) {
      log::warn("reload: a new user or qmail_home takes effect when the master restarts ",
                "pluginrunner");
      fresh.user = settings_.user;
      fresh.run.qmail_home = settings_.run.qmail_home;
    }
    settings_ = std::move(fresh);
    log::set_level(settings_.log_level);
    log::info("configuration reloaded from ", config_path_, ": plugin_timeout ",
              settings_.run.plugin_timeout.count() / 1000, " s, max_output ",
              settings_.run.max_output, " bytes");
  } catch (const std::exception& e) {
    log::error("reload failed, keeping the old configuration: ", e.what());
  }
}

void Runner::drain(const std::string& why) {
  if (draining_) return;
  draining_ = true;
  log::info("stopping (", why, "): ", requests_.size(), " request(s) still running");
  timeval cap{kDrainCap, 0};
  evtimer_add(drain_cap_event_.get(), &cap);
  maybe_exit();
}

void Runner::on_drain_cap(evutil_socket_t, short, void* self) {
  auto* runner = static_cast<Runner*>(self);
  log::warn("giving up on ", runner->requests_.size(), " request(s) after ", kDrainCap,
            " s; their plugins are killed");
  event_base_loopexit(runner->base_, nullptr);
}

void Runner::maybe_exit() {
  // A short grace lets results that met a full socket buffer still go out.
  timeval grace{0, 100000};
  if (draining_ && requests_.empty()) event_base_loopexit(base_, &grace);
}

void Runner::schedule_cleanup() {
  if (!event_pending(cleanup_event_.get(), EV_TIMEOUT, nullptr)) {
    event_active(cleanup_event_.get(), EV_TIMEOUT, 0);
  }
}

void Runner::on_cleanup(evutil_socket_t, short, void* self) {
  auto* runner = static_cast<Runner*>(self);
  runner->dead_requests_.clear();
  runner->dead_clients_.clear();
}

Runner::Client* Runner::find_client(uint64_t client_id) {
  auto it = clients_.find(client_id);
  return it == clients_.end() ? nullptr : it->second.get();
}

void Runner::on_control_frame(ipc::Frame&& frame) {
  if (frame.type != protocol::kNewClient) {
    // The master is trusted but may be newer than us: say so, do not die.
    log::warn("control channel: ignoring frame type ", frame.type);
    return;
  }
  const std::string* worker_pid = frame.get("worker_pid");
  if (!frame.fd || !worker_pid) {
    log::fatal("control channel: malformed kNewClient (needs a descriptor and worker_pid)");
  }
  auto client = std::make_unique<Client>();
  client->id = next_client_id_++;
  client->worker_pid = *worker_pid;
  uint64_t id = client->id;
  client->channel = std::make_unique<ipc::Channel>(
      base_, std::move(frame.fd), [this, id](ipc::Frame&& f) { on_worker_frame(id, std::move(f)); },
      [this, id](const std::string& why) { drop_client(id, why); });
  log::debug("worker ", client->worker_pid, ": channel open");
  clients_[id] = std::move(client);
}

void Runner::on_worker_frame(uint64_t client_id, ipc::Frame&& frame) {
  Client* client = find_client(client_id);
  if (!client) return;
  if (frame.fd) return malformed(*client, "unexpected descriptor");
  if (frame.type == protocol::kPluginConfig) return read_config(*client, frame);
  if (frame.type == protocol::kPluginRun) return start_request(*client, frame);
  malformed(*client, "unexpected frame type " + std::to_string(frame.type));
}

void Runner::read_config(Client& client, const ipc::Frame& frame) {
  const std::string* path = single(frame, "path");
  if (!path || path->empty()) return malformed(client, "kPluginConfig needs one non-empty path");
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
  answered(client, std::move(reply));
}

void Runner::start_request(Client& client, const ipc::Frame& frame) {
  RequestKey key{client.id, frame.request_id};
  if (requests_.count(key)) {
    return malformed(client, "request id " + std::to_string(frame.request_id) + " already in use");
  }
  const std::string* section = single(frame, "section");
  if (!section || section->size() != 1 || kSections.find((*section)[0]) == std::string::npos) {
    return malformed(client, "kPluginRun needs one section (c, h, m, r, d or a)");
  }
  const std::string* session = single(frame, "session");
  if (!session) return malformed(client, "kPluginRun needs one session");
  std::vector<std::string> plugins;
  for (auto line : frame.all("plugin")) {
    if (line.empty()) return malformed(client, "empty plugin line");
    plugins.emplace_back(line);
  }
  std::vector<std::string> env;
  for (auto entry : frame.all("env")) {
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return malformed(client, "env entry is not NAME=value");
    }
    env.emplace_back(entry);
  }
  if (draining_) {
    log::info("worker ", client.worker_pid, " session ", *session,
              ": refusing to run plugins while stopping");
    RunResult refused;
    refused.failure = stopping_failure();
    answered(client, result_frame(frame.request_id, std::move(refused), *session));
    return;
  }

  auto request = std::make_unique<Request>(
      base_, children_, settings_.run, (*section)[0], *session, std::move(plugins), std::move(env),
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
  Client* client = find_client(key.first);
  if (client) {
    answered(*client, result_frame(key.second, std::move(result), request->session()));
  }
  dead_requests_.push_back(std::move(request));
  schedule_cleanup();
  maybe_exit();
}

void Runner::answered(Client& client, ipc::Frame&& reply) {
  client.channel->send(std::move(reply));
  if (!served_) {
    served_ = true;
    control_->send(ipc::Frame(protocol::kServed, 0));
  }
}

void Runner::malformed(Client& client, const std::string& why) {
  log::error("worker ", client.worker_pid, ": malformed request (", why, "); closing its channel");
  drop_client(client.id, "malformed request");
}

void Runner::drop_client(uint64_t client_id, const std::string& why) {
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return;
  std::unique_ptr<Client> client = std::move(it->second);
  clients_.erase(it);
  log::debug("worker ", client->worker_pid, ": channel closed (", why, ")");
  // Its requests are abandoned: nobody would read their results. Destroying a request kills
  // its running plugin's process group.
  for (auto request = requests_.lower_bound({client_id, 0});
       request != requests_.end() && request->first.first == client_id;) {
    log::info("worker ", client->worker_pid, " session ", request->second->session(),
              ": plugins abandoned, the worker went away");
    request->second->cancel();
    dead_requests_.push_back(std::move(request->second));
    request = requests_.erase(request);
  }
  client->channel->close();
  dead_clients_.push_back(std::move(client));
  schedule_cleanup();
  maybe_exit();
}

}  // namespace sppd::pluginrunner
