// Owners for what c-ares's parsers allocate (a hostent, an ares_*_reply list), so every
// answer parser in dnsbl-cache frees it on every path.
#pragma once

#include <ares.h>
#include <netdb.h>

#include <memory>

namespace sppd::dnsbl_cache {

struct HostentFree {
  void operator()(hostent* h) const { ares_free_hostent(h); }
};
struct AresDataFree {
  void operator()(void* data) const { ares_free_data(data); }
};

using HostentPtr = std::unique_ptr<hostent, HostentFree>;
using AresDataPtr = std::unique_ptr<void, AresDataFree>;

}  // namespace sppd::dnsbl_cache
