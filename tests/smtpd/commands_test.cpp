// Tests for smtpd/commands: verb/argument splitting as qmail's commands.c does it,
// including its quirks (tabs are not separators, leading spaces give an empty verb).
#include "smtpd/commands.h"

#include <gtest/gtest.h>

namespace sppd::smtpd {
namespace {

TEST(SplitCommandTest, VerbIsLowerCasedAndArgumentFollowsTheSpaces) {
  CommandLine command = split_command("MAIL FROM:<a@b>");
  EXPECT_EQ(command.verb, "mail");
  EXPECT_EQ(command.argument, "FROM:<a@b>");
  command = split_command("EhLo   client.example.org");
  EXPECT_EQ(command.verb, "ehlo");
  EXPECT_EQ(command.argument, "client.example.org");
}

TEST(SplitCommandTest, ArgumentKeepsInnerAndTrailingSpaces) {
  CommandLine command = split_command("MAIL FROM:<a@b>  SIZE=10 ");
  EXPECT_EQ(command.argument, "FROM:<a@b>  SIZE=10 ");
}

TEST(SplitCommandTest, NoArgument) {
  CommandLine command = split_command("QUIT");
  EXPECT_EQ(command.verb, "quit");
  EXPECT_EQ(command.argument, "");
  command = split_command("NOOP   ");
  EXPECT_EQ(command.verb, "noop");
  EXPECT_EQ(command.argument, "");
}

TEST(SplitCommandTest, EmptyLineGivesEmptyVerb) {
  CommandLine command = split_command("");
  EXPECT_EQ(command.verb, "");
  EXPECT_EQ(command.argument, "");
  command = split_command("  HELO x");
  EXPECT_EQ(command.verb, "");
  EXPECT_EQ(command.argument, "HELO x");
}

TEST(SplitCommandTest, TabIsNotASeparator) {
  CommandLine command = split_command("HELO\tx y");
  EXPECT_EQ(command.verb, "helo\tx");
  EXPECT_EQ(command.argument, "y");
}

TEST(SplitCommandTest, OnlyAsciiLettersAreFolded) {
  CommandLine command = split_command("DAT\xC4 x");
  EXPECT_EQ(command.verb, "dat\xC4");
}

}  // namespace
}  // namespace sppd::smtpd
