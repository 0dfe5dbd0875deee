// Tests for common/rbl_options: rblsmtpd's option string as ordered steps, and %IP% messages.
#include "common/rbl_options.h"

#include <gtest/gtest.h>

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

TEST(RblOptionsTest, MessagesGetTheClientAddress) {
  EXPECT_EQ(rbl_message("%IP% is listed, see http://x/?%IP%", "192.0.2.7"),
            "192.0.2.7 is listed, see http://x/?192.0.2.7");
  EXPECT_EQ(rbl_message("no address", "192.0.2.7"), "no address");
}

}  // namespace
}  // namespace sppd
