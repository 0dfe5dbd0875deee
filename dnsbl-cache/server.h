// Server: the dnsbl-cache program on the helper::Service skeleton: kDnsPtr and kDnsblQuery
// questions on the worker channels get kDnsPtrResult and kDnsblResult answers (protocol.h),
// from the caches or through c-ares; kDnsblTableRequest gets a read-only descriptor of the
// shared DNSBL table (kDnsblTable) and kDnsblShmHits counts the workers' hits in it (hits_shm);
// kSenderCheck (control/mfcheck: sender domain, call-back) gets kSenderVerdict;
// kClientConnect / kClientDisconnect keep the per-client
// connection counters (client_counters.h), and a worker's channel ending releases its clients;
// the counters are logged every 5 minutes and on SIGHUP, which also re-reads the resolver
// setting. Runs unprivileged (and chrooted when configured).
// Local clients (processes other than the workers, on the master's socket) may ask
// kDnsblQuery, kDnsPtr, kDnsblTableRequest and kStatusQuery (answered with kStatusReport).
// Error policy: a worker or local client that sends a malformed frame, a bad IP, zone or
// type, or a local client that sends any other frame, loses its channel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/helper_service.h"
#include "dnsbl-cache/client_counters.h"
#include "dnsbl-cache/dnsbl_lookups.h"
#include "dnsbl-cache/ptr_lookups.h"
#include "dnsbl-cache/resolver.h"
#include "dnsbl-cache/sender_checks.h"

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
  // [service dnsbl-cache] callback_port / callback_timeout (at start and on SIGHUP).
  void set_sender_check_options(const SenderCheckOptions& options) { sender_.set_options(options); }
  const SenderChecks& sender_checks() const { return sender_; }
  const ClientCounters& client_counters() const { return clients_; }
  // Logs one info line with both sets of counters and the cache sizes.
  void log_counters() const;
  // Every counter of the operators' status query (kStatusReport), in the order sent: name
  // ("dnsbl.queries") and value.
  std::vector<std::pair<std::string, uint64_t>> status_counters() const;

  // Local clients (the rblspp plugin, sppd-dnsbl-status) connected at once on the master's
  // socket (protocol.h kDnsblLocalFd); more are refused.
  static constexpr size_t kMaxLocalClients = 256;

 private:
  void on_worker_frame(helper::Client& client, ipc::Frame&& frame) override;
  // Its lookups' answers are dropped; its clients' connections are released.
  void on_client_gone(helper::Client& client) override;
  std::string reload(const config::Config& config) override;
  void on_ptr(helper::Client& client, const ipc::Frame& frame);
  void on_dnsbl(helper::Client& client, const ipc::Frame& frame);
  void on_status(helper::Client& client, const ipc::Frame& frame);
  void on_client_connect(helper::Client& client, const ipc::Frame& frame);
  // server_table.cpp: kDnsblTableRequest gets the shared table's read-only descriptor;
  // kDnsblShmHits adds a worker's table hits to hits_shm.
  void on_table_request(helper::Client& client, const ipc::Frame& frame);
  // server_sender.cpp: kSenderCheck (control/mfcheck) gets a kSenderVerdict.
  void on_sender_check(helper::Client& client, const ipc::Frame& frame);
  void on_shm_hits(helper::Client& client, const ipc::Frame& frame);
  void on_client_disconnect(helper::Client& client, const ipc::Frame& frame);
  void answer_ptr(uint64_t client_id, uint32_t request_id, const PtrAnswer& answer);
  void answer_dnsbl(uint64_t client_id, uint32_t request_id, DnsblType type,
                    const DnsblAnswer& answer, bool cached);
  static void on_counters_timer(evutil_socket_t, short, void* self);
  static void on_sighup(evutil_socket_t, short, void* self);
  static void on_clients_sweep(evutil_socket_t, short, void* self);

  Resolver& resolver_;
  PtrLookups ptr_;
  SenderChecks sender_;  // mfcheck: sender domains and call-backs
  DnsblLookups dnsbl_;
  ClientCounters clients_;
  EventPtr clients_sweep_timer_;
  std::optional<ClientCounters::TimePoint> last_full_warning_;  // "table full": once a minute
  EventPtr counters_timer_;
  EventPtr sighup_event_;
  LookupCounters last_logged_dnsbl_, last_logged_ptr_;  // the periodic line skips idle times
  uint64_t last_logged_shm_hits_ = 0;
  helper::Service service_;
};

}  // namespace sppd::dnsbl_cache
