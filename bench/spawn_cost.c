/* spawn_cost: what one qmail-queue or qmail-spp plugin start costs, the floor under sppd's
 * per-message and per-plugin CPU.
 * Usage: spawn_cost [-p] [-v] COUNT PROGRAM [ARG...]. Runs PROGRAM COUNT times and waits for
 * it, printing wall time and CPU per run: the child's (user+sys, from RUSAGE_CHILDREN) and
 * the parent's. Starts it with posix_spawn, or with -v with vfork + execve doing only the
 * descriptor moves (the way common/spawn.cpp starts qmail-queue and plugins). Without -p
 * (qmail-queue): fd 0 = /dev/null (empty message), fd 1 = a one-recipient envelope file.
 * With -p (a plugin as qmail-spp runs it): fd 0 closed, fd 1 a pipe read to EOF before the
 * wait. Exits 1 if a run fails. Used by bench/bench.py; plain C, no privileges. */
#define _GNU_SOURCE
#include <errno.h>
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

/* Starts argv with fd 0 = in (or closed if in < 0) and fd 1 = out; the pid, or -1. */
static pid_t start(int use_vfork, char **argv, int in, int out) {
  if (use_vfork) {
    pid_t pid = vfork();
    if (pid == 0) {
      if (in >= 0 ? dup2(in, 0) < 0 : close(0) < 0) _exit(127);
      if (dup2(out, 1) < 0) _exit(127);
      execve(argv[0], argv, environ);
      _exit(127);
    }
    if (pid < 0) perror("spawn_cost: vfork");
    return pid;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (in >= 0) {
    posix_spawn_file_actions_adddup2(&actions, in, 0);
  } else {
    posix_spawn_file_actions_addclose(&actions, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    fprintf(stderr, "spawn_cost: %s: %s\n", argv[0], strerror(rc));
    return -1;
  }
  return pid;
}

static int waited_ok(pid_t pid, const char *program) {
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "spawn_cost: %s did not exit 0 (wait status %d)\n", program, status);
    return 0;
  }
  return 1;
}

/* One plugin run: fd 0 closed, stdout a pipe drained to EOF, then the wait. */
static int run_plugin(int use_vfork, char **argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = start(use_vfork, argv, -1, fds[1]);
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  char buf[4096];
  while (read(fds[0], buf, sizeof buf) > 0) {
  }
  close(fds[0]);
  return waited_ok(pid, argv[0]) ? 0 : -1;
}

/* One qmail-queue run: an empty message and a one-recipient envelope. */
static int run_queue(int use_vfork, char **argv, int message, int envelope) {
  if (lseek(envelope, 0, SEEK_SET) != 0) return -1;
  pid_t pid = start(use_vfork, argv, message, envelope);
  return pid >= 0 && waited_ok(pid, argv[0]) ? 0 : -1;
}

int main(int argc, char **argv) {
  int plugin = 0, use_vfork = 0;
  while (argc > 1 && argv[1][0] == '-') {
    if (strcmp(argv[1], "-p") == 0) {
      plugin = 1;
    } else if (strcmp(argv[1], "-v") == 0) {
      use_vfork = 1;
    } else {
      break;
    }
    --argc;
    ++argv;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: spawn_cost [-p] [-v] COUNT PROGRAM [ARG...]\n");
    return 2;
  }
  long count = strtol(argv[1], NULL, 10);
  char **program = argv + 2;
  int message = -1, envelope = -1;
  char envelope_path[] = "/tmp/spawn_cost.XXXXXX";
  if (!plugin) {
    envelope = mkstemp(envelope_path);
    if (envelope < 0 || write(envelope, "Fa@b\0Tc@d\0\0", 11) != 11) {
      perror("spawn_cost: envelope file");
      return 1;
    }
    unlink(envelope_path);
    message = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (message < 0 || fcntl(envelope, F_SETFD, FD_CLOEXEC) < 0) {
      perror("spawn_cost: /dev/null");
      return 1;
    }
  }
  struct timespec start_time;
  clock_gettime(CLOCK_MONOTONIC, &start_time);
  for (long i = 0; i < count; ++i) {
    int rc =
        plugin ? run_plugin(use_vfork, program) : run_queue(use_vfork, program, message, envelope);
    if (rc != 0) return 1;
  }
  report(count, start_time);
  return 0;
}
