// Reading qmail control files (rules in control.h). Runs before any sandbox is applied.
#include "common/control.h"

#include <errno.h>

#include <cstring>
#include <fstream>

namespace sppd::control {
namespace {

std::optional<std::vector<std::string>> read_raw(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    throw ControlError("unable to read " + path + ": " + std::strerror(errno));
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    size_t end = line.find_last_not_of(" \t\r");
    line.erase(end == std::string::npos ? 0 : end + 1);
    lines.push_back(line);
  }
  if (in.bad()) throw ControlError("unable to read " + path);
  return lines;
}

}  // namespace

std::optional<std::vector<std::string>> read_lines(const std::string& path) {
  auto raw = read_raw(path);
  if (!raw) return std::nullopt;
  std::vector<std::string> lines;
  for (auto& l : *raw) {
    if (!l.empty() && l[0] != '#') lines.push_back(std::move(l));
  }
  return lines;
}

std::optional<std::string> read_line(const std::string& path) {
  auto raw = read_raw(path);
  if (!raw) return std::nullopt;
  return raw->empty() ? std::string() : raw->front();
}

long read_long(const std::string& path, long fallback) {
  auto line = read_line(path);
  if (!line) return fallback;
  char* end = nullptr;
  long v = strtol(line->c_str(), &end, 10);
  if (line->empty() || end == line->c_str()) throw ControlError(path + " does not hold a number");
  return v;
}

}  // namespace sppd::control
