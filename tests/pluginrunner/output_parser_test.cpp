// Tests for pluginrunner/output_parser: qmail-spp's stdout line rules (spec qmail-spp.md
// §3.1, §5) and the DECISIONS.md fixes (last line without "\n" kept whole, one "\r" stripped,
// output past max_output discarded). Pure: no processes.
#include "pluginrunner/output_parser.h"

#include <gtest/gtest.h>

namespace sppd::pluginrunner {
namespace {

using Commands = std::vector<std::string>;
using namespace std::string_literals;

// Everything a plugin printed, as one read, then EOF.
Commands parse(std::string_view output, size_t max_output = 65536) {
  OutputParser parser(max_output);
  parser.feed(output);
  parser.finish();
  return parser.commands();
}

TEST(CommandForLine, KeepsBareLettersForANOD) {
  EXPECT_EQ(command_for_line("A"), "A");
  EXPECT_EQ(command_for_line("Nwhatever follows"), "N");
  EXPECT_EQ(command_for_line("O ok"), "O");
  EXPECT_EQ(command_for_line("Dbye"), "D");
}

TEST(CommandForLine, KeepsTextCommandsWhole) {
  for (std::string line : {"E550 no", "R421 go", "P250-x", "HX-Spam: yes", "Cnew@example.org",
                           "SFOO=bar", "UFOO", "LM550 later", "LR451 later", "LD554 later"}) {
    EXPECT_EQ(command_for_line(line), line);
  }
  // Empty texts are still commands (qmail-spp acts on "H\n": an empty header line).
  EXPECT_EQ(command_for_line("H"), "H");
  EXPECT_EQ(command_for_line("E"), "E");
  EXPECT_EQ(command_for_line("LM"), "LM");
}

TEST(CommandForLine, IgnoresUnknownAndLowerCaseLetters) {
  EXPECT_EQ(command_for_line(""), std::nullopt);
  EXPECT_EQ(command_for_line("e550 lower case"), std::nullopt);
  EXPECT_EQ(command_for_line("X-Header: y"), std::nullopt);
  EXPECT_EQ(command_for_line("250 ok"), std::nullopt);
  EXPECT_EQ(command_for_line(" E550 leading space"), std::nullopt);
  EXPECT_EQ(command_for_line("L"), std::nullopt);
  EXPECT_EQ(command_for_line("LX550 x"), std::nullopt);
  EXPECT_EQ(command_for_line("Lm550 x"), std::nullopt);
}

TEST(CommandForLine, ANulByteEndsTheLine) {
  EXPECT_EQ(command_for_line("HX\0Y"s), "HX");
  EXPECT_EQ(command_for_line("\0E550"s), std::nullopt);
}

TEST(IsTerminating, ExactlyANOERD) {
  for (char c : std::string("ANOERD")) EXPECT_TRUE(is_terminating(c)) << c;
  for (char c : std::string("PHCSUL aneX")) EXPECT_FALSE(is_terminating(c)) << c;
}

TEST(OutputParser, EmptyLinesAreNoOps) {
  EXPECT_EQ(parse("\n\nHX\n\n"), (Commands{"HX"}));
  EXPECT_EQ(parse("\n"), Commands{});
  EXPECT_EQ(parse(""), Commands{});
}

TEST(OutputParser, LastLineWithoutNewlineKeepsAllItsCharacters) {
  // qmail-spp 0.42 sent "554 go awa" here (DECISIONS.md fix).
  EXPECT_EQ(parse("E554 go away"), (Commands{"E554 go away"}));
  EXPECT_EQ(parse("HX\nE550 ... addresses."), (Commands{"HX", "E550 ... addresses."}));
  // qmail-spp ignored a lone final character; it is a whole line now.
  EXPECT_EQ(parse("A"), (Commands{"A"}));
}

TEST(OutputParser, StripsOneTrailingCarriageReturn) {
  EXPECT_EQ(parse("P250-x\r\nE550 y\r\n"), (Commands{"P250-x", "E550 y"}));
  EXPECT_EQ(parse("Px\r\r\n"), (Commands{"Px\r"}));
  EXPECT_EQ(parse("E550 no newline\r"), (Commands{"E550 no newline"}));
  EXPECT_EQ(parse("\r\n\r"), Commands{});
  EXPECT_EQ(parse("H\rX\n"), (Commands{"H\rX"}));
}

TEST(OutputParser, StopsAtTheFirstTerminatingCommand) {
  for (std::string terminator : {"A", "N", "O", "E550 no", "R421 bye", "D"}) {
    OutputParser parser(65536);
    EXPECT_FALSE(parser.feed("HX\nSFOO=1\n" + terminator + "\nHY\nE550 later\n"));
    EXPECT_TRUE(parser.terminated());
    EXPECT_FALSE(parser.feed("HZ\n"));
    parser.finish();
    EXPECT_EQ(parser.commands(), (Commands{"HX", "SFOO=1", terminator})) << terminator;
  }
}

TEST(OutputParser, NonTerminatingCommandsKeepReading) {
  OutputParser parser(65536);
  EXPECT_TRUE(parser.feed("HX\nPx\nCa@b\nSA=1\nUB\nLMm\nLRr\nLDd\nwhatever\n"));
  parser.finish();
  EXPECT_FALSE(parser.terminated());
  EXPECT_EQ(parser.commands(), (Commands{"HX", "Px", "Ca@b", "SA=1", "UB", "LMm", "LRr", "LDd"}));
}

TEST(OutputParser, JoinsLinesSplitAcrossReads) {
  OutputParser parser(65536);
  EXPECT_TRUE(parser.feed("HX-A"));
  EXPECT_TRUE(parser.feed("B: c\nE5"));
  EXPECT_FALSE(parser.feed("50 split\nHY\n"));
  parser.finish();
  EXPECT_EQ(parser.commands(), (Commands{"HX-AB: c", "E550 split"}));
}

TEST(OutputParser, ByteAtATime) {
  OutputParser parser(65536);
  std::string output = "HX\r\n\nE550 one by one\n";
  for (char c : output) parser.feed(std::string_view(&c, 1));
  parser.finish();
  EXPECT_EQ(parser.commands(), (Commands{"HX", "E550 one by one"}));
}

TEST(OutputParser, DiscardsOutputPastMaxOutput) {
  OutputParser parser(10);
  parser.feed("HA\nHB\nHCCCCCCC\nE550 late\n");
  parser.finish();
  // "HA\nHB\nHCCC" are the first 10 bytes; the cut line does not count.
  EXPECT_EQ(parser.commands(), (Commands{"HA", "HB"}));
  EXPECT_EQ(parser.discarded(), 25u - 10u);
  EXPECT_FALSE(parser.terminated());
}

TEST(OutputParser, MaxOutputOnALineBoundary) {
  OutputParser parser(6);
  parser.feed("HA\nHB\n");
  parser.feed("E550 too late\n");
  parser.finish();
  EXPECT_EQ(parser.commands(), (Commands{"HA", "HB"}));
  EXPECT_EQ(parser.discarded(), 14u);
}

TEST(OutputParser, FinishIsIdempotentAndEndsInput) {
  OutputParser parser(65536);
  parser.feed("HX");
  parser.finish();
  parser.finish();
  EXPECT_FALSE(parser.feed("HY\n"));
  EXPECT_EQ(parser.commands(), (Commands{"HX"}));
}

TEST(OutputParser, TakeCommandsMovesThemOut) {
  OutputParser parser(65536);
  parser.feed("HX\nN\n");
  Commands taken = parser.take_commands();
  EXPECT_EQ(taken, (Commands{"HX", "N"}));
  EXPECT_TRUE(parser.terminated());
}

}  // namespace
}  // namespace sppd::pluginrunner
