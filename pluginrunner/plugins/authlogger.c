/* authlogger: qmail-spp [auth] plugin (after Tomislav Randjic's authlogger): logs a successful
 * SMTP AUTH to stderr (the service log) as "authlogger: pid <ppid> - user <user> authenticated
 * with <method> from <ip>". Prints nothing on stdout, so it never changes the reply. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *fallback) {
  const char *value = getenv(name);
  return value != NULL && *value != '\0' ? value : fallback;
}

int main(void) {
  const char *user = getenv("SMTPAUTHUSER");
  if (user == NULL || *user == '\0') return 0;
  fprintf(stderr, "authlogger: pid %ld - user %s authenticated with %s from %s\n", (long)getppid(),
          user, env_or("SMTPAUTHMETHOD", "unknown"), env_or("TCPREMOTEIP", "unknown"));
  return 0;
}
