// PTR lookups for workers (TCPREMOTEHOST): the cache first, then one DNS query per IP no
// matter how many workers ask at once (waiters are coalesced), then the answer parsed and
// checked. A name that is not a plain host name (letters, digits, '-', '_', '.') is treated
// as no name at all: it would end up in the environment and the Received line.
// Runs in sppd-dnsbl-cache, unprivileged; DNS failures become status "error".
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dnsbl-cache/lookup_counters.h"
#include "dnsbl-cache/resolver.h"
#include "dnsbl-cache/reverse_name.h"
#include "dnsbl-cache/ttl_cache.h"

namespace sppd::dnsbl_cache {

struct PtrAnswer {
  enum class Status { kOk, kNone, kError };
  Status status = Status::kError;
  std::string name;             // lower-case, no trailing dot; only with kOk
  std::chrono::seconds ttl{0};  // how long it may be cached; 0 = not at all
};

// The wire value of a status: "ok", "none" or "error" (protocol.h kDnsPtrResult).
const char* status_text(PtrAnswer::Status status);

// Lower-cases name and drops a trailing dot; nullopt if it is not a usable host name.
std::optional<std::string> normalize_host_name(const std::string& name);

// Turns c-ares's answer to a PTR query for address into a PtrAnswer (with a cache TTL).
PtrAnswer interpret_ptr_answer(int status, const unsigned char* answer, int length,
                               const IpAddress& address);

class PtrLookups {
 public:
  using Done = std::function<void(const PtrAnswer& answer)>;
  explicit PtrLookups(Resolver& resolver) : resolver_(resolver) {}

  // Finds the name of address; done runs once, possibly before lookup() returns.
  void lookup(const IpAddress& address, Done done);
  const LookupCounters& counters() const { return counters_; }
  size_t cache_size() const { return cache_.size(); }

 private:
  void finish(const std::string& ip, int status, const PtrAnswer& answer);

  Resolver& resolver_;
  TtlCache<std::string, PtrAnswer> cache_{10000};  // by canonical IP text
  LookupCounters counters_;
  std::map<std::string, std::vector<Done>> waiting_;  // ip -> callers of the query in flight
};

}  // namespace sppd::dnsbl_cache
