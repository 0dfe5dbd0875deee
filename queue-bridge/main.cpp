// sppd-queue-bridge: runs qmail-queue for smtpd workers and maps its exit status to qmail's
// reply text. Started by sppd-master as `sppd-queue-bridge --config PATH` with the control
// channel on fd 3; chdirs to qmail_home, drops to [service queue-bridge] user (no chroot:
// qmail-queue lives outside any), then serves until the master goes away or SIGTERM.
// Start-up errors are fatal (exit 1, the master throttles restarts).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/config.h"
#include "common/event.h"
#include "common/log.h"
#include "common/privilege.h"
#include "common/protocol.h"
#include "queue-bridge/bridge.h"

namespace {

std::string config_path_from(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg.compare(0, 9, "--config=") == 0) {
      path = arg.substr(9);
    } else {
      sppd::log::fatal("usage: sppd-queue-bridge --config PATH (unexpected argument '", arg, "')");
    }
  }
  if (path.empty()) sppd::log::fatal("usage: sppd-queue-bridge --config PATH");
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sppd;
  std::string config_path = config_path_from(argc, argv);
  // Writes to a pipe whose reader died must fail with EPIPE, not kill the bridge.
  signal(SIGPIPE, SIG_IGN);

  queue_bridge::Settings settings;
  try {
    config::Config config = config::load(config_path);
    config_path = config.path;  // absolute: SIGHUP re-reads it after the chdir below
    settings = queue_bridge::settings_from(config);
  } catch (const std::exception& e) {
    log::fatal(e.what());
  }
  log::set_level(settings.log_level);

  if (fcntl(protocol::kControlFd, F_GETFD) < 0) {
    log::fatal("fd ", protocol::kControlFd,
               " is not open: sppd-queue-bridge is started by sppd-master, not by hand");
  }
  if (chdir(settings.qmail_home.c_str()) < 0) {
    log::fatal("cannot enter qmail_home ", settings.qmail_home, ": ", std::strerror(errno));
  }
  privilege::drop({settings.user, ""});

  EventBasePtr base(event_base_new());
  if (!base) log::fatal("cannot create the event loop");
  queue_bridge::Bridge bridge(base.get(), config_path, settings, UniqueFd(protocol::kControlFd));
  log::info("ready: ", settings.qmail_queue.front(), " in ", settings.qmail_home, ", timeout ",
            settings.queue_timeout, " s, error fd ", settings.error_fd);
  return bridge.run();
}
