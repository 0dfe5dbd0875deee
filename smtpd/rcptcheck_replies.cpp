// The rcptcheck exit-code table (see rcptcheck_replies.h). Every row is from the seed's
// README.antispam; 0 is "accept" there by omission and 100 is qmail-md's accept too (the
// Soffian and sagredo patches read 100 as "no mailbox": scripts written for them will not
// refuse under sppd, which follows DECISIONS.md).
#include "smtpd/rcptcheck_replies.h"

#include <map>

namespace sppd::smtpd {

RcptCheckVerdict rcptcheck_verdict(int exit_status) {
  using Action = RcptCheckVerdict::Action;
  static const std::map<int, const char*> kRefusals = {
      {1, "553 5.1.1 sorry, no mailbox here by that name."},
      {2, "421 4.3.0 unable to verify recipient/sender (misuse)"},
      {3, "421 4.3.0 unable to verify recipient/sender (internal)"},
      {11, "451 4.1.1 bad destination mailbox address"},
      {12, "451 4.1.2 bad destination system address"},
      {13, "451 4.1.3 bad destination mailbox address syntax"},
      {14, "451 4.1.4 destination mailbox address ambiguous"},
      {16, "451 4.1.6 mailbox has moved"},
      {17, "451 4.1.7 bad sender's mailbox address syntax"},
      {18, "451 4.1.8 bad sender's system address"},
      {21, "452 4.2.1 mailbox disabled, not accepting messages"},
      {22, "452 4.2.2 mailbox full"},
      {111, "421 4.3.0 unable to verify recipient/sender (temporary)"},
      {112, "421 4.3.0 unable to verify recipient/sender (greylisting)"},
  };
  if (exit_status == 0 || exit_status == 100) return {Action::kAccept, "", false};
  auto row = kRefusals.find(exit_status);
  if (row == kRefusals.end()) return {Action::kUnknown, kRcptCheckFailed, false};
  std::string reply = row->second;
  bool close = reply.compare(0, 4, "421 ") == 0;
  return {Action::kRefuse, std::move(reply), close};
}

}  // namespace sppd::smtpd
