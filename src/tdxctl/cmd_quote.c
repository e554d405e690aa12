/* tdxctl quote: 64 bytes of report data on stdin, the raw quote on stdout. */
#include "attest/tee.h"
#include "tdxctl.h"

static int quote_get(struct tee *t, const uint8_t report_data[64], struct buf *out) {
  return tee_get_quote(t, report_data, out);
}

int cmd_quote(int argc, char **argv) {
  return cli_run_report_data_cmd(
      argc, argv,
      "Usage: tdxctl quote < REPORT_DATA > QUOTE\n\n"
      "Reads exactly 64 bytes of report data on stdin and writes the raw quote to\n"
      "stdout. Backend: DSTACK_TEE (tdx, sim) or auto-detected.\n",
      "a quote", quote_get);
}
