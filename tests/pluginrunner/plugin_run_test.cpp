// Tests for running real plugins through pluginrunner (request, plugin_process): sh scripts
// written into a temporary qmail home and the built seed plugins, sent as kPluginRun frames.
// Checks what a plugin sees (fds, env, cwd, signals, process group) and what comes back.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "common/spawn.h"
#include "runner_fixture.h"

namespace sppd::pluginrunner {
namespace {

const std::string kPluginDir = SPPD_PLUGIN_DIR;

// True once pid has ended (gone, or a zombie nobody reaped yet).
bool process_gone(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return stat.empty() || paren == std::string::npos || stat.substr(paren + 2, 1) == "Z";
}

// The signals this process ignores (/proc/self/status SigIgn).
unsigned long long ignored_here() {
  std::string status = read_file("/proc/self/status");
  size_t at = status.find("SigIgn:");
  return at == std::string::npos ? 0 : std::stoull(status.substr(at + 7), nullptr, 16);
}

// Sends fd 2 to a file while it lives, to see what the runner logs.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) {
    saved_ = dup(2);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    dup2(fd, 2);
    close(fd);
  }
  ~StderrCapture() {
    dup2(saved_, 2);
    close(saved_);
  }

 private:
  int saved_ = -1;
};

TEST_F(RunnerTest, SetThenALaterPluginSeesIt) {
  start();
  auto* result = run('h', {":echo SFOO=bar", ":echo \"H$FOO\"", script("p", "echo \"H$FOO\"")});
  EXPECT_EQ(commands(result), (Strings{"SFOO=bar", "Hbar", "Hbar"}));
  EXPECT_EQ(failure(result), "");
}

TEST_F(RunnerTest, UnsetHidesAVariableFromLaterPlugins) {
  start();
  auto* result = run('c', {":echo \"H$FOO\"; echo UFOO", ":echo \"H${FOO-unset}\""}, {"FOO=x"});
  EXPECT_EQ(commands(result), (Strings{"Hx", "UFOO", "Hunset"}));
}

TEST_F(RunnerTest, ChangeInMailSetsSmtpMailFromForTheNextPlugin) {
  start();
  auto* mail = run('m', {":echo Cnew@example.org", ":echo \"H$SMTPMAILFROM\""},
                   {"SMTPMAILFROM=old@example.org"});
  EXPECT_EQ(commands(mail), (Strings{"Cnew@example.org", "Hnew@example.org"}));
  auto* rcpt = run('r', {":echo Cto@example.org", ":echo \"H$SMTPRCPTTO $SMTPMAILFROM\""},
                   {"SMTPMAILFROM=f@x", "SMTPRCPTTO=old@x"});
  EXPECT_EQ(commands(rcpt), (Strings{"Cto@example.org", "Hto@example.org f@x"}));
  // Outside [mail] and [rcpt] C means nothing (not even reported).
  auto* helo = run('h', {":echo Cx@y", ":echo \"H${SMTPMAILFROM-unset}\""});
  EXPECT_EQ(commands(helo), (Strings{"Hunset"}));
}

TEST_F(RunnerTest, TerminatingCommandStopsTheSection) {
  start();
  for (std::string terminator : {"A", "N", "O", "E550 no", "R421 bye", "D"}) {
    auto* result =
        run('r', {":echo HX; echo '" + terminator + "'; echo HY; echo N", ":echo HZ"}, {});
    EXPECT_EQ(commands(result), (Strings{"HX", terminator})) << terminator;
    EXPECT_EQ(failure(result), "");
  }
}

TEST_F(RunnerTest, OtherExitStatusesAreIgnored) {
  start();
  auto* result = run('m', {":echo HX; exit 1", ":echo E550 bad; exit 3"});
  EXPECT_EQ(commands(result), (Strings{"HX", "E550 bad"}));
  EXPECT_EQ(failure(result), "");
  // A missing program behind ':' is sh's exit 127: ignored, the next plugin runs.
  auto* missing = run('m', {":plugins/nonexistent", ":echo HX"});
  EXPECT_EQ(commands(missing), (Strings{"HX"}));
  EXPECT_EQ(failure(missing), "");
}

TEST_F(RunnerTest, ExitStatus120IsCantExecute) {
  start();
  auto* result = run('m', {":echo HX; exit 120", ":echo HY"});
  EXPECT_EQ(commands(result), (Strings{"HX"}));
  EXPECT_EQ(failure(result), "qmail-spp failure: :echo HX; exit 120: can't execute (#4.3.0)");
  // Even after a terminating command (qmail-spp checks the exit status before acting).
  auto* after = run('m', {":echo E550 no; exit 120"});
  EXPECT_EQ(commands(after), (Strings{"E550 no"}));
  EXPECT_EQ(failure(after), "qmail-spp failure: :echo E550 no; exit 120: can't execute (#4.3.0)");
}

TEST_F(RunnerTest, ProgramsThatCannotRunAreCantExecute) {
  start();
  std::string not_executable = script("noexec", "echo HX");
  chmod((home_ + "/" + not_executable).c_str(), 0644);
  for (const std::string& line :
       Strings{"plugins/nonexistent", "plugins/foo -x", not_executable,
               script("crlf", "echo HX") + "\r", "  " + script("lead", "echo HX")}) {
    auto* result = run('d', {line, ":echo HY"});
    EXPECT_EQ(commands(result), Strings{}) << line;
    EXPECT_EQ(failure(result), "qmail-spp failure: " + line + ": can't execute (#4.3.0)");
  }
}

TEST_F(RunnerTest, KilledBySignalIsChildCrashed) {
  start();
  auto* result = run('r', {":echo HX; kill -SEGV $$", ":echo HY"});
  EXPECT_EQ(commands(result), (Strings{"HX"}));
  EXPECT_EQ(failure(result), "qmail-spp failure: :echo HX; kill -SEGV $$: child crashed (#4.3.0)");
}

TEST_F(RunnerTest, TimeoutKillsTheProcessGroupAndIsChildCrashed) {
  settings_.run.plugin_timeout = std::chrono::milliseconds(300);
  start();
  std::string line = script("hang", "echo HX; sleep 5 & echo $! > " + home_ + "/sleep.pid; wait");
  auto began = Clock::now();
  auto* result = run('m', {line, ":echo HY"});
  auto took = Clock::now() - began;
  EXPECT_EQ(commands(result), (Strings{"HX"}));
  EXPECT_EQ(failure(result), "qmail-spp failure: " + line + ": child crashed (#4.3.0)");
  EXPECT_LT(took, std::chrono::seconds(2));
  pid_t sleeper = std::atoi(read_file(home_ + "/sleep.pid").c_str());
  ASSERT_GT(sleeper, 0);
  EXPECT_TRUE(run_until([&] { return process_gone(sleeper); }, 2)) << "the group was not killed";
}

TEST_F(RunnerTest, BackgroundChildHoldingStdoutDoesNotHang) {
  start();
  std::string pid_file = home_ + "/bg.pid";
  auto began = Clock::now();
  auto* result =
      run('r', {":sleep 30 & echo $! > " + pid_file + "; echo HX; echo N", ":echo HY"}, {}, 8);
  auto took = Clock::now() - began;
  pid_t sleeper = std::atoi(read_file(pid_file).c_str());
  if (sleeper > 0) kill(sleeper, SIGKILL);
  EXPECT_EQ(commands(result), (Strings{"HX", "N"}));
  EXPECT_LT(took, std::chrono::seconds(2));
  // The same without a terminating command: the direct child's exit ends the plugin.
  result = run('r', {":sleep 30 & echo $! > " + pid_file + "; echo HX", ":echo HY"}, {}, 8);
  sleeper = std::atoi(read_file(pid_file).c_str());
  if (sleeper > 0) kill(sleeper, SIGKILL);
  EXPECT_EQ(commands(result), (Strings{"HX", "HY"}));
}

TEST_F(RunnerTest, BackgroundChildIsKilledWhenThePluginTimeoutComes) {
  settings_.run.plugin_timeout = std::chrono::milliseconds(500);
  start();
  std::string pid_file = home_ + "/bg.pid";
  auto began = Clock::now();
  auto* result = run('r', {":sleep 30 & echo $! > " + pid_file + "; echo HX"});
  EXPECT_LT(Clock::now() - began, std::chrono::milliseconds(400));  // answered at once
  EXPECT_EQ(commands(result), (Strings{"HX"}));
  EXPECT_EQ(failure(result), "");  // the plugin itself ended in time
  pid_t sleeper = std::atoi(read_file(pid_file).c_str());
  ASSERT_GT(sleeper, 0);
  EXPECT_FALSE(process_gone(sleeper));
  EXPECT_TRUE(run_until([&] { return process_gone(sleeper); }, 3)) << "still running";
  EXPECT_LT(Clock::now() - began, std::chrono::milliseconds(1500));
}

TEST_F(RunnerTest, StdinIsClosedAndNothingElseLeaks) {
  start();
  std::string line = script("fds",
                            "for fd in 0 3 4 5 6 7 8 9; do\n"
                            "  [ -e /proc/self/fd/$fd ] && echo \"Hfd $fd open\"\n"
                            "done\n"
                            "[ -p /proc/self/fd/1 ] && echo Hstdout-pipe\n"
                            "[ -p /proc/self/fd/2 ] && echo Hstderr-pipe\n"
                            "if cat; then echo Hstdin-readable; else echo Hstdin-fails; fi\n"
                            "echo Hdone");
  EXPECT_EQ(commands(run('c', {line})),
            (Strings{"Hstdout-pipe", "Hstderr-pipe", "Hstdin-fails", "Hdone"}));
}

TEST_F(RunnerTest, PluginEnvironmentCwdArgvAndProcessGroup) {
  // As if glibc's posix_spawn had started us: its internal signals ignored.
  spawn::set_glibc_internal_signals(SIG_IGN);
  start();
  std::string line = script("env",
                            "echo \"H$0\"\n"
                            "echo \"H$(pwd)\"\n"
                            "echo \"H$PATH\"\n"
                            "echo \"H${HOME-nohome} $TCPREMOTEIP\"\n"
                            "echo \"H$(cut -d' ' -f5 /proc/$$/stat) $$\"\n"
                            "echo \"H$(grep SigIgn /proc/self/status | cut -f2)\"");
  Strings got = commands(run('c', {line}, {"TCPREMOTEIP=192.0.2.1"}));
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0], "Hplugins/env");  // argv[0] is the config line
  EXPECT_EQ(got[1], "H" + home_);     // cwd = qmail_home
  EXPECT_EQ(got[2], "H/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(got[3], "Hnohome 192.0.2.1");  // exactly the request's env
  std::string pgid = got[4].substr(1, got[4].find(' ') - 1);
  EXPECT_EQ(pgid, got[4].substr(got[4].find(' ') + 1)) << "own process group";
  // Ignored: SIGPIPE (qmail-smtpd's sig_pipeignore()) and what we inherited, but never
  // glibc's internal signals 32 and 33, ignored here now: common/spawn resets them.
  unsigned long long ignored = std::stoull(got[5].substr(1), nullptr, 16);
  constexpr unsigned long long kGlibcInternal = (1ull << 31) | (1ull << 32);
  ASSERT_EQ(ignored_here() & kGlibcInternal, kGlibcInternal);
  spawn::set_glibc_internal_signals(SIG_DFL);
  EXPECT_EQ(ignored, (ignored_here() & ~kGlibcInternal) | (1ull << (SIGPIPE - 1))) << got[5];
  // A PATH given by the session wins.
  EXPECT_EQ(commands(run('c', {":echo \"H$PATH\""}, {"PATH=/opt/bin"})), (Strings{"H/opt/bin"}));
}

TEST_F(RunnerTest, OutputLineRulesApply) {
  start();
  auto* result =
      run('h', {":printf 'HX\\r\\n\\nx-ignored\\nLXignored\\nP250 ok\\r\\nE554 go away'"});
  EXPECT_EQ(commands(result), (Strings{"HX", "P250 ok", "E554 go away"}));
}

TEST_F(RunnerTest, HugeOutputIsCapped) {
  settings_.run.max_output = 65536;
  start();
  auto began = Clock::now();
  auto* result =
      run('d', {":yes 'HX-Filler: 0123456789' | head -c 1048576; echo E550 late", ":echo HY"});
  ASSERT_NE(result, nullptr);
  Strings got = commands(result);
  EXPECT_GT(got.size(), 1000u);
  for (const auto& command : got) ASSERT_EQ(command, "HX-Filler: 0123456789");
  EXPECT_EQ(failure(result), "");
  EXPECT_LT(Clock::now() - began, std::chrono::seconds(3));
}

TEST_F(RunnerTest, SeedPluginAuthRequired) {
  start();
  std::string line = kPluginDir + "/authrequired";
  EXPECT_EQ(commands(run('m', {line})), (Strings{"E550 SMTP AUTH required"}));
  EXPECT_EQ(commands(run('m', {line}, {"SMTPAUTHUSER="})), (Strings{"E550 SMTP AUTH required"}));
  EXPECT_EQ(commands(run('m', {line}, {"SMTPAUTHUSER=alice"})), Strings{});
}

TEST_F(RunnerTest, SeedPluginIfAuthSkip) {
  start();
  Strings plugins = {kPluginDir + "/ifauthskip", ":echo E553 listed"};
  EXPECT_EQ(commands(run('r', plugins, {"SMTPAUTHUSER=alice"})), (Strings{"N"}));
  EXPECT_EQ(commands(run('r', plugins)), (Strings{"E553 listed"}));
}

TEST_F(RunnerTest, SeedPluginAuthLoggerLogsItsStderrWithPluginAndSession) {
  start();
  std::string log_path = home_ + "/stderr.log";
  std::string line = kPluginDir + "/authlogger";
  {
    StderrCapture capture(log_path);
    auto* result =
        run('a', {line}, {"SMTPAUTHUSER=alice", "SMTPAUTHMETHOD=plain", "TCPREMOTEIP=192.0.2.7"});
    EXPECT_EQ(commands(result), Strings{});
    EXPECT_EQ(failure(result), "");
  }
  std::string logged = read_file(log_path);
  std::string expected = "plugin " + line + " session s1: authlogger: pid " +
                         std::to_string(getpid()) +
                         " - user alice authenticated with plain from 192.0.2.7\n";
  EXPECT_NE(logged.find(expected), std::string::npos) << logged;
}

}  // namespace
}  // namespace sppd::pluginrunner
