// Server: the authd program on the helper::Service skeleton. For each kAuthCheck it decodes
// the client's base64 lines, consults the FailureLimiter, runs the checkpassword chain
// (CheckRunner) and answers exactly one kAuthResult, holding a "bad" answer for the
// request's delay. The only sppd process that holds passwords: they are wiped once written
// to checkpassword's pipe and never logged. Runs as [service authd] user, no chroot, no
// seccomp (checkpassword may be setuid). A frame that breaks protocol.h closes that worker's
// channel; bad credentials are an answer ("malformed"), not a protocol error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "authd/credentials.h"
#include "authd/limiter.h"
#include "authd/runner.h"
#include "authd/settings.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/helper_service.h"

namespace sppd::authd {

class Server final : public helper::Program {
 public:
  // Seconds SIGTERM (or the master going away) lets running checks finish.
  static constexpr int kDrainCap = 30;
  // The longest failure delay (control/auth/delay); a longer one is cut to it.
  static constexpr int kMaxDelay = 3600;

  // control is the channel to the master; config_path is re-read on SIGHUP.
  Server(event_base* base, std::string config_path, Settings settings, UniqueFd control);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The service skeleton: run(), drain(), reload().
  helper::Service& service() { return service_; }

  void on_worker_frame(helper::Client& client, ipc::Frame&& frame) override;
  void on_client_gone(helper::Client& client) override;
  size_t in_flight() const override;
  std::string reload(const config::Config& config) override;
  void on_sigchld() override { runner_.reap_children(); }

 private:
  using RequestKey = std::pair<uint64_t, uint32_t>;  // client id, request id
  // What a check's answer and its log line need once checkpassword is done.
  struct Check {
    RequestKey key;
    Method method = Method::kPlain;
    std::string user;
    std::string remote_ip;
    int delay = 0;
  };
  struct Delayed {
    Server* server = nullptr;
    RequestKey key;
    std::string text;
    EventPtr timer;
  };

  void start_check(helper::Client& client, ipc::Frame& frame);
  void on_outcome(const Check& check, const Outcome& outcome);
  void answer(const RequestKey& key, const char* status, const std::string& user,
              const std::string& text);
  void hold_failure(const Check& check, const std::string& text);
  static void on_delay_over(evutil_socket_t, short, void* delayed);

  Settings settings_;
  FailureLimiter limiter_;
  CheckRunner runner_;
  std::set<RequestKey> open_requests_;                      // accepted and not yet answered
  std::map<RequestKey, std::shared_ptr<Delayed>> delayed_;  // "bad" answers being held
  uint64_t checks_ = 0;      // makes every timestamp handed to checkpassword unique
  helper::Service service_;  // last: destroyed first, while the rest still exists
};

}  // namespace sppd::authd
