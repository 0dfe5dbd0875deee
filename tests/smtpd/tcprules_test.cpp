// Tests for smtpd/tcprules: the tcprules text format (values, ranges, errors with file:line)
// and tcpserver's lookup order for IPv4, IPv6 and host names.
#include "smtpd/tcprules.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

namespace sppd::smtpd {
namespace {

using Env = std::vector<std::pair<std::string, std::string>>;

TcpRules parse(const std::string& text) { return TcpRules::parse(text, "rules.txt"); }

// The value of VAR in the rule that matches, or "(no rule)" / "(deny)".
std::string which(const TcpRules& rules, const std::string& ip,
                  const std::optional<std::string>& host = std::nullopt) {
  auto rule = rules.match(ip, host);
  if (!rule) return "(no rule)";
  if (!rule->allow) return "(deny)";
  for (const auto& [name, value] : rule->env) {
    if (name == "RULE") return value;
  }
  return "(no RULE)";
}

TEST(TcpRulesParseTest, AllowWithVariables) {
  TcpRules rules = parse("127.:allow,RELAYCLIENT=\"\",DATABYTES='1000',X=/a,b:c/\n");
  auto rule = rules.match("127.0.0.1", std::nullopt);
  ASSERT_TRUE(rule);
  EXPECT_TRUE(rule->allow);
  EXPECT_EQ(rule->env, (Env{{"RELAYCLIENT", ""}, {"DATABYTES", "1000"}, {"X", "a,b:c"}}));
  EXPECT_FALSE(rules.uses_host_names());
}

TEST(TcpRulesParseTest, DenyCommentsBlankLinesAndTrailingWhitespace) {
  TcpRules rules = parse(
      "# comment\n"
      "\n"
      "10.0.0.1:deny  \t\n"
      "   \n"
      ":allow,RULE=\"default\"\r\n");
  EXPECT_EQ(which(rules, "10.0.0.1"), "(deny)");
  EXPECT_EQ(which(rules, "10.0.0.2"), "default");
}

TEST(TcpRulesParseTest, EmptyTextHasNoRules) {
  TcpRules rules = parse("");
  EXPECT_EQ(rules.match("192.0.2.7", std::string("host.example")), std::nullopt);
}

TEST(TcpRulesParseTest, InstructionColonIsTheFirstFollowedByAllowOrDeny) {
  TcpRules rules = parse(
      "::1:allow,RULE=\"v6 loopback\"\n"
      "1.2.3.4:allow,RULE=\"has :deny inside\"\n");
  EXPECT_EQ(which(rules, "::1"), "v6 loopback");
  EXPECT_EQ(which(rules, "1.2.3.4"), "has :deny inside");
}

TEST(TcpRulesParseTest, RangesExpand) {
  TcpRules rules = parse(
      "1.2.3.4-7:allow,RULE=\"range\"\n"
      "10.1-2.:allow,RULE=\"prefix range\"\n"
      "172.16.0.250-300:allow,RULE=\"capped\"\n");
  EXPECT_EQ(which(rules, "1.2.3.3"), "(no rule)");
  EXPECT_EQ(which(rules, "1.2.3.4"), "range");
  EXPECT_EQ(which(rules, "1.2.3.7"), "range");
  EXPECT_EQ(which(rules, "1.2.3.8"), "(no rule)");
  EXPECT_EQ(which(rules, "10.1.9.9"), "prefix range");
  EXPECT_EQ(which(rules, "10.2.9.9"), "prefix range");
  EXPECT_EQ(which(rules, "10.3.9.9"), "(no rule)");
  EXPECT_EQ(which(rules, "172.16.0.255"), "capped");
}

TEST(TcpRulesParseTest, FirstRuleForAKeyWins) {
  TcpRules rules = parse(
      "1.2.3.4:allow,RULE=\"first\"\n"
      "1.2.3.4:deny\n"
      "1.2.3.3-5:allow,RULE=\"range\"\n");
  EXPECT_EQ(which(rules, "1.2.3.4"), "first");
  EXPECT_EQ(which(rules, "1.2.3.5"), "range");
}

TEST(TcpRulesParseTest, DenyMayCarryVariables) {
  TcpRules rules = parse("1.2.3.4:deny,X=\"y\"\n");
  auto rule = rules.match("1.2.3.4", std::nullopt);
  ASSERT_TRUE(rule);
  EXPECT_FALSE(rule->allow);
  EXPECT_EQ(rule->env, (Env{{"X", "y"}}));
}

TEST(TcpRulesParseTest, BadLinesNameFileAndLine) {
  auto error_of = [](const std::string& text) -> std::string {
    try {
      TcpRules::parse(text, "/etc/tcp.smtp");
    } catch (const TcpRulesError& error) {
      return error.what();
    }
    return "(parsed)";
  };
  EXPECT_EQ(error_of("# ok\n1.2.3.4:allow\n1.2.3.5:permit\n").rfind("/etc/tcp.smtp:3: ", 0), 0u)
      << error_of("# ok\n1.2.3.4:allow\n1.2.3.5:permit\n");
  EXPECT_EQ(error_of("1.2.3.4\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_EQ(error_of("1.2.3.4:allowed\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_EQ(error_of("1.2.3.4:allow,X\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_EQ(error_of("1.2.3.4:allow,X=\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_EQ(error_of("1.2.3.4:allow,X=\"unterminated\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_EQ(error_of("1.2.3.4:allow X=\"y\"\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_EQ(error_of("1.2.3.4:allow,=\"y\"\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_EQ(error_of("1.2.3.x-5:allow\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_EQ(error_of("\n\n1.2.3.4-y:allow\n").rfind("/etc/tcp.smtp:3: ", 0), 0u);
  EXPECT_EQ(error_of("2001:db8::1-5:allow\n").rfind("/etc/tcp.smtp:1: ", 0), 0u);
  EXPECT_NE(error_of("1.2.3.5:permit\n").find("1.2.3.5:permit"), std::string::npos);
}

TEST(TcpRulesMatchTest, TcpserverOrder) {
  TcpRules rules = parse(
      ":allow,RULE=\"default\"\n"
      "=:allow,RULE=\"any name\"\n"
      "=.com:allow,RULE=\"dot com\"\n"
      "=.example.com:allow,RULE=\"dot example.com\"\n"
      "192.:allow,RULE=\"192.\"\n"
      "192.0.2.:allow,RULE=\"192.0.2.\"\n"
      "=mail.example.com:allow,RULE=\"=host\"\n"
      "192.0.2.7:allow,RULE=\"ip\"\n");
  EXPECT_TRUE(rules.uses_host_names());
  EXPECT_EQ(which(rules, "192.0.2.7", "mail.example.com"), "ip");
  EXPECT_EQ(which(rules, "192.0.2.8", "mail.example.com"), "=host");
  EXPECT_EQ(which(rules, "192.0.2.8", "other.example.com"), "192.0.2.");
  EXPECT_EQ(which(rules, "192.0.3.8", "other.example.com"), "192.");
  EXPECT_EQ(which(rules, "198.51.100.1", "a.b.example.com"), "dot example.com");
  EXPECT_EQ(which(rules, "198.51.100.1", "b.other.com"), "dot com");
  EXPECT_EQ(which(rules, "198.51.100.1", "example.org"), "any name");
  EXPECT_EQ(which(rules, "198.51.100.1", "localhost"), "any name");
  EXPECT_EQ(which(rules, "198.51.100.1"), "default");
  EXPECT_EQ(which(rules, "198.51.100.1", ""), "default");
}

TEST(TcpRulesMatchTest, HostSuffixRuleNeedsTheDot) {
  TcpRules rules = parse("=.example.com:allow,RULE=\"sub\"\n");
  EXPECT_EQ(which(rules, "1.2.3.4", "example.com"), "(no rule)");
  EXPECT_EQ(which(rules, "1.2.3.4", "www.example.com"), "sub");
  EXPECT_EQ(which(rules, "1.2.3.4", "wwwexample.com"), "(no rule)");
}

TEST(TcpRulesMatchTest, HostNamesCompareCaseInsensitively) {
  TcpRules rules = parse("=Mail.Example.COM:allow,RULE=\"host\"\n");
  EXPECT_EQ(which(rules, "1.2.3.4", "mail.example.com"), "host");
  EXPECT_EQ(which(rules, "1.2.3.4", "MAIL.example.com"), "host");
}

TEST(TcpRulesMatchTest, PrefixNeedsTheTrailingDot) {
  TcpRules rules = parse("127.0.0:allow,RULE=\"no dot\"\n127.:allow,RULE=\"loopback\"\n");
  EXPECT_EQ(which(rules, "127.0.0.1"), "loopback");
  EXPECT_EQ(which(rules, "127.0.0.1", "localhost"), "loopback");
}

TEST(TcpRulesMatchTest, Ipv6TextPrefixes) {
  // The key is what precedes ":allow", so "2001:db8::allow" has the key "2001:db8:".
  TcpRules rules = parse(
      "2001:db8::1:allow,RULE=\"exact\"\n"
      "2001:db8:::allow,RULE=\"2001:db8::\"\n"
      "2001:db8::allow,RULE=\"2001:db8:\"\n"
      "2001::allow,RULE=\"2001:\"\n"
      "::1:deny\n"
      ":allow,RULE=\"default\"\n");
  EXPECT_EQ(which(rules, "2001:db8::1"), "exact");
  EXPECT_EQ(which(rules, "2001:db8::2"), "2001:db8::");
  EXPECT_EQ(which(rules, "2001:db8:1::2"), "2001:db8:");
  EXPECT_EQ(which(rules, "2001:db9::2"), "2001:");
  EXPECT_EQ(which(rules, "::1"), "(deny)");
  EXPECT_EQ(which(rules, "fe80::1"), "default");
}

TEST(TcpRulesMatchTest, InfoKeysParseButNeverMatch) {
  // sppd asks no ident server, so "info@..." keys can never apply.
  TcpRules rules = parse("joe@1.2.3.4:allow,RULE=\"info\"\n:allow,RULE=\"default\"\n");
  EXPECT_EQ(which(rules, "1.2.3.4"), "default");
}

TEST(TcpRulesLoadTest, ReadsFileAndReportsMissingFile) {
  char tmpl[] = "/tmp/sppd-tcprules-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/tcp.smtp";
  std::ofstream(path) << "127.:allow,RULE=\"loopback\"\n";
  EXPECT_EQ(which(TcpRules::load(path), "127.0.0.1"), "loopback");
  try {
    TcpRules::load(dir + "/absent");
    ADD_FAILURE() << "no exception";
  } catch (const TcpRulesError& error) {
    EXPECT_NE(std::string(error.what()).find(dir + "/absent"), std::string::npos);
  }
  std::ofstream(path) << "127.:allow\nbad line\n";
  try {
    TcpRules::load(path);
    ADD_FAILURE() << "no exception";
  } catch (const TcpRulesError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(path + ":2: ", 0), 0u) << error.what();
  }
  unlink(path.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace sppd::smtpd
