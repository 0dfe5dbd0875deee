/* null_queue: a qmail-queue that queues nothing, compiled by bench/bench.py only when the
 * build has no sppd-null-queue. Reads the message (fd 0) to EOF, then the envelope (fd 1)
 * to EOF; exits 0 if the envelope ended with its final NUL, else 54 (qmail's read error). */
#include <unistd.h>

static int drain(int fd, char last[2]) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return 1;
    if (n < 0) return 0;
    if (n >= 2) {
      last[0] = buf[n - 2];
      last[1] = buf[n - 1];
    } else {
      last[0] = last[1];
      last[1] = buf[0];
    }
  }
}

int main(void) {
  char last[2] = {1, 1};
  if (!drain(0, last)) return 54;
  last[0] = last[1] = 1;
  if (!drain(1, last)) return 54;
  return (last[0] == 0 && last[1] == 0) ? 0 : 54;
}
