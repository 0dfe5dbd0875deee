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
// The Level for a config log_level value (debug, info, warning, error; else info).
Level level_named(std::string_view name);
// Prefixes every line of this process with "tag: " (the master tags its own lines;
// children are tagged by the master's log relay).
void set_tag(std::string tag);
// Writes "tag: text\n" with one write(2); control characters in text become '?'.
void write_tagged(std::string_view tag, std::string_view text);
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
  if (level() <= Level::kWarning) write_line(Level::kWarning, concat(args...));
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
