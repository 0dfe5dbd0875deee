// Parsing rblsmtpd's options and deciding as rblsmtpd does (see rbl_options.h). Pure and
// unit-tested.
#include "common/rbl_options.h"

#include <cctype>
#include <cstdlib>

namespace sppd {
namespace {

// A zone must be a plain domain name (letters, digits, '-', '_', dots; labels of 1-63
// bytes): dnsbl-cache drops a worker that asks about anything else.
bool plain_domain(const std::string& zone) {
  if (zone.empty() || zone.size() > 253) return false;
  size_t label = 0;
  for (char c : zone) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

}  // namespace

std::optional<std::vector<RblStep>> parse_rbl_options(const std::string& options,
                                                      std::string* why) {
  // Words as a run file's shell would split them: blanks separate, "..." groups (messages
  // such as -r "zone:Sorry, you are listed" hold spaces).
  std::vector<std::string> words;
  std::string word;
  bool in_word = false, quoted = false;
  for (char c : options) {
    if (c == '"') {
      quoted = !quoted;
      in_word = true;
    } else if ((c == ' ' || c == '\t') && !quoted) {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  if (quoted) {
    *why = "rbl: unbalanced double quote";
    return std::nullopt;
  }
  if (in_word) words.push_back(word);
  return parse_rbl_options(words, why);
}

std::optional<std::vector<RblStep>> parse_rbl_options(const std::vector<std::string>& words,
                                                      std::string* why) {
  std::vector<RblStep> steps;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word.size() < 2 || word[0] != '-') {
      *why = "rbl: expected an option, got '" + word + "'";
      return std::nullopt;
    }
    // As getopt reads them: flags may be grouped ("-bC"), and an option with an argument
    // takes the rest of the word ("-rzone", "-brzone") or else the next word.
    for (size_t at = 1; at < word.size(); ++at) {
      char option = word[at];
      if (option == 'b' || option == 'B' || option == 'c' || option == 'C') {
        using Kind = RblStep::Kind;
        Kind kind = option == 'b'   ? Kind::kPermanent
                    : option == 'B' ? Kind::kTemporary
                    : option == 'c' ? Kind::kFailClosed
                                    : Kind::kFailOpen;
        steps.push_back({kind, "", ""});
        continue;
      }
      if (option != 'r' && option != 'a' && option != 't') {
        *why = std::string("rbl: unknown option '-") + option +
               "' (rblsmtpd knows -b -B -c -C -r -a -t)";
        return std::nullopt;
      }
      std::optional<std::string> value;
      if (at + 1 < word.size()) {
        value = word.substr(at + 1);
      } else if (i + 1 < words.size()) {
        value = words[++i];
      }
      if (!value || value->empty()) {
        *why = std::string("rbl: -") + option + " needs an argument";
        return std::nullopt;
      }
      if (option == 't') {
        char* end = nullptr;
        long seconds = strtol(value->c_str(), &end, 10);
        if (*end != '\0' || seconds < 0 || seconds > 86400) {
          *why = "rbl: -t needs a number of seconds, got '" + *value + "'";
          return std::nullopt;
        }
        steps.push_back({RblStep::Kind::kTimeout, "", "", static_cast<int>(seconds)});
      } else if (std::string zone = value->substr(0, value->find(':')); !plain_domain(zone)) {
        *why = "rbl: '" + zone + "' is not a DNS zone name";
        return std::nullopt;
      } else if (option == 'a') {
        steps.push_back({RblStep::Kind::kAntiList, *value, ""});
      } else if (size_t colon = value->find(':'); colon != std::string::npos) {
        steps.push_back({RblStep::Kind::kListA, value->substr(0, colon), value->substr(colon + 1)});
      } else {
        steps.push_back({RblStep::Kind::kListTxt, *value, ""});
      }
      break;  // the argument took the rest of the word
    }
  }
  return steps;
}

std::string rbl_message(const std::string& text, const std::string& ip) {
  std::string out = text;
  for (size_t at = out.find("%IP%"); at != std::string::npos;
       at = out.find("%IP%", at + ip.size())) {
    out.replace(at, 4, ip);
  }
  return out;
}

std::optional<RblBlock> rbl_block_from_env(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (value[0] == '-') return RblBlock{"553", value.substr(1)};
  return RblBlock{"451", value};
}

RblCheck::RblCheck(const std::vector<RblStep>& steps, std::string ip)
    : steps_(steps), ip_(std::move(ip)) {}

const RblStep* RblCheck::next_lookup() {
  for (; next_ < steps_.size() && !decided_; ++next_) {
    const RblStep& step = steps_[next_];
    switch (step.kind) {
      case RblStep::Kind::kPermanent:
        permanent_ = true;
        break;
      case RblStep::Kind::kTemporary:
        permanent_ = false;
        break;
      case RblStep::Kind::kFailClosed:
        fail_closed_ = true;
        break;
      case RblStep::Kind::kFailOpen:
        fail_closed_ = false;
        break;
      case RblStep::Kind::kTimeout:
        seconds_ = step.seconds;
        break;
      default:
        return &step;  // answer() moves next_ on
    }
  }
  return nullptr;
}

void RblCheck::answer(RblLookup status, const std::string& txt_text) {
  const RblStep& step = steps_[next_++];
  if (status == RblLookup::kError) dns_error_ = true;
  if (step.kind == RblStep::Kind::kAntiList) {
    // An anti-list answer lets the client in; so does a DNS error when failing open.
    decided_ = status == RblLookup::kListed || (status == RblLookup::kError && !fail_closed_);
  } else if (status == RblLookup::kListed) {
    std::string text =
        step.kind == RblStep::Kind::kListTxt ? txt_text : rbl_message(step.text, ip_);
    // rblsmtpd: any DNS error on the way makes the answer temporary, even with -b.
    block_ = RblBlock{permanent_ && !dns_error_ ? "553" : "451", text};
    decided_ = true;
  } else if (status == RblLookup::kError && fail_closed_) {
    block_ = RblBlock{"451", "temporary RBL lookup error"};  // a DNS error is never permanent
    decided_ = true;
  }
}

}  // namespace sppd
