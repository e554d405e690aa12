/* tdxctl show: the TDINFO of a TDREPORT taken with zero report data, as JSON (hex fields). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attest/tdreport.h"
#include "attest/tee.h"
#include "base/json.h"
#include "tdxctl.h"

static void show_usage(FILE *f) {
  fprintf(f, "Usage: tdxctl show [--full]\n\n"
             "Gets a TDREPORT with zero report data and prints its TDINFO (attributes, xfam,\n"
             "mrtd, mrconfigid, mrowner, mrownerconfig, rtmr0..3, servtd_hash) as JSON.\n"
             "  --full   print the whole TDREPORT (MAC struct, TEE TCB info, TDINFO)\n");
}

int cmd_show(int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'}, {"full", no_argument, NULL, 'f'}, {}};
  bool full = false;
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "hf", opts, NULL)) != -1) {
    if (c == 'h') {
      show_usage(stdout);
      return 0;
    }
    if (c == 'f') {
      full = true;
      continue;
    }
    show_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (optind != argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);

  _cleanup_(tee_freep) struct tee *tee = NULL;
  if ((r = cli_tee_open(NULL, &tee)))
    return r;
  uint8_t zero[TEE_REPORT_DATA_SIZE] = {0}, raw[TEE_REPORT_SIZE];
  r = tee_get_report(tee, zero, raw);
  if (r < 0)
    return cli_fail(r, "getting the TDREPORT");
  struct tdreport rep;
  r = tdreport_parse(raw, sizeof(raw), &rep);
  if (r < 0)
    return cli_fail(r, "parsing the TDREPORT");
  _cleanup_json_ json_t *j = NULL;
  r = tdreport_to_json(&rep, &j);
  if (r < 0)
    return cli_fail(r, "formatting the TDREPORT");
  if (full)
    return cli_print_json(j);
  json_t *info = json_object_get(j, "td_info");
  if (!info)
    return cli_fail(-EBADMSG, "TDREPORT JSON without td_info");
  return cli_print_json(info);
}
