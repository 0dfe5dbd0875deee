// sppd-queue-bridge: runs qmail-queue for smtpd workers and maps its exit status to qmail's
// reply text. Started by sppd-master as `sppd-queue-bridge --config PATH` with the control
// channel on fd 3; chdirs to qmail_home, drops to [service queue-bridge] user (no chroot:
// qmail-queue lives outside any), then serves until the master goes away or SIGTERM.
// Start-up errors are fatal (exit 1, the master throttles restarts).
#include <errno.h>
#include <unistd.h>

#include <cstring>

#include "common/helper_service.h"
#include "common/log.h"
#include "common/privilege.h"
#include "queue-bridge/bridge.h"

int main(int argc, char** argv) {
  using namespace sppd;
  helper::Startup start = helper::startup(argc, argv, "sppd-queue-bridge");
  auto settings = helper::or_exit([&] { return queue_bridge::settings_from(start.config); });
  if (chdir(settings.qmail_home.c_str()) < 0) {
    log::fatal("cannot enter qmail_home ", settings.qmail_home, ": ", std::strerror(errno));
  }
  privilege::drop({settings.user, ""});

  queue_bridge::Bridge bridge(start.base.get(), start.config.path, settings,
                              std::move(start.control));
  log::info("ready: ", settings.qmail_queue.front(), " in ", settings.qmail_home, ", timeout ",
            settings.queue_timeout, " s, error fd ", settings.error_fd,
            queue_bridge::clamds_detail(settings.clamds));
  return bridge.service().run();
}
