// Bounded TTL cache of PTR answers (contract in ptr_cache.h). Pure bookkeeping.
#include "dnsbl-cache/ptr_cache.h"

namespace sppd::dnsbl_cache {

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

const PtrAnswer* PtrCache::find(const std::string& ip, Clock::time_point now) {
  auto it = entries_.find(ip);
  if (it == entries_.end()) return nullptr;
  if (now >= it->second.expires) {
    uses_.erase(it->second.use);
    entries_.erase(it);
    return nullptr;
  }
  uses_.splice(uses_.begin(), uses_, it->second.use);
  return &it->second.answer;
}

void PtrCache::store(const std::string& ip, const PtrAnswer& answer, Clock::time_point now) {
  if (answer.status == PtrAnswer::Status::kError || answer.ttl.count() <= 0 || capacity_ == 0) {
    return;
  }
  auto it = entries_.find(ip);
  if (it != entries_.end()) {
    uses_.erase(it->second.use);
    entries_.erase(it);
  }
  while (entries_.size() >= capacity_) {
    entries_.erase(uses_.back());
    uses_.pop_back();
  }
  uses_.push_front(ip);
  entries_.emplace(ip, Entry{answer, now + answer.ttl, uses_.begin()});
}

}  // namespace sppd::dnsbl_cache
