// SMTP reply texts. sppd advertises ENHANCEDSTATUSCODES and puts the RFC 2034 code in
// front of every reply but the greeting and HELO/EHLO (DECISIONS.md); the wording is
// qmail's. qmail-style texts carrying a "(#x.y.z)" suffix (from queue-bridge) are turned
// into "x.y.z text" here.
#pragma once

#include <string>
#include <string_view>

namespace sppd::smtpd {

// "554", "qq permanent problem (#5.3.0)" -> "554 5.3.0 qq permanent problem" (one reply
// line without its line end: the session adds CRLF to every reply).
// A text that already starts with an enhanced code is kept; a text with neither gets
// default_enhanced ("4.3.0" for 4xx, "5.3.0" for 5xx, "2.0.0" for 2xx when empty).
std::string qmail_reply(std::string_view code, std::string_view qmail_text,
                        std::string_view default_enhanced = "");

}  // namespace sppd::smtpd
