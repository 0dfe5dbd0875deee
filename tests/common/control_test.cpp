// Tests for common/control: qmail's control-file reading rules.
#include "common/control.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

namespace sppd::control {
namespace {

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sppd-control-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { system(("rm -rf " + dir_).c_str()); }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(ControlTest, ReadLinesSkipsCommentsEmptyLinesAndTrailingWhitespace) {
  auto lines = read_lines(write("rcpthosts", "# hosts\nexample.com \t\n\n.example.org\n"));
  ASSERT_TRUE(lines);
  EXPECT_EQ(*lines, (std::vector<std::string>{"example.com", ".example.org"}));
}

TEST_F(ControlTest, MissingFileIsNulloptAndNumbersFallBack) {
  EXPECT_FALSE(read_lines(dir_ + "/absent"));
  EXPECT_FALSE(read_line(dir_ + "/absent"));
  EXPECT_EQ(read_long(dir_ + "/absent", 1200), 1200);
  EXPECT_EQ(read_long(write("databytes", "5000\n"), 0), 5000);
  EXPECT_THROW(read_long(write("bad", "lots\n"), 0), ControlError);
  EXPECT_EQ(*read_line(write("me", "mx.example.com  \nsecond\n")), "mx.example.com");
}

}  // namespace
}  // namespace sppd::control
