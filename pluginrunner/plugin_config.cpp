// Plugin file reading (contract in plugin_config.h). The rules are qmail's, including the ones
// that surprise people: a CRLF file yields lines ending in '\r' (the plugin then "can't
// execute"), "  # x" is not a comment, "[Connection]" is not the connection section.
#include "pluginrunner/plugin_config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "common/fd.h"

namespace sppd::pluginrunner {
namespace {

constexpr std::string_view kSections = "chmrda";
// No plugin file needs more; a bigger one is a mistake (or not a plugin file at all).
constexpr size_t kMaxFileSize = 1 << 20;

bool same_time(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

PluginConfig error_config(std::string why) {
  PluginConfig config;
  config.status = ConfigStatus::kError;
  config.error = std::move(why);
  return config;
}

}  // namespace

const char* status_name(ConfigStatus status) {
  switch (status) {
    case ConfigStatus::kOk:
      return "ok";
    case ConfigStatus::kMissing:
      return "missing";
    case ConfigStatus::kError:
      return "error";
  }
  return "error";
}

std::vector<std::string> control_lines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    size_t end = line.find_last_not_of(" \t");
    line = end == std::string_view::npos ? std::string_view() : line.substr(0, end + 1);
    if (line.empty() || line[0] == '#') continue;
    // qmail keeps the lines NUL-separated and walks them with str_len(): an embedded NUL
    // splits a line in two.
    while (true) {
      size_t nul = line.find('\0');
      if (nul == std::string_view::npos) break;
      if (nul > 0) lines.emplace_back(line.substr(0, nul));
      line.remove_prefix(nul + 1);
    }
    if (!line.empty()) lines.emplace_back(line);
  }
  return lines;
}

std::vector<std::string> plugins_by_section(const std::vector<std::string>& lines) {
  std::vector<std::string> plugins;
  char section = 0;  // 0 = qmail-spp's dummy list
  for (const auto& line : lines) {
    if (line[0] == '[') {
      char letter = line.size() >= 2 ? line[1] : 0;
      section = kSections.find(letter) == std::string_view::npos ? 0 : letter;
      continue;
    }
    if (section != 0) plugins.push_back(section + line);
  }
  return plugins;
}

PluginConfig PluginFileCache::read(const std::string& path, const std::string& qmail_home) {
  if (path.empty()) return error_config("empty plugin file name");
  std::string full = path[0] == '/' ? path : qmail_home + "/" + path;
  UniqueFd fd(::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    int error = errno;
    // qmail's control_readfile: only "no such file" means absent; anything else is an error.
    if (error == ENOENT) {
      entries_.erase(full);
      PluginConfig missing;
      missing.status = ConfigStatus::kMissing;
      return missing;
    }
    return error_config("unable to read " + full + ": " + std::strerror(error));
  }
  struct stat st;
  if (fstat(fd.get(), &st) < 0) {
    return error_config("unable to read " + full + ": " + std::strerror(errno));
  }
  auto cached = entries_.find(full);
  if (cached != entries_.end()) {
    const Entry& e = cached->second;
    if (e.device == st.st_dev && e.inode == st.st_ino && e.size == st.st_size &&
        same_time(e.mtime, st.st_mtim) && same_time(e.ctime, st.st_ctim)) {
      return e.config;
    }
  }
  if (!S_ISREG(st.st_mode)) return error_config("unable to read " + full + ": not a regular file");
  if (static_cast<size_t>(st.st_size) > kMaxFileSize) {
    return error_config("unable to read " + full + ": larger than 1 MiB");
  }

  std::string text;
  char buffer[8192];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error_config("unable to read " + full + ": " + std::strerror(errno));
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxFileSize) {
      return error_config("unable to read " + full + ": larger than 1 MiB");
    }
  }

  PluginConfig config;
  config.plugins = plugins_by_section(control_lines(text));
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[full] = Entry{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim, config};
  return config;
}

}  // namespace sppd::pluginrunner
