// Tests for the pure parts of pluginrunner/request: how commands change the environment the
// next plugin sees (S, U, C per section) and how a result is fitted into one 64 KiB frame.
// Running real plugins is in plugin_run_test.cpp.
#include "pluginrunner/request.h"

#include <gtest/gtest.h>

#include "common/protocol.h"

namespace sppd::pluginrunner {
namespace {

using Env = std::vector<std::string>;

Env applied(char section, Env env, const std::vector<std::string>& commands) {
  for (const auto& command : commands) apply_to_env(section, command, &env);
  return env;
}

TEST(ApplyToEnv, SReplacesOrAdds) {
  EXPECT_EQ(applied('h', {"A=1", "FOO=old", "B=2"}, {"SFOO=new"}), (Env{"A=1", "B=2", "FOO=new"}));
  EXPECT_EQ(applied('h', {"A=1"}, {"SFOO=x=y"}), (Env{"A=1", "FOO=x=y"}));
  EXPECT_EQ(applied('h', {"A=1"}, {"SFOO="}), (Env{"A=1", "FOO="}));
  // qmail's env_put keeps an entry without '=' (harmless: getenv never finds it).
  EXPECT_EQ(applied('h', {"A=1"}, {"SBARE"}), (Env{"A=1", "BARE"}));
  EXPECT_EQ(applied('h', {"A=1"}, {"S", "S=x"}), (Env{"A=1"}));
}

TEST(ApplyToEnv, URemoves) {
  EXPECT_EQ(applied('c', {"A=1", "FOO=x", "FOOBAR=y"}, {"UFOO"}), (Env{"A=1", "FOOBAR=y"}));
  EXPECT_EQ(applied('c', {"A=1"}, {"UNOTSET"}), (Env{"A=1"}));
}

TEST(ApplyToEnv, CSetsTheAddressOfItsSection) {
  EXPECT_EQ(applied('m', {"SMTPMAILFROM=old@x"}, {"Cnew@y"}), (Env{"SMTPMAILFROM=new@y"}));
  EXPECT_EQ(applied('r', {"SMTPMAILFROM=f@x", "SMTPRCPTTO=old@x"}, {"Cnew@y"}),
            (Env{"SMTPMAILFROM=f@x", "SMTPRCPTTO=new@y"}));
  EXPECT_EQ(applied('r', {}, {"C"}), (Env{"SMTPRCPTTO="}));
  for (char section : std::string("chda")) {
    EXPECT_EQ(applied(section, {"SMTPMAILFROM=f@x"}, {"Cnew@y"}), (Env{"SMTPMAILFROM=f@x"}));
  }
}

TEST(ApplyToEnv, OtherCommandsChangeNothing) {
  EXPECT_EQ(applied('m', {"A=1"}, {"HX: y", "P250 x", "LMz", "E550 no", "N"}), (Env{"A=1"}));
}

std::vector<std::string> commands_of(const ipc::Frame& frame) {
  std::vector<std::string> commands;
  for (auto c : frame.all("command")) commands.emplace_back(c);
  return commands;
}

TEST(ResultFrame, CarriesCommandsAndFailure) {
  RunResult result;
  result.commands = {"HX: y", "E550 no"};
  result.failure = "qmail-spp failure: plugins/x: child crashed (#4.3.0)";
  ipc::Frame frame = result_frame(7, result, "s1");
  EXPECT_EQ(frame.type, protocol::kPluginResult);
  EXPECT_EQ(frame.request_id, 7u);
  EXPECT_EQ(commands_of(frame), result.commands);
  EXPECT_EQ(frame.get_or("failure", ""), *result.failure);
  EXPECT_TRUE(ipc::encode(frame).has_value());
}

TEST(ResultFrame, EmptyResultIsAnEmptyFrame) {
  ipc::Frame frame = result_frame(1, RunResult{}, "s1");
  EXPECT_TRUE(frame.attrs.empty());
}

TEST(ResultFrame, DropsExcessCommandsButNeverTheTerminatingOne) {
  RunResult result;
  for (int i = 0; i < 5000; ++i) result.commands.push_back("HX-Filler: " + std::to_string(i));
  result.commands.push_back("E550 the verdict");
  result.failure = "qmail-spp failure: plugins/x: can't execute (#4.3.0)";
  ipc::Frame frame = result_frame(2, result, "s1");
  EXPECT_LE(frame.encoded_size(), ipc::kMaxFrameSize);
  EXPECT_TRUE(ipc::encode(frame).has_value());
  auto commands = commands_of(frame);
  ASSERT_GT(commands.size(), 1000u);
  EXPECT_LT(commands.size(), 5001u);
  EXPECT_EQ(commands.back(), "E550 the verdict");
  // The kept ones are a prefix, in order.
  for (size_t i = 0; i + 1 < commands.size(); ++i) EXPECT_EQ(commands[i], result.commands[i]);
  EXPECT_EQ(frame.get_or("failure", ""), *result.failure);
}

TEST(ResultFrame, CutsAHugeTerminatingCommand) {
  RunResult result;
  result.commands = {"HX", "E550 " + std::string(70000, 'x')};
  ipc::Frame frame = result_frame(3, result, "s1");
  EXPECT_TRUE(ipc::encode(frame).has_value());
  auto commands = commands_of(frame);
  ASSERT_FALSE(commands.empty());
  EXPECT_EQ(commands.back().substr(0, 5), "E550 ");
}

}  // namespace
}  // namespace sppd::pluginrunner
