// HelperLink implementation (see helper_link.h). Runs inside the sandboxed worker: it only
// uses descriptors the master passed in.
#include "smtpd/helper_link.h"

#include "common/log.h"

namespace sppd::smtpd {

HelperLink::HelperLink(event_base* base, std::string service)
    : base_(base), service_(std::move(service)) {}

void HelperLink::attach(UniqueFd fd) {
  if (channel_) on_close("replaced by a new channel");
  channel_ = std::make_unique<ipc::Channel>(
      base_, std::move(fd), [this](ipc::Frame&& f) { on_frame(std::move(f)); },
      [this](const std::string& why) { on_close(why); });
}

std::optional<uint32_t> HelperLink::request(ipc::Frame&& frame, Callback callback) {
  if (!available()) return std::nullopt;
  uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  frame.request_id = id;
  if (!channel_->send(std::move(frame))) return std::nullopt;
  pending_[id] = std::move(callback);
  return id;
}

bool HelperLink::send(uint32_t request_id, ipc::Frame&& frame) {
  if (!available()) return false;
  frame.request_id = request_id;
  return channel_->send(std::move(frame));
}

bool HelperLink::notify(ipc::Frame&& frame) {
  if (!available()) return false;
  frame.request_id = 0;
  return channel_->send(std::move(frame));
}

void HelperLink::cancel(uint32_t request_id) { pending_.erase(request_id); }

void HelperLink::on_frame(ipc::Frame&& frame) {
  auto it = pending_.find(frame.request_id);
  if (it == pending_.end()) return;  // a late answer to a cancelled request
  // Copy: the callback may cancel itself or start new requests.
  Callback callback = it->second;
  callback(&frame);
}

void HelperLink::on_close(const std::string& why) {
  log::warn(service_, " channel closed: ", why);
  // Detach first: callbacks may try to use the link again and must see it unavailable.
  auto dead = std::move(channel_);
  if (dead) dead->close();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, callback] : pending) callback(nullptr);
  // Destroy the channel later, not inside its own callback.
  event_base_once(
      base_, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* p) { delete static_cast<ipc::Channel*>(p); }, dead.release(),
      nullptr);
}

}  // namespace sppd::smtpd
