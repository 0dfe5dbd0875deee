// output_parser: qmail-spp's stdout protocol as pure code. Splits what a plugin prints into
// lines (spec qmail-spp.md §3.1 with the DECISIONS.md fixes) and keeps the lines that are
// commands (§5). No I/O and no failure: lines qmail-spp would ignore are ignored.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sppd::pluginrunner {

// A, N, O, E, R and D end a plugin's output: nothing after them is read.
bool is_terminating(char letter);

// The command one line stands for, or nullopt when qmail-spp ignores the line. The line comes
// without its "\n" and its trailing "\r" (split_line's job). A N O D are kept as the bare letter
// (qmail-spp ignores the rest); E R P H C S U LM LR LD are kept whole; an empty line, an
// unknown or lower-case letter and any other L line are ignored. A NUL byte ends the line.
std::optional<std::string> command_for_line(std::string_view line);

// Reads a plugin's output incrementally, as PluginProcess receives it.
class OutputParser {
 public:
  // Only the first max_output bytes count; the rest is discarded (DECISIONS.md).
  explicit OutputParser(size_t max_output) : max_output_(max_output) {}

  // Takes the next bytes. Returns false once no more output is wanted: a terminating command
  // was seen (the caller stops reading, as qmail-spp closes the pipe).
  bool feed(std::string_view bytes);
  // End of output: a last line without "\n" counts with all its characters (DECISIONS.md:
  // qmail-spp cut its last character). A line cut short by max_output does not count.
  void finish();

  bool terminated() const { return terminated_; }
  // Bytes thrown away because they came after max_output.
  size_t discarded() const { return discarded_; }
  const std::vector<std::string>& commands() const { return commands_; }
  std::vector<std::string> take_commands() { return std::move(commands_); }

 private:
  void take_line(std::string_view line);

  size_t max_output_;
  size_t accepted_ = 0;  // bytes within max_output seen so far
  size_t discarded_ = 0;
  std::string partial_;  // the current line, before its "\n"
  std::vector<std::string> commands_;
  bool terminated_ = false;
  bool finished_ = false;
};

}  // namespace sppd::pluginrunner
