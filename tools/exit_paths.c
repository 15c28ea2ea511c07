/* exit_paths.c -- how the command ends: signals that stop it remove the
 * temporary outputs, and a failed write on standard output is an error. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Async-signal-safe: unlink(2) of the recorded temporary files, then the
 * signal again with its default action, so the parent sees the run killed
 * by it (a shell reports 128 + the signal number). */
static void on_stop_signal(int sig) {
  gmle_remove_temporary_files();
  signal(sig, SIG_DFL);
  raise(sig);
}

/* A write error that stdio kept (ENOSPC on /dev/full, EIO, EPIPE when
 * SIGPIPE is ignored) surfaces only when stdout is flushed and closed. */
static void close_stdout(void) {
  int bad = fflush(stdout) != 0 || ferror(stdout);
  int err = errno;
  if (fclose(stdout) != 0 && !bad)
    bad = 1, err = errno;
  if (!bad)
    return;
  gmle_remove_temporary_files();
  fprintf(stderr, "gmle%s%s: write error on standard output: %s\n",
          cli_cmd && cli_cmd[0] ? " " : "", cli_cmd ? cli_cmd : "",
          strerror(err));
  _exit(CLI_EXIT_FILE);
}

void cli_install_exit_paths(void) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction old, sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* A signal the caller ignores (nohup, a background job) stays ignored. */
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    sigaction(sigs[i], &sa, NULL);
  }
  atexit(close_stdout);
}
