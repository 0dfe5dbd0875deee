// Tests for smtpd/spam_controls: reading qmail-md's control files (defaults, numbers,
// datechecks and bigbrother syntax, pattern files named by tcprules) and the datechecks
// verdict at its boundary days.
#include "smtpd/spam_controls.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "common/control.h"
#include "tests/common/test_support.h"

namespace sppd::smtpd {
namespace {

using namespace std::chrono;

long days_of(int y, unsigned m, unsigned d) {
  return static_cast<long>(
      sys_days(year_month_day{year{y}, month{m}, day{d}}).time_since_epoch().count());
}

TEST(SpamControlsTest, DefaultsWithoutControlFiles) {
  test_support::TempDir dir;
  ASSERT_TRUE(dir.create("sppd-spam-controls"));
  SpamControls controls = load_spam_controls(dir.path(), "/var/qmail", nullptr);
  EXPECT_EQ(controls.tarpitcount, 0);
  EXPECT_EQ(controls.tarpitdelay, 5);
  EXPECT_EQ(controls.maxrcpt, 100);
  EXPECT_TRUE(controls.reqbrackets);
  EXPECT_FALSE(controls.log_smtp_in);
  EXPECT_EQ(controls.pattern_file(dir.path() + "/badmailfrom"), nullptr);
}

TEST(SpamControlsTest, ReadsControlFilesAndPatternFilesTcprulesName) {
  test_support::TempDir dir;
  ASSERT_TRUE(dir.create("sppd-spam-controls"));
  std::filesystem::create_directories(dir.path() + "/control/log");
  test_support::write_file(dir.path() + "/control/tarpitcount", "3\n");
  test_support::write_file(dir.path() + "/control/maxrcpt", "20\n");
  test_support::write_file(dir.path() + "/control/reqbrackets", "0\n");
  test_support::write_file(dir.path() + "/control/log/smtp_in", "1\n");
  test_support::write_file(dir.path() + "/control/badhelo", "^localhost$\n");
  test_support::write_file(dir.path() + "/control/bmf.mx", "@spam\\.example$\n");
  test_support::write_file(dir.path() + "/control/datechecks", "qmail-list-:7\n");
  test_support::write_file(dir.path() + "/control/bigbrother",
                           "Bad@Example.net:copy@example.net\n");
  TcpRules rules = TcpRules::parse("127.:allow,BADMAILFROM=\"control/bmf.mx\"\n", "tcp.smtp");
  SpamControls controls = load_spam_controls(dir.path() + "/control", dir.path(), &rules);
  EXPECT_EQ(controls.tarpitcount, 3);
  EXPECT_EQ(controls.maxrcpt, 20);
  EXPECT_FALSE(controls.reqbrackets);
  EXPECT_TRUE(controls.log_smtp_in);
  ASSERT_NE(controls.pattern_file(dir.path() + "/control/badhelo"), nullptr);
  const PatternFile* named = controls.pattern_file(controls.resolve("control/bmf.mx"));
  ASSERT_NE(named, nullptr);
  EXPECT_TRUE(named->match("x@spam.example"));
  ASSERT_EQ(controls.datechecks.size(), 1u);
  EXPECT_EQ(controls.datechecks[0], (std::pair<std::string, long>{"qmail-list-", 7}));
  ASSERT_EQ(controls.bigbrother.size(), 1u);
  EXPECT_EQ(controls.bigbrother[0].first, "bad@example.net");
  EXPECT_EQ(controls.bigbrother[0].second, "copy@example.net");
}

TEST(SpamControlsTest, MalformedLinesAreControlErrors) {
  test_support::TempDir dir;
  ASSERT_TRUE(dir.create("sppd-spam-controls"));
  test_support::write_file(dir.path() + "/datechecks", "no-days-here\n");
  EXPECT_THROW(load_spam_controls(dir.path(), "/", nullptr), control::ControlError);
  test_support::TempDir other;
  ASSERT_TRUE(other.create("sppd-spam-controls"));
  test_support::write_file(other.path() + "/maxrcpt", "lots\n");
  EXPECT_THROW(load_spam_controls(other.path(), "/", nullptr), control::ControlError);
}

TEST(SpamControlsTest, ClamdIsIpPortOrASocketPathCheckedWhenLoaded) {
  test_support::TempDir dir;
  ASSERT_TRUE(dir.create("sppd-spam-controls"));
  EXPECT_EQ(load_spam_controls(dir.path(), "/var/qmail", nullptr).clamd, "");
  for (std::string address : {"127.0.0.1:3310", "[::1]:3310", "/run/clamav/clamd.ctl"}) {
    test_support::write_file(dir.path() + "/clamd", address + "  \n");
    EXPECT_EQ(load_spam_controls(dir.path(), "/var/qmail", nullptr).clamd, address);
  }
  for (std::string bad : {"localhost:3310", "127.0.0.1", "127.0.0.1:0", "run/clamd.ctl"}) {
    test_support::write_file(dir.path() + "/clamd", bad + "\n");
    EXPECT_THROW(load_spam_controls(dir.path(), "/var/qmail", nullptr), control::ControlError)
        << bad;
  }
}

TEST(DateChecksTest, ExpiresTheDayAfterTheLimit) {
  std::vector<std::pair<std::string, long>> checks{{"qmail-list-", 7}};
  long today = days_of(2004, 11, 14);
  EXPECT_FALSE(date_expired("qmail-list-20041107@example.com", checks, today));  // 7 days
  EXPECT_TRUE(date_expired("qmail-list-20041106@example.com", checks, today));   // 8 days
  EXPECT_TRUE(date_expired("qmail-list-20041103@example.com", checks, today));   // the README's
  EXPECT_FALSE(date_expired("qmail-list-20041213@example.com", checks, today));  // future
  EXPECT_FALSE(date_expired("QMAIL-LIST-20041107@example.com", checks, today));
}

TEST(DateChecksTest, OnlyPrefixPlusEightDigitDatesAreChecked) {
  std::vector<std::pair<std::string, long>> checks{{"news-", 0}};
  long today = days_of(2024, 3, 1);
  EXPECT_TRUE(date_expired("news-20240229@example.com", checks, today));
  EXPECT_FALSE(date_expired("news-20240301@example.com", checks, today));
  EXPECT_FALSE(date_expired("news-2024022@example.com", checks, today));    // 7 digits
  EXPECT_FALSE(date_expired("news-20240229x@example.com", checks, today));  // trailing text
  EXPECT_FALSE(date_expired("news-20241341@example.com", checks, today));   // no such date
  EXPECT_FALSE(date_expired("other-20000101@example.com", checks, today));
}

}  // namespace
}  // namespace sppd::smtpd
