// exit_codes: turns how qmail-queue ended into the verdict the worker turns into an SMTP reply.
// Pure functions (no I/O, no clock): the caller passes the wait status, the custom error text
// read from the error fd, the pid and the time. Texts are qmail's qmail_close() strings
// (notqmail qmail.c) without the leading D/Z, which becomes the status.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <string>
#include <string_view>

namespace sppd::queue_bridge {

enum class Status { kOk, kTemp, kPerm };

struct Verdict {
  Status status = Status::kTemp;
  std::string text;  // e.g. "ok 1700000000 qp 4242", "qq temporary problem (#4.3.0)"
};

// "ok", "temp" or "perm": the status attribute of kQueueResult.
const char* status_name(Status status);

// Maps a waitpid() status to qmail's verdict. custom_text is what the queue program wrote
// on the error fd (may be empty); it wins on exit 82 or 88 when longer than 2 bytes and
// starting with 'D' (permanent) or 'Z' (temporary). envelope_failed is qmail's flagerr:
// the envelope never fully reached qmail-queue, so exit 0 cannot mean "queued".
Verdict verdict_for_exit(int wait_status, std::string_view custom_text, pid_t pid, time_t now,
                         bool envelope_failed = false);

// The verdict when qmail-queue could not be started (pipe, fork or exec failed).
Verdict start_failure_verdict();
// The verdict when qmail-queue did not finish within queue_timeout.
Verdict timeout_verdict();

}  // namespace sppd::queue_bridge
