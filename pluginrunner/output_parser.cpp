// OutputParser implementation (contract in output_parser.h). qmail-spp read with getln() and
// then overwrote the last byte with NUL, assuming "\n"; we strip "\n" and one "\r" instead, so
// a last line without "\n" and CRLF output both work as their authors meant (DECISIONS.md).
#include "pluginrunner/output_parser.h"

namespace sppd::pluginrunner {

bool is_terminating(char letter) {
  switch (letter) {
    case 'A':
    case 'N':
    case 'O':
    case 'E':
    case 'R':
    case 'D':
      return true;
    default:
      return false;
  }
}

std::optional<std::string> command_for_line(std::string_view line) {
  // qmail-spp handled the line as a C string: a NUL byte ends it.
  line = line.substr(0, line.find('\0'));
  if (line.empty()) return std::nullopt;
  switch (line[0]) {
    case 'A':
    case 'N':
    case 'O':
    case 'D':
      return std::string(1, line[0]);
    case 'E':
    case 'R':
    case 'P':
    case 'H':
    case 'C':
    case 'S':
    case 'U':
      return std::string(line);
    case 'L':
      if (line.size() >= 2 && (line[1] == 'M' || line[1] == 'R' || line[1] == 'D')) {
        return std::string(line);
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

bool OutputParser::feed(std::string_view bytes) {
  if (terminated_ || finished_) return false;
  if (accepted_ + bytes.size() > max_output_) {
    size_t keep = max_output_ - accepted_;
    discarded_ += bytes.size() - keep;
    bytes = bytes.substr(0, keep);
  }
  accepted_ += bytes.size();
  while (!bytes.empty() && !terminated_) {
    size_t newline = bytes.find('\n');
    if (newline == std::string_view::npos) {
      partial_.append(bytes);
      break;
    }
    if (partial_.empty()) {
      take_line(bytes.substr(0, newline));
    } else {
      partial_.append(bytes.substr(0, newline));
      std::string line = std::move(partial_);
      partial_.clear();
      take_line(line);
    }
    bytes.remove_prefix(newline + 1);
  }
  if (terminated_) partial_.clear();
  return !terminated_;
}

void OutputParser::finish() {
  if (finished_) return;
  finished_ = true;
  // A line that lost bytes to the cap is incomplete: running half a command is worse than
  // running none.
  if (!terminated_ && discarded_ == 0 && !partial_.empty()) {
    std::string line = std::move(partial_);
    take_line(line);
  }
  partial_.clear();
}

void OutputParser::take_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::optional<std::string> command = command_for_line(line);
  if (!command) return;
  if (is_terminating(line[0])) terminated_ = true;
  commands_.push_back(std::move(*command));
}

}  // namespace sppd::pluginrunner
