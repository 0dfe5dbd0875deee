/* authrequired: qmail-spp [mail] plugin (after Tomislav Randjic's authrequired.c, 2006):
 * rejects MAIL unless the session authenticated (SMTPAUTHUSER set and non-empty). For a
 * submission service: SPPCONFFILE=control/msaplugins in its tcprules. Output: E550 or nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
  const char *user = getenv("SMTPAUTHUSER");
  if (user != NULL && *user != '\0') return 0;
  fprintf(stderr, "authrequired: pid %ld - message rejected, SMTP AUTH required.\n",
          (long)getppid());
  printf("E550 SMTP AUTH required\n");
  return 0;
}
