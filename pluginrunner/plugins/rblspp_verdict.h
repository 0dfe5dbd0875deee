// What the rblspp plugin decides (seed 000 section II; qmail-protocols.md §3.1, qmail-spp.md
// §9.2): rblsmtpd's options and rules (common/rbl_options RblCheck, the same decision as
// smtpd's built-in check) with RBLSPP in place of RBLSMTPD, and nothing to do once a
// recipient of the transaction was accepted (SMTPRCPTCOUNT > 0, Manuel Mausz's change to the
// plugin). Pure: the lookups are the caller's (rblspp_main.cpp asks dnsbl-cache).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/rbl_options.h"

namespace sppd::rblspp {

// The session variables rblspp reads (unset = nullopt).
struct Environment {
  std::optional<std::string> rblspp;      // RBLSPP, as tcprules set it
  std::optional<std::string> rcpt_count;  // SMTPRCPTCOUNT: recipients accepted so far
  std::optional<std::string> remote_ip;   // TCPREMOTEIP
};

// One lookup's answer: the status and, for a listed -r zone (TXT), the text.
struct LookupAnswer {
  RblLookup status = RblLookup::kError;
  std::string text;
};
// Looks up the client (ip) for an -r or -a step.
using Lookup = std::function<LookupAnswer(const RblStep& step, const std::string& ip)>;

// The refusal for this RCPT, or nullopt to say nothing (accept). args: the plugin's argv
// after argv[0]. A command line rblsmtpd would reject (unknown option, missing argument)
// refuses with 451 and sets *problem to the reason, so a broken config line never lets mail
// through unchecked; problem is also set when the client's address is unusable (each
// lookup then counts as a DNS error).
std::optional<RblBlock> verdict(const std::vector<std::string>& args, const Environment& env,
                                const Lookup& lookup, std::string* problem);

// The plugin's stdout for a refusal: qmail-spp's "E<code> <text>\n".
std::string plugin_output(const RblBlock& block);
// Its stderr line, as rblsmtpd's: "rblspp: <ip> pid <pid>: <code> <text>\n".
std::string log_line(const std::string& ip, long pid, const RblBlock& block);

}  // namespace sppd::rblspp
