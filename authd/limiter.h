// FailureLimiter: brute-force protection. Counts failed checks per client IP and per user
// name over a window; once either reaches the limit, authd answers "temp" without running
// checkpassword until the window that began with the first counted failure has passed.
// Pure bookkeeping (times are passed in, so tests use a fake clock); memory is bounded by
// evicting the oldest entries.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sppd::authd {

class FailureLimiter {
 public:
  struct Limits {
    int max_failures = 10;     // failures within the window that block a key
    int window = 600;          // seconds
    size_t max_keys = 100000;  // IPs and user names remembered at most
  };

  explicit FailureLimiter(Limits limits) : limits_(limits) {}

  // Applies new limits (reload); counts so far are kept.
  void set_limits(Limits limits);
  // If the IP or the user is blocked at time now (seconds, monotonic), which one and why,
  // e.g. "10 failures from 192.0.2.1 in the last 600 s"; else nullopt.
  std::optional<std::string> blocked(std::string_view ip, std::string_view user, int64_t now);
  // Counts one failed check against both the IP and the user.
  void record_failure(std::string_view ip, std::string_view user, int64_t now);
  // A successful check forgets the user's failures (the owner typed the password right at
  // last); the IP's count stays, or an attacker with one valid account could reset it.
  void record_success(std::string_view user);
  // Keys currently remembered (IPs plus user names).
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    int failures = 0;
    int64_t window_start = 0;
    std::list<std::string>::iterator order;
  };

  void expire(int64_t now);
  Entry* find(const std::string& key, int64_t now);
  void count(const std::string& key, int64_t now);
  void erase(const std::string& key);

  Limits limits_;
  std::unordered_map<std::string, Entry> entries_;
  // Keys by window_start, oldest first: the front is the first to expire or be evicted.
  std::list<std::string> order_;
};

}  // namespace sppd::authd
