// Implementation of sppd::log: formats one line and writes it with one write(2) so that
// lines from concurrent processes sharing the master's log pipe never interleave.
#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace sppd::log {
namespace {
// The level is process configuration set once in main; atomic so tests may change it.
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

const char* severity(Level level) {
  switch (level) {
    case Level::kDebug: return "debug: ";
    case Level::kInfo: return "";
    case Level::kWarning: return "warning: ";
    case Level::kError: return "error: ";
  }
  return "";
}
}  // namespace

void set_level(Level level) { g_level = static_cast<int>(level); }
Level level() { return static_cast<Level>(g_level.load()); }

void write_line(Level level, std::string_view text) {
  std::string line = severity(level);
  // A pipe write of at most PIPE_BUF bytes is atomic; longer lines are cut to keep that.
  constexpr size_t kMaxLine = 4000;
  for (char c : text.substr(0, kMaxLine)) line.push_back(c == '\n' || c == '\r' ? ' ' : c);
  line.push_back('\n');
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

void fatal_line(std::string_view text) {
  write_line(Level::kError, std::string("fatal: ").append(text));
  std::_Exit(1);
}

}  // namespace sppd::log
