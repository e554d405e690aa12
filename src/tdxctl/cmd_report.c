/* tdxctl report: 64 bytes of report data on stdin, the 1024-byte TDREPORT on stdout. */
#include "attest/tee.h"
#include "tdxctl.h"

static int report_get(struct tee *t, const uint8_t report_data[64], struct buf *out) {
  uint8_t report[TEE_REPORT_SIZE];
  int r = tee_get_report(t, report_data, report);
  return r < 0 ? r : buf_append(out, report, sizeof(report));
}

int cmd_report(int argc, char **argv) {
  return cli_run_report_data_cmd(
      argc, argv,
      "Usage: tdxctl report < REPORT_DATA > TDREPORT\n\n"
      "Reads exactly 64 bytes of report data on stdin and writes the 1024-byte\n"
      "TDREPORT to stdout. Backend: DSTACK_TEE (tdx, sim) or auto-detected.\n",
      "the TDREPORT", report_get);
}
