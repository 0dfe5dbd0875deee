// qmail-md's rcptcheck exit-code table (spec qmail-protocols.md §6.4, seed README.antispam;
// DECISIONS.md picks qmail-md's column): what a RCPT gets for the check program's exit status.
// Pure data, used by the worker (session_verify.cpp); the texts are qmail-md's, byte for byte.
#pragma once

#include <string>

namespace sppd::smtpd {

// The reply for a check that gave no usable answer: an exit status outside the table, a
// program that could not run, crashed or timed out. Not qmail-md's (its table has no such
// row): a temporary refusal of this recipient only, so the client retries it later and the
// session and its other recipients go on (421 would lose them).
inline constexpr char kRcptCheckFailed[] = "451 4.3.0 unable to verify recipient/sender (failure)";

struct RcptCheckVerdict {
  enum class Action {
    kAccept,   // 0 and 100: the recipient passes
    kRefuse,   // a row of the table: tarpit, then the reply
    kUnknown,  // not in the table: kRcptCheckFailed, logged, no tarpit
  };
  Action action = Action::kUnknown;
  std::string reply;   // kRefuse: the whole reply line, code first
  bool close = false;  // a 421: the session ends after it (RFC 5321 §3.8)
};

// The verdict for an exit status.
RcptCheckVerdict rcptcheck_verdict(int exit_status);

}  // namespace sppd::smtpd
