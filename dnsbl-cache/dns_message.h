// What c-ares's old parsers do not tell: how long an answer may be cached. Walks the raw
// DNS message (RFC 1035 §4.1) and reports the smallest TTL of the answer records of a type
// and, for negative answers, the SOA-derived TTL (RFC 2308 §5). Pure; every offset is
// bounds-checked, a malformed message yields false.
#pragma once

#include <cstdint>
#include <optional>

namespace sppd::dnsbl_cache {

struct AnswerTtl {
  std::optional<uint32_t> records;   // min TTL of answer-section records of the asked type
  std::optional<uint32_t> negative;  // min(SOA TTL, SOA MINIMUM) from the authority section
};

// Reads the TTLs out of message; false if it is not a well-formed DNS message.
bool answer_ttl(const unsigned char* message, int length, int type, AnswerTtl* out);

}  // namespace sppd::dnsbl_cache
