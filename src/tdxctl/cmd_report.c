/* tdxctl report: 64 bytes of report data on stdin, the 1024-byte TDREPORT on stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/tee.h"
#include "tdxctl.h"

int cmd_report(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {}};
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    FILE *f = c == 'h' ? stdout : stderr;
    fprintf(f, "Usage: tdxctl report < REPORT_DATA > TDREPORT\n\n"
               "Reads exactly 64 bytes of report data on stdin and writes the 1024-byte\n"
               "TDREPORT to stdout. Backend: DSTACK_TEE (tdx, sim) or auto-detected.\n");
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
  uint8_t report[TEE_REPORT_SIZE];
  r = tee_get_report(tee, rd, report);
  if (r < 0)
    return cli_fail(r, "getting the TDREPORT");
  r = cli_write_fd(STDOUT_FILENO, report, sizeof(report));
  if (r < 0)
    return cli_fail(r, "writing to stdout");
  return 0;
}
