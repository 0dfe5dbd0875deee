// Secret: a byte string holding a password, a CRAM response or checkpassword's fd 3 input,
// wiped with OPENSSL_cleanse when it is cleared or destroyed. authd keeps every credential in
// one; it is never copied (move only) and never logged.
#pragma once

#include <openssl/crypto.h>

#include <string>
#include <string_view>
#include <utility>

namespace sppd::authd {

class Secret {
 public:
  // The capacity is fixed up front, so appending never reallocates (and never leaves an
  // unwiped copy behind in freed memory) as long as the content stays within it.
  explicit Secret(size_t capacity = 0) { bytes_.reserve(capacity); }
  ~Secret() { wipe(); }
  Secret(Secret&& other) noexcept : bytes_(std::move(other.bytes_)) { other.wipe(); }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      wipe();
      bytes_ = std::move(other.bytes_);
      other.wipe();
    }
    return *this;
  }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;

  void append(std::string_view bytes) { bytes_.append(bytes); }
  void push_back(char c) { bytes_.push_back(c); }
  std::string_view view() const { return bytes_; }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  // Overwrites every byte the buffer holds (also a short string's inline buffer), then
  // empties it.
  void wipe() {
    if (bytes_.capacity() > 0) OPENSSL_cleanse(bytes_.data(), bytes_.capacity());
    bytes_.clear();
  }

 private:
  std::string bytes_;
};

// Wipes a plain string that held a secret (e.g. a frame attribute), then empties it.
inline void wipe_string(std::string* s) {
  if (s->capacity() > 0) OPENSSL_cleanse(s->data(), s->capacity());
  s->clear();
}

}  // namespace sppd::authd
