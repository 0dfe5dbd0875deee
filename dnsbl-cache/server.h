// Server: the dnsbl-cache program on the helper::Service skeleton: kDnsPtr questions on the
// worker channels get kDnsPtrResult answers (protocol.h), from the cache or through c-ares;
// SIGHUP re-reads the resolver setting. Runs unprivileged (and chrooted when configured).
// Error policy: a worker that sends a malformed frame or a bad IP loses its channel (it is
// buggy or compromised).
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/helper_service.h"
#include "dnsbl-cache/ptr_lookups.h"
#include "dnsbl-cache/resolver.h"

namespace sppd::dnsbl_cache {

// [service dnsbl-cache] resolver as ResolverOptions; throws ResolverError if malformed.
ResolverOptions resolver_options(const config::Config& config);

class Server final : public helper::Program {
 public:
  // control: the master's channel (fd 3); config_path is re-read on SIGHUP.
  Server(event_base* base, std::string config_path, UniqueFd control, Resolver& resolver);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The service skeleton: run(), drain(), reload().
  helper::Service& service() { return service_; }
  // Stopping waits for no lookup: the master stops helpers after the workers, so an answer
  // would have nobody to go to (and a worker without one just goes without TCPREMOTEHOST).
  size_t in_flight() const override { return 0; }

 private:
  void on_worker_frame(helper::Client& client, ipc::Frame&& frame) override;
  void on_client_gone(helper::Client&) override {}  // its lookups' answers are dropped
  std::string reload(const config::Config& config) override;
  void answer(uint64_t client_id, uint32_t request_id, const PtrAnswer& answer);

  Resolver& resolver_;
  PtrLookups lookups_;
  helper::Service service_;
};

}  // namespace sppd::dnsbl_cache
