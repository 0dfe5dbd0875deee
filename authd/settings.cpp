// settings_from() (contract in settings.h). Ranges of the numbers are checked by the config
// parser; this adds what only authd knows (a checkpassword line needs a subprogram).
#include "authd/settings.h"

#include <sstream>

namespace sppd::authd {

Settings settings_from(const config::Config& config) {
  const config::Service& service = config.service("authd");
  Settings settings;
  settings.qmail_home = config.qmail_home;
  settings.user = service.user;
  std::istringstream words(service.get("checkpassword", ""));
  std::string word;
  while (words >> word) settings.checkpassword.push_back(word);
  if (settings.checkpassword.size() == 1) {
    throw config::ConfigError(
        config.path + ":" + std::to_string(service.line) +
        ": [service authd] checkpassword needs a program and the subprogram it runs on "
        "success, e.g. 'checkpassword = /bin/checkpassword /bin/true'");
  }
  // qmail-smtpd ran its checkpassword from /var/qmail: a relative path starts at qmail_home.
  if (!settings.checkpassword.empty() && settings.checkpassword[0][0] != '/') {
    settings.checkpassword[0] = settings.qmail_home + "/" + settings.checkpassword[0];
  }
  settings.check_timeout = static_cast<int>(service.get_long("check_timeout", 30));
  settings.concurrency = static_cast<int>(service.get_long("concurrency", 8));
  settings.max_failures = static_cast<int>(service.get_long("max_failures", 10));
  settings.failure_window = static_cast<int>(service.get_long("failure_window", 600));
  settings.cram_order = service.get("cram_order", "response_first") == "challenge_first"
                            ? CramOrder::kChallengeFirst
                            : CramOrder::kResponseFirst;
  return settings;
}

}  // namespace sppd::authd
