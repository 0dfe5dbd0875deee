// ClientCounters: the per-client connection counters every worker shares (Postfix's anvil,
// tcpserver -c), kept by dnsbl-cache: per (listener, client IP) the live connections, each
// keyed by the worker's channel id and the worker's session id, and the times of the
// connections admitted within the rate window. Pure logic over an injectable clock (no I/O,
// no logging: server.cpp logs); memory is bounded: an entry with no connection and no
// admitted connection inside its window is dropped, and past max_tracked entries a new
// client is admitted without being counted (fail open: a full table never refuses mail).
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sppd::dnsbl_cache {

// One listener's limits for one client (the listener's settings, or tcprules' MAXCONNIP and
// MAXCONNRATE for that client).
struct ClientLimits {
  uint64_t max_connections = 0;  // concurrent connections; 0 = no limit
  uint64_t max_rate = 0;         // connections admitted per rate_window; 0 = no limit
  std::chrono::seconds rate_window{60};
};

enum class ClientVerdict { kOk, kTooMany, kTooFast };
// The protocol's name of a verdict: "ok", "too_many", "too_fast".
std::string_view verdict_text(ClientVerdict verdict);

// A connection: the worker's channel (helper::Client id, never reused) and its session id.
struct ConnectionId {
  uint64_t worker = 0;
  uint64_t session = 0;
  auto operator<=>(const ConnectionId&) const = default;
};

struct ClientConnect {
  ConnectionId id;
  std::string listener;
  std::string ip;  // canonical text: the same client must always give the same key
  ClientLimits limits;
  // Set when the worker re-announces a connection after dnsbl-cache restarted: it is counted
  // but never refused, and it connected this long ago (its place in the rate window).
  std::optional<std::chrono::seconds> reannounced_age;
};

struct ConnectOutcome {
  ClientVerdict verdict = ClientVerdict::kOk;
  uint64_t connections = 0;  // the client's concurrent connections, this one included
  uint64_t rate = 0;         // connections in the window, this one included (0: no rate limit)
  bool counted = true;       // false: admitted uncounted because the table is full
};

// For the status report and the counters log line.
struct ClientStats {
  uint64_t tracked = 0;      // (listener, IP) entries held now
  uint64_t connections = 0;  // live connections counted now
  uint64_t refused_concurrency = 0;
  uint64_t refused_rate = 0;
  uint64_t uncounted = 0;  // admitted without counting: the table was full
};

class ClientCounters {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Clock = std::function<TimePoint()>;
  // About 100 bytes per entry plus 8 per connection time kept: a few MB at most.
  static constexpr size_t kDefaultMaxTracked = 100000;

  explicit ClientCounters(size_t max_tracked = kDefaultMaxTracked,
                          Clock clock = std::chrono::steady_clock::now);

  // A client connected: counts it and returns the verdict, or refuses it (a refused
  // connection is not counted, and does not count towards the rate either). nullopt if that
  // connection is counted already (the worker broke the protocol).
  std::optional<ConnectOutcome> connect(const ClientConnect& request);
  // The connection ended; false if it was not counted (refused, uncounted, released).
  bool disconnect(ConnectionId id);
  // A worker's channel ended (it died or exited): releases every connection it had.
  // Returns how many.
  size_t release_worker(uint64_t worker);
  // Drops the entries with no connection and no admitted connection inside their window.
  // Returns how many. Call now and then (dnsbl-cache: every minute).
  size_t sweep();

  ClientStats stats() const;

 private:
  struct Entry {
    uint64_t connections = 0;
    std::deque<TimePoint> admitted;  // admission times inside the window, oldest first
    std::chrono::seconds window{60};
  };
  using Entries = std::map<std::pair<std::string, std::string>, Entry>;  // (listener, ip)

  void forget_old_times(Entry& entry, TimePoint now) const;
  // Ends one counted connection; drops its entry if nothing is left in it.
  void release(Entries::iterator entry, TimePoint now);
  // The entry for key, creating it if the table has room (after a sweep if needed).
  std::optional<Entries::iterator> entry_for(std::pair<std::string, std::string> key,
                                             TimePoint now);

  const size_t max_tracked_;
  const Clock clock_;
  Entries entries_;
  std::map<ConnectionId, Entries::iterator> connections_;
  std::optional<TimePoint> last_full_sweep_;  // a full table sweeps at most once a second
  ClientStats totals_;  // since start: only the refused_* and uncounted fields are used
};

}  // namespace sppd::dnsbl_cache
