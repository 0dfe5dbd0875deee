// plugin_config: reads a qmail-spp plugin file (control/smtpplugins or $SPPCONFFILE) as
// qmail-spp 0.42 does (qmail-spp.md §2.1-2.3) and sorts its lines into sections. A missing
// file is a status (DECISIONS.md); other problems come back as text for the worker and log.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sppd::pluginrunner {

enum class ConfigStatus { kOk, kMissing, kError };

struct PluginConfig {
  ConfigStatus status = ConfigStatus::kOk;
  std::string error;  // why, for kError
  // Section letter then config line, in file order, sections c h m r d a only:
  // e.g. "rplugins/ifauthskip", "r:plugins/rblspp -r zone".
  std::vector<std::string> plugins;
};

// The name kPluginConfigResult uses for a status: "ok", "missing" or "error".
const char* status_name(ConfigStatus status);

// qmail's control_readfile on text already read: every line loses its trailing ' ' and '\t'
// (not '\r'); empty lines and lines whose first character is '#' are dropped; leading
// whitespace is kept; a last line without "\n" counts. A NUL byte ends an entry, as in qmail's
// NUL-separated list.
std::vector<std::string> control_lines(std::string_view text);

// qmail-spp's sections: a line starting with '[' selects the section named by its second
// character; c h m r d a are kept, anything else (and lines before any header) is a dummy
// section whose plugins never run.
std::vector<std::string> plugins_by_section(const std::vector<std::string>& lines);

// Reads plugin files, remembering the last few by (path, device, inode, size, mtime, ctime) so
// an unchanged file is not parsed again for every session. Not thread-safe (one event loop).
class PluginFileCache {
 public:
  // Reads path; a relative path is taken relative to qmail_home.
  PluginConfig read(const std::string& path, const std::string& qmail_home);

 private:
  struct Entry {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    timespec mtime{};
    timespec ctime{};
    PluginConfig config;
  };
  static constexpr size_t kMaxEntries = 32;
  std::map<std::string, Entry> entries_;
};

}  // namespace sppd::pluginrunner
