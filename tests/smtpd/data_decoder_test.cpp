// Tests for smtpd/data_decoder: qmail blast() semantics byte for byte, checked by example
// and against a direct transcription of blast() on random input split at random points.
#include "smtpd/data_decoder.h"

#include <gtest/gtest.h>

#include <random>

namespace sppd::smtpd {
namespace {

struct Result {
  DataDecoder::Status status;
  std::string output;
  size_t consumed;
  int hops;
  unsigned long long bytes;
  bool too_big;
};

Result decode(std::string_view input, unsigned long long max_bytes = 0, int max_hops = 100) {
  DataDecoder decoder(max_bytes, max_hops);
  Result result{};
  result.status = decoder.feed(input, &result.output, &result.consumed);
  result.hops = decoder.hops();
  result.bytes = decoder.bytes();
  result.too_big = decoder.too_big();
  return result;
}

// Feeds input in pieces whose sizes come from split; stops at the first non-kMore status.
Result decode_in_pieces(std::string_view input, std::mt19937* random,
                        unsigned long long max_bytes = 0, int max_hops = 100) {
  DataDecoder decoder(max_bytes, max_hops);
  Result result{};
  result.status = DataDecoder::Status::kMore;
  size_t offset = 0;
  while (offset < input.size()) {
    size_t piece = std::uniform_int_distribution<size_t>(0, 7)(*random);
    piece = std::min(piece, input.size() - offset);
    size_t consumed = 0;
    result.status = decoder.feed(input.substr(offset, piece), &result.output, &consumed);
    result.consumed += consumed;
    offset += piece;
    if (result.status != DataDecoder::Status::kMore) break;
    EXPECT_EQ(consumed, piece);
  }
  result.hops = decoder.hops();
  result.bytes = decoder.bytes();
  result.too_big = decoder.too_big();
  return result;
}

// qmail's blast() and put() transcribed as directly as C++ allows, on a whole string.
Result reference_blast(std::string_view input, unsigned long long databytes) {
  Result result{};
  result.status = DataDecoder::Status::kMore;
  unsigned long long bytestooverflow = databytes ? databytes + 1 : 0;
  auto put = [&](char ch) {
    ++result.bytes;
    if (bytestooverflow)
      if (!--bytestooverflow) result.too_big = true;
    if (!result.too_big) result.output.push_back(ch);
  };
  int state = 1;
  bool flaginheader = true;
  int pos = 0;
  bool flagmaybex = true, flagmaybey = true, flagmaybez = true;
  for (size_t i = 0; i < input.size(); ++i) {
    char ch = input[i];
    if (flaginheader) {
      if (pos < 9) {
        if (ch != "delivered"[pos] && ch != "DELIVERED"[pos]) flagmaybez = false;
        if (flagmaybez && pos == 8) ++result.hops;
        if (pos < 8 && ch != "received"[pos] && ch != "RECEIVED"[pos]) flagmaybex = false;
        if (flagmaybex && pos == 7) ++result.hops;
        if (pos < 2 && ch != "\r\n"[pos]) flagmaybey = false;
        if (flagmaybey && pos == 1) flaginheader = false;
        ++pos;
      }
      if (ch == '\n') {
        pos = 0;
        flagmaybex = flagmaybey = flagmaybez = true;
      }
    }
    auto stray = [&] {
      result.status = DataDecoder::Status::kBareLf;
      result.consumed = i + 1;
    };
    switch (state) {
      case 0:
        if (ch == '\n') return stray(), result;
        if (ch == '\r') {
          state = 4;
          continue;
        }
        break;
      case 1:
        if (ch == '\n') return stray(), result;
        if (ch == '.') {
          state = 2;
          continue;
        }
        if (ch == '\r') {
          state = 4;
          continue;
        }
        state = 0;
        break;
      case 2:
        if (ch == '\n') return stray(), result;
        if (ch == '\r') {
          state = 3;
          continue;
        }
        state = 0;
        break;
      case 3:
        if (ch == '\n') {
          result.status = DataDecoder::Status::kEnd;
          result.consumed = i + 1;
          return result;
        }
        put('.');
        put('\r');
        if (ch == '\r') {
          state = 4;
          continue;
        }
        state = 0;
        break;
      case 4:
        if (ch == '\n') {
          state = 1;
          break;
        }
        if (ch != '\r') {
          put('\r');
          state = 0;
        }
    }
    put(ch);
  }
  result.consumed = input.size();
  return result;
}

void expect_same(const Result& got, const Result& want, const std::string& input) {
  EXPECT_EQ(got.status, want.status) << testing::PrintToString(input);
  EXPECT_EQ(got.output, want.output) << testing::PrintToString(input);
  EXPECT_EQ(got.consumed, want.consumed) << testing::PrintToString(input);
  EXPECT_EQ(got.hops, want.hops) << testing::PrintToString(input);
  EXPECT_EQ(got.bytes, want.bytes) << testing::PrintToString(input);
  EXPECT_EQ(got.too_big, want.too_big) << testing::PrintToString(input);
}

TEST(DataDecoderTest, WorkedExample) {
  Result result = decode("Subject: hi\r\n\r\n..dot line\r\n.\r\n");
  EXPECT_EQ(result.status, DataDecoder::Status::kEnd);
  EXPECT_EQ(result.output, "Subject: hi\n\n.dot line\n");
  EXPECT_EQ(result.hops, 0);
  EXPECT_FALSE(result.too_big);
  EXPECT_EQ(result.bytes, result.output.size());
}

TEST(DataDecoderTest, PipelinedBytesAfterTheDotAreLeft) {
  std::string input = "a\r\n.\r\nQUIT\r\n";
  Result result = decode(input);
  EXPECT_EQ(result.status, DataDecoder::Status::kEnd);
  EXPECT_EQ(result.output, "a\n");
  EXPECT_EQ(input.substr(result.consumed), "QUIT\r\n");
}

TEST(DataDecoderTest, EmptyMessage) {
  Result result = decode(".\r\nRSET\r\n");
  EXPECT_EQ(result.status, DataDecoder::Status::kEnd);
  EXPECT_EQ(result.output, "");
  EXPECT_EQ(result.consumed, 3u);
}

TEST(DataDecoderTest, NeedsMoreUntilTheDot) {
  DataDecoder decoder(0, 100);
  std::string output;
  size_t consumed = 99;
  EXPECT_EQ(decoder.feed("line\r\n.", &output, &consumed), DataDecoder::Status::kMore);
  EXPECT_EQ(consumed, 7u);
  EXPECT_EQ(decoder.feed("\r", &output, &consumed), DataDecoder::Status::kMore);
  EXPECT_EQ(decoder.feed("\nX", &output, &consumed), DataDecoder::Status::kEnd);
  EXPECT_EQ(consumed, 1u);
  EXPECT_EQ(output, "line\n");
  // The decoder is finished: further input is not its business.
  EXPECT_EQ(decoder.feed("more", &output, &consumed), DataDecoder::Status::kEnd);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(output, "line\n");
}

TEST(DataDecoderTest, DotUnstuffing) {
  EXPECT_EQ(decode("..x\r\n.\r\n").output, ".x\n");
  EXPECT_EQ(decode(".x\r\n.\r\n").output, "x\n");
  EXPECT_EQ(decode("...\r\n.\r\n").output, "..\n");
  EXPECT_EQ(decode("a.b\r\n.\r\n").output, "a.b\n");
  EXPECT_EQ(decode("..\r\n.\r\n").output, ".\n");
}

TEST(DataDecoderTest, BareLfAnywhereIsRefused) {
  for (std::string input : {"a\nb\r\n.\r\n", "\n", "a\r\n\n", "a\r\n.\n", ".\n", "a\r\n.x\n"}) {
    Result result = decode(input);
    EXPECT_EQ(result.status, DataDecoder::Status::kBareLf) << testing::PrintToString(input);
  }
  Result result = decode("ab\ncd");
  EXPECT_EQ(result.consumed, 3u);
  EXPECT_EQ(result.output, "ab");
}

TEST(DataDecoderTest, CarriageReturns) {
  EXPECT_EQ(decode("a\rb\r\n.\r\n").output, "a\rb\n");  // bare CR kept
  EXPECT_EQ(decode("a\r\r\n.\r\n").output, "a\r\n");    // CR CR LF -> CR LF
  EXPECT_EQ(decode("a\r\r\rb\r\n.\r\n").output, "a\r\r\rb\n");
  EXPECT_EQ(decode("\rx\r\n.\r\n").output, "\rx\n");
  EXPECT_EQ(decode(".\rx\r\n.\r\n").output, ".\rx\n");  // ".CR x" is no terminator
  EXPECT_EQ(decode(".\r\r\n.\r\n").output, ".\r\n");
  EXPECT_EQ(decode(".\r\rx\r\n.\r\n").output, ".\r\rx\n");
}

TEST(DataDecoderTest, HopsCountInTheHeaderOnly) {
  Result result = decode(
      "Received: from a\r\n"
      "RECEIVED: from b\r\n"
      "received\r\n"
      "Delivered-To: c\r\n"
      "Received-SPF: pass\r\n"
      "X-Received: no\r\n"
      "Receive: no\r\n"
      "Delivere\r\n"
      "\r\n"
      "Received: in the body\r\n"
      ".\r\n");
  EXPECT_EQ(result.status, DataDecoder::Status::kEnd);
  EXPECT_EQ(result.hops, 5);
}

TEST(DataDecoderTest, HopsAreCountedOnTheStuffedClientBytes) {
  // blast() looks at the raw line, so a stuffed ".Received" is not a hop.
  EXPECT_EQ(decode(".Received: x\r\n\r\n.\r\n").hops, 0);
  EXPECT_EQ(decode(" \r\nReceived: x\r\n.\r\n").hops, 1);  // a space line is not empty
}

TEST(DataDecoderTest, TooManyHops) {
  std::string input;
  for (int i = 0; i < 3; ++i) input += "Received: x\r\n";
  input += "\r\nbody\r\n.\r\n";
  DataDecoder decoder(0, 3);
  std::string output;
  size_t consumed = 0;
  EXPECT_EQ(decoder.feed(input, &output, &consumed), DataDecoder::Status::kEnd);
  EXPECT_EQ(decoder.hops(), 3);
  EXPECT_TRUE(decoder.too_many_hops());
  DataDecoder lenient(0, 4);
  lenient.feed(input, &output, &consumed);
  EXPECT_FALSE(lenient.too_many_hops());
}

TEST(DataDecoderTest, DatabytesLimit) {
  Result result = decode("abc\r\ndefg\r\n.\r\n", 5);
  EXPECT_EQ(result.status, DataDecoder::Status::kEnd);
  EXPECT_TRUE(result.too_big);
  EXPECT_EQ(result.output, "abc\nd");
  EXPECT_EQ(result.bytes, 9u);
  Result exact = decode("abcd\r\n.\r\n", 5);
  EXPECT_FALSE(exact.too_big);
  EXPECT_EQ(exact.output, "abcd\n");
  Result unlimited = decode(std::string(100000, 'x') + "\r\n.\r\n", 0);
  EXPECT_FALSE(unlimited.too_big);
  EXPECT_EQ(unlimited.bytes, 100001u);
}

TEST(DataDecoderTest, ByteByByteEqualsAllAtOnce) {
  std::string input = "Received: x\r\nDelivered-To: y\r\n\r\n..a\r\nb\rc\r\r\n.\rz\r\n.\r\nNEXT";
  Result whole = decode(input);
  DataDecoder decoder(0, 100);
  std::string output;
  size_t total = 0;
  DataDecoder::Status status = DataDecoder::Status::kMore;
  for (char ch : input) {
    size_t consumed = 0;
    status = decoder.feed(std::string_view(&ch, 1), &output, &consumed);
    total += consumed;
    if (status != DataDecoder::Status::kMore) break;
  }
  EXPECT_EQ(status, whole.status);
  EXPECT_EQ(output, whole.output);
  EXPECT_EQ(total, whole.consumed);
  EXPECT_EQ(decoder.hops(), whole.hops);
  EXPECT_EQ(whole.hops, 2);
}

// Random messages from pieces that exercise every state, with and without bare LFs.
std::string random_message(std::mt19937* random, bool allow_bare_lf) {
  static const std::vector<std::string> kPieces = {
      "a",        "b",           ".",        "..",        "\r",
      "\r\n",     "\r\n",        "\r\n.",    "\r\n..",    "\r\n.\r",
      "\r\r\n",   "Received: x", "received", "DELIVERED", "Delivered-To: y",
      "\r\n\r\n", " ",           "\xff"};
  std::string message;
  int pieces = std::uniform_int_distribution<int>(0, 40)(*random);
  for (int i = 0; i < pieces; ++i) {
    message += kPieces[std::uniform_int_distribution<size_t>(0, kPieces.size() - 1)(*random)];
    if (allow_bare_lf && std::uniform_int_distribution<int>(0, 30)(*random) == 0) message += "\n";
  }
  if (std::uniform_int_distribution<int>(0, 3)(*random) != 0) message += "\r\n.\r\nNEXT\r\n";
  return message;
}

TEST(DataDecoderTest, RandomSplitsMatchQmailBlast) {
  std::mt19937 random(20240601);
  for (int round = 0; round < 5000; ++round) {
    std::string input = random_message(&random, round % 2 == 1);
    unsigned long long max_bytes = std::uniform_int_distribution<int>(0, 3)(random) == 0
                                       ? std::uniform_int_distribution<unsigned>(1, 40)(random)
                                       : 0;
    Result want = reference_blast(input, max_bytes);
    expect_same(decode(input, max_bytes), want, input);
    expect_same(decode_in_pieces(input, &random, max_bytes), want, input);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace sppd::smtpd
