// Tests for queue-bridge/exit_codes: every row of qmail_close()'s table (spec §1.2), signals,
// the custom error text convention (spec §1.3) and qmail's flagerr case.
#include "queue-bridge/exit_codes.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

namespace sppd::queue_bridge {
namespace {

// A wait status as waitpid() reports a normal exit with code (Linux encoding).
int exited(int code) { return (code & 0xff) << 8; }
// A wait status for death by signal.
int killed_by(int sig) { return sig & 0x7f; }

Verdict for_code(int code, std::string_view custom = "") {
  return verdict_for_exit(exited(code), custom, 4242, 1700000000);
}

void expect(const Verdict& verdict, Status status, const std::string& text) {
  EXPECT_EQ(verdict.status, status);
  EXPECT_EQ(verdict.text, text);
}

TEST(ExitCodesTest, EncodingHelpersMatchTheWaitMacros) {
  ASSERT_TRUE(WIFEXITED(exited(54)));
  ASSERT_EQ(WEXITSTATUS(exited(54)), 54);
  ASSERT_TRUE(WIFSIGNALED(killed_by(SIGKILL)));
}

TEST(ExitCodesTest, ZeroIsQueuedWithTimeAndPid) {
  expect(for_code(0), Status::kOk, "ok 1700000000 qp 4242");
}

TEST(ExitCodesTest, ZeroWithAnUndeliveredEnvelopeIsAReadError) {
  expect(verdict_for_exit(exited(0), "", 4242, 1700000000, true), Status::kTemp,
         "qq read error (#4.3.0)");
}

TEST(ExitCodesTest, AddressTooLongIncludingCompatibilityCode115) {
  expect(for_code(11), Status::kPerm, "envelope address too long for qq (#5.1.3)");
  expect(for_code(115), Status::kPerm, "envelope address too long for qq (#5.1.3)");
}

TEST(ExitCodesTest, PermanentRejectionByAWrapper) {
  expect(for_code(31), Status::kPerm, "mail server permanently rejected message (#5.3.0)");
}

TEST(ExitCodesTest, Other11To40ArePermanentProblems) {
  for (int code = 12; code <= 40; ++code) {
    if (code == 31) continue;
    SCOPED_TRACE(code);
    expect(for_code(code), Status::kPerm, "qq permanent problem (#5.3.0)");
  }
}

TEST(ExitCodesTest, NamedTemporaryCodes) {
  expect(for_code(51), Status::kTemp, "qq out of memory (#4.3.0)");
  expect(for_code(52), Status::kTemp, "qq timeout (#4.3.0)");
  expect(for_code(53), Status::kTemp, "qq write error or disk full (#4.3.0)");
  expect(for_code(54), Status::kTemp, "qq read error (#4.3.0)");
  expect(for_code(55), Status::kTemp, "qq unable to read configuration (#4.3.0)");
  expect(for_code(56), Status::kTemp, "qq trouble making network connection (#4.3.0)");
  expect(for_code(61), Status::kTemp, "qq trouble in home directory (#4.3.0)");
  for (int code = 62; code <= 66; ++code) {
    SCOPED_TRACE(code);
    expect(for_code(code), Status::kTemp, "qq trouble creating files in queue (#4.3.0)");
  }
  expect(for_code(71), Status::kTemp, "mail server temporarily rejected message (#4.3.0)");
  expect(for_code(72), Status::kTemp, "connection to mail server timed out (#4.4.1)");
  expect(for_code(73), Status::kTemp, "connection to mail server rejected (#4.4.1)");
  expect(for_code(74), Status::kTemp, "communication with mail server failed (#4.4.2)");
  expect(for_code(81), Status::kTemp, "qq internal bug (#4.3.0)");
  expect(for_code(91), Status::kTemp, "qq internal bug (#4.3.0)");
  expect(for_code(120), Status::kTemp, "unable to exec qq (#4.3.0)");
}

TEST(ExitCodesTest, EveryOtherCodeIsATemporaryProblem) {
  for (int code : {1, 2, 10, 41, 50, 57, 60, 67, 70, 75, 79, 80, 82, 88, 90, 100, 119, 121, 255}) {
    SCOPED_TRACE(code);
    expect(for_code(code), Status::kTemp, "qq temporary problem (#4.3.0)");
  }
}

TEST(ExitCodesTest, KilledBySignalIsACrash) {
  for (int sig : {SIGKILL, SIGSEGV, SIGTERM, SIGPIPE}) {
    SCOPED_TRACE(sig);
    expect(verdict_for_exit(killed_by(sig), "", 1, 1), Status::kTemp, "qq crashed (#4.3.0)");
  }
  // Custom text never rescues a crash.
  expect(verdict_for_exit(killed_by(SIGKILL), "Dnope", 1, 1), Status::kTemp, "qq crashed (#4.3.0)");
}

TEST(ExitCodesTest, CustomTextOn82And88) {
  for (int code : {82, 88}) {
    SCOPED_TRACE(code);
    expect(for_code(code, "Dvirus found (#5.7.1)\n"), Status::kPerm, "virus found (#5.7.1)");
    expect(for_code(code, "Zscanner busy (#4.3.0)"), Status::kTemp, "scanner busy (#4.3.0)");
    expect(for_code(code, "Zcrlf ended\r\n"), Status::kTemp, "crlf ended");
  }
}

TEST(ExitCodesTest, CustomTextNeedsMoreThanTwoBytesAndAKnownLetter) {
  expect(for_code(82, "Dx"), Status::kTemp, "qq temporary problem (#4.3.0)");
  expect(for_code(82, "D"), Status::kTemp, "qq temporary problem (#4.3.0)");
  expect(for_code(82, ""), Status::kTemp, "qq temporary problem (#4.3.0)");
  expect(for_code(82, "Xwhatever"), Status::kTemp, "qq temporary problem (#4.3.0)");
  expect(for_code(88, "zlowercase"), Status::kTemp, "qq temporary problem (#4.3.0)");
}

TEST(ExitCodesTest, CustomTextIsIgnoredOnOtherCodes) {
  expect(for_code(31, "Zsomething else"), Status::kPerm,
         "mail server permanently rejected message (#5.3.0)");
  expect(for_code(0, "Dignored"), Status::kOk, "ok 1700000000 qp 4242");
  expect(for_code(71, "Dignored"), Status::kTemp,
         "mail server temporarily rejected message (#4.3.0)");
}

TEST(ExitCodesTest, CustomTextControlBytesBecomeSpaces) {
  expect(for_code(82, std::string_view("Dtwo\nlines\0nul\n", 15)), Status::kPerm, "two lines nul");
}

TEST(ExitCodesTest, FixedVerdicts) {
  expect(start_failure_verdict(), Status::kTemp, "qqt failure (#4.3.0)");
  expect(timeout_verdict(), Status::kTemp, "qq timeout (#4.3.0)");
  EXPECT_STREQ(status_name(Status::kOk), "ok");
  EXPECT_STREQ(status_name(Status::kTemp), "temp");
  EXPECT_STREQ(status_name(Status::kPerm), "perm");
}

}  // namespace
}  // namespace sppd::queue_bridge
