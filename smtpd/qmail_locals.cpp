// QmailLocals implementation (contract in qmail_locals.h). The files are read exactly as
// pluginrunner/realrcptto.cpp reads them (local_domains, virtual_domains, local_part_for), so
// the two agree on what is local; only the answer differs: "cannot be local" or "ask".
#include "smtpd/qmail_locals.h"

#include "common/ascii.h"
#include "common/control.h"

namespace sppd::smtpd {
namespace {

using ascii::lower;

}  // namespace

QmailLocals QmailLocals::load(const std::string& qmail_home) {
  const std::string dir = qmail_home + "/control/";
  QmailLocals result;
  try {
    // control/me counts only when control/locals does not exist (control_readfile's flagme).
    auto locals = control::read_lines(dir + "locals");
    if (!locals) {
      if (auto me = control::read_line(dir + "me")) locals = std::vector<std::string>{*me};
    }
    for (const std::string& line : locals.value_or(std::vector<std::string>{})) {
      result.locals_.insert(lower(line));
    }
    for (const std::string& line :
         control::read_lines(dir + "virtualdomains").value_or(std::vector<std::string>{})) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) result.virtual_keys_.insert(lower(line.substr(0, colon)));
    }
    auto percenthack = control::read_lines(dir + "percenthack");
    result.percenthack_ = percenthack && !percenthack->empty();
  } catch (const control::ControlError& e) {
    QmailLocals unknown;
    unknown.error_ = e.what();
    return unknown;
  }
  result.known_ = true;
  return result;
}

bool QmailLocals::may_be_local(std::string_view recipient) const {
  if (!known_) return true;
  // Without '@' qmail-send appends envnoathost (else me): pluginrunner reads those.
  const size_t at = recipient.rfind('@');
  if (at == std::string_view::npos) return true;
  // percenthack may turn user%host@hack into user@host, whose domain is another one.
  if (percenthack_ && recipient.find('%') != std::string_view::npos) return true;
  const std::string lowered = lower(recipient);
  const std::string_view folded = lowered;
  if (locals_.contains(folded.substr(at + 1))) return true;
  // virtualdomains keys as rewrite() tries them: the whole address, the domain, each ".suffix"
  // of it, the empty key. Any hit counts, even an exclusion line ("domain:") whose "not
  // local" depends on which key comes first: pluginrunner decides that.
  for (size_t k = 0; k <= folded.size(); ++k) {
    bool candidate = k == 0 || k == at + 1 || k == folded.size() || (k > at && folded[k] == '.');
    if (candidate && virtual_keys_.contains(folded.substr(k))) return true;
  }
  return false;
}

}  // namespace sppd::smtpd
