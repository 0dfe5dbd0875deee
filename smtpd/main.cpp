// sppd-smtpd: the SMTP worker process. Started by the master with its listeners at fd 4..
// and the master channel at fd 3; reads the config and control files, drops privileges
// (chroot + user), installs the seccomp filter, then serves sessions until drained.
#include <signal.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/log.h"
#include "common/privilege.h"
#include "common/protocol.h"
#include "smtpd/sandbox.h"
#include "smtpd/tls.h"
#include "smtpd/worker.h"

#ifdef SPPD_SANITIZE
// The leak checker needs ptrace and /proc, which the sandbox (rightly) forbids.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
#endif

namespace {

void usage() {
  sppd::log::fatal(
      "usage: sppd-smtpd --config FILE --listener NAME=FD ... (started by sppd-master)");
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::vector<sppd::smtpd::InheritedListener> listeners;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--listener" && i + 1 < argc) {
      std::string spec = argv[++i];
      size_t eq = spec.rfind('=');
      if (eq == std::string::npos) usage();
      listeners.push_back({spec.substr(0, eq), sppd::UniqueFd(std::stoi(spec.substr(eq + 1)))});
    } else {
      usage();
    }
  }
  if (config_path.empty()) usage();
  signal(SIGPIPE, SIG_IGN);
  // Reloads and shutdowns come from the master as SIGTERM; a stray HUP must not kill us.
  signal(SIGHUP, SIG_IGN);

  sppd::config::Config config;
  try {
    config = sppd::config::load(config_path);
  } catch (const std::exception& e) {
    sppd::log::fatal(e.what());
  }
  sppd::log::set_level(sppd::log::level_named(config.log_level));

  sppd::smtpd::prepare_tls_library();
  sppd::EventBasePtr base(event_base_new());
  if (!base) sppd::log::fatal("cannot create the event loop");
  sppd::smtpd::Worker worker(base.get(), config, std::move(listeners),
                             sppd::UniqueFd(sppd::protocol::kControlFd));

  const auto& service = config.service("smtpd");
  sppd::privilege::drop({service.user, service.chroot});
  sppd::smtpd::enter_sandbox();
  return worker.run();
}
