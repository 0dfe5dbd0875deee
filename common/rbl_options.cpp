// Parsing rblsmtpd's options (see rbl_options.h). Pure and unit-tested.
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
  std::vector<RblStep> steps;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word.size() < 2 || word[0] != '-') {
      *why = "rbl: expected an option, got '" + word + "'";
      return std::nullopt;
    }
    char option = word[1];
    auto argument = [&]() -> std::optional<std::string> {
      if (word.size() > 2) return word.substr(2);
      if (i + 1 < words.size()) return words[++i];
      return std::nullopt;
    };
    switch (option) {
      case 'b':
        steps.push_back({RblStep::Kind::kPermanent, "", ""});
        break;
      case 'B':
        steps.push_back({RblStep::Kind::kTemporary, "", ""});
        break;
      case 'c':
        steps.push_back({RblStep::Kind::kFailClosed, "", ""});
        break;
      case 'C':
        steps.push_back({RblStep::Kind::kFailOpen, "", ""});
        break;
      case 'r':
      case 'a':
      case 't': {
        auto value = argument();
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
          steps.push_back(
              {RblStep::Kind::kListA, value->substr(0, colon), value->substr(colon + 1)});
        } else {
          steps.push_back({RblStep::Kind::kListTxt, *value, ""});
        }
        break;
      }
      default:
        *why = "rbl: unknown option '" + word + "' (rblsmtpd knows -b -B -c -C -r -a -t)";
        return std::nullopt;
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

}  // namespace sppd
