/* tdxctl quote: 64 bytes of report data on stdin, the raw quote on stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/tee.h"
#include "tdxctl.h"

int cmd_quote(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {}};
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    FILE *f = c == 'h' ? stdout : stderr;
    fprintf(f, "Usage: tdxctl quote < REPORT_DATA > QUOTE\n\n"
               "Reads exactly 64 bytes of report data on stdin and writes the raw quote to\n"
               "stdout. Backend: DSTACK_TEE (tdx, sim) or auto-detected.\n");
    return c == 'h' ? 0 : CLI_EXIT_USAGE;
  }
  if (optind != argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);

  uint8_t rd[TEE_REPORT_DATA_SIZE];
  r = cli_read_stdin_exact(rd, sizeof(rd));
  if (r == -EBADMSG)
    return cli_fail(r, "expected exactly 64 bytes of report data on stdin");
  if (r < 0)
    return cli_fail(r, "reading report data from stdin");

  _cleanup_(tee_freep) struct tee *tee = NULL;
  if ((r = cli_tee_open(NULL, &tee)))
    return r;
  _cleanup_buf_ struct buf quote = BUF_INIT(BUF_MAX_QUOTE);
  r = tee_get_quote(tee, rd, &quote);
  if (r < 0)
    return cli_fail(r, "getting a quote");
  r = cli_write_fd(STDOUT_FILENO, quote.data, quote.len);
  if (r < 0)
    return cli_fail(r, "writing to stdout");
  return 0;
}
