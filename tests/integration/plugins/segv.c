/* segv: a qmail-spp plugin that prints a header command, then dies of SIGSEGV. qmail-spp
 * answers "451 qmail-spp failure: <line>: child crashed (#4.3.0)"; the header printed before
 * the crash still counts (commands are applied as they are read). */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
  static const char line[] = "HX-Before-Crash: yes\n";
  if (write(1, line, sizeof line - 1) != (ssize_t)(sizeof line - 1)) return 1;
  /* An address the compiler cannot see is null: a real invalid store, not a trap. */
  volatile int *nowhere = (volatile int *)(uintptr_t)strtoul("0", NULL, 10);
  *nowhere = 1;
  raise(SIGSEGV); /* not reached */
  return 0;
}
