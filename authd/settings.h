// authd's settings: [service authd] of sppd.conf plus what it needs of the global section.
// Read at start and on SIGHUP; a bad value throws config::ConfigError (fatal at start, the
// old settings stay on a reload).
#pragma once

#include <string>
#include <vector>

#include "authd/credentials.h"
#include "common/config.h"

namespace sppd::authd {

struct Settings {
  std::string qmail_home;  // cwd of checkpassword; relative program paths start here
  // checkprogram [args] subprogram [args], split on whitespace (no shell), the program made
  // absolute; empty = none configured (every check answers "temp").
  std::vector<std::string> checkpassword;
  int check_timeout = 30;  // seconds per checkpassword run
  int concurrency = 8;     // checkpassword programs running at once
  CramOrder cram_order = CramOrder::kResponseFirst;
  int max_failures = 10;     // failures per IP or user name within failure_window ...
  int failure_window = 600;  // ... that block it (seconds)
  std::string user;          // run as this user (privilege::drop)
};

// Reads the settings from a loaded config; throws config::ConfigError on a bad value.
Settings settings_from(const config::Config& config);

}  // namespace sppd::authd
