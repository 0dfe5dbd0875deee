// DnsblLookups: the host's one DNSBL cache, keyed (client IP, zone, type); one DNS query per
// key however many workers ask while it is out. Every verdict it caches is also published in
// the shared-memory DNSBL table (common/dnsbl_table.h), which workers read without asking.
// Runs in sppd-dnsbl-cache, unprivileged (made before privileges are dropped: the table is
// created then); DNS failures and timeouts are "error" answers, never cached nor published, so
// the next connection asks again. Without a table (it could not be made) it works as before.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/dnsbl_table.h"
#include "common/fd.h"
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

  // now: the clock the cache runs on (tests pass a fake one); table_slots: the shared
  // table's size (0: no table).
  explicit DnsblLookups(Resolver& resolver, std::function<Clock::time_point()> now = Clock::now,
                        size_t capacity = kCapacity,
                        uint32_t table_slots = dnsbl_table_layout::kDefaultSlots);

  // Looks address up in zone (as normalize_zone returns it); done runs once, possibly before
  // lookup() returns.
  void lookup(const IpAddress& address, const std::string& zone, DnsblType type, Done done);
  const LookupCounters& counters() const { return counters_; }
  size_t cache_size() const { return cache_.size(); }

  // A read-only descriptor of the shared table for a reader (kDnsblTable), or an empty one
  // when there is no table.
  UniqueFd table_descriptor() const;
  // The table's slot count; 0 without a table.
  uint32_t table_slots() const { return table_ ? table_->slot_count() : 0; }
  // Workers' reports (kDnsblShmHits): verdicts they found in the table.
  void count_shm_hits(uint64_t count) { shm_hits_ += count; }
  // Requests answered from the table since start (the operators' hits_shm).
  uint64_t shm_hits() const { return shm_hits_; }

 private:
  void finish(const DnsblKey& key, int status, const DnsblAnswer& answer);
  // Writes a cached verdict into the shared table, to expire with its cache entry.
  void publish(const DnsblKey& key, const DnsblAnswer& answer, Clock::time_point expires);
  // Logs a zone's error at most every 10 minutes: errors are not cached, so a DNSBL that is
  // down or refuses us would otherwise write a line per connection.
  void warn(const std::string& zone, const std::string& why);

  Resolver& resolver_;
  std::function<Clock::time_point()> now_;
  TtlCache<DnsblKey, DnsblAnswer, DnsblKeyHash> cache_;
  std::unordered_map<DnsblKey, std::vector<Done>, DnsblKeyHash> waiting_;  // queries out
  LookupCounters counters_;
  std::unordered_map<std::string, Clock::time_point> last_warning_;  // by zone
  // The shared table every cached verdict is written into; null if it could not be made.
  std::unique_ptr<DnsblTableWriter> table_;
  uint64_t shm_hits_ = 0;
};

}  // namespace sppd::dnsbl_cache
