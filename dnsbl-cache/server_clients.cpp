// Server's per-client connection counters (contract in server.h and protocol.h
// kClientConnect / kClientVerdict / kClientDisconnect): a worker asks before it greets a
// client, says when the session ends, and its channel ending releases all its clients.
// Every attribute is checked; a frame that breaks the contract costs the worker its channel.
#include <charconv>
#include <optional>

#include "common/log.h"
#include "common/protocol.h"
#include "dnsbl-cache/reverse_name.h"
#include "dnsbl-cache/server.h"

namespace sppd::dnsbl_cache {
namespace {

// Bounds on what a worker may send (config.cpp checks the settings against smaller ones).
constexpr uint64_t kMaxLimit = 1000000;
constexpr uint64_t kMaxRateWindow = 86400;
constexpr uint64_t kMaxAge = uint64_t{1} << 40;
constexpr size_t kMaxListenerName = 100;

// A decimal attribute no larger than max; nullopt if absent or not such a number.
std::optional<uint64_t> number_attr(const ipc::Frame& frame, std::string_view name, uint64_t max) {
  const std::string* text = frame.get(name);
  if (!text || text->empty() || text->size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size() || value > max) {
    return std::nullopt;
  }
  return value;
}

bool valid_listener_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxListenerName) return false;
  for (char c : name) {
    if (c <= ' ' || c > '~') return false;  // config.cpp: a section name is one word
  }
  return true;
}

}  // namespace

void Server::on_client_connect(helper::Client& client, const ipc::Frame& frame) {
  const std::string* ip_text = frame.get("ip");
  const std::string* listener = frame.get("listener");
  auto session = number_attr(frame, "session", UINT64_MAX);
  auto max_connections = number_attr(frame, "max_connections", kMaxLimit);
  auto max_rate = number_attr(frame, "max_rate", kMaxLimit);
  auto rate_window = number_attr(frame, "rate_window", kMaxRateWindow);
  std::string reannounce = frame.get_or("reannounce", "no");
  if (!ip_text || !listener || !session || !max_connections || !max_rate || !rate_window ||
      *rate_window == 0 || (reannounce != "yes" && reannounce != "no")) {
    return service_.malformed(client,
                              "kClientConnect needs ip, listener, session, max_connections, "
                              "max_rate and rate_window (1 or more), and reannounce yes or no");
  }
  std::optional<IpAddress> ip = parse_ip(*ip_text);
  if (!ip) return service_.malformed(client, "kClientConnect: ip is not an IP address");
  if (!valid_listener_name(*listener)) {
    return service_.malformed(client, "kClientConnect: listener is not a listener name");
  }
  ClientConnect request{{client.id, *session},
                        *listener,
                        ip->text,
                        {*max_connections, *max_rate, std::chrono::seconds(*rate_window)},
                        std::nullopt};
  if (reannounce == "yes") {
    auto age = number_attr(frame, "age", kMaxAge);
    if (!age) return service_.malformed(client, "kClientConnect: a re-announcement needs age");
    request.reannounced_age = std::chrono::seconds(*age);
  }
  std::optional<ConnectOutcome> outcome = clients_.connect(request);
  if (!outcome) {
    return service_.malformed(
        client, "kClientConnect: session " + std::to_string(*session) + " is counted already");
  }
  if (!outcome->counted) {
    auto now = std::chrono::steady_clock::now();
    if (!last_full_warning_ || now - *last_full_warning_ >= std::chrono::minutes(1)) {
      last_full_warning_ = now;
      log::warn("client counters full (", clients_.stats().tracked,
                " clients tracked): new clients are admitted uncounted (", request.ip, " on ",
                request.listener, "); at most one such line a minute");
    }
  }
  if (outcome->verdict != ClientVerdict::kOk) {
    log::debug("client ", request.ip, " on ", request.listener, ": ",
               verdict_text(outcome->verdict), " (", outcome->connections, " connections, ",
               outcome->rate, " in ", *rate_window, " s)");
  }
  if (request.reannounced_age) return;  // counted, never refused: nobody waits for an answer
  ipc::Frame reply(protocol::kClientVerdict, frame.request_id);
  reply.add("verdict", std::string(verdict_text(outcome->verdict)));
  reply.add("connections", std::to_string(outcome->connections));
  reply.add("rate", std::to_string(outcome->rate));
  client.channel->send(std::move(reply));
  service_.served();
}

void Server::on_client_disconnect(helper::Client& client, const ipc::Frame& frame) {
  auto session = number_attr(frame, "session", UINT64_MAX);
  if (!session) return service_.malformed(client, "kClientDisconnect needs a session");
  // Unknown sessions are expected: refused ones, ones admitted while we were away.
  clients_.disconnect({client.id, *session});
}

void Server::on_client_gone(helper::Client& client) {
  size_t released = clients_.release_worker(client.id);
  if (released) {
    log::info("worker ", client.worker_pid, " gone: released its ", released,
              " client connection(s)");
  }
}

void Server::on_clients_sweep(evutil_socket_t, short, void* self) {
  static_cast<Server*>(self)->clients_.sweep();
}

}  // namespace sppd::dnsbl_cache
