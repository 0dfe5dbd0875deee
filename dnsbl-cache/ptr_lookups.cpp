// PTR lookups (contract in ptr_lookups.h). The answer comes from the network: it is parsed
// by c-ares, its name checked here, its TTL bounded, so hostile DNS data cannot reach a
// worker's environment in any shape but a plain host name.
#include "dnsbl-cache/ptr_lookups.h"

#include <arpa/nameser.h>
#include <netdb.h>

#include <algorithm>

#include "common/log.h"
#include "dnsbl-cache/ares_results.h"
#include "dnsbl-cache/dns_message.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr size_t kMaxNameLength = 253;
constexpr std::chrono::seconds kMaxPositiveTtl{3600};
constexpr std::chrono::seconds kMaxNegativeTtl{600};
// Negative answers without an SOA (RFC 2308 says: do not cache; a short time is kinder to
// the resolver and harmless).
constexpr std::chrono::seconds kDefaultNegativeTtl{60};

std::chrono::seconds bounded(std::optional<uint32_t> ttl, std::chrono::seconds fallback,
                             std::chrono::seconds max) {
  if (!ttl) return fallback;
  return std::min(std::chrono::seconds(*ttl), max);
}

}  // namespace

const char* status_text(PtrAnswer::Status status) {
  switch (status) {
    case PtrAnswer::Status::kOk:
      return "ok";
    case PtrAnswer::Status::kNone:
      return "none";
    case PtrAnswer::Status::kError:
      return "error";
  }
  return "error";
}

std::optional<std::string> normalize_host_name(const std::string& name) {
  std::string out = name;
  if (!out.empty() && out.back() == '.') out.pop_back();
  if (out.empty() || out.size() > kMaxNameLength || out.front() == '.') return std::nullopt;
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return std::nullopt;
  }
  if (out.find("..") != std::string::npos) return std::nullopt;
  return out;
}

PtrAnswer interpret_ptr_answer(int status, const unsigned char* answer, int length,
                               const IpAddress& address) {
  PtrAnswer result;
  AnswerTtl ttl;
  bool have_ttl = answer && answer_ttl(answer, length, ns_t_ptr, &ttl);
  auto negative = [&] {
    result.status = PtrAnswer::Status::kNone;
    result.ttl =
        bounded(have_ttl ? ttl.negative : std::nullopt, kDefaultNegativeTtl, kMaxNegativeTtl);
    return result;
  };
  if (status == ARES_ENOTFOUND || status == ARES_ENODATA) return negative();
  if (status != ARES_SUCCESS) {
    log::debug("PTR ", address.text, ": ", ares_strerror(status));
    return result;  // kError, not cached
  }
  hostent* parsed = nullptr;
  int parse_status = ares_parse_ptr_reply(answer, length, address.bytes.data(),
                                          static_cast<int>(address.size), address.family, &parsed);
  HostentPtr host(parsed);
  if (parse_status == ARES_ENODATA) return negative();
  if (parse_status != ARES_SUCCESS || !host || !host->h_name) {
    log::warn("PTR ", address.text, ": unusable answer: ", ares_strerror(parse_status));
    return result;
  }
  std::optional<std::string> name = normalize_host_name(host->h_name);
  if (!name) {
    log::warn("PTR ", address.text, ": ignoring a name that is not a host name");
    return negative();
  }
  result.status = PtrAnswer::Status::kOk;
  result.name = *name;
  result.ttl =
      bounded(have_ttl ? ttl.records : std::nullopt, std::chrono::seconds(0), kMaxPositiveTtl);
  return result;
}

void PtrLookups::lookup(const IpAddress& address, Done done) {
  if (const PtrAnswer* cached = cache_.find(address.text, std::chrono::steady_clock::now())) {
    ++counters_.hits;
    done(*cached);
    return;
  }
  ++counters_.misses;
  auto [it, first] = waiting_.try_emplace(address.text);
  it->second.push_back(std::move(done));
  if (!first) {
    ++counters_.coalesced;  // a query for this IP is already on its way
    return;
  }
  ++counters_.queries;
  resolver_.query(reverse_name(address), ns_t_ptr,
                  [this, address](int status, const unsigned char* answer, int length) {
                    finish(address.text, status,
                           interpret_ptr_answer(status, answer, length, address));
                  });
}

void PtrLookups::finish(const std::string& ip, int status, const PtrAnswer& answer) {
  if (status == ARES_ETIMEOUT) {
    ++counters_.timeouts;
  } else if (answer.status == PtrAnswer::Status::kError) {
    ++counters_.errors;
  } else {
    cache_.store(ip, answer, answer.ttl, std::chrono::steady_clock::now());
  }
  auto it = waiting_.find(ip);
  if (it == waiting_.end()) return;
  std::vector<Done> callers = std::move(it->second);
  waiting_.erase(it);
  for (Done& done : callers) done(answer);
}

}  // namespace sppd::dnsbl_cache
