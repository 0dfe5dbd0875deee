// DNSBL answers (contract in dnsbl_answer.h). Everything here reads data a DNS server chose:
// text is cut and made printable before it can reach a worker's SMTP reply, the number of
// addresses is bounded, and anything c-ares cannot parse is an error, never a listing.
#include "dnsbl-cache/dnsbl_answer.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>

#include "common/log.h"
#include "dnsbl-cache/ares_results.h"
#include "dnsbl-cache/dns_message.h"
#include "dnsbl-cache/ptr_lookups.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr size_t kMaxLabel = 63;

// 127.255.255.0/24: what Spamhaus and others answer to queries from public resolvers.
bool is_refusal(const unsigned char* ipv4) {
  return ipv4[0] == 127 && ipv4[1] == 255 && ipv4[2] == 255;
}

DnsblAnswer error(std::string why) {
  DnsblAnswer answer;
  answer.error = std::move(why);
  return answer;
}

DnsblAnswer clear(std::chrono::seconds ttl) {
  DnsblAnswer answer;
  answer.status = DnsblAnswer::Status::kClear;
  answer.ttl = ttl;
  return answer;
}

// ttl: for the records; negative: if there are none of the type asked (a CNAME alone).
DnsblAnswer txt_answer(const unsigned char* message, int length, std::chrono::seconds ttl,
                       std::chrono::seconds negative) {
  ares_txt_ext* parsed = nullptr;
  int status = ares_parse_txt_reply_ext(message, length, &parsed);
  AresDataPtr owner(parsed);
  if (status == ARES_ENODATA) return clear(negative);
  if (status != ARES_SUCCESS) return error(log::concat("bad TXT answer: ", ares_strerror(status)));
  std::vector<std::string_view> strings;
  for (const ares_txt_ext* chunk = parsed; chunk; chunk = chunk->next) {
    strings.emplace_back(reinterpret_cast<const char*>(chunk->txt), chunk->length);
  }
  DnsblAnswer answer = clear(ttl);
  answer.text = rblsmtpd_text(strings);
  if (!answer.text.empty()) answer.status = DnsblAnswer::Status::kListed;
  return answer;
}

DnsblAnswer a_answer(const unsigned char* message, int length, std::chrono::seconds ttl,
                     std::chrono::seconds negative) {
  hostent* parsed = nullptr;
  int status = ares_parse_a_reply(message, length, &parsed, nullptr, nullptr);
  HostentPtr host(parsed);
  if (status == ARES_ENODATA) return clear(negative);
  if (status != ARES_SUCCESS || !host || host->h_addrtype != AF_INET || host->h_length != 4) {
    return error(log::concat("bad A answer: ", ares_strerror(status)));
  }
  DnsblAnswer answer = clear(ttl);
  for (char** entry = host->h_addr_list; entry && *entry; ++entry) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(*entry);
    if (is_refusal(bytes)) {
      return error(log::concat("answered 127.255.255.", static_cast<int>(bytes[3]),
                               ": it refuses queries from our resolver (a public one? use a "
                               "recursive resolver of your own)"));
    }
    if (answer.addresses.size() < kMaxDnsblAddresses) {
      answer.addresses.push_back(
          log::concat(static_cast<int>(bytes[0]), '.', static_cast<int>(bytes[1]), '.',
                      static_cast<int>(bytes[2]), '.', static_cast<int>(bytes[3])));
    }
  }
  if (!answer.addresses.empty()) answer.status = DnsblAnswer::Status::kListed;
  return answer;
}

}  // namespace

const char* status_text(DnsblAnswer::Status status) {
  switch (status) {
    case DnsblAnswer::Status::kListed:
      return "listed";
    case DnsblAnswer::Status::kClear:
      return "clear";
    case DnsblAnswer::Status::kError:
      return "error";
  }
  return "error";
}

const char* type_text(DnsblType type) { return type == DnsblType::kTxt ? "txt" : "a"; }

std::optional<DnsblType> parse_dnsbl_type(std::string_view text) {
  if (text == "txt") return DnsblType::kTxt;
  if (text == "a") return DnsblType::kA;
  return std::nullopt;
}

std::optional<std::string> normalize_zone(std::string_view zone) {
  std::optional<std::string> name = normalize_host_name(std::string(zone));
  if (!name) return std::nullopt;
  size_t start = 0;
  while (start <= name->size()) {
    size_t dot = std::min(name->find('.', start), name->size());
    if (dot - start > kMaxLabel) return std::nullopt;
    start = dot + 1;
  }
  return name;
}

std::string rblsmtpd_text(const std::vector<std::string_view>& strings) {
  std::string text;
  for (std::string_view piece : strings) {
    for (char c : piece) {
      if (text.size() == kMaxDnsblText) return text;
      auto byte = static_cast<unsigned char>(c);
      text.push_back(byte < 32 || byte > 126 ? '?' : c);
    }
  }
  return text;
}

CacheLifetimes cache_lifetimes(int type, const unsigned char* answer, int length) {
  AnswerTtl ttl;
  bool have_ttl = answer && answer_ttl(answer, length, type, &ttl);
  auto clamped = [](std::optional<uint32_t> seconds, std::chrono::seconds fallback) {
    if (!seconds) return fallback;
    return std::clamp(std::chrono::seconds(*seconds), kMinDnsblTtl, kMaxDnsblTtl);
  };
  return {clamped(have_ttl ? ttl.records : std::nullopt, kMinDnsblTtl),
          clamped(have_ttl ? ttl.negative : std::nullopt, kDefaultNegativeDnsblTtl)};
}

DnsblAnswer interpret_dnsbl_answer(DnsblType type, int status, const unsigned char* answer,
                                   int length) {
  CacheLifetimes ttl = cache_lifetimes(type == DnsblType::kTxt ? ns_t_txt : ns_t_a, answer, length);
  if (status == ARES_ENOTFOUND || status == ARES_ENODATA) return clear(ttl.negative);
  if (status != ARES_SUCCESS || !answer) return error(ares_strerror(status));
  return type == DnsblType::kTxt ? txt_answer(answer, length, ttl.positive, ttl.negative)
                                 : a_answer(answer, length, ttl.positive, ttl.negative);
}

}  // namespace sppd::dnsbl_cache
