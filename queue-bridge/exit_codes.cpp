// exit_codes implementation: qmail_close() of notqmail qmail.c as a table, plus the custom
// error text convention of notqmail (exit 82, fd 6) and sagredo/indimail (exit 88).
// Pure; see exit_codes.h. The spec is shared/spec/qmail-protocols.md §1.2 and §1.3.
#include "queue-bridge/exit_codes.h"

#include <sys/wait.h>

namespace sppd::queue_bridge {
namespace {

Verdict temp(std::string text) { return Verdict{Status::kTemp, std::move(text)}; }
Verdict perm(std::string text) { return Verdict{Status::kPerm, std::move(text)}; }

// The text after the D/Z byte, made safe for one SMTP reply line and one frame value:
// trailing line ends go, any other control byte (NUL, CR, LF, ...) becomes a space.
std::string clean_custom_text(std::string_view rest) {
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) rest.remove_suffix(1);
  std::string out;
  out.reserve(rest.size());
  for (char c : rest) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(byte < 0x20 || byte == 0x7f ? ' ' : c);
  }
  return out;
}

// qmail_close()'s switch for a normal exit with a code other than 0.
Verdict verdict_for_code(int code) {
  switch (code) {
    case 115:  // "compatibility", as in qmail.c
    case 11:
      return perm("envelope address too long for qq (#5.1.3)");
    case 31:
      return perm("mail server permanently rejected message (#5.3.0)");
    case 51:
      return temp("qq out of memory (#4.3.0)");
    case 52:
      return temp("qq timeout (#4.3.0)");
    case 53:
      return temp("qq write error or disk full (#4.3.0)");
    case 54:
      return temp("qq read error (#4.3.0)");
    case 55:
      return temp("qq unable to read configuration (#4.3.0)");
    case 56:
      return temp("qq trouble making network connection (#4.3.0)");
    case 61:
      return temp("qq trouble in home directory (#4.3.0)");
    case 62:
    case 63:
    case 64:
    case 65:
    case 66:
      return temp("qq trouble creating files in queue (#4.3.0)");
    case 71:
      return temp("mail server temporarily rejected message (#4.3.0)");
    case 72:
      return temp("connection to mail server timed out (#4.4.1)");
    case 73:
      return temp("connection to mail server rejected (#4.4.1)");
    case 74:
      return temp("communication with mail server failed (#4.4.2)");
    case 91:  // envelope format error: qmail.c falls through to 81's text
    case 81:
      return temp("qq internal bug (#4.3.0)");
    case 120:
      return temp("unable to exec qq (#4.3.0)");
    default:
      if (code >= 11 && code <= 40) return perm("qq permanent problem (#5.3.0)");
      return temp("qq temporary problem (#4.3.0)");
  }
}

}  // namespace

const char* status_name(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kTemp:
      return "temp";
    case Status::kPerm:
      return "perm";
  }
  return "temp";
}

Verdict verdict_for_exit(int wait_status, std::string_view custom_text, pid_t pid, time_t now,
                         bool envelope_failed) {
  if (!WIFEXITED(wait_status)) return temp("qq crashed (#4.3.0)");
  int code = WEXITSTATUS(wait_status);
  if ((code == 82 || code == 88) && custom_text.size() > 2) {
    if (custom_text[0] == 'D') return perm(clean_custom_text(custom_text.substr(1)));
    if (custom_text[0] == 'Z') return temp(clean_custom_text(custom_text.substr(1)));
  }
  if (code == 0) {
    // qmail.c: "case 0: if (!qq->flagerr) return ""; /* fall through */ case 54: ..."
    if (envelope_failed) return temp("qq read error (#4.3.0)");
    return Verdict{Status::kOk, "ok " + std::to_string(static_cast<long long>(now)) + " qp " +
                                    std::to_string(static_cast<long>(pid))};
  }
  return verdict_for_code(code);
}

Verdict start_failure_verdict() { return temp("qqt failure (#4.3.0)"); }

Verdict timeout_verdict() { return temp("qq timeout (#4.3.0)"); }

}  // namespace sppd::queue_bridge
