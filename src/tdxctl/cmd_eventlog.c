/* tdxctl eventlog replay|show FILE: read a CCEL binary log or a JSON event log (seed JSON lines,
 * runtime lines, or the newest JSON array) and print the replayed RTMRs or the events. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attest/eventlog.h"
#include "base/hex.h"
#include "base/json.h"
#include "tdxctl.h"

static void eventlog_usage(FILE *f) {
  fprintf(f, "Usage: tdxctl eventlog replay FILE|-\n"
             "       tdxctl eventlog show FILE|-\n\n"
             "FILE is a CCEL binary log (TCG crypto-agile, recognised by its Spec ID header)\n"
             "or a JSON event log (seed-era JSON lines or the newest JSON array).\n"
             "  replay  print {\"rtmr0\":…,\"rtmr1\":…,\"rtmr2\":…,\"rtmr3\":…} (hex)\n"
             "  show    print the events as a JSON array\n");
}

/* The first event of a CCEL log is the legacy TCG_PCR_EVENT header: pcr u32, type u32
 * (EV_NO_ACTION), SHA-1 digest[20], size u32, then the "Spec ID Event03" signature. */
static bool eventlog_looks_ccel(const uint8_t *p, size_t len) {
  static const char sig[] = "Spec ID Event03";
  return len >= 32 + sizeof(sig) && le32_read(p + 4) == EVENTLOG_EV_NO_ACTION &&
         memcmp(p + 32, sig, sizeof(sig)) == 0;
}

static int eventlog_load(const char *path, struct eventlog *ret) {
  _cleanup_buf_ struct buf in = BUF_INIT(EVENTLOG_MAX_LOG);
  int r = cli_read_input(path, &in);
  if (r < 0)
    return cli_fail(r, "reading %s", path);
  if (eventlog_looks_ccel(in.data, in.len))
    r = eventlog_parse_ccel(in.data, in.len, ret);
  else
    r = eventlog_parse_json((const char *)in.data, in.len, ret);
  if (r < 0)
    return cli_fail(r, "parsing %s", path);
  return 0;
}

static int eventlog_replay_print(const struct eventlog *log, const char *path) {
  uint8_t rtmr[EVENTLOG_N_RTMR][48];
  int r = eventlog_replay(log, rtmr);
  if (r < 0)
    return cli_fail(r, "replaying %s", path);
  _cleanup_json_ json_t *j = json_object();
  if (!j)
    return cli_fail(-ENOMEM, "formatting");
  for (unsigned i = 0; i < EVENTLOG_N_RTMR; i++) {
    char key[8];
    snprintf(key, sizeof(key), "rtmr%u", i);
    r = json_set_hex(j, key, rtmr[i], sizeof(rtmr[i]));
    if (r < 0)
      return cli_fail(r, "formatting");
  }
  return cli_print_json(j);
}

int cmd_eventlog(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {}};
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') {
      eventlog_usage(stdout);
      return 0;
    }
    eventlog_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (argc - optind != 2) {
    eventlog_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *verb = argv[optind], *path = argv[optind + 1];
  if (strcmp(verb, "replay") == 0)
    cli_cmd = "eventlog replay";
  else if (strcmp(verb, "show") == 0)
    cli_cmd = "eventlog show";
  else
    return cli_usage_error("unknown action '%s' (replay, show)", verb);

  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  if ((r = eventlog_load(path, &log)))
    return r;
  if (strcmp(verb, "replay") == 0)
    return eventlog_replay_print(&log, path);
  _cleanup_json_ json_t *j = NULL;
  r = eventlog_to_json(&log, EVENTLOG_JSON_FULL, &j);
  if (r < 0)
    return cli_fail(r, "formatting %s", path);
  return cli_print_json(j);
}
