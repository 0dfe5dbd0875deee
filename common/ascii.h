// ASCII case folding as qmail does it (case_lowerb): only A-Z change, whatever the locale,
// so a control file's key and a client's address fold the same way in every program.
#pragma once

#include <string>
#include <string_view>

namespace sppd::ascii {

constexpr char lower(char ch) {
  return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
}

inline std::string lower(std::string_view text) {
  std::string folded(text);
  for (char& ch : folded) ch = lower(ch);
  return folded;
}

}  // namespace sppd::ascii
