/* The common daemon command line. */
#include "base/cli.h"

#include <getopt.h>
#include <string.h>

enum { OPT_DEV = 256, OPT_DUMP, OPT_CHECK, OPT_EXTRA };

int cli_daemon_args_parse(int argc, char **argv, const char *ident, const struct cli_opt *extra,
                          size_t n_extra, void (*usage)(FILE *), struct cli_daemon_args *ret) {
  struct option longopts[5 + CLI_EXTRA_MAX + 1] = {
      {"config", required_argument, NULL, 'c'},
      {"dev", required_argument, NULL, OPT_DEV},
      {"dump-config", no_argument, NULL, OPT_DUMP},
      {"check-config", no_argument, NULL, OPT_CHECK},
      {"help", no_argument, NULL, 'h'},
  };
  if (n_extra > CLI_EXTRA_MAX)
    n_extra = CLI_EXTRA_MAX;
  for (size_t i = 0; i < n_extra; i++)
    longopts[5 + i] = (struct option){extra[i].name, extra[i].str ? required_argument : no_argument,
                                      NULL, OPT_EXTRA + (int)i};
  memset(ret, 0, sizeof(*ret));
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
    if (c == 'c') {
      ret->config_file = optarg;
    } else if (c == OPT_DEV) {
      ret->dev_dir = optarg;
    } else if (c == OPT_DUMP) {
      ret->dump = true;
    } else if (c == OPT_CHECK) {
      ret->check = true;
    } else if (c == 'h') {
      usage(stdout);
      return 1;
    } else if (c >= OPT_EXTRA && (size_t)(c - OPT_EXTRA) < n_extra) {
      const struct cli_opt *o = &extra[c - OPT_EXTRA];
      if (o->str)
        *o->str = optarg;
      else if (o->flag)
        *o->flag = true;
    } else {
      usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", ident, argv[optind]);
    return CLI_EXIT_USAGE;
  }
  return 0;
}
