// Server implementation (contract in server.h). Every frame is checked before use; an IP
// that inet_pton does not accept, a zone that is not a domain name or an unknown type costs
// the worker its channel.
#include "dnsbl-cache/server.h"

#include <signal.h>

#include <optional>

#include "common/log.h"
#include "common/protocol.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr char kService[] = "dnsbl-cache";
constexpr int kCountersInterval = 300;     // seconds between two counter lines
constexpr int kClientsSweepInterval = 60;  // seconds between two sweeps of idle clients
constexpr long kMaxLookupTimeout = 120;

// What a local client (not a worker: a plugin, an operator's tool) may ask; per-client
// counters and the workers' shared-memory hit reports are the workers' business only.
bool local_client_may_ask(uint16_t type) {
  return type == protocol::kDnsblQuery || type == protocol::kDnsPtr ||
         type == protocol::kDnsblTableRequest || type == protocol::kStatusQuery;
}

// Adds the counters of one kind of lookup as "<kind>.queries" ... "<kind>.timeouts".
void add_lookup_counters(std::vector<std::pair<std::string, uint64_t>>* out,
                         const std::string& kind, const LookupCounters& c) {
  for (const auto& [name, value] : {std::pair<const char*, uint64_t>{"queries", c.queries},
                                    {"hits", c.hits},
                                    {"misses", c.misses},
                                    {"coalesced", c.coalesced},
                                    {"errors", c.errors},
                                    {"timeouts", c.timeouts}}) {
    out->emplace_back(kind + "." + name, value);
  }
}

// Worker-supplied text in our logs: short and printable.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text.substr(0, 64)) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(byte < 0x20 || byte >= 0x7f ? '?' : c);
  }
  if (text.size() > 64) out += "...";
  return out + "'";
}

}  // namespace

ResolverOptions resolver_options(const config::Config& config) {
  ResolverOptions options;
  std::string servers = config.service(kService).get("resolver", "");
  std::string host;
  int port = 0;
  if (!servers.empty() && !config::split_address(servers, &host, &port)) {
    throw ResolverError("resolver must be IP:port or [IPv6]:port, got '" + servers + "'");
  }
  options.servers = servers;
  long seconds = config.service(kService).get_long("lookup_timeout", 5);
  if (seconds < 1 || seconds > kMaxLookupTimeout) {
    throw ResolverError("lookup_timeout must be 1 to " + std::to_string(kMaxLookupTimeout) +
                        " seconds");
  }
  options.timeout_ms = static_cast<int>(seconds * 1000);
  return options;
}

Server::Server(event_base* base, std::string config_path, UniqueFd control, Resolver& resolver)
    : resolver_(resolver),
      ptr_(resolver),
      sender_(base, resolver),
      dnsbl_(resolver),
      clients_sweep_timer_(event_new(base, -1, EV_PERSIST, on_clients_sweep, this)),
      counters_timer_(event_new(base, -1, EV_PERSIST, on_counters_timer, this)),
      // A second SIGHUP event next to the Service's: the counters are logged even when the
      // new config turns out broken.
      sighup_event_(evsignal_new(base, SIGHUP, on_sighup, this)),
      // in_flight() is 0, so the drain never waits and the cap never comes.
      service_(base, std::move(config_path), std::move(control), *this,
               {10, "lookup(s)", "their workers get no answer"}) {
  timeval interval{kCountersInterval, 0};
  event_add(counters_timer_.get(), &interval);
  timeval sweep_interval{kClientsSweepInterval, 0};
  event_add(clients_sweep_timer_.get(), &sweep_interval);
  event_add(sighup_event_.get(), nullptr);
}

std::string Server::reload(const config::Config& config) {
  ResolverOptions options = resolver_options(config);
  SenderCheckOptions sender_options = sender_check_options(config);  // both checked first
  resolver_.set_servers(options.servers);
  sender_.set_options(sender_options);
  if (options.timeout_ms != resolver_.timeout_ms()) {
    log::warn("lookup_timeout ", options.timeout_ms / 1000, " s takes effect when ", kService,
              " restarts; ", resolver_.timeout_ms() / 1000, " s until then");
  }
  return log::concat(": resolver ",
                     options.servers.empty() ? "from /etc/resolv.conf" : options.servers);
}

void Server::log_counters() const {
  log::info("counters: dnsbl ", describe(dnsbl_.counters()), " hits_shm=", dnsbl_.shm_hits(),
            " entries=", dnsbl_.cache_size(), "; ptr ", describe(ptr_.counters()),
            " entries=", ptr_.cache_size());
}

std::vector<std::pair<std::string, uint64_t>> Server::status_counters() const {
  std::vector<std::pair<std::string, uint64_t>> counters;
  add_lookup_counters(&counters, "dnsbl", dnsbl_.counters());
  counters.emplace_back("dnsbl.entries", dnsbl_.cache_size());
  counters.emplace_back("dnsbl.hits_shm", dnsbl_.shm_hits());
  add_lookup_counters(&counters, "ptr", ptr_.counters());
  counters.emplace_back("ptr.entries", ptr_.cache_size());
  // ---- More counters of the status query go here, as name/value pairs in the order
  // sppd-dnsbl-status prints them.
  add_lookup_counters(&counters, "sender", sender_.dns_counters());
  add_lookup_counters(&counters, "callback", sender_.callback_counters());
  counters.emplace_back("sender.entries", sender_.cache_size());
  ClientStats clients = clients_.stats();
  counters.emplace_back("clients.tracked", clients.tracked);
  counters.emplace_back("clients.connections", clients.connections);
  counters.emplace_back("clients.refused_concurrency", clients.refused_concurrency);
  counters.emplace_back("clients.refused_rate", clients.refused_rate);
  counters.emplace_back("clients.uncounted", clients.uncounted);
  return counters;
}

void Server::on_status(helper::Client& client, const ipc::Frame& frame) {
  ipc::Frame report(protocol::kStatusReport, frame.request_id);
  for (const auto& [name, value] : status_counters()) {
    report.add("counter", name + "=" + std::to_string(value));
  }
  client.channel->send(std::move(report));
}

void Server::on_counters_timer(evutil_socket_t, short, void* self) {
  auto* server = static_cast<Server*>(self);
  if (server->dnsbl_.counters() == server->last_logged_dnsbl_ &&
      server->dnsbl_.shm_hits() == server->last_logged_shm_hits_ &&
      server->ptr_.counters() == server->last_logged_ptr_) {
    return;  // nothing happened since the last line
  }
  server->last_logged_shm_hits_ = server->dnsbl_.shm_hits();
  server->last_logged_dnsbl_ = server->dnsbl_.counters();
  server->last_logged_ptr_ = server->ptr_.counters();
  server->log_counters();
}

void Server::on_sighup(evutil_socket_t, short, void* self) {
  static_cast<Server*>(self)->log_counters();
}

void Server::on_worker_frame(helper::Client& client, ipc::Frame&& frame) {
  if (!client.worker && !local_client_may_ask(frame.type)) {
    return service_.malformed(
        client, "frame type " + std::to_string(frame.type) + " is not for local clients");
  }
  if (frame.type == protocol::kStatusQuery) return on_status(client, frame);
  if (frame.type == protocol::kDnsPtr) return on_ptr(client, frame);
  if (frame.type == protocol::kDnsblQuery) return on_dnsbl(client, frame);
  if (frame.type == protocol::kDnsblTableRequest) return on_table_request(client, frame);
  if (frame.type == protocol::kDnsblShmHits) return on_shm_hits(client, frame);
  if (frame.type == protocol::kClientConnect) return on_client_connect(client, frame);
  if (frame.type == protocol::kClientDisconnect) return on_client_disconnect(client, frame);
  if (frame.type == protocol::kSenderCheck) return on_sender_check(client, frame);
  service_.malformed(client, "unexpected frame type " + std::to_string(frame.type));
}

void Server::on_ptr(helper::Client& client, const ipc::Frame& frame) {
  const std::string* ip_text = frame.get("ip");
  std::optional<IpAddress> ip = ip_text ? parse_ip(*ip_text) : std::nullopt;
  if (!ip) {
    return service_.malformed(client, ip_text ? "ip " + quoted(*ip_text) + " is not an IP address"
                                              : std::string("kDnsPtr without an ip"));
  }
  uint64_t id = client.id;
  uint32_t request_id = frame.request_id;
  ptr_.lookup(*ip, [this, id, request_id, text = ip->text](const PtrAnswer& result) {
    log::debug("PTR ", text, ": ", status_text(result.status), " ", result.name);
    answer_ptr(id, request_id, result);
  });
}

void Server::on_dnsbl(helper::Client& client, const ipc::Frame& frame) {
  const std::string* ip_text = frame.get("ip");
  const std::string* zone_text = frame.get("zone");
  const std::string* type_name = frame.get("type");
  if (!ip_text || !zone_text || !type_name) {
    return service_.malformed(client, "kDnsblQuery needs ip, zone and type");
  }
  std::optional<IpAddress> ip = parse_ip(*ip_text);
  if (!ip) return service_.malformed(client, "ip " + quoted(*ip_text) + " is not an IP address");
  std::optional<std::string> zone = normalize_zone(*zone_text);
  if (!zone) return service_.malformed(client, "zone " + quoted(*zone_text) + " is not a domain");
  std::optional<DnsblType> type = parse_dnsbl_type(*type_name);
  if (!type) return service_.malformed(client, "type " + quoted(*type_name) + " is not txt or a");
  uint64_t id = client.id;
  uint32_t request_id = frame.request_id;
  dnsbl_.lookup(*ip, *zone, *type,
                [this, id, request_id, kind = *type](const DnsblAnswer& result, bool cached) {
                  answer_dnsbl(id, request_id, kind, result, cached);
                });
}

void Server::answer_dnsbl(uint64_t client_id, uint32_t request_id, DnsblType type,
                          const DnsblAnswer& result, bool cached) {
  helper::Client* client = service_.find_client(client_id);
  if (!client) return;
  ipc::Frame reply(protocol::kDnsblResult, request_id);
  reply.add("status", status_text(result.status));
  if (result.status == DnsblAnswer::Status::kListed) {
    if (type == DnsblType::kTxt) reply.add("text", result.text);
    if (type == DnsblType::kA) {
      for (const std::string& address : result.addresses) reply.add("address", address);
    }
  }
  reply.add("cached", cached ? "yes" : "no");
  client->channel->send(std::move(reply));
  service_.served();
}

void Server::answer_ptr(uint64_t client_id, uint32_t request_id, const PtrAnswer& result) {
  helper::Client* client = service_.find_client(client_id);
  if (!client) return;
  ipc::Frame reply(protocol::kDnsPtrResult, request_id);
  reply.add("status", status_text(result.status));
  if (result.status == PtrAnswer::Status::kOk) reply.add("name", result.name);
  client->channel->send(std::move(reply));
  service_.served();
}

}  // namespace sppd::dnsbl_cache
