// Tests for master/log_relay's LineSplitter: lines split on newline, partial lines kept
// until the rest arrives or EOF, overlong lines cut, CRLF trimmed.
#include "master/log_relay.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sppd::master {
namespace {

struct Collector {
  std::vector<std::string> lines;
  LineSplitter::Emit emit() {
    return [this](std::string_view line) { lines.emplace_back(line); };
  }
};

TEST(LineSplitterTest, SplitsAndBuffersPartialLines) {
  LineSplitter splitter;
  Collector out;
  splitter.feed("one\ntw", out.emit());
  EXPECT_EQ(out.lines, (std::vector<std::string>{"one"}));
  splitter.feed("o\r\nthree\n\nfour", out.emit());
  EXPECT_EQ(out.lines, (std::vector<std::string>{"one", "two", "three", ""}));
  splitter.finish(out.emit());
  EXPECT_EQ(out.lines.back(), "four");
  splitter.finish(out.emit());
  EXPECT_EQ(out.lines.size(), 5u);
}

TEST(LineSplitterTest, CutsOverlongLinesAndDropsTheirRest) {
  LineSplitter splitter(5);
  Collector out;
  splitter.feed("abcdefgh", out.emit());
  splitter.feed("ijk\nxy\n12345\n", out.emit());
  EXPECT_EQ(out.lines, (std::vector<std::string>{"abcde", "xy", "12345"}));
}

}  // namespace
}  // namespace sppd::master
