// Tests for common/rbl_options: rblsmtpd's option string (and argv) as ordered steps, %IP%
// messages, RBLSMTPD/RBLSPP values, and RblCheck deciding as rblsmtpd.c does.
#include "common/rbl_options.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sppd {
namespace {

using Kind = RblStep::Kind;

TEST(RblOptionsTest, StepsKeepCommandLineOrder) {
  std::string why;
  auto steps =
      parse_rbl_options("-b -r bl.test -C -r\"black.test:Listed %IP%\" -a white.test -t 5", &why);
  ASSERT_TRUE(steps) << why;
  ASSERT_EQ(steps->size(), 6u);
  EXPECT_EQ((*steps)[0].kind, Kind::kPermanent);
  EXPECT_EQ((*steps)[1].kind, Kind::kListTxt);
  EXPECT_EQ((*steps)[1].zone, "bl.test");
  EXPECT_EQ((*steps)[2].kind, Kind::kFailOpen);
  EXPECT_EQ((*steps)[3].kind, Kind::kListA);
  EXPECT_EQ((*steps)[3].zone, "black.test");
  EXPECT_EQ((*steps)[3].text, "Listed %IP%");
  EXPECT_EQ((*steps)[4].kind, Kind::kAntiList);
  EXPECT_EQ((*steps)[5].kind, Kind::kTimeout);
  EXPECT_EQ((*steps)[5].seconds, 5);
}

TEST(RblOptionsTest, ErrorsNameTheOption) {
  std::string why;
  EXPECT_FALSE(parse_rbl_options("-r", &why));
  EXPECT_EQ(why, "rbl: -r needs an argument");
  EXPECT_FALSE(parse_rbl_options("-x zone", &why));
  EXPECT_EQ(why, "rbl: unknown option '-x' (rblsmtpd knows -b -B -c -C -r -a -t)");
  EXPECT_FALSE(parse_rbl_options("-t soon", &why));
  EXPECT_FALSE(parse_rbl_options("zone", &why));
  EXPECT_FALSE(parse_rbl_options("-r bad..zone", &why));
  EXPECT_EQ(why, "rbl: 'bad..zone' is not a DNS zone name");
  EXPECT_FALSE(parse_rbl_options("-a \"with space\"", &why));
  EXPECT_FALSE(parse_rbl_options("-r \"zone:open quote", &why));
  EXPECT_EQ(why, "rbl: unbalanced double quote");
  EXPECT_TRUE(parse_rbl_options("", &why)->empty());
}

TEST(RblOptionsTest, ArgvIsReadAsGetoptReadsIt) {
  std::string why;
  // rblspp's argv: no shell quoting to undo; flags grouped, arguments glued or separate.
  auto steps = parse_rbl_options(
      std::vector<std::string>{"-bC", "-rbl.test", "-r", "al.test:Listed %IP%, see \"x\"", "-ca",
                               "white.test", "-t60"},
      &why);
  ASSERT_TRUE(steps) << why;
  ASSERT_EQ(steps->size(), 7u);
  EXPECT_EQ((*steps)[0].kind, Kind::kPermanent);
  EXPECT_EQ((*steps)[1].kind, Kind::kFailOpen);
  EXPECT_EQ((*steps)[2].kind, Kind::kListTxt);
  EXPECT_EQ((*steps)[2].zone, "bl.test");
  EXPECT_EQ((*steps)[3].kind, Kind::kListA);
  EXPECT_EQ((*steps)[3].text, "Listed %IP%, see \"x\"");
  EXPECT_EQ((*steps)[4].kind, Kind::kFailClosed);
  EXPECT_EQ((*steps)[5].kind, Kind::kAntiList);
  EXPECT_EQ((*steps)[5].zone, "white.test");
  EXPECT_EQ((*steps)[6].seconds, 60);
  EXPECT_FALSE(parse_rbl_options(std::vector<std::string>{"-bx"}, &why));
  EXPECT_EQ(why, "rbl: unknown option '-x' (rblsmtpd knows -b -B -c -C -r -a -t)");
  EXPECT_FALSE(parse_rbl_options(std::vector<std::string>{"-b", "-r"}, &why));
  EXPECT_EQ(why, "rbl: -r needs an argument");
  EXPECT_FALSE(parse_rbl_options(std::vector<std::string>{"-r", "bl.test", "prog"}, &why));
  EXPECT_EQ(why, "rbl: expected an option, got 'prog'");
  // The string form groups flags the same way.
  EXPECT_EQ(parse_rbl_options("-bc -r bl.test", &why)->size(), 3u);
}

TEST(RblOptionsTest, EnvironmentValueDecidesBeforeAnyLookup) {
  EXPECT_EQ(rbl_block_from_env(""), std::nullopt);
  EXPECT_EQ(rbl_block_from_env("-Go away"), (RblBlock{"553", "Go away"}));
  EXPECT_EQ(rbl_block_from_env("-"), (RblBlock{"553", ""}));
  EXPECT_EQ(rbl_block_from_env("Busy - later"), (RblBlock{"451", "Busy - later"}));
}

// Runs an RblCheck over options, answering each lookup from answers (zone -> status; a
// missing zone is clear); returns the zones looked up, in order.
std::vector<std::string> run_check(RblCheck& check,
                                   const std::map<std::string, RblLookup>& answers) {
  std::vector<std::string> asked;
  while (const RblStep* step = check.next_lookup()) {
    asked.push_back(step->zone);
    auto it = answers.find(step->zone);
    RblLookup status = it == answers.end() ? RblLookup::kClear : it->second;
    check.answer(status, "text of " + step->zone);
  }
  return asked;
}

std::optional<RblBlock> decide(const std::string& options,
                               const std::map<std::string, RblLookup>& answers,
                               std::vector<std::string>* asked = nullptr) {
  std::string why;
  auto steps = parse_rbl_options(options, &why);
  EXPECT_TRUE(steps) << why;
  RblCheck check(*steps, "192.0.2.7");
  std::vector<std::string> zones = run_check(check, answers);
  if (asked) *asked = zones;
  return check.block();
}

TEST(RblCheckTest, DecidesAsRblsmtpd) {
  using enum RblLookup;
  std::vector<std::string> asked;
  // Unlisted: every zone asked, no block.
  EXPECT_EQ(decide("-r a.test -r b.test", {}, &asked), std::nullopt);
  EXPECT_EQ(asked, (std::vector<std::string>{"a.test", "b.test"}));
  // Listed: 451 by default, the TXT text; the first decision stops the lookups.
  EXPECT_EQ(decide("-r a.test -r b.test", {{"a.test", kListed}}, &asked),
            (RblBlock{"451", "text of a.test"}));
  EXPECT_EQ(asked, (std::vector<std::string>{"a.test"}));
  EXPECT_EQ(decide("-b -r a.test", {{"a.test", kListed}}), (RblBlock{"553", "text of a.test"}));
  // -b after the deciding -r is never read.
  EXPECT_EQ(decide("-r a.test -b", {{"a.test", kListed}}), (RblBlock{"451", "text of a.test"}));
  // The A form: its own text with %IP%.
  EXPECT_EQ(decide("-b -r \"a.test:%IP% listed\"", {{"a.test", kListed}}),
            (RblBlock{"553", "192.0.2.7 listed"}));
  // Anti-list first: listed there lets the client in without the -r lookup.
  EXPECT_EQ(decide("-a w.test -r a.test", {{"w.test", kListed}, {"a.test", kListed}}, &asked),
            std::nullopt);
  EXPECT_EQ(asked, (std::vector<std::string>{"w.test"}));
  EXPECT_EQ(decide("-a w.test -r a.test", {{"a.test", kListed}}),
            (RblBlock{"451", "text of a.test"}));
}

TEST(RblCheckTest, DnsErrorsFollowFailOpenOrClosed) {
  using enum RblLookup;
  std::vector<std::string> asked;
  // -C (default): an error on -r is not a listing, the lookups go on ...
  EXPECT_EQ(decide("-r e.test -r a.test", {{"e.test", kError}}, &asked), std::nullopt);
  EXPECT_EQ(asked, (std::vector<std::string>{"e.test", "a.test"}));
  // ... and any error on the way makes a later listing 451 even with -b.
  EXPECT_EQ(decide("-b -r e.test -r a.test", {{"e.test", kError}, {"a.test", kListed}}),
            (RblBlock{"451", "text of a.test"}));
  // -C: an error on -a whitelists.
  EXPECT_EQ(decide("-a e.test -r a.test", {{"e.test", kError}, {"a.test", kListed}}), std::nullopt);
  // -c: an error on -r refuses with 451, on -a does not whitelist.
  EXPECT_EQ(decide("-b -c -r e.test -r a.test", {{"e.test", kError}}, &asked),
            (RblBlock{"451", "temporary RBL lookup error"}));
  EXPECT_EQ(asked, (std::vector<std::string>{"e.test"}));
  EXPECT_EQ(decide("-c -a e.test -r a.test", {{"e.test", kError}, {"a.test", kListed}}),
            (RblBlock{"451", "text of a.test"}));
  // -t is remembered, nothing more.
  std::string why;
  RblCheck check(*parse_rbl_options("-t 5 -r a.test -t 7", &why), "192.0.2.7");
  run_check(check, {{"a.test", kListed}});
  EXPECT_EQ(check.seconds(), 5);
}

TEST(RblOptionsTest, MessagesGetTheClientAddress) {
  EXPECT_EQ(rbl_message("%IP% is listed, see http://x/?%IP%", "192.0.2.7"),
            "192.0.2.7 is listed, see http://x/?192.0.2.7");
  EXPECT_EQ(rbl_message("no address", "192.0.2.7"), "no address");
}

}  // namespace
}  // namespace sppd
