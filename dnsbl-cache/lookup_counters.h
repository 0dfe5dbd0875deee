// LookupCounters: what dnsbl-cache tells operators about one kind of lookup (DNSBL, PTR):
// plain numbers since start, logged every 5 minutes and on SIGHUP (server.cpp), kept in a
// struct of their own so a status query can read them as they are. Pure data.
#pragma once

#include <cstdint>
#include <string>

#include "common/log.h"

namespace sppd::dnsbl_cache {

struct LookupCounters {
  uint64_t queries = 0;    // DNS queries sent
  uint64_t hits = 0;       // requests answered from the cache
  uint64_t misses = 0;     // requests not in the cache (each sent a query or joined one)
  uint64_t coalesced = 0;  // of the misses, those that joined a query already on its way
  uint64_t errors = 0;     // queries that failed (SERVFAIL, refused, 127.255.255.x, junk)
  uint64_t timeouts = 0;   // queries without an answer in time (not counted as errors)

  bool operator==(const LookupCounters&) const = default;
};

// "queries=3 hits=10 misses=4 coalesced=1 errors=0 timeouts=0", for one log line.
inline std::string describe(const LookupCounters& c) {
  return log::concat("queries=", c.queries, " hits=", c.hits, " misses=", c.misses,
                     " coalesced=", c.coalesced, " errors=", c.errors, " timeouts=", c.timeouts);
}

}  // namespace sppd::dnsbl_cache
