// DNS message TTL walker (contract in dns_message.h). Input comes from the network: every
// read is checked against the message length, and names are skipped, never followed, so
// compression loops cannot make it spin.
#include "dnsbl-cache/dns_message.h"

#include <algorithm>
#include <cstddef>

namespace sppd::dnsbl_cache {
namespace {

constexpr int kTypeSoa = 6;
constexpr size_t kHeaderSize = 12;

class Reader {
 public:
  Reader(const unsigned char* data, size_t size) : data_(data), size_(size) {}

  bool u16(uint16_t* out) {
    if (size_ - pos_ < 2) return false;
    *out = static_cast<uint16_t>(data_[pos_] << 8 | data_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t* out) {
    uint16_t high, low;
    if (!u16(&high) || !u16(&low)) return false;
    *out = static_cast<uint32_t>(high) << 16 | low;
    return true;
  }
  bool skip(size_t n) {
    if (size_ - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  // Skips an encoded name: labels up to the root label or a compression pointer.
  bool skip_name() {
    for (int labels = 0; labels < 128; ++labels) {
      if (pos_ >= size_) return false;
      unsigned char length = data_[pos_];
      if ((length & 0xc0) == 0xc0) return skip(2);
      if ((length & 0xc0) != 0) return false;  // reserved label types
      if (!skip(1u + length)) return false;
      if (length == 0) return true;
    }
    return false;
  }
  size_t pos() const { return pos_; }
  void seek(size_t pos) { pos_ = pos; }

 private:
  const unsigned char* data_;
  size_t size_;
  size_t pos_ = 0;
};

void keep_min(std::optional<uint32_t>* slot, uint32_t value) {
  *slot = slot->has_value() ? std::min(**slot, value) : value;
}

}  // namespace

bool answer_ttl(const unsigned char* message, int length, int type, AnswerTtl* out) {
  *out = AnswerTtl{};
  if (!message || length < static_cast<int>(kHeaderSize)) return false;
  Reader in(message, static_cast<size_t>(length));
  uint16_t id, flags, questions, answers, authorities, additional;
  if (!in.u16(&id) || !in.u16(&flags) || !in.u16(&questions) || !in.u16(&answers) ||
      !in.u16(&authorities) || !in.u16(&additional)) {
    return false;
  }
  for (int i = 0; i < questions; ++i) {
    if (!in.skip_name() || !in.skip(4)) return false;
  }
  for (int i = 0; i < answers + authorities; ++i) {
    uint16_t rr_type, rr_class, rdlength;
    uint32_t ttl;
    if (!in.skip_name() || !in.u16(&rr_type) || !in.u16(&rr_class) || !in.u32(&ttl) ||
        !in.u16(&rdlength)) {
      return false;
    }
    // RFC 2181 §8: a TTL with the top bit set is treated as zero.
    if (ttl > 0x7fffffffu) ttl = 0;
    size_t rdata = in.pos();
    bool in_answer = i < answers;
    if (in_answer && rr_type == type) keep_min(&out->records, ttl);
    if (!in_answer && rr_type == kTypeSoa) {
      // SOA RDATA: MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM.
      uint32_t fields[5];
      if (!in.skip_name() || !in.skip_name()) return false;
      for (uint32_t& field : fields) {
        if (!in.u32(&field)) return false;
      }
      keep_min(&out->negative, std::min(ttl, fields[4] > 0x7fffffffu ? 0u : fields[4]));
    }
    in.seek(rdata);
    if (!in.skip(rdlength)) return false;
  }
  return true;
}

}  // namespace sppd::dnsbl_cache
