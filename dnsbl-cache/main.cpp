// sppd-dnsbl-cache: sppd's DNS service. Started by sppd-master as
// `sppd-dnsbl-cache --config PATH` with the control channel on fd 3 and the local socket on
// fd 4; answers the workers' PTR questions (TCPREMOTEHOST) and DNSBL questions from caches
// or through c-ares, and the same questions (plus the status query) from local clients.
// Set-up (config, resolv.conf, event loop) happens first, then privilege::drop to
// [service dnsbl-cache] user/chroot. SIGHUP re-reads the resolver and logs the counters;
// SIGTERM or the master closing fd 3 ends the process. Set-up failures exit 1 (the master
// throttles).
#include <fcntl.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "common/helper_service.h"
#include "common/log.h"
#include "common/privilege.h"
#include "common/protocol.h"
#include "dnsbl-cache/resolver.h"
#include "dnsbl-cache/server.h"

namespace sppd::dnsbl_cache {
namespace {

// The master's socket for local clients (rblspp, sppd-dnsbl-status) at kDnsblLocalFd, or
// none if nothing listens there.
UniqueFd local_listener() {
  int listening = 0;
  socklen_t size = sizeof(listening);
  if (getsockopt(protocol::kDnsblLocalFd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) < 0 ||
      !listening) {
    log::warn("no listening socket on fd ", protocol::kDnsblLocalFd,
              ": only the workers can ask (local clients such as rblspp cannot)");
    return {};
  }
  fcntl(protocol::kDnsblLocalFd, F_SETFD, FD_CLOEXEC);
  return UniqueFd(protocol::kDnsblLocalFd);
}

int run(int argc, char** argv) {
  helper::Startup start = helper::startup(argc, argv, "sppd-dnsbl-cache");
  ResolverOptions options = helper::or_exit([&] { return resolver_options(start.config); });
  // c-ares reads /etc/resolv.conf here, before the chroot.
  auto resolver =
      helper::or_exit([&] { return std::make_unique<Resolver>(start.base.get(), options); });
  Server server(start.base.get(), start.config.path, std::move(start.control), *resolver);
  server.set_sender_check_options(
      helper::or_exit([&] { return sender_check_options(start.config); }));
  if (UniqueFd local = local_listener()) {
    server.service().accept_local_clients(std::move(local), Server::kMaxLocalClients);
  }

  const config::Service& service = start.config.service("dnsbl-cache");
  privilege::drop({service.user, service.chroot});
  log::debug("ready (resolver ",
             options.servers.empty() ? "from /etc/resolv.conf" : options.servers,
             ", lookup_timeout ", options.timeout_ms / 1000, " s)");
  return server.service().run();
}

}  // namespace
}  // namespace sppd::dnsbl_cache

int main(int argc, char** argv) {
  ares_library_init(ARES_LIB_INIT_ALL);
  int status = sppd::dnsbl_cache::run(argc, argv);
  ares_library_cleanup();
  return status;
}
