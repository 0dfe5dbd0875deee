// PTR lookups for workers (TCPREMOTEHOST): the cache first, then one DNS query per IP no
// matter how many workers ask at once (waiters are coalesced), then the answer parsed and
// checked. A name that is not a plain host name (letters, digits, '-', '_', '.') is treated
// as no name at all: it would end up in the environment and the Received line.
// Runs in sppd-dnsbl-cache, unprivileged; DNS failures become status "error".
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dnsbl-cache/ptr_cache.h"
#include "dnsbl-cache/resolver.h"
#include "dnsbl-cache/reverse_name.h"

namespace sppd::dnsbl_cache {

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

 private:
  void finish(const std::string& ip, const PtrAnswer& answer);

  Resolver& resolver_;
  PtrCache cache_;
  std::map<std::string, std::vector<Done>> waiting_;  // ip -> callers of the query in flight
};

}  // namespace sppd::dnsbl_cache
