// qmail control files, read with qmail's rules (notqmail control.c): a missing file means
// "use the default"; any other read error is an error; control_readfile strips trailing
// spaces and tabs and skips empty lines and lines starting with '#'.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sppd::control {

// A control file exists but cannot be read: qmail answers 421 unable to read controls.
struct ControlError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// All meaningful lines (qmail control_readfile); nullopt if the file does not exist.
std::optional<std::vector<std::string>> read_lines(const std::string& path);
// The first line, trailing whitespace removed (control_readline); nullopt if absent.
std::optional<std::string> read_line(const std::string& path);
// The first line as a number (control_readint); fallback if absent; throws if not a number.
long read_long(const std::string& path, long fallback);

}  // namespace sppd::control
