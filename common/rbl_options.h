// rblsmtpd's options as data: the steps of a DNSBL check, parsed from the listener's `rbl`
// setting or the rblspp plugin's command line (ucspi-tcp rblsmtpd.c: options are acted on in
// command-line order, lookups stop at the first decision). Pure; smtpd runs the steps.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sppd {

struct RblStep {
  enum class Kind {
    kPermanent,   // -b: listed clients get 553
    kTemporary,   // -B: listed clients get 451 (the default)
    kFailClosed,  // -c: a DNS error on -r lists, on -a does not whitelist
    kFailOpen,    // -C: a DNS error on -r does not list, on -a whitelists (the default)
    kListTxt,     // -r zone: TXT lookup, its text is the reason
    kListA,       // -r zone:text: A lookup, text with %IP% replaced is the reason
    kAntiList,    // -a zone: any A record whitelists the client
    kTimeout,     // -t n: seconds the fake conversation may last (0: say it once, close)
  };
  Kind kind;
  std::string zone;
  std::string text;
  int seconds = 60;
};

// Parses "-b -r zone -a zone -t 60" (options may also be glued: "-rzone"). nullopt with why
// for an unknown option or a missing argument.
std::optional<std::vector<RblStep>> parse_rbl_options(const std::string& options, std::string* why);

// %IP% in an -r zone:text message becomes the client's address (indimail/qmail-md syntax).
std::string rbl_message(const std::string& text, const std::string& ip);

}  // namespace sppd
