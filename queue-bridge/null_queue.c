/* sppd-null-queue: a qmail-queue that queues nothing, for benchmarks of the SMTP path. Reads
 * the message (fd 0) and the envelope (fd 1) to EOF and exits 0 if the envelope ended with
 * its final NUL, 54 (qmail-queue's read error) otherwise. C and static, so that one spawn
 * costs what a small qmail-queue costs, not a C++ runtime's start-up. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

enum { kExitReadError = 54 };

/* Reads fd to EOF keeping the last two bytes; 0 on a read error. */
static int drain(int fd, char last_two[2], size_t* total) {
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 0;
    if (n == 0) return 1;
    for (ssize_t i = n >= 2 ? n - 2 : 0; i < n; ++i) {
      last_two[0] = last_two[1];
      last_two[1] = buffer[i];
    }
    *total += (size_t)n;
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  char last_two[2] = {1, 1};
  size_t total = 0;
  if (!drain(0, last_two, &total)) return kExitReadError;
  last_two[0] = last_two[1] = 1;
  total = 0;
  if (!drain(1, last_two, &total)) return kExitReadError;
  /* The shortest envelope is "F\0\0"; every complete one ends with two NULs. */
  if (total < 3 || last_two[0] != '\0' || last_two[1] != '\0') return kExitReadError;
  return 0;
}
