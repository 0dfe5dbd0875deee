// TtlCache: the one bounded cache of dnsbl-cache (PTR names and DNSBL verdicts alike). Each
// entry lives for the TTL it was stored with; when the cache is full the least recently used
// entry goes. Pure (time is passed in, so tests use a fake clock); not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <unordered_map>

namespace sppd::dnsbl_cache {

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class TtlCache {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TtlCache(size_t capacity) : capacity_(capacity) {}

  // The unexpired value for key, or nullptr. Counts as a use. The pointer is valid until the
  // next store().
  const Value* find(const Key& key, Clock::time_point now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    if (now >= it->second.expires) {
      erase(it);
      return nullptr;
    }
    uses_.splice(uses_.begin(), uses_, it->second.use);
    return &it->second.value;
  }

  // Keeps value for ttl from now, replacing an older value; a ttl <= 0 keeps nothing.
  void store(const Key& key, Value value, std::chrono::seconds ttl, Clock::time_point now) {
    if (ttl.count() <= 0 || capacity_ == 0) return;
    auto old = entries_.find(key);
    if (old != entries_.end()) erase(old);
    while (entries_.size() >= capacity_) erase(entries_.find(*uses_.back()));
    auto it = entries_.try_emplace(key, Entry{std::move(value), now + ttl, {}}).first;
    // The list points at the key inside the map node: node addresses survive rehashing.
    uses_.push_front(&it->first);
    it->second.use = uses_.begin();
  }

  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    Value value;
    Clock::time_point expires;
    typename std::list<const Key*>::iterator use;  // position in uses_
  };
  using Map = std::unordered_map<Key, Entry, Hash>;

  void erase(typename Map::iterator it) {
    uses_.erase(it->second.use);
    entries_.erase(it);
  }

  size_t capacity_;
  Map entries_;
  std::list<const Key*> uses_;  // most recently used first
};

}  // namespace sppd::dnsbl_cache
