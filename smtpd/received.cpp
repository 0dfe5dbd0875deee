// The Received: line at the top of every queued message, byte for byte as notqmail's
// received.c and date822fmt.c write it (spec qmail-protocols.md §2.8). Pure; the session
// passes the facts and the clock. Peer-supplied text goes through safeput.
#include "smtpd/received.h"

#include <cstdio>

#include "common/ascii.h"

namespace sppd::smtpd {
namespace {

// qmail's issafe(): what may appear unaltered in a header from peer-controlled text.
bool is_safe(char ch) {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
    return true;
  }
  switch (ch) {
    case '.':
    case '@':
    case '%':
    case '+':
    case '/':
    case '=':
    case ':':
    case '-':
    case '[':
    case ']':
      return true;
    default:
      return false;
  }
}

void safeput(std::string* out, const std::string& text) {
  for (char ch : text) out->push_back(is_safe(ch) ? ch : '?');
}

// qmail's case_diffs() != 0.
bool differs_ignoring_case(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return true;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii::lower(a[i]) != ascii::lower(b[i])) return true;
  }
  return false;
}

}  // namespace

std::string date822(time_t when) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm utc {};
  gmtime_r(&when, &utc);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%d %s %d %02d:%02d:%02d -0000", utc.tm_mday,
                kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
  return buffer;
}

std::string received_line(const ReceivedFacts& facts) {
  const std::string unknown = "unknown";
  const std::string& remote_host = facts.remote_host ? *facts.remote_host : unknown;
  const std::string& remote_ip = facts.remote_ip ? *facts.remote_ip : unknown;
  const std::string& local = facts.local_host ? *facts.local_host
                             : facts.local_ip ? *facts.local_ip
                                              : unknown;

  std::string line = "Received: from ";
  safeput(&line, remote_host);
  // qmail's fakehelo: the HELO argument is shown only when it says something new.
  if (facts.helo && differs_ignoring_case(remote_host, *facts.helo)) {
    line += " (HELO ";
    safeput(&line, *facts.helo);
    line += ")";
  }
  line += " (";
  if (facts.remote_info) {
    safeput(&line, *facts.remote_info);
    line += "@";
  }
  safeput(&line, remote_ip);
  line += ")\n  by ";
  safeput(&line, local);
  line += " with ";
  line += facts.protocol;
  line += "; ";
  line += date822(facts.when);
  line += "\n";
  return line;
}

}  // namespace sppd::smtpd
