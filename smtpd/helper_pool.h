// HelperPool: a worker's channels to the processes of a pooled helper service
// (pluginrunner), one HelperLink per helper pid. New requests go to the least busy live
// process; a process that dies fails only its own requests, and the master's channel to
// its replacement joins the pool. Runs inside the sandboxed worker.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "smtpd/helper_link.h"

namespace sppd::smtpd {

class HelperPool {
 public:
  // A request in flight: which process has it, and its id there.
  struct Ticket {
    int helper_pid = 0;
    uint32_t request_id = 0;
  };

  HelperPool(event_base* base, std::string service);

  // Adopts the channel to one helper process (replacing an old one for the same pid).
  void attach(int helper_pid, UniqueFd fd);
  // Sends a request to the least busy live process; nullopt if none is available.
  std::optional<Ticket> request(ipc::Frame&& frame, HelperLink::Callback callback);
  // Sends a further frame of a request to the process that has it; false if it is gone.
  bool send(const Ticket& ticket, ipc::Frame&& frame);
  // Forgets a request; harmless if the process is gone.
  void cancel(const Ticket& ticket);

 private:
  event_base* base_;
  std::string service_;
  std::map<int, std::unique_ptr<HelperLink>> links_;
};

}  // namespace sppd::smtpd
