// sppd-dnsbl-cache: sppd's DNS service. Started by sppd-master as
// `sppd-dnsbl-cache --config PATH` with the control channel on fd 3; answers the workers'
// PTR questions (TCPREMOTEHOST) from a cache or through c-ares.
// Set-up (config, resolv.conf, event loop) happens first, then privilege::drop to
// [service dnsbl-cache] user/chroot. SIGHUP re-reads the resolver setting; SIGTERM or the
// master closing fd 3 ends the process. Set-up failures exit 1 (the master throttles).
#include <fcntl.h>
#include <signal.h>

#include <string>

#include "common/config.h"
#include "common/log.h"
#include "common/privilege.h"
#include "common/protocol.h"
#include "dnsbl-cache/ptr_lookups.h"
#include "dnsbl-cache/resolver.h"
#include "dnsbl-cache/server.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr char kService[] = "dnsbl-cache";

struct Process {
  std::string config_path;
  event_base* base = nullptr;
  Resolver* resolver = nullptr;
};

ResolverOptions resolver_options(const config::Config& config) {
  ResolverOptions options;
  std::string servers = config.service(kService).get("resolver", "");
  std::string host;
  int port = 0;
  if (!servers.empty() && !config::split_address(servers, &host, &port)) {
    throw ResolverError("resolver must be IP:port or [IPv6]:port, got '" + servers + "'");
  }
  options.servers = servers;
  return options;
}

void on_signal(evutil_socket_t sig, short, void* arg) {
  auto* process = static_cast<Process*>(arg);
  if (sig == SIGTERM) {
    log::info("received SIGTERM: exiting");
    event_base_loopbreak(process->base);
    return;
  }
  // SIGHUP: the master accepted a new config. Inside a chroot the file may be out of reach;
  // then the old settings stay until the next restart.
  try {
    config::Config config = config::load(process->config_path);
    log::set_level(log::level_named(config.log_level));
    process->resolver->set_servers(resolver_options(config).servers);
    log::info("reloaded configuration");
  } catch (const std::exception& e) {
    log::warn("reload failed, keeping the current settings: ", e.what());
  }
}

int run(int argc, char** argv) {
  Process process;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      process.config_path = argv[++i];
    } else {
      log::fatal("usage: sppd-dnsbl-cache --config PATH (started by sppd-master)");
    }
  }
  if (process.config_path.empty()) log::fatal("usage: sppd-dnsbl-cache --config PATH");
  if (fcntl(protocol::kControlFd, F_GETFD) < 0) {
    log::fatal("fd ", protocol::kControlFd,
               " is not open: sppd-dnsbl-cache is started by sppd-master");
  }
  signal(SIGPIPE, SIG_IGN);

  config::Config config;
  ResolverOptions options;
  try {
    config = config::load(process.config_path);
    options = resolver_options(config);
  } catch (const std::exception& e) {
    log::fatal(e.what());
  }
  log::set_level(log::level_named(config.log_level));
  const config::Service& service = config.service(kService);

  ares_library_init(ARES_LIB_INIT_ALL);
  EventBasePtr base(event_base_new());
  if (!base) log::fatal("cannot create the event loop");
  process.base = base.get();
  std::unique_ptr<Resolver> resolver;
  try {
    resolver = std::make_unique<Resolver>(base.get(), options);
  } catch (const ResolverError& e) {
    log::fatal(e.what());
  }
  process.resolver = resolver.get();
  PtrLookups lookups(*resolver);
  Server server(base.get(), UniqueFd(protocol::kControlFd), lookups,
                [&] { event_base_loopbreak(base.get()); });
  EventPtr term(evsignal_new(base.get(), SIGTERM, on_signal, &process));
  EventPtr hup(evsignal_new(base.get(), SIGHUP, on_signal, &process));
  event_add(term.get(), nullptr);
  event_add(hup.get(), nullptr);

  privilege::drop({service.user, service.chroot});
  log::debug("ready (resolver ",
             options.servers.empty() ? "from /etc/resolv.conf" : options.servers, ")");
  event_base_dispatch(base.get());
  return 0;
}

}  // namespace
}  // namespace sppd::dnsbl_cache

int main(int argc, char** argv) {
  int status = sppd::dnsbl_cache::run(argc, argv);
  ares_library_cleanup();
  return status;
}
