// rblsmtpd's options as data: the steps of a DNSBL check, parsed from the listener's `rbl`
// setting or the rblspp plugin's command line (ucspi-tcp rblsmtpd.c: options are acted on in
// command-line order, lookups stop at the first decision), and the decision they lead to
// (RblCheck). Pure; the callers do the lookups.
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
// The same for a command line already split into words (rblspp's argv after argv[0]), read
// as getopt reads rblsmtpd's: grouped flags ("-bC"), arguments glued or in the next word.
std::optional<std::vector<RblStep>> parse_rbl_options(const std::vector<std::string>& words,
                                                      std::string* why);

// A client rblsmtpd turns away: the reply code ("553" or "451") and the text.
struct RblBlock {
  std::string code;
  std::string text;
  bool operator==(const RblBlock&) const = default;
};

// RBLSMTPD (rblspp: RBLSPP) as tcprules set it, before any lookup: "" lets the client in
// without lookups (nullopt), "-text" is 553 text, anything else 451 with the whole value.
std::optional<RblBlock> rbl_block_from_env(const std::string& value);

// What one DNSBL lookup found (dnsbl-cache's kDnsblResult status).
enum class RblLookup { kListed, kClear, kError };

// rblsmtpd's decision (ucspi-tcp rblsmtpd.c) over the steps for one client, one lookup at a
// time, so the caller may do the lookups as it likes (smtpd asynchronously, rblspp blocking):
//   RblCheck check(steps, ip);
//   while (const RblStep* step = check.next_lookup()) check.answer(lookup(*step), text);
//   if (check.block()) ... refuse with check.block()->code and ->text
class RblCheck {
 public:
  RblCheck(const std::vector<RblStep>& steps, std::string ip);
  // The next -r / -a step to look up (acting on -b -B -c -C -t on the way), or nullptr when
  // the check is over: a step decided, or none is left.
  const RblStep* next_lookup();
  // The answer to the step next_lookup() returned; txt_text: the TXT text (-r zone only).
  void answer(RblLookup status, const std::string& txt_text);
  // After the check: the block, or nullopt if the client may talk to the SMTP service.
  const std::optional<RblBlock>& block() const { return block_; }
  // -t as last seen (60 if none): how long rblsmtpd's fake conversation may last.
  int seconds() const { return seconds_; }

 private:
  std::vector<RblStep> steps_;
  std::string ip_;
  size_t next_ = 0;
  bool permanent_ = false;    // -b
  bool fail_closed_ = false;  // -c
  bool dns_error_ = false;    // a lookup failed on the way: a listing is then 451, not 553
  bool decided_ = false;
  int seconds_ = 60;
  std::optional<RblBlock> block_;
};

// %IP% in an -r zone:text message becomes the client's address (indimail/qmail-md syntax).
std::string rbl_message(const std::string& text, const std::string& ip);

}  // namespace sppd
