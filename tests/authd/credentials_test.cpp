// Tests for authd/credentials: the strict base64 decoder, the PLAIN, LOGIN and CRAM exchanges
// (including the malformed inputs a hostile client sends) and checkpassword's fd 3 layout.
#include "authd/credentials.h"

#include <gtest/gtest.h>

#include <string>

#include "base64_encode.h"

namespace sppd::authd {
namespace {

using namespace std::string_literals;

std::optional<std::string> decoded(const std::string& text) {
  auto secret = decode_base64(text);
  if (!secret) return std::nullopt;
  return std::string(secret->view());
}

std::optional<Credentials> decode(Method method, std::vector<std::string> lines, std::string* why,
                                  const std::string& challenge = "") {
  std::vector<std::string_view> views(lines.begin(), lines.end());
  return decode_credentials(method, views, challenge, why);
}

TEST(Base64, DecodesPaddedInput) {
  EXPECT_EQ(decoded("YQ=="), "a");
  EXPECT_EQ(decoded("YWI="), "ab");
  EXPECT_EQ(decoded("YWJj"), "abc");
  EXPECT_EQ(decoded("AGFsaWNlAHNlY3JldA=="), "\0alice\0secret"s);
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t len = 0; len <= all.size(); len += 37) {
    std::string part = all.substr(0, len);
    if (part.empty()) continue;
    EXPECT_EQ(decoded(b64(part)), part) << len;
  }
}

TEST(Base64, RejectsAnythingNotStrictlyBase64) {
  for (const char* bad : {"", "Y", "YW", "YWJ", "YWJjZ", "Y===", "====", "YW=j", "YW==YWJj",
                          "YWJj ", " YWJj", "YWJj\r\n", "YW-j", "YW_j", "YW\0j", "*"}) {
    EXPECT_EQ(decoded(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(decoded("YW\0j"s), std::nullopt);
}

TEST(Methods, NamesRoundTrip) {
  for (const char* name : {"plain", "login", "cram-md5", "cram-sha1", "cram-ripemd"}) {
    auto method = method_named(name);
    ASSERT_TRUE(method) << name;
    EXPECT_STREQ(method_name(*method), name);
  }
  EXPECT_FALSE(method_named("digest-md5"));
  EXPECT_FALSE(method_named("PLAIN"));
  EXPECT_TRUE(is_cram(Method::kCramRipemd));
  EXPECT_FALSE(is_cram(Method::kLogin));
}

TEST(Plain, DecodesAuthcidAndPasswordIgnoringAuthzid) {
  std::string why;
  auto c = decode(Method::kPlain, {b64("\0alice\0secret"s)}, &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->secret.view(), "secret");
  c = decode(Method::kPlain, {b64("admin\0alice\0pass word"s)}, &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->secret.view(), "pass word");
}

TEST(Plain, RejectsMalformedResponses) {
  std::string why;
  EXPECT_FALSE(decode(Method::kPlain, {"%%%%"}, &why));
  EXPECT_EQ(why, "bad base64");
  EXPECT_FALSE(decode(Method::kPlain, {b64("alice\0secret"s)}, &why));  // one NUL only
  EXPECT_FALSE(decode(Method::kPlain, {b64("alicesecret")}, &why));
  EXPECT_FALSE(decode(Method::kPlain, {b64("\0\0secret"s)}, &why));
  EXPECT_EQ(why, "empty user name");
  EXPECT_FALSE(decode(Method::kPlain, {b64("\0alice\0"s)}, &why));
  EXPECT_EQ(why, "empty password");
  EXPECT_FALSE(decode(Method::kPlain, {b64("\0alice\0sec\0ret"s)}, &why));
  EXPECT_EQ(why, "NUL byte in the password");
  EXPECT_FALSE(decode(Method::kPlain, {""}, &why));
  EXPECT_EQ(why, "empty response line");
  EXPECT_FALSE(decode(Method::kPlain, {}, &why));
  EXPECT_FALSE(decode(Method::kPlain, {b64("\0a\0b"s), b64("\0a\0b"s)}, &why));
}

TEST(Login, DecodesUserAndPasswordLines) {
  std::string why;
  auto c = decode(Method::kLogin, {b64("bob@example.com"), b64("hunter2")}, &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->user, "bob@example.com");
  EXPECT_EQ(c->secret.view(), "hunter2");
  EXPECT_EQ(c->method, Method::kLogin);
}

TEST(Login, RejectsMalformedResponses) {
  std::string why;
  EXPECT_FALSE(decode(Method::kLogin, {b64("bob")}, &why));  // the password line is missing
  EXPECT_FALSE(decode(Method::kLogin, {b64("bob"), "nope!"}, &why));
  EXPECT_EQ(why, "bad base64");
  EXPECT_FALSE(decode(Method::kLogin, {b64("b\0ob"s), b64("pw")}, &why));
  EXPECT_EQ(why, "NUL byte in the user name");
  EXPECT_FALSE(decode(Method::kLogin, {b64("bob"), b64("p\0w"s)}, &why));
  EXPECT_EQ(why, "NUL byte in the password");
  EXPECT_FALSE(decode(Method::kLogin, {b64("bob"), ""}, &why));
  EXPECT_EQ(why, "empty response line");
}

TEST(Cram, SplitsAtTheLastSpace) {
  std::string why;
  const std::string challenge = "<12345.1700000000@mail.example.com>";
  auto c =
      decode(Method::kCramMd5, {b64("alice 0123456789abcdef0123456789abcdef")}, &why, challenge);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->secret.view(), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c->challenge, challenge);
  c = decode(Method::kCramSha1, {b64("john doe 00ff")}, &why, challenge);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->user, "john doe");
  EXPECT_EQ(c->secret.view(), "00ff");
  EXPECT_EQ(c->method, Method::kCramSha1);
}

TEST(Cram, RejectsMalformedResponses) {
  std::string why;
  const std::string challenge = "<1.2@host>";
  EXPECT_FALSE(decode(Method::kCramMd5, {b64("alice")}, &why, challenge));
  EXPECT_FALSE(decode(Method::kCramMd5, {b64("alice ")}, &why, challenge));
  EXPECT_EQ(why, "empty CRAM digest");
  EXPECT_FALSE(decode(Method::kCramMd5, {b64(" abcdef")}, &why, challenge));
  EXPECT_EQ(why, "empty user name");
  EXPECT_FALSE(decode(Method::kCramMd5, {b64("al\0ice abcdef"s)}, &why, challenge));
  EXPECT_FALSE(decode(Method::kCramMd5, {b64("alice abc\0def"s)}, &why, challenge));
  EXPECT_FALSE(decode(Method::kCramMd5, {"YWxpY2UgYWJj="}, &why, challenge));
  EXPECT_FALSE(decode(Method::kCramRipemd, {b64("alice abcdef")}, &why, ""));
  EXPECT_EQ(why, "no usable challenge");
}

TEST(Credentials, RejectControlCharactersInTheUserName) {
  std::string why;
  EXPECT_FALSE(decode(Method::kPlain, {b64("\0alice\r\nX-Injected: yes\0pw"s)}, &why));
  EXPECT_EQ(why, "control character in the user name");
  EXPECT_FALSE(decode(Method::kLogin, {b64("al\tice"), b64("pw")}, &why));
  EXPECT_FALSE(decode(Method::kCramMd5, {b64("al\x7fice 00ff")}, &why, "<1@x>"));
  auto c = decode(Method::kLogin, {b64("j\xc3\xbcrgen"), b64("pw\tpw")}, &why);
  ASSERT_TRUE(c) << why;  // UTF-8 names and tabs in passwords are fine
  EXPECT_EQ(c->user, "j\xc3\xbcrgen");
}

TEST(CheckInput, PlainAndLoginCarryTheTimestamp) {
  std::string why;
  auto c = decode(Method::kLogin, {b64("bob"), b64("pw")}, &why);
  ASSERT_TRUE(c);
  auto input = checkpassword_input(*c, CramOrder::kChallengeFirst, "<1.2@authd>");
  ASSERT_TRUE(input);
  EXPECT_EQ(input->view(), "bob\0pw\0<1.2@authd>\0"s);
}

TEST(CheckInput, CramFollowsTheConfiguredOrder) {
  std::string why;
  auto c = decode(Method::kCramMd5, {b64("bob 00ff")}, &why, "<9.9@mx>");
  ASSERT_TRUE(c);
  auto first = checkpassword_input(*c, CramOrder::kResponseFirst, "<ignored>");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->view(),
            "bob\0"
            "00ff\0<9.9@mx>\0"s);
  auto second = checkpassword_input(*c, CramOrder::kChallengeFirst, "<ignored>");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->view(),
            "bob\0<9.9@mx>\0"
            "00ff\0"s);
}

TEST(CheckInput, RefusesMoreThan512Bytes) {
  std::string why;
  std::string user(200, 'u');
  auto c = decode(Method::kLogin, {b64(user), b64(std::string(300, 'p'))}, &why);
  ASSERT_TRUE(c);
  EXPECT_FALSE(checkpassword_input(*c, CramOrder::kResponseFirst, std::string(20, 't')));
  auto fits = checkpassword_input(*c, CramOrder::kResponseFirst, std::string(9, 't'));
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->size(), kMaxCheckInput);
}

TEST(Secret, WipesOnMove) {
  Secret a(16);
  a.append("password");
  Secret b = std::move(a);
  EXPECT_EQ(b.view(), "password");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the point of the test
  b.wipe();
  EXPECT_TRUE(b.empty());
}

}  // namespace
}  // namespace sppd::authd
