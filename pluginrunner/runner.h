// Runner: the pluginrunner service: worker channels from the master, kPluginConfig answers,
// one Request per kPluginRun (many at once, one libevent loop), SIGCHLD/SIGHUP/SIGTERM.
// Runs as the [service pluginrunner] user, no chroot or seccomp (it runs arbitrary programs).
// A malformed worker frame closes that worker's channel; a malformed control frame is fatal.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/channel.h"
#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/log.h"
#include "pluginrunner/plugin_config.h"
#include "pluginrunner/plugin_process.h"
#include "pluginrunner/request.h"

namespace sppd::pluginrunner {

// [service pluginrunner] plus what it needs of the global section.
struct Settings {
  RunSettings run;   // qmail_home, plugin_timeout (0 = none), max_output
  std::string user;  // run as this user (privilege::drop)
  log::Level log_level = log::Level::kInfo;
};

// Reads the settings from a loaded config; throws config::ConfigError on a bad value.
Settings settings_from(const config::Config& config);

class Runner {
 public:
  // Seconds SIGTERM (or the master going away) lets running requests finish.
  static constexpr int kDrainCap = 30;

  // control is the channel to the master; config_path is re-read on SIGHUP.
  Runner(event_base* base, std::string config_path, Settings settings, UniqueFd control);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runs the event loop until drained; returns the process exit status.
  int run();
  // Stops taking requests; the loop ends when none runs (at most kDrainCap seconds).
  void drain(const std::string& why);
  // Re-reads the config file; keeps the current settings if it is broken.
  void reload();
  size_t running() const { return requests_.size(); }

 private:
  struct Client {
    uint64_t id = 0;
    std::string worker_pid;
    std::unique_ptr<ipc::Channel> channel;
  };
  using RequestKey = std::pair<uint64_t, uint32_t>;  // client id, request id

  void on_control_frame(ipc::Frame&& frame);
  void on_worker_frame(uint64_t client_id, ipc::Frame&& frame);
  void read_config(Client& client, const ipc::Frame& frame);
  void start_request(Client& client, const ipc::Frame& frame);
  void finish_request(RequestKey key, RunResult&& result);
  void answered(Client& client, ipc::Frame&& reply);
  void drop_client(uint64_t client_id, const std::string& why);
  void malformed(Client& client, const std::string& why);
  void schedule_cleanup();
  void maybe_exit();
  Client* find_client(uint64_t client_id);

  static void on_signal(evutil_socket_t signal, short, void* self);
  static void on_cleanup(evutil_socket_t, short, void* self);
  static void on_drain_cap(evutil_socket_t, short, void* self);

  event_base* base_;
  std::string config_path_;
  Settings settings_;
  std::unique_ptr<ipc::Channel> control_;
  ChildTable children_{base_};
  PluginFileCache plugin_files_;
  std::set<std::string> missing_warned_;  // plugin files already reported missing
  std::map<uint64_t, std::unique_ptr<Client>> clients_;
  std::map<RequestKey, std::unique_ptr<Request>> requests_;
  // Destroyed on the next loop pass, never inside the callbacks that ended them.
  std::vector<std::unique_ptr<Client>> dead_clients_;
  std::vector<std::unique_ptr<Request>> dead_requests_;
  EventPtr sigchld_event_;
  EventPtr sighup_event_;
  EventPtr sigterm_event_;
  EventPtr cleanup_event_;
  EventPtr drain_cap_event_;
  uint64_t next_client_id_ = 1;
  bool served_ = false;
  bool draining_ = false;
};

}  // namespace sppd::pluginrunner
