// sppd-dnsbl-cache: sppd's DNS service. Started by sppd-master as
// `sppd-dnsbl-cache --config PATH` with the control channel on fd 3; answers the workers'
// PTR questions (TCPREMOTEHOST) and DNSBL questions from caches or through c-ares.
// Set-up (config, resolv.conf, event loop) happens first, then privilege::drop to
// [service dnsbl-cache] user/chroot. SIGHUP re-reads the resolver and logs the counters;
// SIGTERM or the master closing fd 3 ends the process. Set-up failures exit 1 (the master
// throttles).
#include <memory>
#include <string>

#include "common/helper_service.h"
#include "common/log.h"
#include "common/privilege.h"
#include "dnsbl-cache/resolver.h"
#include "dnsbl-cache/server.h"

namespace sppd::dnsbl_cache {
namespace {

int run(int argc, char** argv) {
  helper::Startup start = helper::startup(argc, argv, "sppd-dnsbl-cache");
  ResolverOptions options = helper::or_exit([&] { return resolver_options(start.config); });
  // c-ares reads /etc/resolv.conf here, before the chroot.
  auto resolver =
      helper::or_exit([&] { return std::make_unique<Resolver>(start.base.get(), options); });
  Server server(start.base.get(), start.config.path, std::move(start.control), *resolver);

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
