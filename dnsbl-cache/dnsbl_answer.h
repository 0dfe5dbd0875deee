// DNSBL answers: what a TXT or A answer means by rblsmtpd's rules (qmail-protocols.md §3;
// 127.255.255.0/24 = a public resolver refused = error, §3.3) and how long it may be cached
// (answer TTL or RFC 2308 SOA TTL, clamped). Pure: errors are described, not logged.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sppd::dnsbl_cache {

enum class DnsblType { kTxt, kA };

struct DnsblAnswer {
  enum class Status { kListed, kClear, kError };
  Status status = Status::kError;
  std::string text;                    // kTxt: the sanitised TXT text (non-empty iff listed)
  std::vector<std::string> addresses;  // kA: the A records (dotted quads) if listed
  std::chrono::seconds ttl{0};         // how long it may be cached; 0 for errors
  std::string error;                   // kError: why, for the log
};

// Cache lifetimes: a listing or a clear answer stays at least a minute (a zero TTL would
// send every connection to the DNSBL) and at most an hour (a delisting takes effect);
// a negative answer without an SOA stays 5 minutes.
constexpr std::chrono::seconds kMinDnsblTtl{60};
constexpr std::chrono::seconds kMaxDnsblTtl{3600};
constexpr std::chrono::seconds kDefaultNegativeDnsblTtl{300};
// rblsmtpd cuts the text to 200 bytes; a reply frame carries at most this many addresses.
constexpr size_t kMaxDnsblText = 200;
constexpr size_t kMaxDnsblAddresses = 32;

// The wire values (protocol.h kDnsblQuery / kDnsblResult).
const char* status_text(DnsblAnswer::Status status);
const char* type_text(DnsblType type);
// "txt" or "a"; nullopt for anything else.
std::optional<DnsblType> parse_dnsbl_type(std::string_view text);

// zone lower-cased without a trailing dot, if it is a plain domain name (labels of letters,
// digits, '-' and '_', each at most 63 bytes); nullopt otherwise.
std::optional<std::string> normalize_zone(std::string_view zone);

// rblsmtpd's text: the character-strings joined with nothing between them, bytes outside
// 32..126 as '?', cut to 200 bytes.
std::string rblsmtpd_text(const std::vector<std::string_view>& strings);

// How long a DNS answer (records of type, or none) may be cached: the records' smallest TTL,
// else kMinDnsblTtl; the negative TTL from the SOA (RFC 2308), else kDefaultNegativeDnsblTtl;
// both clamped to [kMinDnsblTtl, kMaxDnsblTtl]. Shared by the DNSBL and sender lookups.
struct CacheLifetimes {
  std::chrono::seconds positive;
  std::chrono::seconds negative;
};
CacheLifetimes cache_lifetimes(int type, const unsigned char* answer, int length);

// Turns c-ares's status and raw answer to a query of type into a DnsblAnswer.
DnsblAnswer interpret_dnsbl_answer(DnsblType type, int status, const unsigned char* answer,
                                   int length);

}  // namespace sppd::dnsbl_cache
