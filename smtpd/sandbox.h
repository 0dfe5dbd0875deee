// The smtpd seccomp filter: after set-up and privilege drop, the worker may only do I/O on
// descriptors it already has, accept on its listeners, manage memory without PROT_EXEC,
// keep time and exit (architecture-anchors §3). No open, socket, connect, exec or fork.
#pragma once

namespace sppd::smtpd {

// Installs the filter (sets NO_NEW_PRIVS). Exits with a log line if it cannot.
// SPPD_SECCOMP=trap in the environment turns violations into a logged SIGSYS + exit
// instead of a silent kill, for diagnosing a missing syscall.
void enter_sandbox();

}  // namespace sppd::smtpd
