// Tests for smtpd/address: qmail addrparse() compatibility (brackets, the rfc821-less path,
// source routes, quoting, [local ip] rewriting, the 900-byte limit) and the SIZE parameter.
#include "smtpd/address.h"

#include <gtest/gtest.h>

namespace sppd::smtpd {
namespace {

const std::vector<std::string> kLocalIps = {"127.0.0.1", "192.0.2.1"};
const std::string kLocalIpHost = "mx.example.com";

std::optional<ParsedAddress> parse(std::string_view argument, size_t max_length = 900) {
  return parse_address(argument, max_length, kLocalIps, kLocalIpHost);
}

std::string address_of(std::string_view argument) {
  auto parsed = parse(argument);
  EXPECT_TRUE(parsed) << argument;
  return parsed ? parsed->address : "<nullopt>";
}

TEST(ParseAddressTest, AngleBrackets) {
  EXPECT_EQ(address_of("FROM:<alice@example.org>"), "alice@example.org");
  EXPECT_EQ(address_of("TO:<bob@example.com>"), "bob@example.com");
  EXPECT_EQ(address_of("FROM: <alice@example.org>"), "alice@example.org");
  // Everything before the first '<' is ignored, as in qmail.
  EXPECT_EQ(address_of("junk<alice@example.org>"), "alice@example.org");
}

TEST(ParseAddressTest, NullSender) {
  auto parsed = parse("FROM:<>");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->address, "");
  EXPECT_TRUE(parsed->parameters.empty());
}

TEST(ParseAddressTest, ParametersAfterTheBracketSplitOnSpaces) {
  auto parsed = parse("FROM:<alice@example.org> SIZE=123  BODY=8BITMIME ");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->address, "alice@example.org");
  EXPECT_EQ(parsed->parameters, (std::vector<std::string>{"SIZE=123", "BODY=8BITMIME"}));
  parsed = parse("FROM:<a@b>SIZE=5");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->parameters, (std::vector<std::string>{"SIZE=5"}));
}

TEST(ParseAddressTest, MissingClosingBracketIsAcceptedAsQmailDoes) {
  auto parsed = parse("FROM:<alice@example.org");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->address, "alice@example.org");
  EXPECT_TRUE(parsed->parameters.empty());
}

TEST(ParseAddressTest, NoBracketsTakesTextAfterColonUpToSpace) {
  EXPECT_EQ(address_of("FROM:alice@example.org"), "alice@example.org");
  EXPECT_EQ(address_of("FROM:   alice@example.org trailing"), "alice@example.org");
  auto parsed = parse("FROM:alice@example.org SIZE=10");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->parameters, (std::vector<std::string>{"SIZE=10"}));
}

TEST(ParseAddressTest, NeitherColonNorBracketYieldsTheEmptyAddress) {
  EXPECT_EQ(address_of("FROM alice@example.org"), "");
  EXPECT_EQ(address_of(""), "");
}

TEST(ParseAddressTest, SourceRouteIsDropped) {
  EXPECT_EQ(address_of("TO:<@relay1,@relay2:bob@example.com>"), "bob@example.com");
  EXPECT_EQ(address_of("TO:@relay:bob@example.com"), "bob@example.com");
  // No ':' after the route: everything goes, as in qmail.
  EXPECT_EQ(address_of("TO:<@relay>"), "");
}

TEST(ParseAddressTest, QuotesAreRemovedAndProtectTheTerminator) {
  EXPECT_EQ(address_of("FROM:<\"john doe\"@example.org>"), "john doe@example.org");
  EXPECT_EQ(address_of("FROM:<\"a>b\"@example.org>"), "a>b@example.org");
  EXPECT_EQ(address_of("FROM:\"john doe\"@example.org x"), "john doe@example.org");
}

TEST(ParseAddressTest, BackslashEscapesTheNextByte) {
  EXPECT_EQ(address_of("FROM:<a\\>b@example.org>"), "a>b@example.org");
  EXPECT_EQ(address_of("FROM:<a\\\"b@example.org>"), "a\"b@example.org");
  EXPECT_EQ(address_of("FROM:<a\\\\b@example.org>"), "a\\b@example.org");
  EXPECT_EQ(address_of("FROM:a\\ b@example.org"), "a b@example.org");
}

TEST(ParseAddressTest, LocalIpLiteralBecomesLocalIpHost) {
  EXPECT_EQ(address_of("TO:<postmaster@[127.0.0.1]>"), "postmaster@mx.example.com");
  EXPECT_EQ(address_of("TO:<postmaster@[192.0.2.1]>"), "postmaster@mx.example.com");
  EXPECT_EQ(address_of("TO:<postmaster@[192.000.2.001]>"), "postmaster@mx.example.com");
  // Only the last '@' counts, and only a complete bracketed dotted quad.
  EXPECT_EQ(address_of("TO:<\"a@b\"@[127.0.0.1]>"), "a@b@mx.example.com");
  EXPECT_EQ(address_of("TO:<postmaster@[198.51.100.1]>"), "postmaster@[198.51.100.1]");
  EXPECT_EQ(address_of("TO:<postmaster@[127.0.0.1]x>"), "postmaster@[127.0.0.1]x");
  EXPECT_EQ(address_of("TO:<postmaster@[127.0.0]>"), "postmaster@[127.0.0]");
  EXPECT_EQ(address_of("TO:<postmaster@[127.0.0.256]>"), "postmaster@[127.0.0.256]");
  EXPECT_EQ(address_of("TO:<postmaster@[IPv6:::1]>"), "postmaster@[IPv6:::1]");
}

TEST(ParseAddressTest, NoLocalIpHostMeansNoRewriting) {
  auto parsed = parse_address("TO:<postmaster@[127.0.0.1]>", 900, kLocalIps, "");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->address, "postmaster@[127.0.0.1]");
}

TEST(ParseAddressTest, LengthLimitCountsTheTerminatingNulAsQmail) {
  std::string box(899 - 12, 'x');
  std::string address = box + "@example.com";
  ASSERT_EQ(address.size(), 899u);
  EXPECT_TRUE(parse("FROM:<" + address + ">"));
  EXPECT_FALSE(parse("FROM:<x" + address + ">"));
  EXPECT_FALSE(parse("FROM:<abc>", 3));
  EXPECT_TRUE(parse("FROM:<abc>", 4));
  EXPECT_TRUE(parse("FROM:<" + address + "x>", 0)) << "0 means no limit";
}

TEST(ParseAddressTest, LengthIsCheckedAfterLocalIpRewriting) {
  // "a@[127.0.0.1]" is 13 bytes, "a@mx.example.com" 16.
  EXPECT_TRUE(parse("TO:<a@[127.0.0.1]>", 17));
  EXPECT_FALSE(parse("TO:<a@[127.0.0.1]>", 16));
}

TEST(SizeParameterTest, FindsSizeCaseInsensitively) {
  EXPECT_EQ(size_parameter({"SIZE=123"}), 123u);
  EXPECT_EQ(size_parameter({"BODY=8BITMIME", "size=7"}), 7u);
  EXPECT_EQ(size_parameter({"SiZe=0"}), 0u);
}

TEST(SizeParameterTest, AbsentOrMalformedIsIgnored) {
  EXPECT_EQ(size_parameter({}), std::nullopt);
  EXPECT_EQ(size_parameter({"BODY=8BITMIME"}), std::nullopt);
  EXPECT_EQ(size_parameter({"SIZE="}), std::nullopt);
  EXPECT_EQ(size_parameter({"SIZE=12x"}), std::nullopt);
  EXPECT_EQ(size_parameter({"SIZE=-1"}), std::nullopt);
  EXPECT_EQ(size_parameter({"SIZE"}), std::nullopt);
  EXPECT_EQ(size_parameter({"SIZES=1"}), std::nullopt);
}

TEST(SizeParameterTest, HugeValueSaturates) {
  EXPECT_EQ(size_parameter({"SIZE=99999999999999999999999"}), ~0ULL);
  EXPECT_EQ(size_parameter({"SIZE=18446744073709551615"}), ~0ULL);
  EXPECT_EQ(size_parameter({"SIZE=18446744073709551614"}), ~0ULL - 1);
}

TEST(SizeParameterTest, WorksOnParsedMailArgument) {
  auto parsed = parse_address("FROM:<alice@example.org> SIZE=123", 900, {}, "");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(size_parameter(parsed->parameters), 123u);
}

}  // namespace
}  // namespace sppd::smtpd
