// HelperLink: a worker's channel to one helper service (queue-bridge, dnsbl-cache), with
// request ids and per-request callbacks. The master replaces the channel whenever the
// helper restarts; when a channel ends, every pending callback hears "helper gone"
// (nullptr), so a session waiting on a dead helper answers 4xx instead of hanging.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/channel.h"

namespace sppd::smtpd {

class HelperLink {
 public:
  // Called for every frame carrying the request's id, and once with nullptr if the helper
  // goes away while the request is registered.
  using Callback = std::function<void(ipc::Frame* frame)>;

  HelperLink(event_base* base, std::string service);

  // Adopts a new channel from the master (the old one, if any, is dropped first).
  void attach(UniqueFd fd);
  bool available() const { return channel_ && channel_->open(); }

  // Sends a new request; the frame's request_id is assigned here. nullopt if the helper
  // is unavailable (the callback is then never called).
  std::optional<uint32_t> request(ipc::Frame&& frame, Callback callback);
  // Sends a further frame of an existing request. False if the helper is unavailable.
  bool send(uint32_t request_id, ipc::Frame&& frame);
  // Sends a frame that gets no answer (request id 0), e.g. kDnsblShmHits. False if the
  // helper is unavailable.
  bool notify(ipc::Frame&& frame);
  // Forgets a request: its callback is not called again.
  void cancel(uint32_t request_id);
  // Requests waiting for their answer (the pool sends new work to the least busy link).
  size_t pending() const { return pending_.size(); }

 private:
  void on_frame(ipc::Frame&& frame);
  void on_close(const std::string& why);

  event_base* base_;
  std::string service_;
  std::unique_ptr<ipc::Channel> channel_;
  uint32_t next_id_ = 1;
  std::map<uint32_t, Callback> pending_;
};

}  // namespace sppd::smtpd
