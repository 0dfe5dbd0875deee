// qmail_files: realrcptto's view of a real qmail home (QmailFiles over the file system and
// the passwd database). Runs in pluginrunner as its service user, not chrooted; every call
// reads afresh (nothing is cached, so a changed users/assign or .qmail file counts at once).
// A file that exists but cannot be read, a corrupt users/cdb or a passwd lookup that fails
// (rather than finding nobody) throws LookupError.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pluginrunner/realrcptto.h"

namespace sppd::pluginrunner {

class SystemQmailFiles final : public QmailFiles {
 public:
  // qmail_home: absolute; control/ and users/ are read below it.
  explicit SystemQmailFiles(std::string qmail_home) : home_(std::move(qmail_home)) {}

  std::optional<std::vector<std::string>> control_lines(const std::string& name) override;
  std::optional<std::string> control_line(const std::string& name) override;
  std::unique_ptr<UserTable> user_table() override;
  std::optional<PasswdEntry> passwd(const std::string& name) override;
  PathStatus stat(const std::string& path) override;

 private:
  std::string home_;
};

}  // namespace sppd::pluginrunner
