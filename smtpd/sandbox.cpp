// The smtpd seccomp allowlist (see sandbox.h). Runs once, in the worker, after
// privilege::drop. Everything not listed kills the process (the master logs the signal
// and restarts the worker); filesystem probes fail softly with EACCES.
#include "smtpd/sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/log.h"

namespace sppd::smtpd {
namespace {

void on_sigsys(int, siginfo_t* info, void*) {
  // Async-signal-safe: format the number by hand and write(2) it.
  char message[64] = "error: seccomp: forbidden syscall ";
  size_t length = strlen(message);
  int number = info->si_syscall;
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + number % 10);
    number /= 10;
  } while (number && n < 11);
  while (n) message[length++] = digits[--n];
  message[length++] = '\n';
  ssize_t ignored = write(2, message, length);
  (void)ignored;
  _exit(70);
}

}  // namespace

void enter_sandbox() {
  const char* mode = getenv("SPPD_SECCOMP");
  bool trap = mode && strcmp(mode, "trap") == 0;
  if (trap) {
    struct sigaction action {};
    action.sa_sigaction = on_sigsys;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &action, nullptr);
  }
  scmp_filter_ctx ctx = seccomp_init(trap ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
  if (!ctx) log::fatal("seccomp_init failed");
  auto allow = [ctx](int syscall) {
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, syscall, 0) != 0) {
      log::fatal("seccomp: cannot allow syscall ", syscall);
    }
  };
  for (int syscall : {
           // I/O on descriptors we already hold (client sockets, pipes, IPC channels)
           SCMP_SYS(read),
           SCMP_SYS(write),
           SCMP_SYS(readv),
           SCMP_SYS(writev),
           SCMP_SYS(recvmsg),
           SCMP_SYS(sendmsg),
           SCMP_SYS(recvfrom),
           SCMP_SYS(sendto),
           SCMP_SYS(close),
           SCMP_SYS(shutdown),
           SCMP_SYS(accept4),
           SCMP_SYS(accept),
           SCMP_SYS(getsockname),
           SCMP_SYS(getpeername),
           SCMP_SYS(setsockopt),
           SCMP_SYS(getsockopt),
           SCMP_SYS(fcntl),
           SCMP_SYS(fstat),
           SCMP_SYS(newfstatat),
           // STARTTLS keeps the connection through a duplicate while its buffers change
           SCMP_SYS(dup),
           // the event loop and time
           SCMP_SYS(epoll_wait),
           SCMP_SYS(epoll_pwait),
           SCMP_SYS(epoll_ctl),
           SCMP_SYS(poll),
           SCMP_SYS(ppoll),
           SCMP_SYS(clock_gettime),
           SCMP_SYS(clock_getres),
           SCMP_SYS(gettimeofday),
           SCMP_SYS(time),
           SCMP_SYS(nanosleep),
           SCMP_SYS(clock_nanosleep),
           SCMP_SYS(getrandom),
           // memory (mmap/mprotect without PROT_EXEC are added below)
           SCMP_SYS(brk),
           SCMP_SYS(munmap),
           SCMP_SYS(mremap),
           SCMP_SYS(madvise),
           SCMP_SYS(futex),
           SCMP_SYS(sched_yield),
           // signals and exit
           SCMP_SYS(rt_sigreturn),
           SCMP_SYS(rt_sigprocmask),
           SCMP_SYS(rt_sigaction),
           SCMP_SYS(sigaltstack),
           SCMP_SYS(restart_syscall),
           SCMP_SYS(getpid),
           SCMP_SYS(gettid),
           SCMP_SYS(tgkill),
           SCMP_SYS(exit),
           SCMP_SYS(exit_group),
           SCMP_SYS(getuid),
           SCMP_SYS(geteuid),
           SCMP_SYS(getgid),
           SCMP_SYS(getegid),
       }) {
    allow(syscall);
  }
  // No executable memory can be created after set-up. The same rule (with fstat, for its
  // size, and munmap) lets the worker map dnsbl-cache's DNSBL table from the descriptor it
  // receives, PROT_READ and MAP_SHARED; the descriptor is read-only and the memfd sealed, so
  // the kernel refuses a writable shared mapping of it whatever the filter allows.
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                   SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                   SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  // libevent asks how many bytes are readable before reading a socket.
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, FIONREAD));
  // glibc and libstdc++ may probe files (locale, timezone): fail softly instead of dying.
  for (int syscall : {SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(stat), SCMP_SYS(lstat),
                      SCMP_SYS(access), SCMP_SYS(readlink)}) {
    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), syscall, 0);
  }
#ifdef SPPD_SANITIZE
  // Test builds only: AddressSanitizer/UBSan reports need a few more calls to print.
  for (int syscall : {SCMP_SYS(sched_getaffinity), SCMP_SYS(prctl), SCMP_SYS(getppid),
                      SCMP_SYS(dup2), SCMP_SYS(uname), SCMP_SYS(lseek)}) {
    allow(syscall);
  }
#endif
  if (seccomp_load(ctx) != 0) log::fatal("seccomp_load failed: ", strerror(errno));
  seccomp_release(ctx);
}

}  // namespace sppd::smtpd
