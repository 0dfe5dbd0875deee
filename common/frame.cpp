// Encoding and validation of sppd IPC frames (see frame.h for the layout).
// Validation is strict because a malformed frame means a buggy or compromised peer.
#include "common/frame.h"

#include <arpa/inet.h>

#include <cstring>

namespace sppd::ipc {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

void put16(std::string& out, uint16_t v) {
  uint16_t n = htons(v);
  out.append(reinterpret_cast<const char*>(&n), 2);
}
void put32(std::string& out, uint32_t v) {
  uint32_t n = htonl(v);
  out.append(reinterpret_cast<const char*>(&n), 4);
}
uint16_t get16(const char* p) {
  uint16_t n;
  std::memcpy(&n, p, 2);
  return ntohs(n);
}
uint32_t get32(const char* p) {
  uint32_t n;
  std::memcpy(&n, p, 4);
  return ntohl(n);
}

}  // namespace

Frame& Frame::add(std::string name, std::string value) {
  attrs.emplace_back(std::move(name), std::move(value));
  return *this;
}

const std::string* Frame::get(std::string_view name) const {
  for (const auto& [n, v] : attrs) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::string Frame::get_or(std::string_view name, std::string_view fallback) const {
  const std::string* v = get(name);
  return v ? *v : std::string(fallback);
}

std::vector<std::string_view> Frame::all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : attrs) {
    if (n == name) out.emplace_back(v);
  }
  return out;
}

size_t Frame::encoded_size() const {
  size_t size = kHeaderSize;
  for (const auto& [n, v] : attrs) size += n.size() + v.size() + 2;
  return size;
}

std::optional<std::string> encode(const Frame& frame, std::string* why) {
  auto fail = [why](const char* reason) -> std::optional<std::string> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (frame.encoded_size() > kMaxFrameSize) return fail("frame larger than 64 KiB");
  std::string body;
  for (const auto& [n, v] : frame.attrs) {
    if (!valid_name(n)) return fail("invalid attribute name");
    if (v.find('\0') != std::string::npos) return fail("attribute value holds a NUL byte");
    body.append(n).push_back('\0');
    body.append(v).push_back('\0');
  }
  std::string out;
  out.reserve(kHeaderSize + body.size());
  put16(out, kVersion);
  put16(out, frame.type);
  put32(out, frame.request_id);
  put32(out, static_cast<uint32_t>(body.size()));
  out += body;
  return out;
}

std::optional<Frame> decode(std::string_view bytes, std::string* why) {
  auto fail = [why](const char* reason) -> std::optional<Frame> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (bytes.size() < kHeaderSize) return fail("frame shorter than its header");
  if (bytes.size() > kMaxFrameSize) return fail("frame larger than 64 KiB");
  if (get16(bytes.data()) != kVersion) return fail("unknown frame version");
  Frame frame(get16(bytes.data() + 2), get32(bytes.data() + 4));
  uint32_t body_len = get32(bytes.data() + 8);
  if (body_len != bytes.size() - kHeaderSize) return fail("body length does not match frame size");
  std::string_view body = bytes.substr(kHeaderSize);
  if (!body.empty() && body.back() != '\0') return fail("body not NUL-terminated");
  while (!body.empty()) {
    size_t name_end = body.find('\0');
    std::string_view name = body.substr(0, name_end);
    body.remove_prefix(name_end + 1);
    if (!valid_name(name)) return fail("invalid attribute name");
    if (body.empty()) return fail("attribute without value");
    size_t value_end = body.find('\0');
    frame.attrs.emplace_back(std::string(name), std::string(body.substr(0, value_end)));
    body.remove_prefix(value_end + 1);
  }
  return frame;
}

}  // namespace sppd::ipc
