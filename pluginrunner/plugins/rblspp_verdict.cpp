// rblspp's decision (contract in rblspp_verdict.h). Pure: no I/O but the lookup callback.
#include "pluginrunner/plugins/rblspp_verdict.h"

#include <arpa/inet.h>

namespace sppd::rblspp {
namespace {

// SMTPRCPTCOUNT as qmail-spp exports it: a decimal count; anything else counts as none.
bool recipient_accepted(const std::optional<std::string>& count) {
  if (!count || count->empty()) return false;
  bool nonzero = false;
  for (char c : *count) {
    if (c < '0' || c > '9') return false;
    nonzero |= c != '0';
  }
  return nonzero;
}

bool is_ip(const std::string& text) {
  in6_addr address;
  return inet_pton(AF_INET, text.c_str(), &address) == 1 ||
         inet_pton(AF_INET6, text.c_str(), &address) == 1;
}

}  // namespace

std::optional<RblBlock> verdict(const std::vector<std::string>& args, const Environment& env,
                                const Lookup& lookup, std::string* problem) {
  std::string why;
  std::optional<std::vector<RblStep>> steps = parse_rbl_options(args, &why);
  if (!steps) {
    // "rbl: -r needs an argument" -> "usage: -r needs an argument"
    *problem = "usage: " + why.substr(why.find(": ") + 2);
    return RblBlock{"451", "temporary RBL lookup error"};
  }
  // A recipient of this transaction passed already: it was checked then.
  if (recipient_accepted(env.rcpt_count)) return std::nullopt;
  if (env.rblspp) return rbl_block_from_env(*env.rblspp);

  std::string ip = env.remote_ip.value_or("");
  bool usable = is_ip(ip);
  if (!usable) problem->assign("TCPREMOTEIP '" + ip + "' is not an IP address");
  RblCheck check(*steps, ip);
  while (const RblStep* step = check.next_lookup()) {
    LookupAnswer answer = usable ? lookup(*step, ip) : LookupAnswer{};
    check.answer(answer.status, answer.text);
  }
  return check.block();
}

std::string plugin_output(const RblBlock& block) {
  // One line whatever the text holds (a tcprules value may hold anything): a line end in it
  // would end the command and start another.
  std::string text = block.text;
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = '?';
  }
  return "E" + block.code + " " + text + "\n";
}

std::string log_line(const std::string& ip, long pid, const RblBlock& block) {
  return "rblspp: " + ip + " pid " + std::to_string(pid) + ": " + block.code + " " + block.text +
         "\n";
}

}  // namespace sppd::rblspp
