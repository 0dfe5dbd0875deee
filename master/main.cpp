// sppd-master: `sppd-master --config PATH`. Reads and checks the config, binds the
// listeners and dnsbl-cache's local socket, then supervises sppd's processes in the
// foreground, logging to stderr.
// Runs as root in production (ports < 1024, children switch users themselves).
// Exit status: 2 for a bad command line or config, 1 if it cannot start, 0 after a shutdown.
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/config.h"
#include "common/log.h"
#include "master/listeners.h"
#include "master/local_socket.h"
#include "master/services.h"
#include "master/spawn.h"
#include "master/supervisor.h"

namespace sppd::master {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitStartFailure = 1;

int usage() {
  log::error("usage: sppd-master --config PATH");
  return kExitUsage;
}

// Who may connect to dnsbl-cache's socket: as root, the group of the plugins' user (rblspp
// runs as that user); throws LocalSocketError if that user does not exist.
SocketAccess dnsbl_socket_access(const config::Config& config) {
  SocketAccess access;
  access.as_root = geteuid() == 0;
  const std::string& user = config.service(std::string(kPluginRunner)).user;
  if (!access.as_root || user.empty()) return access;
  const passwd* entry = getpwnam(user.c_str());
  if (!entry) {
    throw LocalSocketError("cannot give the dnsbl-cache socket to [service pluginrunner] user " +
                           user + ": no such user");
  }
  access.group = entry->pw_gid;
  return access;
}

int run(int argc, char** argv) {
  log::set_tag("sppd-master");
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      return usage();
    }
  }
  if (config_path.empty()) return usage();

  config::Config config;
  try {
    config = config::load(config_path);
  } catch (const config::ConfigError& e) {
    log::error(e.what());
    return kExitUsage;
  }
  log::set_level(log::level_named(config.log_level));
  // A child's stderr or a channel may close under us; errors are handled where they occur.
  signal(SIGPIPE, SIG_IGN);

  std::string program_dir;
  try {
    program_dir = own_directory();
  } catch (const std::exception& e) {
    log::error(e.what());
    return kExitStartFailure;
  }
  for (std::string_view service : kServices) {
    std::string program = program_dir + "/sppd-" + std::string(service);
    if (access(program.c_str(), X_OK) < 0) {
      log::error("cannot run ", program, ": ", std::strerror(errno),
                 " (sppd's programs must sit next to sppd-master)");
      return kExitStartFailure;
    }
    if (role_of(service) == Role::kHelper && !is_pool(service) &&
        config.service(std::string(service)).processes != 1) {
      log::warn("[service ", service, "] processes ignored: sppd runs one ", service);
    }
  }
  if (std::string why = prepare_chroot(config); !why.empty()) {
    log::error(why);
    return kExitStartFailure;
  }

  ListenerSet listeners;
  try {
    listeners = ListenerSet::bind_all(config.listeners);
  } catch (const ListenError& e) {
    log::error(e.what());
    return kExitStartFailure;
  }
  for (const BoundListener& listener : listeners.items()) {
    log::info("listening on ", listener.bound, " (", listener.name, ")");
  }
  LocalSocket dnsbl_socket;
  try {
    dnsbl_socket = LocalSocket::bind(config::dnsbl_socket(config), dnsbl_socket_access(config));
  } catch (const LocalSocketError& e) {
    log::error(e.what());
    return kExitStartFailure;
  }
  log::info("dnsbl-cache answers local clients on ", dnsbl_socket.path());

  try {
    log::info("starting with ", config.path, " (pid ", getpid(), ")");
    Supervisor supervisor(std::move(config), std::move(listeners), std::move(dnsbl_socket),
                          program_dir);
    return supervisor.run();
  } catch (const std::exception& e) {
    log::error(e.what());
    return kExitStartFailure;
  }
}

}  // namespace
}  // namespace sppd::master

int main(int argc, char** argv) { return sppd::master::run(argc, argv); }
