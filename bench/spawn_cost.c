/* spawn_cost: what one qmail-queue or qmail-spp plugin start costs, the floor under sppd's
 * per-message and per-plugin CPU.
 * Usage: spawn_cost [-p] COUNT PROGRAM [ARG...]. Runs PROGRAM COUNT times with posix_spawn +
 * waitpid and prints wall time and CPU per run: the child's (user+sys, from RUSAGE_CHILDREN)
 * and the parent's. Without -p (qmail-queue): fd 0 = /dev/null (empty message), fd 1 = a
 * one-recipient envelope file. With -p (a plugin as qmail-spp runs it): fd 0 closed, fd 1 a
 * pipe read to EOF before the wait. Exits 1 if a run fails. Used by bench/bench.py; plain C,
 * no privileges. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double seconds(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

/* Prints wall time (since start) and CPU per run for count runs. */
static void report(long count, struct timespec start) {
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  struct rusage self, children;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  double wall = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
  double child_cpu = seconds(children.ru_utime) + seconds(children.ru_stime);
  double parent_cpu = seconds(self.ru_utime) + seconds(self.ru_stime);
  printf("runs=%ld wall_us=%.1f child_cpu_us=%.1f parent_cpu_us=%.1f\n", count, wall * 1e6 / count,
         child_cpu * 1e6 / count, parent_cpu * 1e6 / count);
}

/* One plugin run: fd 0 closed, stdout a pipe drained to EOF, then the wait. */
static int run_plugin(char **argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclose(&actions, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    fprintf(stderr, "spawn_cost: %s: %s\n", argv[0], strerror(rc));
    close(fds[0]);
    return -1;
  }
  char buf[4096];
  while (read(fds[0], buf, sizeof buf) > 0) {
  }
  close(fds[0]);
  int status;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "spawn_cost: %s did not exit 0 (wait status %d)\n", argv[0], status);
    return -1;
  }
  return 0;
}

static int plugin_mode(long count, char **argv) {
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < count; ++i) {
    if (run_plugin(argv) != 0) return 1;
  }
  report(count, start);
  return 0;
}

int main(int argc, char **argv) {
  int plugin = argc > 1 && strcmp(argv[1], "-p") == 0;
  if (plugin) {
    --argc;
    ++argv;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: spawn_cost [-p] COUNT PROGRAM [ARG...]\n");
    return 2;
  }
  long count = strtol(argv[1], NULL, 10);
  if (plugin) return plugin_mode(count, argv + 2);
  char envelope_path[] = "/tmp/spawn_cost.XXXXXX";
  int fd = mkstemp(envelope_path);
  if (fd < 0 || write(fd, "Fa@b\0Tc@d\0\0", 11) != 11) {
    perror("spawn_cost: envelope file");
    return 1;
  }
  close(fd);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, envelope_path, O_RDONLY, 0);

  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < count; ++i) {
    pid_t pid;
    int rc = posix_spawn(&pid, argv[2], &actions, NULL, argv + 2, environ);
    if (rc != 0) {
      fprintf(stderr, "spawn_cost: %s: %s\n", argv[2], strerror(rc));
      unlink(envelope_path);
      return 1;
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "spawn_cost: %s did not exit 0 (wait status %d)\n", argv[2], status);
      unlink(envelope_path);
      return 1;
    }
  }
  report(count, start);
  unlink(envelope_path);
  return 0;
}
