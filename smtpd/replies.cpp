// SMTP reply formatting with RFC 2034 enhanced codes in front (DECISIONS.md "SMTP
// replies"): qmail's "text (#x.y.z)" becomes "x.y.z text". Pure; used for fixed replies
// and for queue-bridge's qmail-queue texts, which may come from a QMAILQUEUE wrapper.
#include "smtpd/replies.h"

namespace sppd::smtpd {
namespace {

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

// Length of a "class.subject.detail" code at the start of text (RFC 3463: class 2, 4 or
// 5, then 1-3 digits twice), or 0 if there is none.
size_t enhanced_code_length(std::string_view text) {
  if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.') {
    return 0;
  }
  size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    size_t digits = 0;
    while (i < text.size() && is_digit(text[i]) && digits < 3) {
      ++i;
      ++digits;
    }
    if (digits == 0) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  if (i < text.size() && is_digit(text[i])) return 0;
  return i;
}

void trim_trailing_spaces(std::string_view* text) {
  while (!text->empty() && text->back() == ' ') text->remove_suffix(1);
}

}  // namespace

std::string qmail_reply(std::string_view code, std::string_view qmail_text,
                        std::string_view default_enhanced) {
  // One reply line only: a text from a queue wrapper must not inject more SMTP lines.
  std::string_view text = qmail_text.substr(0, qmail_text.find_first_of("\r\n"));
  trim_trailing_spaces(&text);

  std::string enhanced;
  if (size_t length = enhanced_code_length(text);
      length != 0 && (length == text.size() || text[length] == ' ')) {
    enhanced = std::string(text.substr(0, length));
    text.remove_prefix(length);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  } else if (text.size() >= 3 && text.ends_with(")")) {
    size_t open = text.rfind("(#");
    if (open != std::string_view::npos) {
      std::string_view inside = text.substr(open + 2, text.size() - open - 3);
      if (!inside.empty() && enhanced_code_length(inside) == inside.size()) {
        enhanced = std::string(inside);
        text = text.substr(0, open);
        trim_trailing_spaces(&text);
      }
    }
  }
  if (enhanced.empty() && !default_enhanced.empty()) enhanced = std::string(default_enhanced);
  if (enhanced.empty() && !code.empty()) {
    switch (code[0]) {
      case '2':
        enhanced = "2.0.0";
        break;
      case '4':
        enhanced = "4.3.0";
        break;
      case '5':
        enhanced = "5.3.0";
        break;
      default:
        break;  // 3xx and others carry no enhanced code (RFC 2034)
    }
  }
  // RFC 3463: the class must agree with the reply code; the reply code is what clients
  // act on, so a wrapper's "D... (#4.x.x)" is reported as 5.x.x.
  if (!enhanced.empty() && !code.empty() && (code[0] == '2' || code[0] == '4' || code[0] == '5')) {
    enhanced[0] = code[0];
  }

  std::string reply(code);
  if (!enhanced.empty()) {
    reply += ' ';
    reply += enhanced;
  }
  if (!text.empty()) {
    reply += ' ';
    reply += text;
  }
  return reply;
}

}  // namespace sppd::smtpd
