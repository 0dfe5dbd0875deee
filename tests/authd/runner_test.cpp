// Tests for authd/runner: the real sppd-test-checkpassword over a temporary password file,
// fed by decode_credentials/checkpassword_input exactly as the server does, for PLAIN, LOGIN
// and the CRAM methods in both field orders; chains, timeouts, exit codes and concurrency.
#include "authd/runner.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <functional>

#include "authd/credentials.h"
#include "base64_encode.h"
#include "tests/common/test_support.h"

namespace sppd::authd {
namespace {

using namespace std::string_literals;
using Clock = std::chrono::steady_clock;

std::string hmac_hex(const EVP_MD* md, const std::string& key, const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest, &len);
  std::string hex;
  const char* digits = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(digits[digest[i] >> 4]);
    hex.push_back(digits[digest[i] & 15]);
  }
  return hex;
}

using test_support::read_file;

class RunnerTest : public ::testing::Test {
 protected:
  static constexpr const char* kChallenge = "<4242.1700000000@mail.example.com>";

  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(temp_.create("sppd-authd-runner-test"));
    dir_ = temp_.path();
    passwords_ = dir_ + "/passwords";
    std::ofstream(passwords_) << "alice:secret\nbob@example.com:hunter 2\n";
    base_.reset(event_base_new());
    sigchld_.reset(evsignal_new(
        base_.get(), SIGCHLD,
        [](evutil_socket_t, short, void* self) {
          auto* test = static_cast<RunnerTest*>(self);
          if (test->runner_) test->runner_->reap_children();
        },
        this));
    event_add(sigchld_.get(), nullptr);
  }

  void TearDown() override {
    runner_.reset();
    sigchld_.reset();
    base_.reset();
    ASSERT_TRUE(temp_.remove());
  }

  void start(std::vector<std::string> command, int timeout = 10, int concurrency = 8) {
    RunnerSettings settings;
    settings.command = std::move(command);
    settings.cwd = dir_;
    settings.timeout = timeout;
    settings.concurrency = concurrency;
    runner_ = std::make_unique<CheckRunner>(base_.get(), settings);
  }

  // The test checkpassword with the given options, then the password file and /bin/true.
  std::vector<std::string> checkpassword(std::vector<std::string> options = {}) {
    std::vector<std::string> command = {TEST_CHECKPASSWORD};
    command.insert(command.end(), options.begin(), options.end());
    command.push_back(passwords_);
    command.push_back("/bin/true");
    return command;
  }

  bool run_until(const std::function<bool()>& done, double seconds = 10) {
    return test_support::run_until(base_.get(), done, seconds);
  }

  // Runs one check with raw fd 3 input and waits for its outcome.
  Outcome check_input(const std::string& bytes, std::vector<std::string> env = {}) {
    Secret input(bytes.size());
    input.append(bytes);
    std::optional<Outcome> outcome;
    runner_->submit(std::move(input), std::move(env), [&](const Outcome& o) { outcome = o; });
    EXPECT_TRUE(run_until([&] { return outcome.has_value(); }, 20));
    return outcome.value_or(Outcome{Verdict::kTemp, "no outcome"});
  }

  // Decodes the client's lines as the server does, then runs the check.
  Verdict check(Method method, std::vector<std::string> lines, CramOrder order,
                const std::string& challenge = kChallenge) {
    std::vector<std::string_view> views(lines.begin(), lines.end());
    std::string why;
    auto credentials = decode_credentials(method, views, challenge, &why);
    EXPECT_TRUE(credentials) << why;
    if (!credentials) return Verdict::kMisuse;
    auto input = checkpassword_input(*credentials, order, "<1.2@authd>");
    EXPECT_TRUE(input);
    return check_input(std::string(input->view())).verdict;
  }

  test_support::TempDir temp_;
  std::string dir_;
  std::string passwords_;
  EventBasePtr base_;
  EventPtr sigchld_;
  std::unique_ptr<CheckRunner> runner_;
};

TEST(OutcomeOf, MapsCheckpasswordExitCodes) {
  EXPECT_EQ(outcome_of(0).verdict, Verdict::kOk);
  EXPECT_EQ(outcome_of(1 << 8).verdict, Verdict::kBad);
  EXPECT_EQ(outcome_of(2 << 8).verdict, Verdict::kMisuse);
  EXPECT_EQ(outcome_of(3 << 8).verdict, Verdict::kBad);  // vchkpw's many failure codes
  EXPECT_EQ(outcome_of(111 << 8).verdict, Verdict::kTemp);
  EXPECT_EQ(outcome_of(SIGKILL).verdict, Verdict::kTemp);
  EXPECT_EQ(outcome_of(SIGKILL).detail, "killed by signal 9");
  EXPECT_EQ(outcome_of(1 << 8).detail, "exit 1");
}

TEST_F(RunnerTest, PlainGoodAndBadPasswords) {
  start(checkpassword());
  EXPECT_EQ(check(Method::kPlain, {b64("\0alice\0secret"s)}, CramOrder::kResponseFirst),
            Verdict::kOk);
  EXPECT_EQ(check(Method::kPlain, {b64("\0alice\0wrong"s)}, CramOrder::kResponseFirst),
            Verdict::kBad);
  EXPECT_EQ(check(Method::kPlain, {b64("\0nobody\0secret"s)}, CramOrder::kResponseFirst),
            Verdict::kBad);
}

TEST_F(RunnerTest, LoginGoodAndBadPasswords) {
  start(checkpassword());
  EXPECT_EQ(
      check(Method::kLogin, {b64("bob@example.com"), b64("hunter 2")}, CramOrder::kResponseFirst),
      Verdict::kOk);
  EXPECT_EQ(
      check(Method::kLogin, {b64("bob@example.com"), b64("hunter2")}, CramOrder::kResponseFirst),
      Verdict::kBad);
}

TEST_F(RunnerTest, CramMd5ResponseFirst) {
  start(checkpassword());
  std::string digest = hmac_hex(EVP_md5(), "secret", kChallenge);
  EXPECT_EQ(check(Method::kCramMd5, {b64("alice " + digest)}, CramOrder::kResponseFirst),
            Verdict::kOk);
  std::string other = hmac_hex(EVP_md5(), "secret", "<another challenge>");
  EXPECT_EQ(check(Method::kCramMd5, {b64("alice " + other)}, CramOrder::kResponseFirst),
            Verdict::kBad);
}

TEST_F(RunnerTest, CramMd5ChallengeFirst) {
  start(checkpassword({"-o", "challenge_first"}));
  std::string digest = hmac_hex(EVP_md5(), "secret", kChallenge);
  EXPECT_EQ(check(Method::kCramMd5, {b64("alice " + digest)}, CramOrder::kChallengeFirst),
            Verdict::kOk);
  // The other convention's program rejects what this order sends.
  EXPECT_EQ(check(Method::kCramMd5, {b64("alice " + digest)}, CramOrder::kResponseFirst),
            Verdict::kBad);
}

TEST_F(RunnerTest, CramSha1AndRipemd) {
  start(checkpassword());
  std::string sha1 = hmac_hex(EVP_sha1(), "hunter 2", kChallenge);
  std::string ripemd = hmac_hex(EVP_ripemd160(), "hunter 2", kChallenge);
  EXPECT_EQ(check(Method::kCramSha1, {b64("bob@example.com " + sha1)}, CramOrder::kResponseFirst),
            Verdict::kOk);
  EXPECT_EQ(
      check(Method::kCramRipemd, {b64("bob@example.com " + ripemd)}, CramOrder::kResponseFirst),
      Verdict::kOk);
}

TEST_F(RunnerTest, ChainWhoseFirstProgramRejectsNeverRunsTheSecond) {
  std::string first_log = dir_ + "/first.log", second_log = dir_ + "/second.log";
  std::string other = dir_ + "/other-passwords";
  std::ofstream(other) << "alice:different\n";
  start({TEST_CHECKPASSWORD, "-l", first_log, passwords_, TEST_CHECKPASSWORD, "-l", second_log,
         other, "/bin/true"});
  EXPECT_EQ(check(Method::kPlain, {b64("\0alice\0wrong"s)}, CramOrder::kResponseFirst),
            Verdict::kBad);
  EXPECT_EQ(read_file(first_log), "alice\n");
  EXPECT_EQ(read_file(second_log), "");
}

TEST_F(RunnerTest, TheSubprogramDecidesAfterASuccess) {
  start({TEST_CHECKPASSWORD, passwords_, "/bin/false"});
  EXPECT_EQ(check(Method::kPlain, {b64("\0alice\0secret"s)}, CramOrder::kResponseFirst),
            Verdict::kBad);
  start({TEST_CHECKPASSWORD, passwords_, "true"});  // found through PATH
  EXPECT_EQ(check(Method::kPlain, {b64("\0alice\0secret"s)}, CramOrder::kResponseFirst),
            Verdict::kOk);
}

TEST_F(RunnerTest, UnreadablePasswordFileIsTemporary) {
  start({TEST_CHECKPASSWORD, dir_ + "/missing", "/bin/true"});
  Outcome outcome = check_input("alice\0secret\0<1.2@authd>\0"s);
  EXPECT_EQ(outcome.verdict, Verdict::kTemp);
  EXPECT_EQ(outcome.detail, "exit 111");
}

TEST_F(RunnerTest, MalformedInputIsMisuse) {
  start(checkpassword());
  EXPECT_EQ(check_input("alice"s).verdict, Verdict::kMisuse);
}

TEST_F(RunnerTest, HangingProgramTimesOutAsTemporary) {
  start({"/bin/sh", "-c", "sleep 30 & sleep 30", "true"}, 1);
  auto started = Clock::now();
  Outcome outcome = check_input("alice\0secret\0<1.2@authd>\0"s);
  EXPECT_EQ(outcome.verdict, Verdict::kTemp);
  EXPECT_EQ(outcome.detail, "timed out after 1 s");
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(runner_->running(), 0u);
}

TEST_F(RunnerTest, ExitCodesAndSignals) {
  start({"/bin/sh", "-c", "exit 111"});
  EXPECT_EQ(check_input("a\0b\0c\0"s).verdict, Verdict::kTemp);
  start({"/bin/sh", "-c", "kill -9 $$"});
  EXPECT_EQ(check_input("a\0b\0c\0"s).detail, "killed by signal 9");
  start({"/bin/sh", "-c", "exit 17"});
  EXPECT_EQ(check_input("a\0b\0c\0"s).verdict, Verdict::kBad);
}

TEST_F(RunnerTest, ProgramThatCannotStartIsTemporary) {
  start({dir_ + "/no-such-program", "/bin/true"});
  std::optional<Outcome> outcome;
  runner_->submit(Secret(), {}, [&](const Outcome& o) { outcome = o; });
  ASSERT_TRUE(outcome);  // answered at once
  EXPECT_EQ(outcome->verdict, Verdict::kTemp);
}

TEST_F(RunnerTest, ProgramSeesTheInputOnFd3AndAMinimalEnvironment) {
  std::string out = dir_ + "/seen";
  start({"/bin/sh", "-c",
         "cat <&3 > '" + out + ".fd3'; env > '" + out + ".env'; cat > '" + out + ".fd0'"});
  setenv("SPPD_TEST_LEAK", "1", 1);
  Outcome outcome = check_input("alice\0secret\0<1.2@authd>\0"s, {"TCPREMOTEIP=192.0.2.7"});
  unsetenv("SPPD_TEST_LEAK");
  EXPECT_EQ(outcome.verdict, Verdict::kOk);
  EXPECT_EQ(read_file(out + ".fd3"), "alice\0secret\0<1.2@authd>\0"s);
  EXPECT_EQ(read_file(out + ".fd0"), "");  // /dev/null
  std::string env = read_file(out + ".env");
  EXPECT_NE(env.find("TCPREMOTEIP=192.0.2.7\n"), std::string::npos) << env;
  EXPECT_NE(env.find("PATH="), std::string::npos) << env;
  EXPECT_EQ(env.find("SPPD_TEST_LEAK"), std::string::npos) << env;
}

TEST_F(RunnerTest, ConcurrencyLimitQueuesInOrder) {
  std::string order = dir_ + "/order";
  start({"/bin/sh", "-c", "n=$(cat <&3); sleep 0.2; echo $n >> '" + order + "'"}, 10, 1);
  int done = 0;
  for (const char* n : {"1", "2", "3"}) {
    Secret input;
    input.append(n);
    runner_->submit(std::move(input), {}, [&](const Outcome&) { ++done; });
  }
  EXPECT_EQ(runner_->running(), 1u);
  EXPECT_EQ(runner_->waiting(), 2u);
  ASSERT_TRUE(run_until([&] { return done == 3; }));
  EXPECT_EQ(read_file(order), "1\n2\n3\n");
}

}  // namespace
}  // namespace sppd::authd
