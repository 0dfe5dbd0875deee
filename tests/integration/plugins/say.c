/* say: the integration tests' probe plugin (qmail-spp). Records what a plugin sees, then
 * prints what the test told it to. Record: out/<basename of argv[0]>.<n> under the cwd (n = 1,
 * 2, ... first free), NUL-terminated "key=value" records: argv, env (from /proc/self/environ),
 * cwd, fd ("N target", every descriptor open at start), pid, ppid, pgid, sid, uid, gid, SigIgn,
 * SigBlk. Output: the bytes of "<argv[0]>.out" (relative to the cwd), copied verbatim, if
 * that file exists. The descriptors are listed before anything is opened: fd 0 is closed
 * under qmail-spp, so the first open() would take it. Errors: message on stderr, exit 111. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FDS 256

static void fail(const char *what) {
  fprintf(stderr, "say: %s: %s\n", what, strerror(errno));
  exit(111);
}

/* Writes the record "key=value\0". */
static void put(FILE *out, const char *key, const char *value) {
  fprintf(out, "%s=%s", key, value);
  fputc('\0', out);
}

static void put_long(FILE *out, const char *key, long value) {
  char text[32];
  snprintf(text, sizeof text, "%ld", value);
  put(out, key, text);
}

/* Copies the whole file at path to out with the given record key per NUL-separated item. */
static void put_items(FILE *out, const char *key, const char *path) {
  FILE *in = fopen(path, "r");
  if (!in) fail(path);
  char *item = NULL;
  size_t size = 0;
  ssize_t len;
  while ((len = getdelim(&item, &size, '\0', in)) > 0) {
    if (item[len - 1] == '\0') --len;
    fprintf(out, "%s=%.*s", key, (int)len, item);
    fputc('\0', out);
  }
  free(item);
  fclose(in);
}

/* The SigIgn and SigBlk lines of /proc/self/status, as hex masks. */
static void put_signal_masks(FILE *out) {
  FILE *in = fopen("/proc/self/status", "r");
  if (!in) fail("/proc/self/status");
  char line[256];
  while (fgets(line, sizeof line, in)) {
    char mask[64];
    if (sscanf(line, "SigIgn: %63s", mask) == 1) put(out, "SigIgn", mask);
    if (sscanf(line, "SigBlk: %63s", mask) == 1) put(out, "SigBlk", mask);
  }
  fclose(in);
}

int main(int argc, char **argv) {
  (void)argc;
  /* 1. Descriptors, before we open anything ourselves. */
  int fds[MAX_FDS];
  char targets[MAX_FDS][128];
  int nfds = 0;
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) fail("/proc/self/fd");
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL && nfds < MAX_FDS) {
    if (entry->d_name[0] == '.') continue;
    int fd = atoi(entry->d_name);
    if (fd == dirfd(dir)) continue;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, targets[nfds], sizeof targets[nfds] - 1);
    targets[nfds][n < 0 ? 0 : n] = '\0';
    fds[nfds++] = fd;
  }
  closedir(dir);

  /* 2. The record file: out/<name>.<n>, the first n that is free. */
  const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  char path[PATH_MAX];
  int record = -1;
  for (int n = 1; record < 0 && n < 100000; ++n) {
    snprintf(path, sizeof path, "out/%s.%d", name, n);
    record = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (record < 0 && errno != EEXIST) fail(path);
  }
  FILE *out = fdopen(record, "w");
  if (!out) fail(path);
  for (char **arg = argv; *arg; ++arg) put(out, "argv", *arg);
  put_items(out, "env", "/proc/self/environ");
  char cwd[PATH_MAX];
  put(out, "cwd", getcwd(cwd, sizeof cwd) ? cwd : "?");
  for (int i = 0; i < nfds; ++i) {
    fprintf(out, "fd=%d %s", fds[i], targets[i]);
    fputc('\0', out);
  }
  put_long(out, "pid", getpid());
  put_long(out, "ppid", getppid());
  put_long(out, "pgid", getpgid(0));
  put_long(out, "sid", getsid(0));
  put_long(out, "uid", getuid());
  put_long(out, "gid", getgid());
  put_signal_masks(out);
  if (fclose(out) != 0) fail(path);

  /* 3. The answer the test prepared. */
  char answer[PATH_MAX];
  snprintf(answer, sizeof answer, "%s.out", argv[0]);
  int in = open(answer, O_RDONLY);
  if (in < 0) {
    if (errno == ENOENT) return 0;
    fail(answer);
  }
  char buf[8192];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(1, buf + done, n - done);
      if (w < 0) fail("stdout");
      done += w;
    }
  }
  return 0;
}
