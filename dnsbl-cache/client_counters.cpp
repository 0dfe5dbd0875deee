// ClientCounters implementation (contract in client_counters.h). Every operation is a few
// map look-ups; the only scan of the whole table is sweep(), which the server runs once a
// minute and a full table at most once a second.
#include "dnsbl-cache/client_counters.h"

#include <algorithm>

namespace sppd::dnsbl_cache {

std::string_view verdict_text(ClientVerdict verdict) {
  switch (verdict) {
    case ClientVerdict::kOk:
      return "ok";
    case ClientVerdict::kTooMany:
      return "too_many";
    case ClientVerdict::kTooFast:
      return "too_fast";
  }
  return "ok";
}

ClientCounters::ClientCounters(size_t max_tracked, Clock clock)
    : max_tracked_(max_tracked), clock_(std::move(clock)) {}

void ClientCounters::forget_old_times(Entry& entry, TimePoint now) const {
  while (!entry.admitted.empty() && entry.admitted.front() <= now - entry.window) {
    entry.admitted.pop_front();
  }
}

std::optional<ClientCounters::Entries::iterator> ClientCounters::entry_for(
    std::pair<std::string, std::string> key, TimePoint now) {
  auto it = entries_.find(key);
  if (it != entries_.end()) return it;
  if (entries_.size() >= max_tracked_ &&
      (!last_full_sweep_ || now - *last_full_sweep_ >= std::chrono::seconds(1))) {
    last_full_sweep_ = now;
    sweep();
  }
  if (entries_.size() >= max_tracked_) return std::nullopt;
  return entries_.emplace(std::move(key), Entry{}).first;
}

std::optional<ConnectOutcome> ClientCounters::connect(const ClientConnect& request) {
  if (connections_.count(request.id)) return std::nullopt;
  const TimePoint now = clock_();
  auto found = entry_for({request.listener, request.ip}, now);
  if (!found) {
    ++totals_.uncounted;
    return ConnectOutcome{ClientVerdict::kOk, 0, 0, false};
  }
  Entry& entry = (*found)->second;
  entry.window = request.limits.rate_window;
  forget_old_times(entry, now);
  const ClientLimits& limits = request.limits;
  ConnectOutcome outcome;
  outcome.connections = entry.connections + 1;
  outcome.rate = limits.max_rate ? entry.admitted.size() + 1 : 0;
  if (!request.reannounced_age) {
    if (limits.max_connections && entry.connections >= limits.max_connections) {
      ++totals_.refused_concurrency;
      outcome.verdict = ClientVerdict::kTooMany;
    } else if (limits.max_rate && entry.admitted.size() >= limits.max_rate) {
      ++totals_.refused_rate;
      outcome.verdict = ClientVerdict::kTooFast;
    }
    if (outcome.verdict != ClientVerdict::kOk) {
      // A new entry is never refused, so nothing is left behind here.
      return outcome;
    }
  }
  ++entry.connections;
  connections_.emplace(request.id, *found);
  if (limits.max_rate) {
    // A re-announced connection keeps its place in the window; one older than the window
    // no longer counts towards the rate.
    TimePoint when = now - request.reannounced_age.value_or(std::chrono::seconds(0));
    if (when > now - entry.window) {
      entry.admitted.insert(std::upper_bound(entry.admitted.begin(), entry.admitted.end(), when),
                            when);
    } else {
      outcome.rate = entry.admitted.size();
    }
  }
  return outcome;
}

void ClientCounters::release(Entries::iterator entry, TimePoint now) {
  Entry& counts = entry->second;
  --counts.connections;
  if (counts.connections > 0) return;
  forget_old_times(counts, now);
  if (counts.admitted.empty()) entries_.erase(entry);
}

bool ClientCounters::disconnect(ConnectionId id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return false;
  auto entry = it->second;
  connections_.erase(it);
  release(entry, clock_());
  return true;
}

size_t ClientCounters::release_worker(uint64_t worker) {
  const TimePoint now = clock_();
  size_t released = 0;
  auto it = connections_.lower_bound(ConnectionId{worker, 0});
  while (it != connections_.end() && it->first.worker == worker) {
    auto entry = it->second;
    it = connections_.erase(it);
    release(entry, now);
    ++released;
  }
  return released;
}

size_t ClientCounters::sweep() {
  const TimePoint now = clock_();
  size_t dropped = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    forget_old_times(it->second, now);
    if (it->second.connections == 0 && it->second.admitted.empty()) {
      it = entries_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

ClientStats ClientCounters::stats() const {
  ClientStats stats = totals_;
  stats.tracked = entries_.size();
  stats.connections = connections_.size();
  return stats;
}

}  // namespace sppd::dnsbl_cache
