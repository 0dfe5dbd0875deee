// Logging for every sppd program: one line per call, written with a single write(2) to
// stderr, which the master turns into "program[pid]: line" on its own stderr.
// Safe after the sandbox is on (no files, no sockets, no syslog).
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace sppd::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Sets the minimum level written; the default is kInfo.
void set_level(Level level);
Level level();
// Writes one line "severity: text\n" to fd 2 if level is enabled.
void write_line(Level level, std::string_view text);

template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <typename... Args>
void debug(const Args&... args) {
  if (level() <= Level::kDebug) write_line(Level::kDebug, concat(args...));
}
template <typename... Args>
void info(const Args&... args) {
  if (level() <= Level::kInfo) write_line(Level::kInfo, concat(args...));
}
template <typename... Args>
void warn(const Args&... args) {
  write_line(Level::kWarning, concat(args...));
}
template <typename... Args>
void error(const Args&... args) {
  write_line(Level::kError, concat(args...));
}
// Logs and exits 1: for failures the master should see and throttle on.
[[noreturn]] void fatal_line(std::string_view text);
template <typename... Args>
[[noreturn]] void fatal(const Args&... args) {
  fatal_line(concat(args...));
}

}  // namespace sppd::log
