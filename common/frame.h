// IPC frames: the one message format between sppd processes (DESIGN.md "IPC").
// A frame is a 12-byte header {u16 version, u16 type, u32 request id, u32 body length}
// (network byte order) and a body of NUL-terminated name/value pairs. Names may repeat
// (e.g. one "to" per recipient). At most one descriptor travels with a frame (SCM_RIGHTS).
// decode() validates everything; a frame that fails is rejected with a reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fd.h"

namespace sppd::ipc {

constexpr uint16_t kVersion = 1;
constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxFrameSize = 64 * 1024;

struct Frame {
  uint16_t type = 0;
  uint32_t request_id = 0;
  std::vector<std::pair<std::string, std::string>> attrs;
  UniqueFd fd;  // an optional descriptor passed with the frame

  Frame() = default;
  Frame(uint16_t t, uint32_t id) : type(t), request_id(id) {}

  // Appends an attribute; names are [a-z0-9_]+, values must not hold NUL bytes.
  Frame& add(std::string name, std::string value);
  // The first value of name, or nullptr.
  const std::string* get(std::string_view name) const;
  // The first value of name, or fallback.
  std::string get_or(std::string_view name, std::string_view fallback) const;
  // Every value of name, in order.
  std::vector<std::string_view> all(std::string_view name) const;
  // Encoded size in bytes (header plus body).
  size_t encoded_size() const;
};

// Serialises a frame; returns nullopt (with why) if it breaks a rule (size, names, NULs).
std::optional<std::string> encode(const Frame& frame, std::string* why = nullptr);
// Parses bytes received as one datagram; nullopt with why on any violation.
std::optional<Frame> decode(std::string_view bytes, std::string* why);

}  // namespace sppd::ipc
