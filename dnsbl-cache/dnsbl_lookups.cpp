// The DNSBL cache and its in-flight table (contract in dnsbl_lookups.h). Waiters are answered
// after their entry left the table, so a waiter that asks again starts a fresh lookup.
#include "dnsbl-cache/dnsbl_lookups.h"

#include <arpa/nameser.h>

#include "common/log.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr size_t kMaxNameLength = 253;  // RFC 1035 §2.3.4, without the trailing dot
constexpr std::chrono::minutes kWarningInterval{10};
// Zones come from workers; a buggy one must not grow the warning table without end.
constexpr size_t kMaxWarnedZones = 1000;

}  // namespace

size_t DnsblKeyHash::operator()(const DnsblKey& key) const {
  size_t hash = std::hash<std::string>()(key.ip);
  hash = hash * 31 + std::hash<std::string>()(key.zone);
  return hash * 31 + static_cast<size_t>(key.type);
}

DnsblLookups::DnsblLookups(Resolver& resolver, std::function<Clock::time_point()> now,
                           size_t capacity, uint32_t table_slots)
    : resolver_(resolver), now_(std::move(now)), cache_(capacity) {
  if (table_slots == 0) return;
  try {
    table_ = std::make_unique<DnsblTableWriter>(table_slots);
  } catch (const DnsblTableError& e) {
    // The table only saves round trips: without it every verdict goes over the channels.
    log::warn(e.what(), "; workers ask for every DNSBL verdict over their channel");
  }
}

UniqueFd DnsblLookups::table_descriptor() const {
  if (!table_) return UniqueFd();
  try {
    return table_->read_only_descriptor();
  } catch (const DnsblTableError& e) {
    log::warn(e.what());
    return UniqueFd();
  }
}

void DnsblLookups::lookup(const IpAddress& address, const std::string& zone, DnsblType type,
                          Done done) {
  IpAddress ip = unmapped(address);
  DnsblKey key{ip.text, zone, type};
  if (const DnsblAnswer* cached = cache_.find(key, now_())) {
    ++counters_.hits;
    done(*cached, true);
    return;
  }
  ++counters_.misses;
  auto [it, first] = waiting_.try_emplace(key);
  it->second.push_back(std::move(done));
  if (!first) {
    ++counters_.coalesced;
    return;
  }
  std::string name = dnsbl_name(ip, zone);
  if (name.size() > kMaxNameLength) {
    DnsblAnswer too_long;
    too_long.error = "the zone is too long for a query about " + ip.text;
    return finish(key, ARES_EBADNAME, too_long);
  }
  ++counters_.queries;
  resolver_.query(name, type == DnsblType::kTxt ? ns_t_txt : ns_t_a,
                  [this, key](int status, const unsigned char* answer, int length) {
                    finish(key, status, interpret_dnsbl_answer(key.type, status, answer, length));
                  });
}

void DnsblLookups::finish(const DnsblKey& key, int status, const DnsblAnswer& answer) {
  if (status == ARES_ETIMEOUT) {
    ++counters_.timeouts;
  } else if (answer.status == DnsblAnswer::Status::kError) {
    ++counters_.errors;
  } else if (answer.ttl.count() > 0) {
    Clock::time_point now = now_();
    cache_.store(key, answer, answer.ttl, now);
    publish(key, answer, now + answer.ttl);
  }
  log::debug("DNSBL ", key.ip, " ", key.zone, " ", type_text(key.type), ": ",
             status_text(answer.status), " ", answer.error);
  if (answer.status == DnsblAnswer::Status::kError) warn(key.zone, answer.error);
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  std::vector<Done> callers = std::move(it->second);
  waiting_.erase(it);
  for (Done& done : callers) done(answer, false);
}

void DnsblLookups::publish(const DnsblKey& key, const DnsblAnswer& answer,
                           Clock::time_point expires) {
  if (!table_) return;
  auto table_key = DnsblTableKey::make(
      key.ip, key.zone,
      key.type == DnsblType::kTxt ? DnsblTableKey::Type::kTxt : DnsblTableKey::Type::kA);
  if (!table_key) return;
  DnsblTableVerdict verdict;
  verdict.listed = answer.status == DnsblAnswer::Status::kListed;
  // What kDnsblResult would carry: the text for txt, the addresses for a, only if listed.
  if (verdict.listed && key.type == DnsblType::kTxt) verdict.text = answer.text;
  if (verdict.listed && key.type == DnsblType::kA) verdict.addresses = answer.addresses;
  // One that does not fit (more than 8 addresses) stays out: workers ask the socket for it.
  table_->store(*table_key, verdict, expires);
}

void DnsblLookups::warn(const std::string& zone, const std::string& why) {
  Clock::time_point now = now_();
  auto it = last_warning_.find(zone);
  if (it != last_warning_.end() && now - it->second < kWarningInterval) return;
  if (it == last_warning_.end() && last_warning_.size() >= kMaxWarnedZones) last_warning_.clear();
  last_warning_[zone] = now;
  log::warn("DNSBL ", zone, ": ", why, " (answered as an error; the next 10 minutes of errors",
            " for this zone are only counted)");
}

}  // namespace sppd::dnsbl_cache
