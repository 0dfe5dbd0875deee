// The DATA byte machine of qmail-smtpd's blast() (spec qmail-protocols.md §2.7): turns the
// client's dot-stuffed CRLF stream into the LF message qmail-queue stores, finds the end
// ".\r\n", counts hops in the header and bytes for databytes, and detects bare LF.
// Incremental: feed it whatever arrived; it never holds more than one pending byte state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sppd::smtpd {

class DataDecoder {
 public:
  enum class Status { kMore, kEnd, kBareLf };

  // max_bytes = databytes (0 = unlimited); max_hops = maxhops.
  DataDecoder(unsigned long long max_bytes, int max_hops);

  // Consumes bytes from input, appending decoded bytes to output, until the input is used
  // up (kMore), the terminating ".\r\n" was consumed (kEnd; *consumed tells how many input
  // bytes belonged to the message so the rest is the next command) or a bare LF was seen
  // (kBareLf). Once too_big() is true, decoded bytes are no longer appended.
  Status feed(std::string_view input, std::string* output, size_t* consumed);

  bool too_big() const { return too_big_; }  // more than max_bytes decoded bytes
  int hops() const { return hops_; }         // Received/Delivered lines in the header
  bool too_many_hops() const { return hops_ >= max_hops_; }
  unsigned long long bytes() const { return bytes_; }

 private:
  // Implementation state: position in line, header/body, pending CR, line-start prefix.
  unsigned long long max_bytes_;
  int max_hops_;
  unsigned long long bytes_ = 0;
  int hops_ = 0;
  bool too_big_ = false;
  int state_ = 0;
  bool in_header_ = true;
  std::string line_prefix_;  // first bytes of the current header line, for hop counting
  size_t line_length_ = 0;
};

}  // namespace sppd::smtpd
