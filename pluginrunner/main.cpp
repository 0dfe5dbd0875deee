// sppd-pluginrunner: runs qmail-spp plugins for the smtpd workers; started by sppd-master as
// `sppd-pluginrunner --config PATH` (control channel on fd 3). chdir qmail_home, drop to the
// service user, serve until SIGTERM or the master goes away. Start-up errors: exit 1.
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
#include "pluginrunner/runner.h"

namespace {

std::string config_path_from(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      path = arg.substr(9);
    } else {
      sppd::log::fatal("usage: sppd-pluginrunner --config PATH (unexpected argument '", arg, "')");
    }
  }
  if (path.empty()) sppd::log::fatal("usage: sppd-pluginrunner --config PATH");
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sppd;
  std::string config_path = config_path_from(argc, argv);
  // Plugins inherit this (qmail-smtpd's sig_pipeignore()): a plugin writing after we stopped
  // reading gets EPIPE. It also keeps our own writes to a gone worker from killing us.
  signal(SIGPIPE, SIG_IGN);

  pluginrunner::Settings settings;
  try {
    config::Config config = config::load(config_path);
    config_path = config.path;  // absolute: SIGHUP re-reads it after the chdir below
    settings = pluginrunner::settings_from(config);
  } catch (const std::exception& e) {
    log::fatal(e.what());
  }
  log::set_level(settings.log_level);

  if (fcntl(protocol::kControlFd, F_GETFD) < 0) {
    log::fatal("fd ", protocol::kControlFd,
               " is not open: sppd-pluginrunner is started by sppd-master, not by hand");
  }
  // qmail-smtpd ran its plugins from the qmail home (chdir(auto_qmail)); relative plugin
  // paths and plugin files resolve from there.
  if (chdir(settings.run.qmail_home.c_str()) < 0) {
    log::fatal("cannot enter qmail_home ", settings.run.qmail_home, ": ", std::strerror(errno));
  }
  privilege::drop({settings.user, ""});

  EventBasePtr base(event_base_new());
  if (!base) log::fatal("cannot create the event loop");
  pluginrunner::Runner runner(base.get(), config_path, settings, UniqueFd(protocol::kControlFd));
  log::info("ready: plugins run in ", settings.run.qmail_home, ", plugin_timeout ",
            settings.run.plugin_timeout.count() / 1000, " s, max_output ", settings.run.max_output,
            " bytes");
  return runner.run();
}
