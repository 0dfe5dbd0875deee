// Channels of sppd-dnsbl-cache (contract in server.h). Runs unprivileged (and chrooted when
// configured). Every frame is checked before use; a worker's frame carries only an IP, and
// an IP that inet_pton does not accept costs the worker its channel.
#include "dnsbl-cache/server.h"

#include <errno.h>

#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "common/protocol.h"

namespace sppd::dnsbl_cache {
namespace {

// Worker-supplied text in our logs: short and printable.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text.substr(0, 64)) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(byte < 0x20 || byte >= 0x7f ? '?' : c);
  }
  if (text.size() > 64) out += "...";
  return out + "'";
}

}  // namespace

Server::Server(event_base* base, UniqueFd control, PtrLookups& lookups,
               std::function<void()> on_master_gone)
    : base_(base), lookups_(lookups), on_master_gone_(std::move(on_master_gone)) {
  sweep_.reset(event_new(base_, -1, 0, on_sweep, this));
  control_ = std::make_unique<ipc::Channel>(
      base_, std::move(control), [this](ipc::Frame&& frame) { on_control_frame(std::move(frame)); },
      [this](const std::string& why) {
        log::info("control channel closed (", why, "): exiting");
        on_master_gone_();
      });
}

void Server::on_control_frame(ipc::Frame&& frame) {
  if (frame.type != protocol::kNewClient) {
    log::warn("ignoring a control frame of unknown type ", frame.type);
    return;
  }
  const std::string* pid_text = frame.get("worker_pid");
  char* end = nullptr;
  long pid = pid_text ? std::strtol(pid_text->c_str(), &end, 10) : 0;
  if (!frame.fd || !pid_text || pid_text->empty() || *end != '\0' || pid <= 0) {
    // The master is trusted: a broken frame from it means a bug, and a bug means stop.
    log::fatal("malformed kNewClient from the master (no descriptor or bad worker_pid)");
  }
  uint64_t id = next_worker_id_++;
  Worker& worker = workers_[id];
  worker.pid = static_cast<pid_t>(pid);
  worker.channel = std::make_unique<ipc::Channel>(
      base_, std::move(frame.fd),
      [this, id](ipc::Frame&& request) { on_worker_frame(id, std::move(request)); },
      [this, id](const std::string& why) { drop_worker(id, why); });
  log::debug("new channel from worker ", pid);
}

void Server::on_worker_frame(uint64_t id, ipc::Frame&& frame) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  if (frame.type != protocol::kDnsPtr) {
    log::warn("worker ", it->second.pid, " sent a frame of unexpected type ", frame.type,
              ": closing its channel");
    drop_worker(id, "");
    return;
  }
  const std::string* ip_text = frame.get("ip");
  std::optional<IpAddress> ip = ip_text ? parse_ip(*ip_text) : std::nullopt;
  if (!ip) {
    log::warn("worker ", it->second.pid, " sent a malformed PTR request (ip ",
              ip_text ? quoted(*ip_text) : "missing", "): closing its channel");
    drop_worker(id, "");
    return;
  }
  uint32_t request_id = frame.request_id;
  lookups_.lookup(*ip, [this, id, request_id, text = ip->text](const PtrAnswer& result) {
    log::debug("PTR ", text, ": ", status_text(result.status), " ", result.name);
    answer(id, request_id, result);
  });
}

void Server::answer(uint64_t id, uint32_t request_id, const PtrAnswer& result) {
  auto it = workers_.find(id);
  if (it == workers_.end() || !it->second.channel || !it->second.channel->open()) return;
  ipc::Frame reply(protocol::kDnsPtrResult, request_id);
  reply.add("status", status_text(result.status));
  if (result.status == PtrAnswer::Status::kOk) reply.add("name", result.name);
  it->second.channel->send(std::move(reply));
  if (!served_) {
    served_ = true;
    control_->send(ipc::Frame(protocol::kServed, 0));
  }
}

void Server::drop_worker(uint64_t id, const std::string& why) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  if (!why.empty()) {
    // A worker that exits or dies mid-request is normal life; anything else is news.
    bool gone = why == "peer closed the channel" || why.ends_with(std::strerror(EPIPE)) ||
                why.ends_with(std::strerror(ECONNRESET));
    if (gone) {
      log::debug("channel of worker ", it->second.pid, " closed: ", why);
    } else {
      log::warn("channel of worker ", it->second.pid, " closed: ", why);
    }
  }
  // Closing is safe anywhere; destroying is not (we may be inside this Channel's code).
  if (it->second.channel) it->second.channel->close();
  event_active(sweep_.get(), EV_TIMEOUT, 0);
}

void Server::on_sweep(evutil_socket_t, short, void* self) {
  auto* server = static_cast<Server*>(self);
  std::erase_if(server->workers_, [](const auto& entry) {
    return !entry.second.channel || !entry.second.channel->open();
  });
}

}  // namespace sppd::dnsbl_cache
