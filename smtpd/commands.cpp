// Command-line splitting for the SMTP session (qmail commands.c): verb before the first
// space, lower-cased; argument after the run of spaces. Pure and total: any line, even
// an empty one, yields a CommandLine. Runs in the unprivileged worker.
#include "smtpd/commands.h"

namespace sppd::smtpd {

CommandLine split_command(std::string_view line) {
  CommandLine result;
  size_t space = line.find(' ');
  std::string_view verb = line.substr(0, space);
  result.verb.reserve(verb.size());
  for (char ch : verb) {
    // ASCII only, like qmail's case_equals: no locale may change what a verb means.
    result.verb.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch);
  }
  if (space == std::string_view::npos) return result;
  size_t argument = line.find_first_not_of(' ', space);
  if (argument != std::string_view::npos) result.argument = std::string(line.substr(argument));
  return result;
}

}  // namespace sppd::smtpd
