// sppd-authd: answers the smtpd workers' SMTP AUTH checks by running the admin's
// checkpassword chain. Started by sppd-master as `sppd-authd --config PATH` with the control
// channel on fd 3; drops to [service authd] user (no chroot and no seccomp: checkpassword
// programs read password databases and may be setuid), then serves until the master goes
// away or SIGTERM. Start-up errors are fatal (exit 1, the master throttles restarts).
#include <sys/resource.h>

#include "authd/server.h"
#include "authd/settings.h"
#include "common/helper_service.h"
#include "common/log.h"
#include "common/privilege.h"

int main(int argc, char** argv) {
  using namespace sppd;
  helper::Startup start = helper::startup(argc, argv, "sppd-authd");
  auto settings = helper::or_exit([&] { return authd::settings_from(start.config); });
  // authd holds passwords: no core file may carry one to disk. privilege::drop clears
  // authd's dumpable flag; this limit also covers the checkpassword programs it starts.
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  privilege::drop({settings.user, ""});

  authd::Server server(start.base.get(), start.config.path, settings, std::move(start.control));
  log::info("ready: checkpassword ",
            settings.checkpassword.empty() ? std::string("(none)") : settings.checkpassword[0],
            ", timeout ", settings.check_timeout, " s, concurrency ", settings.concurrency, ", ",
            settings.max_failures, " failures in ", settings.failure_window, " s block");
  return server.service().run();
}
