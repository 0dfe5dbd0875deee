// Tests for pluginrunner/plugin_config: qmail's control_readfile rules and qmail-spp's
// sections (spec qmail-spp.md §2.1-2.3), and the plugin-file cache on real files in a
// temporary qmail home.
#include "pluginrunner/plugin_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/common/test_support.h"

namespace sppd::pluginrunner {
namespace {

using Lines = std::vector<std::string>;
using namespace std::string_literals;

TEST(ControlLines, StripsTrailingSpacesAndTabsButNotCarriageReturns) {
  EXPECT_EQ(control_lines("plugins/a  \t\nplugins/b\r\nplugins/c\r \n"),
            (Lines{"plugins/a", "plugins/b\r", "plugins/c\r"}));
}

TEST(ControlLines, KeepsLeadingWhitespace) {
  EXPECT_EQ(control_lines("  plugins/a\n\tplugins/b\n"), (Lines{"  plugins/a", "\tplugins/b"}));
}

TEST(ControlLines, CommentsOnlyAtColumnZero) {
  EXPECT_EQ(control_lines("# comment\n  # not a comment\n#\nplugins/a # kept\n"),
            (Lines{"  # not a comment", "plugins/a # kept"}));
}

TEST(ControlLines, DropsEmptyAndBlankLines) {
  EXPECT_EQ(control_lines("\n\n  \n\t\nplugins/a\n\n"), (Lines{"plugins/a"}));
  EXPECT_EQ(control_lines(""), Lines{});
}

TEST(ControlLines, LastLineWithoutNewlineCounts) {
  EXPECT_EQ(control_lines("[rcpt]\nplugins/last"), (Lines{"[rcpt]", "plugins/last"}));
}

TEST(ControlLines, ANulByteSplitsALine) {
  EXPECT_EQ(control_lines("plugins/a\0plugins/b\nplugins/c\0\n"s),
            (Lines{"plugins/a", "plugins/b", "plugins/c"}));
}

TEST(PluginsBySection, SectionIsTheSecondCharacterOnly) {
  Lines lines = {"[cheese]", "c1", "[hx-anything]", "h1", "[mail]", "m1", "[rcpt]", "r1",
                 "[data]",   "d1", "[auth]",        "a1", "[c",     "c2"};
  EXPECT_EQ(plugins_by_section(lines), (Lines{"cc1", "hh1", "mm1", "rr1", "dd1", "aa1", "cc2"}));
}

TEST(PluginsBySection, OtherSectionsAreDummies) {
  Lines lines = {"before/any/section",
                 "[Connection]",
                 "x1",
                 "[envelope]",
                 "x2",
                 "[pass]",
                 "x3",
                 "[",
                 "x4",
                 "[]",
                 "x5",
                 "[mail]",
                 "m1"};
  EXPECT_EQ(plugins_by_section(lines), (Lines{"mm1"}));
}

TEST(PluginsBySection, RepeatedSectionsAppendInFileOrder) {
  Lines lines = {"[rcpt]", "r1", "[mail]", "m1", "[rcpt]", "r2", ":plugins/rblspp -r zone"};
  EXPECT_EQ(plugins_by_section(lines), (Lines{"rr1", "mm1", "rr2", "r:plugins/rblspp -r zone"}));
}

TEST(PluginsBySection, LinesAreKeptVerbatim) {
  Lines lines = {"[mail]", "  plugins/leading", "plugins/crlf\r", "  # not a comment",
                 "plugins/foo -x"};
  EXPECT_EQ(plugins_by_section(lines), (Lines{"m  plugins/leading", "mplugins/crlf\r",
                                              "m  # not a comment", "mplugins/foo -x"}));
}

class PluginFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(temp_.create("sppd-plugin-config-test"));
    home_ = temp_.path();
    ASSERT_EQ(mkdir((home_ + "/control").c_str(), 0755), 0);
  }
  void TearDown() override { ASSERT_TRUE(temp_.remove()); }
  void write(const std::string& relative, const std::string& text) {
    std::ofstream(home_ + "/" + relative, std::ios::binary | std::ios::trunc) << text;
  }

  test_support::TempDir temp_;
  std::string home_;
  PluginFileCache cache_;
};

TEST_F(PluginFileTest, ReadsARelativePathFromQmailHome) {
  write("control/smtpplugins",
        "# seed\n[mail]\nplugins/authrequired\n[rcpt]\n"
        "plugins/ifauthskip\n:plugins/rblspp -r zen.example\n");
  PluginConfig config = cache_.read("control/smtpplugins", home_);
  EXPECT_EQ(config.status, ConfigStatus::kOk);
  EXPECT_EQ(config.plugins, (Lines{"mplugins/authrequired", "rplugins/ifauthskip",
                                   "r:plugins/rblspp -r zen.example"}));
}

TEST_F(PluginFileTest, ReadsAnAbsolutePath) {
  write("control/msaplugins", "[mail]\nplugins/authrequired\n");
  PluginConfig config = cache_.read(home_ + "/control/msaplugins", "/nonexistent");
  EXPECT_EQ(config.status, ConfigStatus::kOk);
  EXPECT_EQ(config.plugins, (Lines{"mplugins/authrequired"}));
}

TEST_F(PluginFileTest, MissingFileIsAStatus) {
  PluginConfig config = cache_.read("control/smtpplugins", home_);
  EXPECT_EQ(config.status, ConfigStatus::kMissing);
  EXPECT_STREQ(status_name(config.status), "missing");
  EXPECT_TRUE(config.plugins.empty());
}

TEST_F(PluginFileTest, OtherErrorsAreErrors) {
  PluginConfig directory = cache_.read("control", home_);
  EXPECT_EQ(directory.status, ConfigStatus::kError);
  EXPECT_NE(directory.error.find(home_ + "/control"), std::string::npos) << directory.error;
  write("control/file", "x\n");
  PluginConfig not_a_dir = cache_.read("control/file/smtpplugins", home_);
  EXPECT_EQ(not_a_dir.status, ConfigStatus::kError);
  EXPECT_EQ(cache_.read("", home_).status, ConfigStatus::kError);
  if (geteuid() != 0) {
    write("control/secret", "[mail]\nx\n");
    chmod((home_ + "/control/secret").c_str(), 0);
    EXPECT_EQ(cache_.read("control/secret", home_).status, ConfigStatus::kError);
  }
}

TEST_F(PluginFileTest, AChangedFileIsReadAgain) {
  write("control/smtpplugins", "[mail]\nplugins/one\n");
  EXPECT_EQ(cache_.read("control/smtpplugins", home_).plugins, (Lines{"mplugins/one"}));
  EXPECT_EQ(cache_.read("control/smtpplugins", home_).plugins, (Lines{"mplugins/one"}));
  write("control/smtpplugins", "[mail]\nplugins/one\nplugins/two\n");
  EXPECT_EQ(cache_.read("control/smtpplugins", home_).plugins,
            (Lines{"mplugins/one", "mplugins/two"}));
  // Replaced by rename (a new inode), same size.
  write("control/new", "[rcpt]\nplugins/one\nplugins/two\n");
  ASSERT_EQ(rename((home_ + "/control/new").c_str(), (home_ + "/control/smtpplugins").c_str()), 0);
  EXPECT_EQ(cache_.read("control/smtpplugins", home_).plugins,
            (Lines{"rplugins/one", "rplugins/two"}));
  unlink((home_ + "/control/smtpplugins").c_str());
  EXPECT_EQ(cache_.read("control/smtpplugins", home_).status, ConfigStatus::kMissing);
}

}  // namespace
}  // namespace sppd::pluginrunner
