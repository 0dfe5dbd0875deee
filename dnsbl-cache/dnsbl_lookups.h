// DnsblLookups: the host's one DNSBL cache, keyed (client IP, zone, type); one DNS query per
// key however many workers ask while it is out. Runs in sppd-dnsbl-cache, unprivileged; DNS
// failures and timeouts are "error" answers, never cached, so the next connection asks again.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dnsbl-cache/dnsbl_answer.h"
#include "dnsbl-cache/lookup_counters.h"
#include "dnsbl-cache/resolver.h"
#include "dnsbl-cache/reverse_name.h"
#include "dnsbl-cache/ttl_cache.h"

namespace sppd::dnsbl_cache {

struct DnsblKey {
  std::string ip;    // canonical text, IPv4-mapped addresses reduced to IPv4
  std::string zone;  // normalize_zone()'d
  DnsblType type = DnsblType::kTxt;
  bool operator==(const DnsblKey&) const = default;
};

struct DnsblKeyHash {
  size_t operator()(const DnsblKey& key) const;
};

class DnsblLookups {
 public:
  using Clock = std::chrono::steady_clock;
  // cached: the answer came from the cache (no DNS query was needed for this request).
  using Done = std::function<void(const DnsblAnswer& answer, bool cached)>;
  // Entries kept at most (at a few hundred bytes each, tens of MB at worst).
  static constexpr size_t kCapacity = 100000;

  // now: the clock the cache runs on (tests pass a fake one).
  explicit DnsblLookups(Resolver& resolver, std::function<Clock::time_point()> now = Clock::now,
                        size_t capacity = kCapacity);

  // Looks address up in zone (as normalize_zone returns it); done runs once, possibly before
  // lookup() returns.
  void lookup(const IpAddress& address, const std::string& zone, DnsblType type, Done done);
  const LookupCounters& counters() const { return counters_; }
  size_t cache_size() const { return cache_.size(); }

 private:
  void finish(const DnsblKey& key, int status, const DnsblAnswer& answer);
  // Logs a zone's error at most every 10 minutes: errors are not cached, so a DNSBL that is
  // down or refuses us would otherwise write a line per connection.
  void warn(const std::string& zone, const std::string& why);

  Resolver& resolver_;
  std::function<Clock::time_point()> now_;
  TtlCache<DnsblKey, DnsblAnswer, DnsblKeyHash> cache_;
  std::unordered_map<DnsblKey, std::vector<Done>, DnsblKeyHash> waiting_;  // queries out
  LookupCounters counters_;
  std::unordered_map<std::string, Clock::time_point> last_warning_;  // by zone
};

}  // namespace sppd::dnsbl_cache
