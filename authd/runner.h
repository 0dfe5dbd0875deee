// CheckRunner: runs the admin's checkpassword chain, one process group per check, with fd 3
// a pipe carrying the credentials (checkpassword(8)), at most `concurrency` at once (later
// checks wait in FIFO order) and a time limit after which the group is killed. Driven by
// authd's event loop (timers) and SIGCHLD (reap_children). Runs as authd's user; errors
// starting a program are answered "temp", never "ok".
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "authd/secret.h"
#include "common/event.h"
#include "common/fd.h"

namespace sppd::authd {

// What a check came to. kMisuse is checkpassword's exit 2 (it says our input was malformed:
// answered "bad", but worth an error line); kTemp covers exit 111, a signal, a timeout and a
// program that could not start.
enum class Verdict { kOk, kBad, kMisuse, kTemp };

struct Outcome {
  Verdict verdict = Verdict::kTemp;
  std::string detail;  // for the log: "exit 1", "killed by signal 9", "timed out after 30 s"
};

// The Verdict for a checkpassword wait status: 0 ok, 2 misuse, 111 temp, a signal temp, any
// other exit bad (vchkpw exits with many codes; all of them mean failure).
Outcome outcome_of(int wait_status);

struct RunnerSettings {
  std::vector<std::string> command;  // checkprogram [args] subprogram [args]; [0] is a path
  std::string cwd;                   // qmail_home, as qmail-smtpd ran it
  int timeout = 30;                  // seconds from start to exit
  int concurrency = 8;               // programs running at once
  size_t max_waiting = 10000;        // checks queued beyond that; more are answered temp
};

class CheckRunner {
 public:
  // Called once per check. May be called from inside submit() (the program could not
  // start, or too many checks wait).
  using Done = std::function<void(const Outcome&)>;

  CheckRunner(event_base* base, RunnerSettings settings);
  // Kills the process groups of checks still running (authd shutting down).
  ~CheckRunner();
  CheckRunner(const CheckRunner&) = delete;
  CheckRunner& operator=(const CheckRunner&) = delete;

  // New settings for checks started from now on (SIGHUP).
  void set_settings(RunnerSettings settings);
  // Runs (or queues) one check: input is checkpassword's fd 3 content, wiped as soon as it
  // is written to the pipe; env is the program's whole environment ("NAME=value").
  void submit(Secret input, std::vector<std::string> env, Done done);
  // Reaps every exited child (authd has no children but checkpassword programs) and
  // finishes their checks; call on SIGCHLD.
  void reap_children();
  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }

 private:
  struct Job {
    Secret input;
    std::vector<std::string> env;
    Done done;
  };
  struct Run {
    CheckRunner* runner = nullptr;
    pid_t pid = -1;
    EventPtr timer;
    Done done;
  };

  void start(Job job);
  void start_waiting();
  void finish(pid_t pid, const Outcome& outcome);
  static void on_timeout(evutil_socket_t, short, void* run);

  event_base* base_;
  RunnerSettings settings_;
  UniqueFd dev_null_;
  std::map<pid_t, std::unique_ptr<Run>> running_;
  std::deque<Job> waiting_;
};

}  // namespace sppd::authd
