// sppd-pluginrunner: runs qmail-spp plugins for the smtpd workers; started by sppd-master as
// `sppd-pluginrunner --config PATH` (control channel on fd 3). chdir qmail_home, drop to the
// service user, serve until SIGTERM or the master goes away. Start-up errors: exit 1.
#include <errno.h>
#include <unistd.h>

#include <cstring>

#include "common/helper_service.h"
#include "common/log.h"
#include "common/privilege.h"
#include "pluginrunner/runner.h"

int main(int argc, char** argv) {
  using namespace sppd;
  // startup() ignores SIGPIPE and plugins inherit that (qmail-smtpd's sig_pipeignore()): a
  // plugin writing after we stopped reading gets EPIPE.
  helper::Startup start = helper::startup(argc, argv, "sppd-pluginrunner");
  auto settings = helper::or_exit([&] { return pluginrunner::settings_from(start.config); });
  // qmail-smtpd ran its plugins from the qmail home (chdir(auto_qmail)); relative plugin
  // paths and plugin files resolve from there.
  if (chdir(settings.run.qmail_home.c_str()) < 0) {
    log::fatal("cannot enter qmail_home ", settings.run.qmail_home, ": ", std::strerror(errno));
  }
  privilege::drop({settings.user, ""});

  pluginrunner::Runner runner(start.base.get(), start.config.path, settings,
                              std::move(start.control));
  log::info("ready: plugins run in ", settings.run.qmail_home, ", plugin_timeout ",
            settings.run.plugin_timeout.count() / 1000, " s, max_output ", settings.run.max_output,
            " bytes");
  return runner.service().run();
}
