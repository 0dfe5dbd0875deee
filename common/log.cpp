// Implementation of sppd::log: formats one line and writes it with one write(2) so that
// lines from concurrent processes sharing the master's log pipe never interleave.
#include "common/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

namespace sppd::log {
namespace {
// The level and tag are process configuration set once in main (before any thread or
// event loop exists); the level is atomic so tests may change it.
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::string g_tag;
// One pipe write of at most PIPE_BUF bytes is atomic: longer lines are cut to keep that.
constexpr size_t kMaxLine = 4000;

const char* severity(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug: ";
    case Level::kInfo:
      return "";
    case Level::kWarning:
      return "warning: ";
    case Level::kError:
      return "error: ";
  }
  return "";
}
}  // namespace

void set_level(Level level) { g_level = static_cast<int>(level); }
Level level() { return static_cast<Level>(g_level.load()); }
void set_tag(std::string tag) { g_tag = std::move(tag); }

Level level_named(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "warning") return Level::kWarning;
  if (name == "error") return Level::kError;
  return Level::kInfo;
}

void write_tagged(std::string_view tag, std::string_view text) {
  std::string line;
  line.reserve(tag.size() + 3 + std::min(text.size(), kMaxLine));
  if (!tag.empty()) line.append(tag).append(": ");
  for (char c : text.substr(0, kMaxLine)) {
    auto byte = static_cast<unsigned char>(c);
    line.push_back((byte < 0x20 && c != '\t') || byte == 0x7f ? '?' : c);
  }
  line.push_back('\n');
  // Nothing sensible can be done if stderr itself fails.
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

void write_line(Level level, std::string_view text) {
  if (level < log::level()) return;
  write_tagged(g_tag, std::string(severity(level)).append(text));
}

void fatal_line(std::string_view text) {
  write_line(Level::kError, std::string("fatal: ").append(text));
  std::_Exit(1);
}

}  // namespace sppd::log
