// Implementation of the master's own log lines (contract in master_log.h). A line is
// assembled first and written with a single write(2), so it never interleaves with the
// relayed lines of children.
#include "master/master_log.h"

#include <unistd.h>

#include <algorithm>

namespace sppd::master::mlog {
namespace {

// Same cap as common/log.cpp: one pipe write of at most PIPE_BUF bytes stays atomic.
constexpr size_t kMaxLine = 4000;

const char* severity(log::Level level) {
  switch (level) {
    case log::Level::kDebug:
      return "debug: ";
    case log::Level::kInfo:
      return "";
    case log::Level::kWarning:
      return "warning: ";
    case log::Level::kError:
      return "error: ";
  }
  return "";
}

}  // namespace

void write_tagged(std::string_view tag, std::string_view text) {
  std::string out;
  out.reserve(tag.size() + 2 + std::min(text.size(), kMaxLine) + 1);
  out.append(tag).append(": ");
  for (char c : text.substr(0, kMaxLine)) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back((byte < 0x20 && c != '\t') || byte == 0x7f ? '?' : c);
  }
  out.push_back('\n');
  // Nothing sensible can be done if the master's own stderr fails.
  ssize_t ignored = ::write(2, out.data(), out.size());
  (void)ignored;
}

log::Level level_named(const std::string& name) {
  if (name == "debug") return log::Level::kDebug;
  if (name == "warning") return log::Level::kWarning;
  if (name == "error") return log::Level::kError;
  return log::Level::kInfo;
}

void line(log::Level level, std::string_view text) {
  if (level < log::level()) return;
  std::string body = severity(level);
  body.append(text);
  write_tagged("sppd-master", body);
}

}  // namespace sppd::master::mlog
