/* sppd-test-checkpassword: a checkpassword-compatible program over a test password file, for
 * authd's unit tests and the integration tests (built into build/test-bin/). Never installed.
 * Usage: sppd-test-checkpassword [-o challenge_first] [-l LOGFILE] PASSWORDFILE subprogram...
 *
 * Reads fd 3 (at most 512 bytes): "user\0password\0timestamp\0" or, for CRAM,
 * "user\0response\0challenge\0" (default) or "user\0challenge\0response\0" (-o
 * challenge_first). PASSWORDFILE holds "user:password" lines. The password slot matches if
 * it is the password, or a lower-case hex HMAC of the challenge keyed by the password: 32
 * digits HMAC-MD5, 40 digits HMAC-SHA1 or HMAC-RIPEMD160. Exit 1 on mismatch, 2 on malformed
 * input or usage, 111 if the file is unreadable; on success it execs the subprogram.
 * -l appends "user\n" to LOGFILE on every run, so tests can see whether it ran at all. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHECK_INPUT_MAX 512

static int read_input(char *buf, size_t *len) {
  size_t got = 0;
  for (;;) {
    ssize_t n = read(3, buf + got, CHECK_INPUT_MAX + 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    got += (size_t)n;
    if (got > CHECK_INPUT_MAX) return -1;
  }
  close(3);
  *len = got;
  return 0;
}

/* Splits buf into NUL-terminated fields; returns how many complete fields were found. */
static int split_fields(char *buf, size_t len, char **fields, int max) {
  int count = 0;
  size_t start = 0;
  for (size_t i = 0; i < len && count < max; ++i) {
    if (buf[i] != '\0') continue;
    fields[count++] = buf + start;
    start = i + 1;
  }
  return count;
}

/* The password of user in path, copied into out; 1 found, 0 not found, -1 unreadable. */
static int lookup(const char *path, const char *user, char *out, size_t out_size) {
  FILE *file = fopen(path, "r");
  if (!file) return -1;
  char line[1024];
  size_t user_len = strlen(user);
  int found = 0;
  while (!found && fgets(line, sizeof line, file)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, user, user_len) == 0 && line[user_len] == ':' &&
        strlen(line + user_len + 1) < out_size) {
      strcpy(out, line + user_len + 1);
      found = 1;
    }
  }
  int failed = ferror(file);
  fclose(file);
  return failed ? -1 : found;
}

static int hmac_matches(const EVP_MD *md, const char *password, const char *challenge,
                        const char *response) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (!HMAC(md, password, (int)strlen(password), (const unsigned char *)challenge,
            strlen(challenge), digest, &digest_len)) {
    return 0;
  }
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned int i = 0; i < digest_len; ++i) sprintf(hex + 2 * i, "%02x", digest[i]);
  hex[2 * digest_len] = '\0';
  return strcmp(hex, response) == 0;
}

static int cram_matches(const char *password, const char *challenge, const char *response) {
  size_t len = strlen(response);
  if (len == 32) return hmac_matches(EVP_md5(), password, challenge, response);
  if (len == 40) {
    return hmac_matches(EVP_sha1(), password, challenge, response) ||
           hmac_matches(EVP_ripemd160(), password, challenge, response);
  }
  return 0;
}

int main(int argc, char **argv) {
  int challenge_first = 0;
  const char *log_path = NULL;
  int arg = 1;
  while (arg + 1 < argc && argv[arg][0] == '-') {
    if (strcmp(argv[arg], "-o") == 0 && strcmp(argv[arg + 1], "challenge_first") == 0) {
      challenge_first = 1;
    } else if (strcmp(argv[arg], "-l") == 0) {
      log_path = argv[arg + 1];
    } else {
      return 2;
    }
    arg += 2;
  }
  if (arg + 1 >= argc) return 2; /* needs a password file and a subprogram */
  const char *password_file = argv[arg];
  char **subprogram = argv + arg + 1;

  char input[CHECK_INPUT_MAX + 1];
  size_t len = 0;
  char *fields[3] = {NULL, NULL, NULL};
  if (read_input(input, &len) < 0) return 2;
  int count = split_fields(input, len, fields, 3);
  if (count < 2 || fields[0][0] == '\0') return 2;
  if (count < 3) fields[2] = "";

  if (log_path) {
    FILE *log = fopen(log_path, "a");
    if (log) {
      fprintf(log, "%s\n", fields[0]);
      fclose(log);
    }
  }

  char password[256];
  int found = lookup(password_file, fields[0], password, sizeof password);
  if (found < 0) return 111;
  if (!found) return 1;
  const char *response = challenge_first ? fields[2] : fields[1];
  const char *challenge = challenge_first ? fields[1] : fields[2];
  int ok = strcmp(fields[1], password) == 0 || cram_matches(password, challenge, response);
  memset(password, 0, sizeof password);
  memset(input, 0, sizeof input);
  if (!ok) return 1;
  execvp(subprogram[0], subprogram);
  return 111;
}
