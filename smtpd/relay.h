// Relay control from qmail's control files: rcpthosts + morercpthosts.cdb (notqmail
// rcpthosts.c). Loaded once per worker start. (badmailfrom is a pattern file: patterns.h.)
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace sppd::smtpd {

class RcptHosts {
 public:
  // lines = control/rcpthosts (nullopt if the file is absent); morercpthosts_cdb = path of
  // morercpthosts.cdb (consulted only if rcpthosts exists; missing cdb is fine). Throws
  // std::runtime_error if the cdb exists but cannot be opened.
  RcptHosts(std::optional<std::vector<std::string>> lines, const std::string& morercpthosts_cdb);
  ~RcptHosts();
  RcptHosts(const RcptHosts&) = delete;
  RcptHosts& operator=(const RcptHosts&) = delete;

  // qmail's rcpthosts(): the host after the last '@', lower-cased, or any suffix of it
  // starting at a '.', is listed. An address without '@' is allowed. When no rcpthosts
  // file exists sppd allows nothing (DECISIONS.md: no open relay): returns false.
  bool allowed(const std::string& address) const;
  bool configured() const { return configured_; }

 private:
  bool listed(const std::string& host) const;
  bool configured_ = false;
  std::unordered_set<std::string> hosts_;
  struct Cdb;
  std::unique_ptr<Cdb> cdb_;
};

}  // namespace sppd::smtpd
