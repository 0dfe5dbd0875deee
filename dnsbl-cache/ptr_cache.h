// PTR answers and the bounded cache that keeps them for their DNS TTL, so a client that
// reconnects (or several workers asking for one IP) costs one lookup. Least recently used
// entries go first when the cache is full. Pure (time is passed in); not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>

namespace sppd::dnsbl_cache {

struct PtrAnswer {
  enum class Status { kOk, kNone, kError };
  Status status = Status::kError;
  std::string name;             // lower-case, no trailing dot; only with kOk
  std::chrono::seconds ttl{0};  // how long it may be cached; 0 = not at all
};

// The wire value of a status: "ok", "none" or "error" (protocol.h kDnsPtrResult).
const char* status_text(PtrAnswer::Status status);

class PtrCache {
 public:
  using Clock = std::chrono::steady_clock;
  explicit PtrCache(size_t capacity = 10000) : capacity_(capacity) {}

  // The unexpired answer for ip (canonical text), or nullptr. Counts as a use.
  const PtrAnswer* find(const std::string& ip, Clock::time_point now);
  // Keeps answer for answer.ttl (errors and zero TTLs are not kept).
  void store(const std::string& ip, const PtrAnswer& answer, Clock::time_point now);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    PtrAnswer answer;
    Clock::time_point expires;
    std::list<std::string>::iterator use;  // position in uses_
  };
  size_t capacity_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> uses_;  // most recently used first
};

}  // namespace sppd::dnsbl_cache
