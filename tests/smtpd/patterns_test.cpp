// Tests for smtpd/patterns: qmail-md pattern files — regex(7) lines, case-insensitive and
// unanchored, '!' inversion, bad regexes skipped with a warning — and vanilla badmailfrom
// entries keeping qmail's exact meaning.
#include "smtpd/patterns.h"

#include <gtest/gtest.h>

namespace sppd::smtpd {
namespace {

using Lines = std::vector<std::string>;

bool hits(const PatternFile& file, const std::string& subject) {
  return file.match(subject).has_value();
}

TEST(PatternFileTest, PlainEntriesKeepVanillaMeaning) {
  PatternFile bmf(Lines{"spammer@example.com", "@Bad.Example", "Mixed@Case.Example"}, "bmf",
                  nullptr);
  EXPECT_TRUE(hits(bmf, "spammer@example.com"));
  EXPECT_TRUE(hits(bmf, "SPAMMER@Example.COM"));
  EXPECT_FALSE(hits(bmf, "other@example.com"));
  EXPECT_FALSE(hits(bmf, "xspammer@example.com"));  // not a substring match, unlike a regex
  EXPECT_TRUE(hits(bmf, "anyone@bad.example"));
  EXPECT_TRUE(hits(bmf, "anyone@BAD.EXAMPLE"));
  EXPECT_FALSE(hits(bmf, "anyone@sub.bad.example"));
  EXPECT_TRUE(hits(bmf, "mixed@case.example"));
  EXPECT_FALSE(hits(bmf, "bad.example"));
  auto match = bmf.match("anyone@bad.example");
  ASSERT_TRUE(match);
  EXPECT_TRUE(match->plain);
  EXPECT_EQ(match->line, "@Bad.Example");
}

TEST(PatternFileTest, AtAloneMatchesAnAddressWithAnEmptyDomain) {
  PatternFile bmf(Lines{"@"}, "bmf", nullptr);
  EXPECT_TRUE(hits(bmf, "user@"));
  EXPECT_FALSE(hits(bmf, "user@example.com"));
}

TEST(PatternFileTest, RegexLinesAreExtendedCaseInsensitiveAndUnanchored) {
  PatternFile file(Lines{"^spam[0-9]+@", "(viagra|casino)\\.example$"}, "f", nullptr);
  EXPECT_TRUE(hits(file, "SPAM42@anywhere.example"));
  EXPECT_FALSE(hits(file, "spam@anywhere.example"));
  EXPECT_TRUE(hits(file, "a@mail.Casino.example"));
  EXPECT_FALSE(hits(file, "a@casino.example.org"));
  auto match = file.match("spam1@x");
  ASSERT_TRUE(match);
  EXPECT_FALSE(match->plain);
  EXPECT_EQ(match->line, "^spam[0-9]+@");
}

TEST(PatternFileTest, BangInvertsALine) {
  PatternFile file(Lines{"!@"}, "f", nullptr);  // qregex: refuse addresses without '@'
  EXPECT_TRUE(hits(file, "postmaster"));
  EXPECT_FALSE(hits(file, "postmaster@example.com"));
}

TEST(PatternFileTest, FirstMatchingLineInFileOrderIsReported) {
  PatternFile file(Lines{"@example\\.com$", "user@example.com"}, "f", nullptr);
  auto match = file.match("user@example.com");
  ASSERT_TRUE(match);
  EXPECT_EQ(match->line, "@example\\.com$");
}

TEST(PatternFileTest, BadRegexLineIsSkippedWithAWarningNamingFileAndLine) {
  std::vector<std::string> warnings;
  PatternFile file(Lines{"good@", "bad[", "other"}, "/control/badmailto", &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].rfind("/control/badmailto:2: bad regex \"bad[\"", 0), 0u) << warnings[0];
  EXPECT_EQ(file.size(), 2u);
  EXPECT_TRUE(hits(file, "other"));
}

TEST(PatternFileTest, ManyLinesInBlocksStillReportTheFirstMatchInFileOrder) {
  Lines lines;
  for (int i = 0; i < 150; ++i) lines.push_back("^user" + std::to_string(i) + "@");
  lines.push_back("(a)\\1@");  // a back reference: kept out of the alternations
  lines.push_back("@late\\.example$");
  lines.push_back("^user149@late");
  PatternFile file(lines, "f", nullptr);
  EXPECT_FALSE(hits(file, "nobody@example.com"));
  EXPECT_EQ(file.match("user149@x")->line, "^user149@");
  EXPECT_EQ(file.match("user149@late.example")->line, "^user149@");
  EXPECT_EQ(file.match("x@late.example")->line, "@late\\.example$");
  EXPECT_EQ(file.match("xaa@y")->line, "(a)\\1@");
  EXPECT_EQ(file.match("USER7@x")->line, "^user7@");
}

TEST(PatternFileTest, WhatCountsAsPlain) {
  EXPECT_TRUE(is_plain_pattern("user+tag@example.com"));
  EXPECT_TRUE(is_plain_pattern("@example.com"));
  EXPECT_TRUE(is_plain_pattern("mail.example.com"));
  EXPECT_FALSE(is_plain_pattern("!@"));
  EXPECT_FALSE(is_plain_pattern(".*@example.com"));
  EXPECT_FALSE(is_plain_pattern("^user@"));
  EXPECT_FALSE(is_plain_pattern("a|b"));
  EXPECT_FALSE(is_plain_pattern("[0-9]"));
}

}  // namespace
}  // namespace sppd::smtpd
