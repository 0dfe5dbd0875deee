// Server implementation (contract in server.h). Every frame is checked before use; a
// worker's frame carries only an IP, and an IP that inet_pton does not accept costs the
// worker its channel.
#include "dnsbl-cache/server.h"

#include <optional>

#include "common/log.h"
#include "common/protocol.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr char kService[] = "dnsbl-cache";

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
  return options;
}

Server::Server(event_base* base, std::string config_path, UniqueFd control, Resolver& resolver)
    : resolver_(resolver),
      lookups_(resolver),
      // in_flight() is 0, so the drain never waits and the cap never comes.
      service_(base, std::move(config_path), std::move(control), *this,
               {10, "lookup(s)", "their workers get no answer"}) {}

std::string Server::reload(const config::Config& config) {
  std::string servers = resolver_options(config).servers;
  resolver_.set_servers(servers);
  return log::concat(": resolver ", servers.empty() ? "from /etc/resolv.conf" : servers);
}

void Server::on_worker_frame(helper::Client& client, ipc::Frame&& frame) {
  if (frame.type != protocol::kDnsPtr) {
    return service_.malformed(client, "unexpected frame type " + std::to_string(frame.type));
  }
  const std::string* ip_text = frame.get("ip");
  std::optional<IpAddress> ip = ip_text ? parse_ip(*ip_text) : std::nullopt;
  if (!ip) {
    return service_.malformed(client, ip_text ? "ip " + quoted(*ip_text) + " is not an IP address"
                                              : std::string("kDnsPtr without an ip"));
  }
  uint64_t id = client.id;
  uint32_t request_id = frame.request_id;
  lookups_.lookup(*ip, [this, id, request_id, text = ip->text](const PtrAnswer& result) {
    log::debug("PTR ", text, ": ", status_text(result.status), " ", result.name);
    answer(id, request_id, result);
  });
}

void Server::answer(uint64_t client_id, uint32_t request_id, const PtrAnswer& result) {
  helper::Client* client = service_.find_client(client_id);
  if (!client) return;
  ipc::Frame reply(protocol::kDnsPtrResult, request_id);
  reply.add("status", status_text(result.status));
  if (result.status == PtrAnswer::Status::kOk) reply.add("name", result.name);
  client->channel->send(std::move(reply));
  service_.served();
}

}  // namespace sppd::dnsbl_cache
