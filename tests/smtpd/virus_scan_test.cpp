// Tests for smtpd/virus_scan: the INSTREAM framing and answers (pure functions), and the
// VirusScan state machine on a libevent loop against a fake clamd on the other end of a
// socketpair, which parses what it gets exactly as clamd does (command, chunks, end marker)
// and answers, closes or stalls as each test needs.
#include "smtpd/virus_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "tests/common/test_support.h"

namespace sppd::smtpd {
namespace {

using Kind = ScanVerdict::Kind;
using namespace std::string_literals;

TEST(InstreamChunk, LengthIsFourBytesBigEndianThenTheBytes) {
  std::string payload(300, 'x');
  EXPECT_EQ(instream_chunk(payload), "\x00\x00\x01\x2c"s + payload);
  EXPECT_EQ(instream_chunk(std::string(0x010203, 'y')).substr(0, 4), "\x00\x01\x02\x03"s);
  EXPECT_EQ(instream_chunk(""), "\0\0\0\0"s);  // the end of the stream
  EXPECT_EQ(kInstreamCommand, "zINSTREAM\0"s);
}

TEST(InstreamReply, OkFoundAndErrors) {
  ScanVerdict clean = parse_instream_reply("stream: OK");
  EXPECT_EQ(clean.kind, Kind::kClean);
  ScanVerdict virus = parse_instream_reply("stream: Win.Test.EICAR_HDB-1 FOUND");
  EXPECT_EQ(virus.kind, Kind::kVirus);
  EXPECT_EQ(virus.text, "Win.Test.EICAR_HDB-1");
  // The n-prefixed form ends in a newline instead of a NUL.
  EXPECT_EQ(parse_instream_reply("stream: Worm.Bagle.Z FOUND\n").text, "Worm.Bagle.Z");
  ScanVerdict limit = parse_instream_reply("INSTREAM size limit exceeded. ERROR");
  EXPECT_EQ(limit.kind, Kind::kError);
  EXPECT_EQ(limit.text, "clamd: INSTREAM size limit exceeded.");
  EXPECT_EQ(parse_instream_reply("stream: Can't allocate memory ERROR").kind, Kind::kError);
  ScanVerdict odd = parse_instream_reply("PONG");
  EXPECT_EQ(odd.kind, Kind::kError);
  EXPECT_EQ(odd.text, "unexpected answer from clamd: \"PONG\"");
  EXPECT_EQ(parse_instream_reply("stream: FOUND").kind, Kind::kError);  // no name
  EXPECT_EQ(parse_instream_reply("").kind, Kind::kError);
}

TEST(InstreamReply, VirusNameIsMadeSafeForAReplyLine) {
  ScanVerdict virus = parse_instream_reply("stream: Bad\"Name\r\n250 ok FOUND");
  EXPECT_EQ(virus.kind, Kind::kVirus);
  EXPECT_EQ(virus.text, "Bad?Name??250 ok");
  EXPECT_EQ(parse_instream_reply("stream: " + std::string(300, 'V') + " FOUND").text,
            std::string(100, 'V'));
}

// clamd's side of the socket: reads without blocking and parses the INSTREAM stream.
class FakeClamd {
 public:
  explicit FakeClamd(UniqueFd fd) : fd_(std::move(fd)) {}

  // Reads what is there (unless paused); false once the peer closed.
  void poll() {
    if (paused || !fd_) return;
    char buffer[65536];
    while (true) {
      ssize_t n = ::read(fd_.get(), buffer, sizeof(buffer));
      if (n <= 0) {
        if (n == 0) peer_closed = true;
        return;
      }
      raw_.append(buffer, static_cast<size_t>(n));
      parse();
    }
  }
  void answer(const std::string& text) {
    ASSERT_EQ(::write(fd_.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  void close() { fd_.reset(); }

  bool paused = false;
  bool command_ok = false;
  bool ended = false;  // the zero-length chunk came
  bool peer_closed = false;
  std::string payload;
  size_t chunks = 0;
  size_t largest_chunk = 0;

 private:
  void parse() {
    if (!command_ok) {
      if (raw_.size() < kInstreamCommand.size()) return;
      ASSERT_EQ(raw_.substr(0, kInstreamCommand.size()), kInstreamCommand);
      raw_.erase(0, kInstreamCommand.size());
      command_ok = true;
    }
    while (!ended && raw_.size() >= 4) {
      auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(raw_[i])); };
      uint32_t length = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
      if (raw_.size() < 4 + length) return;
      if (length == 0) {
        ended = true;
      } else {
        payload.append(raw_, 4, length);
        ++chunks;
        largest_chunk = std::max<size_t>(largest_chunk, length);
      }
      raw_.erase(0, 4 + length);
    }
    ASSERT_TRUE(raw_.empty() || !ended) << "bytes after the end marker";
  }

  UniqueFd fd_;
  std::string raw_;
};

class VirusScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as in sppd-smtpd: a write to a gone clamd is EPIPE
    base_.reset(event_base_new());
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    ASSERT_EQ(fcntl(pair[1], F_SETFL, O_NONBLOCK), 0);
    ours_.reset(pair[0]);
    clamd_ = std::make_unique<FakeClamd>(UniqueFd(pair[1]));
  }

  void start(int timeout_seconds = 10) {
    scan_ = std::make_unique<VirusScan>(
        base_.get(), std::move(ours_), timeout_seconds, 64 * 1024,
        [this](const ScanVerdict& verdict) {
          ++verdicts_;
          verdict_ = verdict;
          scan_.reset();  // as the session does: inside the callback
        },
        [this] { ++drained_; });
  }

  // Runs the loop, letting the fake clamd read, until done() or seconds pass.
  bool run(const std::function<bool()>& done, double seconds = 10) {
    return test_support::run_until(
        base_.get(),
        [&] {
          clamd_->poll();
          return done();
        },
        seconds);
  }

  EventBasePtr base_;
  UniqueFd ours_;
  std::unique_ptr<FakeClamd> clamd_;
  std::unique_ptr<VirusScan> scan_;
  std::optional<ScanVerdict> verdict_;
  int verdicts_ = 0;
  int drained_ = 0;
};

TEST_F(VirusScanTest, StreamsTheMessageInChunksAndReportsClean) {
  start();
  std::string message = "Received: from client.test\n";
  scan_->feed(message);
  std::string body;
  for (int i = 0; i < 5000; ++i) body += "line " + std::to_string(i) + " of a clean message\n";
  for (size_t at = 0; at < body.size(); at += 1000) scan_->feed(body.substr(at, 1000));
  message += body;
  EXPECT_EQ(scan_->fed(), message.size());
  scan_->finish();
  ASSERT_TRUE(run([&] { return clamd_->ended; }));
  EXPECT_TRUE(clamd_->command_ok);
  EXPECT_EQ(clamd_->payload, message);
  EXPECT_GT(clamd_->chunks, 1u);  // more than one chunk, none over the chunk size
  EXPECT_LE(clamd_->largest_chunk, VirusScan::kChunkSize);
  EXPECT_EQ(verdicts_, 0);  // nothing before clamd answers
  clamd_->answer("stream: OK\0"s);
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }));
  EXPECT_EQ(verdict_->kind, Kind::kClean);
  EXPECT_EQ(scan_, nullptr);
  run([] { return false; }, 0.1);
  EXPECT_EQ(verdicts_, 1);
}

TEST_F(VirusScanTest, AVirusNameArrivingInPieces) {
  start();
  scan_->feed("Subject: x\n\nbody\n");
  scan_->finish();
  ASSERT_TRUE(run([&] { return clamd_->ended; }));
  clamd_->answer("stream: Worm.");
  run([] { return false; }, 0.05);
  EXPECT_FALSE(verdict_);
  clamd_->answer("Sober.I FOUND\0"s);
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }));
  EXPECT_EQ(verdict_->kind, Kind::kVirus);
  EXPECT_EQ(verdict_->text, "Worm.Sober.I");
}

TEST_F(VirusScanTest, EmptyMessageSendsOnlyTheEndMarker) {
  start();
  scan_->finish();
  ASSERT_TRUE(run([&] { return clamd_->ended; }));
  EXPECT_EQ(clamd_->chunks, 0u);
  clamd_->answer("stream: OK\0"s);
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }));
  EXPECT_EQ(verdict_->kind, Kind::kClean);
}

TEST_F(VirusScanTest, SizeLimitExceededWhileTheMessageIsStillSent) {
  start();
  // clamd refuses once StreamMaxLength is passed and closes, while we are still writing.
  std::string block(256 * 1024, 'm');
  scan_->feed(block);
  ASSERT_TRUE(run([&] { return clamd_->payload.size() >= 128 * 1024; }));
  clamd_->paused = true;
  clamd_->answer("INSTREAM size limit exceeded. ERROR\0"s);
  clamd_->close();
  for (int i = 0; i < 8 && scan_; ++i) scan_->feed(block);
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }));
  EXPECT_EQ(verdict_->kind, Kind::kError);
  // The reason survives the broken pipe when clamd's words were read in time; either way it
  // is an error, never clean.
  EXPECT_TRUE(verdict_->text == "clamd: INSTREAM size limit exceeded." ||
              verdict_->text.ends_with("; is the message over clamd's StreamMaxLength?)"))
      << verdict_->text;
}

TEST_F(VirusScanTest, ClamdClosingWithoutAnAnswer) {
  start();
  scan_->feed("x\n");
  scan_->finish();
  ASSERT_TRUE(run([&] { return clamd_->ended; }));
  clamd_->close();
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }));
  EXPECT_EQ(verdict_->kind, Kind::kError);
  EXPECT_EQ(verdict_->text, "clamd closed the connection without an answer");
}

TEST_F(VirusScanTest, ClamdThatNeverAnswersTimesOut) {
  start(1);
  scan_->feed("x\n");
  scan_->finish();
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }, 5));
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_GE(waited, 0.9);
  EXPECT_EQ(verdict_->kind, Kind::kError);
  EXPECT_EQ(verdict_->text, "clamd did not answer within 1 s");
}

TEST_F(VirusScanTest, ClamdThatStopsReadingTimesOutAndBackpressureShows) {
  start(1);
  clamd_->paused = true;
  std::string block(1024 * 1024, 'b');
  for (int i = 0; i < 8; ++i) scan_->feed(block);
  run([] { return false; }, 0.1);
  ASSERT_NE(scan_, nullptr);
  EXPECT_GT(scan_->pending(), 1024u * 1024);  // the socket buffer is full: the session waits
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }, 5));
  EXPECT_EQ(verdict_->kind, Kind::kError);
  EXPECT_EQ(verdict_->text, "clamd took none of the message for 1 s");
}

TEST_F(VirusScanTest, DrainHandlerRunsWhenClamdCatchesUp) {
  start();
  clamd_->paused = true;
  scan_->feed(std::string(2 * 1024 * 1024, 'd'));
  run([] { return false; }, 0.05);
  EXPECT_EQ(drained_, 0);
  clamd_->paused = false;
  ASSERT_TRUE(run([&] { return drained_ > 0; }));
  EXPECT_LT(scan_->pending(), 64u * 1024 + VirusScan::kChunkSize);
}

TEST_F(VirusScanTest, AnOkBeforeTheEndIsNotTrusted) {
  start();
  scan_->feed("x\n");
  ASSERT_TRUE(run([&] { return clamd_->payload.size() == 0 && clamd_->command_ok; }));
  clamd_->answer("stream: OK\0"s);
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }));
  EXPECT_EQ(verdict_->kind, Kind::kError);
  EXPECT_EQ(verdict_->text, "clamd said OK before the end of the message");
}

TEST_F(VirusScanTest, AnOverlongAnswerIsAnError) {
  start();
  scan_->finish();
  ASSERT_TRUE(run([&] { return clamd_->ended; }));
  clamd_->answer("stream: " + std::string(4000, 'A'));
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }));
  EXPECT_EQ(verdict_->kind, Kind::kError);
  EXPECT_EQ(verdict_->text, "clamd's answer is too long");
}

TEST_F(VirusScanTest, FeedingAfterTheVerdictIsIgnored) {
  scan_ = std::make_unique<VirusScan>(
      base_.get(), std::move(ours_), 10, 64 * 1024,
      [this](const ScanVerdict& verdict) { verdict_ = verdict; }, [] {});
  scan_->finish();
  ASSERT_TRUE(run([&] { return clamd_->ended; }));
  clamd_->answer("stream: OK\0"s);
  ASSERT_TRUE(run([&] { return verdict_.has_value(); }));
  size_t fed = scan_->fed();
  scan_->feed("more");
  scan_->finish();
  EXPECT_EQ(scan_->fed(), fed);
}

}  // namespace
}  // namespace sppd::smtpd
