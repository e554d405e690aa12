/* The command line every daemon takes:
 *   -c, --config FILE   configuration file
 *   --dev DIR           dev mode under DIR
 *   --dump-config       print the effective configuration and exit
 *   --check-config      check the configuration and exit
 *   -h, --help          usage on stdout, exit 0
 * plus a daemon's own long options (a string or a flag each). No positional arguments. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_EXIT_USAGE 2  /* bad command line */
#define CLI_EXIT_CONFIG 3 /* bad configuration */
#define CLI_EXTRA_MAX 8

struct cli_daemon_args {
  const char *config_file; /* NULL when not given */
  const char *dev_dir;
  bool dump, check;
};

/* A daemon's own option: "--name VALUE" into *str, or "--name" setting *flag. */
struct cli_opt {
  const char *name;
  const char **str;
  bool *flag;
};

/* Parses argv. Returns 0 to go on, 1 when --help was printed (exit 0), CLI_EXIT_USAGE after
 * printing the usage (or "IDENT: unexpected argument 'X'") to stderr. usage prints the text. */
int cli_daemon_args_parse(int argc, char **argv, const char *ident, const struct cli_opt *extra,
                          size_t n_extra, void (*usage)(FILE *), struct cli_daemon_args *ret);
