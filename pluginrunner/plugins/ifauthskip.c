/* ifauthskip: qmail-spp plugin (after Tomislav Randjic's ifauthskip.c, 2006): for an
 * authenticated session (SMTPAUTHUSER non-empty) prints N, so the section's remaining plugins
 * (e.g. an RBL check such as rblspp in [rcpt]) are skipped. Otherwise prints nothing. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  const char *user = getenv("SMTPAUTHUSER");
  if (user != NULL && *user != '\0') printf("N\n");
  return 0;
}
