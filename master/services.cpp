// Process table and restart policy (contract in services.h). Pure bookkeeping; runs in the
// master (root) but touches no system state.
#include "master/services.h"

#include <algorithm>

namespace sppd::master {

Role role_of(std::string_view service) { return service == kSmtpd ? Role::kWorker : Role::kHelper; }

bool is_pool(std::string_view service) {
  return service == kPluginRunner || service == kQueueBridge;
}

void RestartPolicy::on_served() { next_delay_ = kFirstDelay; }

std::chrono::seconds RestartPolicy::on_death(bool served, Clock::time_point now) {
  if (served || !may_start(now)) return std::chrono::seconds(0);
  std::chrono::seconds delay = next_delay_;
  throttled_until_ = now + delay;
  next_delay_ = std::min(delay * 2, kMaxDelay);
  return delay;
}

Child& ProcessTable::add(Child child) {
  pid_t pid = child.pid;
  auto [it, inserted] = children_.insert_or_assign(pid, std::move(child));
  (void)inserted;
  return it->second;
}

Child* ProcessTable::find(pid_t pid) {
  auto it = children_.find(pid);
  return it == children_.end() ? nullptr : &it->second;
}

Child ProcessTable::remove(pid_t pid) {
  auto it = children_.find(pid);
  if (it == children_.end()) return Child{};
  Child child = std::move(it->second);
  children_.erase(it);
  return child;
}

std::vector<Child*> ProcessTable::with_role(Role role) {
  std::vector<Child*> out;
  for (auto& [pid, child] : children_) {
    if (role_of(child.service) == role) out.push_back(&child);
  }
  return out;
}

int ProcessTable::count_active(std::string_view service) const {
  return static_cast<int>(std::count_if(children_.begin(), children_.end(), [&](const auto& e) {
    return e.second.service == service && !e.second.retiring;
  }));
}

int ProcessTable::count_role(Role role) const {
  return static_cast<int>(std::count_if(children_.begin(), children_.end(), [&](const auto& e) {
    return role_of(e.second.service) == role;
  }));
}

}  // namespace sppd::master
