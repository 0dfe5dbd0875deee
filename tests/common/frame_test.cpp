// Tests for common/frame: encoding round trips and rejection of every malformed shape.
#include "common/frame.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace sppd::ipc {
namespace {

TEST(FrameTest, RoundTripKeepsTypeIdAndRepeatedAttributes) {
  Frame frame(13, 77);
  frame.add("from", "a@example.org").add("to", "b@example.com").add("to", "c@example.com");
  frame.add("empty", "");
  auto bytes = encode(frame);
  ASSERT_TRUE(bytes);
  std::string why;
  auto back = decode(*bytes, &why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->type, 13);
  EXPECT_EQ(back->request_id, 77u);
  EXPECT_EQ(*back->get("from"), "a@example.org");
  EXPECT_EQ(back->all("to"), (std::vector<std::string_view>{"b@example.com", "c@example.com"}));
  EXPECT_EQ(*back->get("empty"), "");
  EXPECT_EQ(back->get("missing"), nullptr);
}

TEST(FrameTest, EncodeRefusesOversizedFrames) {
  Frame frame(1, 1);
  frame.add("big", std::string(kMaxFrameSize, 'x'));
  std::string why;
  EXPECT_FALSE(encode(frame, &why));
  EXPECT_NE(why.find("64 KiB"), std::string::npos);
}

TEST(FrameTest, EncodeRefusesNulInValueAndBadNames) {
  Frame nul(1, 1);
  nul.add("x", std::string("a\0b", 3));
  EXPECT_FALSE(encode(nul));
  Frame upper(1, 1);
  upper.add("Bad", "v");
  EXPECT_FALSE(encode(upper));
}

std::string header(uint16_t version, uint16_t type, uint32_t id, uint32_t len) {
  std::string out(12, '\0');
  uint16_t v = htons(version), t = htons(type);
  uint32_t i = htonl(id), l = htonl(len);
  memcpy(&out[0], &v, 2);
  memcpy(&out[2], &t, 2);
  memcpy(&out[4], &i, 4);
  memcpy(&out[8], &l, 4);
  return out;
}

TEST(FrameTest, DecodeRejectsMalformedFrames) {
  std::string why;
  EXPECT_FALSE(decode("short", &why));
  EXPECT_EQ(why, "frame shorter than its header");
  EXPECT_FALSE(decode(header(2, 1, 1, 0), &why));
  EXPECT_EQ(why, "unknown frame version");
  EXPECT_FALSE(decode(header(1, 1, 1, 5) + "ab", &why));
  EXPECT_EQ(why, "body length does not match frame size");
  EXPECT_FALSE(decode(header(1, 1, 1, 3) + "abc", &why));
  EXPECT_EQ(why, "body not NUL-terminated");
  EXPECT_FALSE(decode(header(1, 1, 1, 4) + std::string("abc\0", 4), &why));
  EXPECT_EQ(why, "attribute without value");
  EXPECT_FALSE(decode(header(1, 1, 1, 4) + std::string("A\0b\0", 4), &why));
  EXPECT_EQ(why, "invalid attribute name");
  std::string oversized = header(1, 1, 1, kMaxFrameSize) + std::string(kMaxFrameSize, 'a');
  EXPECT_FALSE(decode(oversized, &why));
  EXPECT_EQ(why, "frame larger than 64 KiB");
}

TEST(FrameTest, DecodeAcceptsEmptyBody) {
  std::string why;
  auto frame = decode(header(1, 9, 3, 0), &why);
  ASSERT_TRUE(frame) << why;
  EXPECT_EQ(frame->type, 9);
  EXPECT_TRUE(frame->attrs.empty());
}

}  // namespace
}  // namespace sppd::ipc
