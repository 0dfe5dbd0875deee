// Loading the qmail-md anti-spam control files (see spam_controls.h). Runs in the worker
// before the sandbox, as root or the invoking user; never touches client data.
#include "smtpd/spam_controls.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>

#include "common/ascii.h"
#include "common/clamd_address.h"
#include "common/control.h"
#include "common/log.h"
#include "smtpd/settings.h"

namespace sppd::smtpd {
namespace {

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

using ascii::lower;

void load_pattern_file(SpamControls& controls, const std::string& path) {
  if (controls.pattern_files.contains(path)) return;
  auto lines = control::read_lines(path);
  if (!lines) {
    controls.pattern_files[path] = nullptr;
    return;
  }
  std::vector<std::string> warnings;
  controls.pattern_files[path] = std::make_shared<PatternFile>(*lines, path, &warnings);
  for (const std::string& warning : warnings) log::warn(warning);
}

// control/mxblacklist: one IP address per line, kept in inet_ntop's canonical form (the
// form dnsbl-cache compares exchanger addresses in).
std::vector<std::string> parse_mxblacklist(const std::vector<std::string>& lines,
                                           const std::string& path) {
  std::vector<std::string> out;
  for (const std::string& line : lines) {
    unsigned char bytes[16];
    char text[INET6_ADDRSTRLEN];
    int family = inet_pton(AF_INET, line.c_str(), bytes) == 1    ? AF_INET
                 : inet_pton(AF_INET6, line.c_str(), bytes) == 1 ? AF_INET6
                                                                 : 0;
    if (!family) {
      log::warn(path, ": \"", line, "\" is not an IP address; skipped");
      continue;
    }
    out.emplace_back(inet_ntop(family, bytes, text, sizeof(text)));
  }
  return out;
}

// "prefix:days" lines of control/datechecks.
std::vector<std::pair<std::string, long>> parse_datechecks(const std::vector<std::string>& lines,
                                                           const std::string& path) {
  std::vector<std::pair<std::string, long>> out;
  for (const std::string& line : lines) {
    size_t colon = line.rfind(':');
    char* end = nullptr;
    long days = colon == std::string::npos ? -1 : std::strtol(line.c_str() + colon + 1, &end, 10);
    if (colon == std::string::npos || colon == 0 || days < 0 || !end || *end != '\0') {
      throw control::ControlError(path + ": \"" + line + "\" is not prefix:days");
    }
    out.emplace_back(lower(line.substr(0, colon)), days);
  }
  return out;
}

// "watched@dom:copy@dom" lines of control/bigbrother.
std::vector<std::pair<std::string, std::string>> parse_bigbrother(
    const std::vector<std::string>& lines, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& line : lines) {
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == line.size()) {
      throw control::ControlError(path + ": \"" + line + "\" is not watched@domain:copy@domain");
    }
    out.emplace_back(lower(line.substr(0, colon)), line.substr(colon + 1));
  }
  return out;
}

}  // namespace

std::string SpamControls::resolve(const std::string& value) const {
  if (!value.empty() && value[0] == '/') return value;
  return qmail_home + "/" + value;
}

const PatternFile* SpamControls::pattern_file(const std::string& path) const {
  auto it = pattern_files.find(path);
  return it == pattern_files.end() ? nullptr : it->second.get();
}

SpamControls load_spam_controls(const std::string& control_dir, const std::string& qmail_home,
                                const TcpRules* tcprules) {
  SpamControls result;
  SpamControls* controls = &result;
  controls->control_dir = control_dir + "/";
  controls->qmail_home = qmail_home;
  const std::string& dir = controls->control_dir;
  for (const char* name : kPatternFiles) {
    load_pattern_file(*controls, dir + name);
    if (!tcprules) continue;
    for (const std::string& value : tcprules->values_of(upper(name))) {
      if (!value.empty()) load_pattern_file(*controls, controls->resolve(value));
    }
  }
  controls->tarpitcount = control::read_long(dir + "tarpitcount", 0);
  controls->tarpitdelay = control::read_long(dir + "tarpitdelay", 5);
  controls->maxrcpt = control::read_long(dir + "maxrcpt", 100);
  controls->reqbrackets = control::read_long(dir + "reqbrackets", 1) != 0;
  controls->databytes_plus =
      static_cast<unsigned long long>(std::max(0L, control::read_long(dir + "databytes+", 0)));
  if (auto lines = control::read_lines(dir + "datechecks")) {
    controls->datechecks = parse_datechecks(*lines, dir + "datechecks");
  }
  if (auto lines = control::read_lines(dir + "bigbrother")) {
    controls->bigbrother = parse_bigbrother(*lines, dir + "bigbrother");
  }
  if (auto clamd = control::read_line(dir + "clamd"); clamd && !clamd->empty()) {
    std::string why;
    if (!parse_clamd_address(*clamd, &why)) throw control::ControlError(dir + "clamd: " + why);
    controls->clamd = *clamd;
  }
  controls->mfcheck = static_cast<int>(control::read_long(dir + "mfcheck", 0));
  if (controls->mfcheck < 0 || controls->mfcheck > 2) {
    throw control::ControlError(dir + "mfcheck: must be 0, 1 or 2");
  }
  if (auto lines = control::read_lines(dir + "mxblacklist")) {
    controls->mxblacklist = parse_mxblacklist(*lines, dir + "mxblacklist");
  }
  controls->me = control::read_line(dir + "me").value_or("");
  controls->log_smtp_in = control::read_long(dir + "log/smtp_in", 0) != 0;
  controls->log_smtp_out = control::read_long(dir + "log/smtp_out", 0) != 0;
  return result;
}

void add_spam_controls(ListenerSettings& settings, const std::string& qmail_home) {
  try {
    settings.spam = load_spam_controls(settings.listener.control_dir, qmail_home,
                                       settings.tcprules ? &*settings.tcprules : nullptr);
  } catch (const std::exception& e) {
    if (settings.control_error.empty()) settings.control_error = e.what();
    log::error("listener ", settings.listener.name, ": unable to read controls: ", e.what());
  }
}

bool date_expired(const std::string& recipient,
                  const std::vector<std::pair<std::string, long>>& datechecks, long today_days) {
  size_t at = recipient.rfind('@');
  std::string local = lower(recipient.substr(0, at));
  for (const auto& [prefix, days] : datechecks) {
    if (local.size() != prefix.size() + 8 || !local.starts_with(prefix)) continue;
    std::string digits = local.substr(prefix.size());
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    using namespace std::chrono;
    year_month_day date{year{std::stoi(digits.substr(0, 4))},
                        month{static_cast<unsigned>(std::stoi(digits.substr(4, 2)))},
                        day{static_cast<unsigned>(std::stoi(digits.substr(6, 2)))}};
    if (!date.ok()) continue;  // not a date: not a dated address
    long age = today_days - static_cast<long>(sys_days(date).time_since_epoch().count());
    if (age > days) return true;
  }
  return false;
}

}  // namespace sppd::smtpd
