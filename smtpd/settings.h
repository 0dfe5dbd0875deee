// ListenerSettings: everything a session on one listener needs from sppd.conf and the
// listener's qmail control directory, loaded once when the worker starts (before the
// sandbox; a reload starts new workers). If a control file cannot be read, sessions on that
// listener answer "421 unable to read controls" instead of running, as qmail-smtpd does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/rbl_options.h"
#include "smtpd/qmail_locals.h"
#include "smtpd/relay.h"
#include "smtpd/spam_controls.h"
#include "smtpd/tcprules.h"
#include "smtpd/tls.h"

namespace sppd::smtpd {

struct ListenerSettings {
  config::Listener listener;
  std::string control_error;  // non-empty: why controls could not be read

  std::vector<std::string> greeting;   // control/smtpgreeting lines, else control/me
  std::string me;                      // first greeting line: HELO/EHLO/QUIT replies
  std::string localiphost;             // control/localiphost, else me
  std::vector<std::string> local_ips;  // this host's addresses, for box@[ip] rewriting
  std::unique_ptr<RcptHosts> rcpthosts;
  std::optional<TcpRules> tcprules;

  // DECISIONS.md: limits are on by default (qmail's databytes default is 0 = unlimited).
  static constexpr long kDefaultDatabytes = 20000000;
  unsigned long long databytes = kDefaultDatabytes;  // 0 = unlimited

  SpamControls spam;  // qmail-md's pattern files, tarpitting, limits (spam_controls.h)
  // control/rcptcheck: qmail-md's recipient check program (session_verify.cpp); "" = none.
  std::string rcptcheck;
  // qmail_home's locals (or me), virtualdomains and percenthack: realrcptto asks pluginrunner
  // only about recipients that may be local (session_verify.cpp). Unreadable files are no
  // control_error: every recipient is then asked about, and pluginrunner answers 451.
  QmailLocals qmail_locals;
  std::vector<RblStep> rbl;         // the listener's rblsmtpd options; empty: no DNSBL checks
  std::shared_ptr<TlsContext> tls;  // null: no certificate, no STARTTLS / SMTPS
  // SMTP AUTH (qmail-md's control/auth/*): methods offered as bitmasks (1 LOGIN, 2 PLAIN,
  // 4 CRAM-MD5, 8 CRAM-SHA1, 16 CRAM-RIPEMD, 32 DIGEST-MD5 which sppd never offers).
  bool auth_configured = false;  // [service authd] names a checkpassword program
  int auth_methods_plain = 60;   // control/auth/smtp: connections without TLS
  int auth_methods_tls = 63;     // control/auth/smtps: under TLS
  long auth_delay = 0;           // control/auth/delay: seconds before a 535
  bool auth_oldauth = false;     // control/auth/oldauth: also "250-AUTH=..." for old Outlook
  long timeoutsmtpd = 1200;
  long maxcmdlen = 1000;
  long maxaddrlen = 900;
  long maxhops = 100;
};

// Loads one listener's settings. Never throws: problems end up in control_error and are
// logged.
// auth_configured says whether authd has a checkpassword program to run.
std::unique_ptr<ListenerSettings> load_listener_settings(const config::Listener& listener,
                                                         bool auth_configured);

}  // namespace sppd::smtpd
