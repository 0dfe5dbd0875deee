// The master's own log lines: "sppd-master: [severity: ]text" on the master's stderr, one
// write(2) per line, filtered by the global log_level like every other program's lines.
// (Children's lines reach the same stderr through log_relay.cpp with their own tag.)
#pragma once

#include <string>
#include <string_view>

#include "common/log.h"

namespace sppd::master::mlog {

// Writes "tag: text\n" to fd 2 in one write; control characters in text become '?'.
void write_tagged(std::string_view tag, std::string_view text);

// The log::Level for a config log_level value (debug, info, warning, error).
log::Level level_named(const std::string& name);

// Writes one master line at level (if enabled).
void line(log::Level level, std::string_view text);

template <typename... Args>
void debug(const Args&... args) {
  if (log::level() <= log::Level::kDebug) line(log::Level::kDebug, log::concat(args...));
}
template <typename... Args>
void info(const Args&... args) {
  if (log::level() <= log::Level::kInfo) line(log::Level::kInfo, log::concat(args...));
}
template <typename... Args>
void warn(const Args&... args) {
  if (log::level() <= log::Level::kWarning) line(log::Level::kWarning, log::concat(args...));
}
template <typename... Args>
void error(const Args&... args) {
  line(log::Level::kError, log::concat(args...));
}

}  // namespace sppd::master::mlog
