// LocalClient: the asking side of dnsbl-cache's local socket ([service dnsbl-cache] socket,
// protocol.h kDnsblLocalFd) for small one-shot programs: the rblspp plugin and
// sppd-dnsbl-status. Blocking, one question at a time, every wait bounded by a timeout.
// Runs with whatever privilege its program has (the socket's mode decides who may connect).
// Errors are values: nullopt and a sentence naming the socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/fd.h"
#include "common/frame.h"

namespace sppd::dnsbl_cache {

class LocalClient {
 public:
  // Connects to the socket at path, waiting at most timeout while dnsbl-cache's queue is
  // full. nullopt with why ("cannot connect to PATH: reason") if that fails.
  static std::optional<LocalClient> connect(const std::string& path,
                                            std::chrono::milliseconds timeout, std::string* why);

  // Sends request (its request_id is set here) and waits at most timeout for the frame that
  // answers it. nullopt with why if the connection ends, the time runs out or the answer
  // is no frame; the client should not be used after that.
  std::optional<ipc::Frame> ask(ipc::Frame request, std::chrono::milliseconds timeout,
                                std::string* why);

 private:
  LocalClient(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  std::string path_;
  UniqueFd fd_;
  uint32_t next_request_id_ = 1;
};

}  // namespace sppd::dnsbl_cache
