// Runner: the pluginrunner program on the helper::Service skeleton: kPluginConfig answers,
// one Request per kPluginRun (many at once, one libevent loop), plugins reaped on SIGCHLD;
// and the recipient checks, kRcptCheck and kRealRcptTo (runner_checks.cpp).
// Runs as the [service pluginrunner] user, no chroot or seccomp (it runs arbitrary programs).
// A malformed worker frame closes that worker's channel (its requests are abandoned).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/helper_service.h"
#include "pluginrunner/plugin_config.h"
#include "pluginrunner/plugin_process.h"
#include "pluginrunner/rcptcheck.h"
#include "pluginrunner/request.h"

namespace sppd::pluginrunner {

// [service pluginrunner] plus what it needs of the global section.
struct Settings {
  RunSettings run;   // qmail_home, plugin_timeout (0 = none), max_output
  std::string user;  // run as this user (privilege::drop)
};

// Reads the settings from a loaded config; throws config::ConfigError on a bad value.
Settings settings_from(const config::Config& config);

class Runner final : public helper::Program {
 public:
  // Seconds SIGTERM (or the master going away) lets running requests finish.
  static constexpr int kDrainCap = 30;

  // control is the channel to the master; config_path is re-read on SIGHUP.
  Runner(event_base* base, std::string config_path, Settings settings, UniqueFd control);
  ~Runner() override;
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // The service skeleton: run(), drain(), reload().
  helper::Service& service() { return service_; }
  size_t in_flight() const override { return requests_.size() + rcptchecks_.size(); }

 private:
  using RequestKey = std::pair<uint64_t, uint32_t>;  // client id, request id

  void on_worker_frame(helper::Client& client, ipc::Frame&& frame) override;
  void on_client_gone(helper::Client& client) override;
  std::string reload(const config::Config& config) override;
  void on_sigchld() override { children_.reap(); }

  void read_config(helper::Client& client, const ipc::Frame& frame);
  void start_request(helper::Client& client, const ipc::Frame& frame);
  void finish_request(RequestKey key, RunResult&& result);
  void answer(helper::Client& client, ipc::Frame&& reply);
  // runner_checks.cpp: the recipient checks (kRcptCheck, kRealRcptTo).
  void start_rcptcheck(helper::Client& client, const ipc::Frame& frame);
  void finish_rcptcheck(RequestKey key, RcptCheckResult&& result);
  void check_realrcptto(helper::Client& client, const ipc::Frame& frame);
  void abandon_rcptchecks(helper::Client& client);
  bool request_id_in_use(RequestKey key) const;

  event_base* base_;
  Settings settings_;
  ChildTable children_{base_};
  PluginFileCache plugin_files_;
  std::set<std::string> missing_warned_;  // plugin files already reported missing
  std::map<RequestKey, std::unique_ptr<Request>> requests_;
  std::map<RequestKey, std::unique_ptr<RcptCheck>> rcptchecks_;
  // Last, so it goes first: dead requests are destroyed while children_ still exists.
  helper::Service service_;
};

}  // namespace sppd::pluginrunner
