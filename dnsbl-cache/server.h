// The channels of sppd-dnsbl-cache: the control channel to the master (fd 3), which brings
// one new channel per worker (kNewClient), and those worker channels, on which kDnsPtr
// questions get kDnsPtrResult answers (protocol.h).
// Error policy: a worker that sends a malformed frame or a bad IP loses its channel (it is
// buggy or compromised); a malformed kNewClient from the master is fatal; the master closing
// the control channel ends the process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/channel.h"
#include "common/event.h"
#include "dnsbl-cache/ptr_lookups.h"

namespace sppd::dnsbl_cache {

class Server {
 public:
  // control: the master's channel (fd 3); on_master_gone runs when it closes.
  Server(event_base* base, UniqueFd control, PtrLookups& lookups,
         std::function<void()> on_master_gone);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

 private:
  struct Worker {
    pid_t pid = 0;
    std::unique_ptr<ipc::Channel> channel;
  };

  void on_control_frame(ipc::Frame&& frame);
  void on_worker_frame(uint64_t id, ipc::Frame&& frame);
  void answer(uint64_t id, uint32_t request_id, const PtrAnswer& answer);
  // Closes a worker's channel now and frees it from the loop (never inside Channel code).
  void drop_worker(uint64_t id, const std::string& why);
  static void on_sweep(evutil_socket_t, short, void* self);

  event_base* base_;
  PtrLookups& lookups_;
  std::function<void()> on_master_gone_;
  std::unique_ptr<ipc::Channel> control_;
  std::map<uint64_t, Worker> workers_;
  uint64_t next_worker_id_ = 1;
  EventPtr sweep_;
  bool served_ = false;
};

}  // namespace sppd::dnsbl_cache
