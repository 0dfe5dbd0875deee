// FailureLimiter implementation (contract in limiter.h). A fixed window per key that opens
// with its first failure: simple, O(1) per check, and a key costs one counter, however
// large max_failures is.
#include "authd/limiter.h"

#include <algorithm>
#include <cctype>

namespace sppd::authd {
namespace {

std::string ip_key(std::string_view ip) { return "ip " + std::string(ip); }

// User names are compared case-insensitively: most checkpassword programs (vchkpw among
// them) fold case, so "Alice" and "alice" are one target for an attacker.
std::string user_key(std::string_view user) {
  std::string key = "user ";
  key.reserve(key.size() + user.size());
  for (char c : user) key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return key;
}

}  // namespace

void FailureLimiter::set_limits(Limits limits) {
  limits_ = limits;
  while (entries_.size() > limits_.max_keys) erase(order_.front());
}

void FailureLimiter::expire(int64_t now) {
  while (!order_.empty()) {
    const Entry& oldest = entries_.at(order_.front());
    if (now - oldest.window_start < limits_.window) break;
    erase(order_.front());
  }
}

void FailureLimiter::erase(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  order_.erase(it->second.order);  // destroys the list's copy of key, so erase the map last
  entries_.erase(it);
}

FailureLimiter::Entry* FailureLimiter::find(const std::string& key, int64_t now) {
  expire(now);
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

void FailureLimiter::count(const std::string& key, int64_t now) {
  if (Entry* entry = find(key, now)) {
    ++entry->failures;
    return;
  }
  if (limits_.max_keys == 0) return;
  while (entries_.size() >= limits_.max_keys) erase(order_.front());
  order_.push_back(key);
  Entry entry;
  entry.failures = 1;
  entry.window_start = now;
  entry.order = std::prev(order_.end());
  entries_.emplace(key, entry);
}

std::optional<std::string> FailureLimiter::blocked(std::string_view ip, std::string_view user,
                                                   int64_t now) {
  for (const std::string& key : {ip_key(ip), user_key(user)}) {
    const Entry* entry = find(key, now);
    if (entry && entry->failures >= limits_.max_failures) {
      bool is_ip = key.compare(0, 3, "ip ") == 0;
      return std::to_string(entry->failures) + " failures " + (is_ip ? "from " : "for user ") +
             (is_ip ? std::string(ip) : std::string(user)) + " in the last " +
             std::to_string(std::max<int64_t>(now - entry->window_start, 0)) + " s";
    }
  }
  return std::nullopt;
}

void FailureLimiter::record_failure(std::string_view ip, std::string_view user, int64_t now) {
  count(ip_key(ip), now);
  count(user_key(user), now);
}

void FailureLimiter::record_success(std::string_view user) { erase(user_key(user)); }

}  // namespace sppd::authd
