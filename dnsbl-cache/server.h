// Server: the dnsbl-cache program on the helper::Service skeleton: kDnsPtr and kDnsblQuery
// questions on the worker channels get kDnsPtrResult and kDnsblResult answers (protocol.h),
// from the caches or through c-ares; the counters are logged every 5 minutes and on SIGHUP,
// which also re-reads the resolver setting. Runs unprivileged (and chrooted when configured).
// Error policy: a worker that sends a malformed frame, a bad IP, zone or type loses its
// channel (it is buggy or compromised).
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/helper_service.h"
#include "dnsbl-cache/dnsbl_lookups.h"
#include "dnsbl-cache/ptr_lookups.h"
#include "dnsbl-cache/resolver.h"

namespace sppd::dnsbl_cache {

// [service dnsbl-cache] resolver and lookup_timeout (seconds, default 5) as ResolverOptions;
// throws ResolverError if either is malformed.
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
  // would have nobody to go to (and a worker without one goes on as its settings say).
  size_t in_flight() const override { return 0; }

  const LookupCounters& dnsbl_counters() const { return dnsbl_.counters(); }
  const LookupCounters& ptr_counters() const { return ptr_.counters(); }
  // Logs one info line with both sets of counters and the cache sizes.
  void log_counters() const;

 private:
  void on_worker_frame(helper::Client& client, ipc::Frame&& frame) override;
  void on_client_gone(helper::Client&) override {}  // its lookups' answers are dropped
  std::string reload(const config::Config& config) override;
  void on_ptr(helper::Client& client, const ipc::Frame& frame);
  void on_dnsbl(helper::Client& client, const ipc::Frame& frame);
  void answer_ptr(uint64_t client_id, uint32_t request_id, const PtrAnswer& answer);
  void answer_dnsbl(uint64_t client_id, uint32_t request_id, DnsblType type,
                    const DnsblAnswer& answer, bool cached);
  static void on_counters_timer(evutil_socket_t, short, void* self);
  static void on_sighup(evutil_socket_t, short, void* self);

  Resolver& resolver_;
  PtrLookups ptr_;
  DnsblLookups dnsbl_;
  EventPtr counters_timer_;
  EventPtr sighup_event_;
  LookupCounters last_logged_dnsbl_, last_logged_ptr_;  // the periodic line skips idle times
  helper::Service service_;
};

}  // namespace sppd::dnsbl_cache
