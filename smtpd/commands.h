// Splitting an SMTP command line into verb and argument, as qmail's commands.c does:
// the verb is the text before the first space, matched case-insensitively; the argument
// starts after the run of spaces that follows (tabs are not separators).
// Pure functions; called by the session for every line before DATA.
#pragma once

#include <string>
#include <string_view>

namespace sppd::smtpd {

struct CommandLine {
  std::string verb;      // lower-cased
  std::string argument;  // as sent, after the spaces following the verb
};

// line has no CR/LF. Never fails: an empty line gives an empty verb.
CommandLine split_command(std::string_view line);

}  // namespace sppd::smtpd
