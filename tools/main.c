/* main.c -- the gmle command (and gmle-mpi): dispatch, help, version. */
#include "cli.h"
#include "dist.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char main_help[] =
    "Usage: gmle COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Fit Gaussian models by maximum likelihood over large feature matrices\n"
    "(.npy, CSV, or Kaldi tables ark:FILE, scp:FILE, ark:-; read in batches)\n"
    "and score data under them in bulk.\n"
    "\n"
    "Commands:\n"
    "  fit DATA [--labels FILE] -o MODEL.npz   fit one Gaussian per class\n"
    "  fit --stats STATS -o MODEL.npz          fit from saved statistics\n"
    "  stats DATA [--labels FILE] -o STATS     statistics of one shard\n"
    "  merge STATS STATS... -o STATS           combine shards exactly\n"
    "  score MODEL DATA -o OUT.npy             log-likelihoods, "
    "posteriors,...\n"
    "  classify MODEL DATA [--truth FILE]      predictions, accuracy\n"
    "  eval MODEL DATA [--labels FILE]         total/mean log-likelihood\n"
    "  info MODEL [--json]                     describe a model\n"
    "  devices                                 backends and devices\n"
    "  demo [-o DIR]                           the built-in example\n"
    "  help [COMMAND]                          this text, or a command's\n"
    "\n"
    "Run 'gmle COMMAND --help' for a command's options.\n"
    "\n"
    "Common options:\n"
    "  --backend auto|cpu|opencl|cuda   where to compute (default auto:\n"
    "                                   CUDA, then OpenCL, then the CPU)\n"
    "  --device N                       device index of the backend\n"
    "  --batch-rows N                   rows read and processed per batch\n"
    "  --header yes|no|auto             a CSV input's first line is a header\n"
    "                                   (default auto: when none of its\n"
    "                                   fields is a number)\n"
    "  --quiet, -q                      no progress, notes or warnings\n"
    "  --help, -h                       help\n"
    "  --version                        versions of gmle and the library\n"
    "\n"
    "Progress (rows, rows/s, time left) goes to stderr when it is a\n"
    "terminal. Output files are written to a temporary file and renamed, so\n"
    "a failed run leaves no output.\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  usage error (unknown option, missing argument, bad option value)\n"
    "  2  bad data: non-finite values, wrong number of features, bad or\n"
    "     missing labels, a class that cannot be fitted\n"
    "  3  file error: missing, unreadable, malformed or corrupt file\n"
    "  4  device or system error: no device, device fault, out of memory\n";

static void print_version(void) {
  printf("%s %d.%d.%d (library %s; backends:", cli_prog, GMLE_VERSION_MAJOR,
         GMLE_VERSION_MINOR, GMLE_VERSION_PATCH, gmle_version_string());
  static const gmle_backend all[] = {GMLE_BACKEND_CPU, GMLE_BACKEND_OPENCL,
                                     GMLE_BACKEND_CUDA};
  for (size_t i = 0; i < 3; i++)
    if (gmle_backend_compiled(all[i]))
      printf(" %s", gmle_backend_name(all[i]));
  printf(")\n");
}

/* Idle threads sleep instead of spinning, for the commands that read
 * data. libgomp lets a thread that has finished its share of a parallel
 * region spin for up to 300,000 iterations (milliseconds) before it
 * sleeps, and OpenBLAS's threads call sched_yield in a loop for 2^28
 * cycles (a tenth of a second) after they start and after each call. The
 * reader thread of data.c runs beside the library's parallel regions, and
 * those spins took its core: with integer labels, three quarters of a
 * 2-core fit's CPU time was libgomp spinning and then a sixth OpenBLAS
 * yielding (perf), and the fit took 0.4-1 s instead of 0.15 s. Both read
 * their setting once, when they are loaded, before main, so setting them
 * means starting again (a setenv in .preinit_array does not reach them:
 * glibc resets environ to the original after that array runs). A setting
 * the user made is kept. The library leaves these to the program that
 * calls it. Returns 1 when it set one. */
static int quiet_idle_threads(const char *cmd) {
  static const char *const readers[] = {"fit", "stats", "score", "classify",
                                        "eval"};
  int reads = 0, set = 0;
  for (size_t i = 0; cmd && i < sizeof readers / sizeof readers[0]; i++)
    reads |= strcmp(cmd, readers[i]) == 0;
  if (!reads)
    return 0;
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
    set |= setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0;
  if (!getenv("OPENBLAS_THREAD_TIMEOUT") && !getenv("GOTO_THREAD_TIMEOUT"))
    set |= setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) == 0; /* 2^4 cycles */
  return set;
}

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"fit", cmd_fit},     {"stats", cmd_stats},       {"merge", cmd_merge},
    {"score", cmd_score}, {"classify", cmd_classify}, {"eval", cmd_eval},
    {"info", cmd_info},   {"devices", cmd_devices},   {"demo", cmd_demo},
};

static const command *find_command(const char *name) {
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(commands[i].name, name) == 0 &&
        cli_dist_has_command(commands[i].name))
      return &commands[i];
  return NULL;
}

/* The command line's outcome (0 ok, else an exit code); the help and
 * version texts are printed by rank 0 of gmle-mpi only. */
static int run(int argc, char **argv) {
  const char *help = cli_dist_main_help() ? cli_dist_main_help() : main_help;
  const int speaks = cli_dist_rank() == 0;
  if (argc < 2) {
    if (speaks)
      fputs(help, stderr);
    return CLI_EXIT_USAGE;
  }
  const char *a = argv[1];
  if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
    fputs(help, stdout);
    return CLI_EXIT_OK;
  }
  if (strcmp(a, "--version") == 0 || strcmp(a, "version") == 0) {
    print_version();
    return CLI_EXIT_OK;
  }
  if (strcmp(a, "help") == 0) {
    if (argc < 3) {
      fputs(help, stdout);
      return CLI_EXIT_OK;
    }
    const command *c = find_command(argv[2]);
    if (!c) {
      if (speaks)
        fprintf(stderr, "%s help: unknown command '%s'\n", cli_prog, argv[2]);
      return CLI_EXIT_USAGE;
    }
    cli_cmd = c->name;
    char *hargv[] = {argv[2], (char *)"--help", NULL};
    return c->run(2, hargv);
  }
  const command *c = find_command(a);
  if (!c) {
    if (speaks)
      fprintf(stderr,
              "%s: unknown command '%s'\nRun '%s help' for the list of "
              "commands.\n",
              cli_prog, a, cli_prog);
    return CLI_EXIT_USAGE;
  }
  cli_cmd = c->name;
  return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv) {
  /* What the libraries read when they are loaded: set, then start again
   * (once: the second start finds it set), before MPI starts. */
  int restart = cli_fit_blas_threads_to_limit();
  restart |= quiet_idle_threads(argc > 1 ? argv[1] : NULL);
  if (restart)
    execv("/proc/self/exe", argv); /* returns only on failure: go on */
  cli_dist_init(&argc, &argv);
  cli_install_exit_paths();
  cli_exit(run(argc, argv));
}
