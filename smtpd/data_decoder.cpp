// The DATA byte machine, state for state the one in notqmail's blast() (spec
// qmail-protocols.md §2.7), made incremental so the event loop can feed it whatever a read
// returned. Pure; a bare LF is reported as a value (the session answers 451 and closes).
#include "smtpd/data_decoder.h"

#include <cstdlib>
#include <cstring>

#include "common/ascii.h"

namespace sppd::smtpd {
namespace {

// blast()'s states, numbered as in qmail; kEnded and kStrayLf are terminal.
enum State : int {
  kInLine = 0,     // inside a line
  kLineStart = 1,  // just after CRLF (or at the start of the data)
  kDot = 2,        // CRLF "."
  kDotCr = 3,      // CRLF "." CR
  kCr = 4,         // a CR whose fate depends on the next byte
  kEnded = 5,
  kStrayLf = 6,
};

bool starts_with_ignoring_case(const std::string& text, std::string_view word) {
  if (text.size() < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (ascii::lower(text[i]) != word[i]) return false;
  }
  return true;
}

}  // namespace

DataDecoder::DataDecoder(unsigned long long max_bytes, int max_hops)
    : max_bytes_(max_bytes), max_hops_(max_hops), state_(kLineStart) {}

DataDecoder::Status DataDecoder::feed(std::string_view input, std::string* output,
                                      size_t* consumed) {
  if (state_ == kEnded || state_ == kStrayLf) {
    if (consumed) *consumed = 0;
    return state_ == kEnded ? Status::kEnd : Status::kBareLf;
  }
  // bytes_ counts what qmail would have handed qmail-queue; past max_bytes_ nothing more is
  // kept (qmail fails the queue there), but the count and the parse go on to the dot.
  auto put = [&](char ch) {
    ++bytes_;
    if (max_bytes_ != 0 && bytes_ > max_bytes_) too_big_ = true;
    if (!too_big_) output->push_back(ch);
  };
  // put() for a run of ordinary bytes, with the same databytes cut-off.
  auto put_run = [&](std::string_view run) {
    const unsigned long long before = bytes_;
    bytes_ += run.size();
    if (too_big_) return;
    size_t keep = run.size();
    if (max_bytes_ != 0 && bytes_ > max_bytes_) {
      too_big_ = true;
      keep = before < max_bytes_ ? static_cast<size_t>(max_bytes_ - before) : 0;
    }
    output->append(run.data(), keep);
  };

  for (size_t i = 0; i < input.size(); ++i) {
    if (state_ == kInLine && (!in_header_ || line_length_ >= 9)) {
      // Mid-line, past what hop counting looks at: every byte up to the next CR or LF is
      // copied as it is, so copy the run at once.
      const char* begin = input.data() + i;
      const size_t left = input.size() - i;
      const void* cr = std::memchr(begin, '\r', left);
      const size_t before_cr =
          cr ? static_cast<size_t>(static_cast<const char*>(cr) - begin) : left;
      const void* lf = std::memchr(begin, '\n', before_cr);
      const size_t run = lf ? static_cast<size_t>(static_cast<const char*>(lf) - begin) : before_cr;
      if (run > 0) {
        put_run(std::string_view(begin, run));
        i += run;
        if (i == input.size()) break;
      }
    }
    char ch = input[i];

    // Hops are counted on the raw client bytes of the header, as blast() does: a line whose
    // first 8 bytes are "received" or first 9 "delivered", any case, no colon needed. The
    // header ends at the first line that is exactly CRLF.
    if (in_header_) {
      if (line_length_ < 9) {
        line_prefix_.push_back(ch);
        ++line_length_;
        if (line_length_ == 8 && starts_with_ignoring_case(line_prefix_, "received")) ++hops_;
        if (line_length_ == 9 && starts_with_ignoring_case(line_prefix_, "delivered")) ++hops_;
        if (line_length_ == 2 && line_prefix_ == "\r\n") in_header_ = false;
      }
      if (ch == '\n') {
        line_length_ = 0;
        line_prefix_.clear();
      }
    }

    switch (state_) {
      case kInLine:
        if (ch == '\n') break;
        if (ch == '\r') {
          state_ = kCr;
          continue;
        }
        put(ch);
        continue;
      case kLineStart:
        if (ch == '\n') break;
        if (ch == '.') {
          state_ = kDot;
          continue;
        }
        if (ch == '\r') {
          state_ = kCr;
          continue;
        }
        state_ = kInLine;
        put(ch);
        continue;
      case kDot:  // the stuffed dot is dropped: "..x" -> ".x", ".x" -> "x"
        if (ch == '\n') break;
        if (ch == '\r') {
          state_ = kDotCr;
          continue;
        }
        state_ = kInLine;
        put(ch);
        continue;
      case kDotCr:
        if (ch == '\n') {
          state_ = kEnded;
          if (consumed) *consumed = i + 1;
          return Status::kEnd;
        }
        // ".\rx" was no terminator after all: qmail writes the dot and the CR back.
        put('.');
        put('\r');
        if (ch == '\r') {
          state_ = kCr;
          continue;
        }
        state_ = kInLine;
        put(ch);
        continue;
      case kCr:
        if (ch == '\n') {
          state_ = kLineStart;  // CRLF -> LF
        } else if (ch != '\r') {
          put('\r');  // a bare CR is kept
          state_ = kInLine;
        }
        // A second CR stays pending and the first is written: "CR CR LF" -> "CR LF".
        put(ch);
        continue;
      default:
        std::abort();  // terminal states returned above; anything else is our bug
    }
    // Only a bare LF gets here (SMTP smuggling defence: qmail drops the connection).
    state_ = kStrayLf;
    if (consumed) *consumed = i + 1;
    return Status::kBareLf;
  }
  if (consumed) *consumed = input.size();
  return Status::kMore;
}

}  // namespace sppd::smtpd
