// HelperPool implementation (see helper_pool.h).
#include "smtpd/helper_pool.h"

namespace sppd::smtpd {

HelperPool::HelperPool(event_base* base, std::string service)
    : base_(base), service_(std::move(service)) {}

void HelperPool::attach(int helper_pid, UniqueFd fd) {
  // Links of processes that died have no pending requests left (their callbacks already
  // heard "gone"); dropping them here keeps the table as small as the pool.
  for (auto it = links_.begin(); it != links_.end();) {
    it = it->second->available() ? std::next(it) : links_.erase(it);
  }
  auto& link = links_[helper_pid];
  if (!link)
    link = std::make_unique<HelperLink>(base_, service_ + "[" + std::to_string(helper_pid) + "]");
  link->attach(std::move(fd));
}

std::optional<HelperPool::Ticket> HelperPool::request(ipc::Frame&& frame,
                                                      HelperLink::Callback callback) {
  HelperLink* best = nullptr;
  int best_pid = 0;
  for (auto& [pid, link] : links_) {
    if (link->available() && (!best || link->pending() < best->pending())) {
      best = link.get();
      best_pid = pid;
    }
  }
  if (!best) return std::nullopt;
  auto id = best->request(std::move(frame), std::move(callback));
  if (!id) return std::nullopt;
  return Ticket{best_pid, *id};
}

bool HelperPool::send(const Ticket& ticket, ipc::Frame&& frame) {
  auto it = links_.find(ticket.helper_pid);
  return it != links_.end() && it->second->send(ticket.request_id, std::move(frame));
}

void HelperPool::cancel(const Ticket& ticket) {
  auto it = links_.find(ticket.helper_pid);
  if (it != links_.end()) it->second->cancel(ticket.request_id);
}

}  // namespace sppd::smtpd
