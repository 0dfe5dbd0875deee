// QmailLocals: which recipients qmail might deliver on this host, by qmail-send's rewrite()
// files (control/locals, else control/me; control/virtualdomains; control/percenthack), read
// from <qmail_home>/control once per worker start, before the sandbox (SIGHUP starts new
// workers, as for rcpthosts). session_verify.cpp asks it before realrcptto, so a recipient
// pluginrunner could only call "not_local" costs no round trip; Paul Jarc's patch likewise
// reads these files once, in realrcptto_init. Conservative: whatever it cannot rule out,
// including everything when a file could not be read, "may be local" and is asked about.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace sppd::smtpd {

class QmailLocals {
 public:
  // Nothing known (never loaded, or loading failed): every recipient may be local.
  QmailLocals() = default;

  // Reads <qmail_home>/control with qmail's control file rules. Never throws: a file that
  // exists but cannot be read gives an object that knows nothing, with the reason in error().
  static QmailLocals load(const std::string& qmail_home);

  // False only if pluginrunner's check_mailbox, given the same files, can only answer
  // kNotLocal for recipient.
  bool may_be_local(std::string_view recipient) const;

  // Why load failed; empty if it did not.
  const std::string& error() const { return error_; }

 private:
  bool known_ = false;
  std::string error_;
  std::set<std::string, std::less<>> locals_;        // lower-cased domains
  std::set<std::string, std::less<>> virtual_keys_;  // lower-cased: before a line's first ':'
  bool percenthack_ = false;                         // control/percenthack has a line
};

}  // namespace sppd::smtpd
