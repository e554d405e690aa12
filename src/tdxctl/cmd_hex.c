/* tdxctl hex [FILE]: hex-encode a file (or stdin) to stdout, one line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/hex.h"
#include "tdxctl.h"

static void hex_usage(FILE *f) {
  fprintf(f, "Usage: tdxctl hex [FILE|-]\n\n"
             "Writes the bytes of FILE (default: stdin) as lowercase hex and a newline.\n");
}

int cmd_hex(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {}};
  int c;
  optind = 0;
  while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (c == 'h') {
      hex_usage(stdout);
      return 0;
    }
    hex_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (argc - optind > 1)
    return cli_usage_error("at most one FILE");
  const char *path = optind < argc ? argv[optind] : "-";

  int fd = STDIN_FILENO;
  if (strcmp(path, "-") != 0) {
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
      return cli_fail(-errno, "opening %s", path);
  }
  uint8_t in[32768];
  char out[2 * sizeof(in) + 1];
  int r = 0;
  for (;;) {
    ssize_t n = read(fd, in, sizeof(in));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = cli_fail(-errno, "reading %s", path);
      break;
    }
    if (n == 0)
      break;
    hex_encode(in, (size_t)n, out);
    int w = cli_write_fd(STDOUT_FILENO, out, 2 * (size_t)n);
    if (w < 0) {
      r = cli_fail(w, "writing to stdout");
      break;
    }
  }
  if (fd != STDIN_FILENO)
    close(fd);
  if (r == 0) {
    int w = cli_write_fd(STDOUT_FILENO, "\n", 1);
    if (w < 0)
      r = cli_fail(w, "writing to stdout");
  }
  return r;
}
