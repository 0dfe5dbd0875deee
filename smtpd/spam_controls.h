// SpamControls: one listener's qmail-md / spamcontrol anti-spam settings (spec
// qmail-protocols.md §6, DECISIONS.md): pattern files, tarpitting, maxrcpt, reqbrackets,
// datechecks, bigbrother, databytes+ and the SMTP logging switches. Loaded from the control
// directory once per worker start (before the sandbox), like ListenerSettings; the session
// applies the environment overrides (NO_<NAME>, <NAME>=path, TARPITCOUNT, ...) per client.
// A pattern file named by tcprules (BADMAILFROM="control/bmf.mx") is read here too, since
// the sandboxed worker cannot open files later. Unreadable files throw control::ControlError.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "smtpd/patterns.h"
#include "smtpd/tcprules.h"

namespace sppd::smtpd {

// The pattern files and the environment names that switch them: NO_BADHELO, BADHELO=path.
inline constexpr const char* kPatternFiles[] = {"badhelo", "badmailfrom", "badmailto", "badrcptto",
                                                "goodmailfrom"};

struct SpamControls {
  // Pattern files by absolute path (the control directory's and every one tcprules names).
  std::map<std::string, std::shared_ptr<const PatternFile>> pattern_files;
  std::string control_dir;  // absolute, with a trailing '/'
  std::string qmail_home;   // absolute: base of relative <NAME>=path values, as qmail's cwd

  long tarpitcount = 0;  // control/tarpitcount: accepted RCPTs before each 250 is delayed; 0 off
  long tarpitdelay = 5;  // control/tarpitdelay: seconds of every tarpit delay
  long maxrcpt = 100;    // control/maxrcpt: recipients of an unauthenticated session; 0 = no limit
  bool reqbrackets = true;                // control/reqbrackets: MAIL/RCPT addresses need <...>
  unsigned long long databytes_plus = 0;  // control/databytes+: BLACKLISTED sessions; 0 = databytes
  // control/datechecks "prefix:days": prefixYYYYMMDD@ recipients expire after days.
  std::vector<std::pair<std::string, long>> datechecks;
  // control/bigbrother "watched@dom:copy@dom": mail to or from watched also goes to copy.
  std::vector<std::pair<std::string, std::string>> bigbrother;  // watched lower-cased
  // control/clamd: the clamd every message is scanned by ("ip:port" or a socket path,
  // checked when loaded); empty = no virus scanning.
  std::string clamd;
  // control/mfcheck (qmail-md): 0 off, 1 the sender's domain must have an MX, A or AAAA
  // record, 2 also a call-back to its mail exchangers; both done by dnsbl-cache
  // (session_sender.cpp). MFCHECK from tcprules overrides it per client.
  int mfcheck = 0;
  // control/mxblacklist: exchanger IPs (canonical text) the call-back never connects to;
  // lines that are not IP addresses are skipped with a warning.
  std::vector<std::string> mxblacklist;
  std::string me;  // control/me: the call-back's HELO name (empty: the greeting's first word)
  bool log_smtp_in = false;   // control/log/smtp_in: every command (AUTH data hidden)
  bool log_smtp_out = false;  // control/log/smtp_out: every reply line

  // The absolute path a <NAME>=value names (relative values start at the qmail home).
  std::string resolve(const std::string& value) const;
  // The loaded pattern file at an absolute path; nullptr if it did not exist.
  const PatternFile* pattern_file(const std::string& path) const;
};

// Reads the listener's control files (control_dir absolute) and the pattern files its
// tcprules name. Invalid regex lines are skipped with a logged warning. Throws
// control::ControlError for a file that exists but cannot be read or a malformed number.
SpamControls load_spam_controls(const std::string& control_dir, const std::string& qmail_home,
                                const TcpRules* tcprules);

struct ListenerSettings;
// Loads the listener's SpamControls into settings.spam; a failure becomes its control_error
// (sessions answer 421 unable to read controls) and is logged.
void add_spam_controls(ListenerSettings& settings, const std::string& qmail_home);

// The datechecks verdict for a recipient: true if its local part is prefix + YYYYMMDD for a
// datechecks entry and that date is more than days before today (UTC). today_days = days
// since 1970-01-01.
bool date_expired(const std::string& recipient,
                  const std::vector<std::pair<std::string, long>>& datechecks, long today_days);

}  // namespace sppd::smtpd
