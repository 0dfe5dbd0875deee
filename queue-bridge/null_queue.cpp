// sppd-null-queue: a qmail-queue that queues nothing, for benchmarks of the SMTP path. Reads
// the message (fd 0) and the envelope (fd 1) to EOF and exits 0 if the envelope ended with
// its final NUL, 54 (qmail-queue's read error) otherwise. No privilege, no files.
#include <errno.h>
#include <signal.h>
#include <unistd.h>

namespace {

constexpr int kExitReadError = 54;

// Reads fd to EOF; false on a read error. last_two keeps the final two bytes seen.
bool drain(int fd, char* last_two, size_t* total) {
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    for (ssize_t i = 0; i < n; ++i) {
      last_two[0] = last_two[1];
      last_two[1] = buffer[i];
    }
    *total += static_cast<size_t>(n);
  }
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  char last_two[2] = {1, 1};
  size_t total = 0;
  if (!drain(0, last_two, &total)) return kExitReadError;
  last_two[0] = last_two[1] = 1;
  total = 0;
  if (!drain(1, last_two, &total)) return kExitReadError;
  // The shortest envelope is "F\0\0"; every complete one ends with two NULs.
  if (total < 3 || last_two[0] != '\0' || last_two[1] != '\0') return kExitReadError;
  return 0;
}
