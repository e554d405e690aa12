/* tdxctl extend: extend an RTMR with a digest and append the seed-era JSON line to the TEE's
 * event log, both under the event-log lock (tee_extend_event). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/eventlog.h"
#include "attest/tee.h"
#include "base/hex.h"
#include "tdxctl.h"

static void extend_usage(FILE *f) {
  fprintf(f,
          "Usage: tdxctl extend -a DATA [-i INDEX] [-t TYPE] [-d HEX] [-v VERSION] [--force]\n"
          "       tdxctl extend -a NAME --payload HEX [--force]\n\n"
          "  -a, --associated-data STR  event name recorded in the event log (required)\n"
          "  -d, --digest HEX           extend value, at most 48 bytes, right-padded with zeros\n"
          "                             (default: empty = 48 zero bytes)\n"
          "  -i, --index N              RTMR index 0..3 (default 3)\n"
          "  -t, --event-type N         event type (default 1)\n"
          "  -v, --version N            event version (only 1)\n"
          "  -p, --payload HEX          a runtime event NAME with this payload on RTMR3 (as the\n"
          "                             guest agent emits): digest SHA-384(type:NAME:payload)\n"
          "      --force                extend on TDX even when /dev/tdx_guest is missing\n\n"
          "Prints 'Extended RTMR <i>: <digest hex>' on stdout (as upstream): the 48-byte value\n"
          "extended into the RTMR, not the RTMR's new value ('tdxctl show' prints that); stderr\n"
          "says so. Backend: DSTACK_TEE (tdx, sim).\n");
}

int cmd_extend(int argc, char **argv) {
  enum { OPT_FORCE = 0x100 };
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {"version", required_argument, NULL, 'v'},
      {"index", required_argument, NULL, 'i'},
      {"event-type", required_argument, NULL, 't'},
      {"digest", required_argument, NULL, 'd'},
      {"associated-data", required_argument, NULL, 'a'},
      {"payload", required_argument, NULL, 'p'},
      {"force", no_argument, NULL, OPT_FORCE},
      {},
  };
  uint64_t version = 1, index = 3, type = 1;
  const char *digest_hex = "", *assoc = NULL, *payload_hex = NULL;
  bool digest_set = false, index_set = false;
  bool force = false;
  int c, r;

  optind = 0;
  while ((c = getopt_long(argc, argv, "hv:i:t:d:a:p:", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      extend_usage(stdout);
      return 0;
    case 'v':
      if (cli_parse_uint(optarg, UINT32_MAX, &version) < 0)
        return cli_usage_error("bad --version '%s'", optarg);
      break;
    case 'i':
      if (cli_parse_uint(optarg, 3, &index) < 0)
        return cli_usage_error("bad --index '%s' (0..3)", optarg);
      index_set = true;
      break;
    case 't':
      if (cli_parse_uint(optarg, UINT32_MAX, &type) < 0)
        return cli_usage_error("bad --event-type '%s'", optarg);
      break;
    case 'd':
      digest_hex = optarg;
      digest_set = true;
      break;
    case 'p':
      payload_hex = optarg;
      break;
    case 'a':
      assoc = optarg;
      break;
    case OPT_FORCE:
      force = true;
      break;
    default:
      extend_usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (optind != argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);
  if (!assoc)
    return cli_usage_error("--associated-data is required");
  if (version != 1)
    return cli_usage_error("unsupported event version %llu (only 1)",
                           (unsigned long long)version);

  if (payload_hex && (digest_set || (index_set && index != 3)))
    return cli_usage_error("--payload makes a runtime event on RTMR3: no --digest or --index");
  _cleanup_buf_ struct buf payload = BUF_INIT(64 * 1024);
  if (payload_hex && hex_decode_buf(payload_hex, strlen(payload_hex), false, &payload) < 0)
    return cli_usage_error("--payload is not hex (at most 64 KiB)");
  _cleanup_buf_ struct buf d = BUF_INIT(TEE_RTMR_SIZE);
  r = hex_decode_buf(digest_hex, strlen(digest_hex), false, &d);
  if (r == -ENOBUFS)
    return cli_usage_error("--digest is longer than 48 bytes");
  if (r < 0)
    return cli_usage_error("--digest is not hex");
  uint8_t digest48[TEE_RTMR_SIZE];
  r = tee_digest_pad48(d.data, d.len, digest48);
  if (r < 0)
    return cli_fail(r, "padding the digest");

  /* --force without a configured backend means real TDX even when auto-detection finds none. */
  const char *backend = getenv(TEE_ENV_BACKEND);
  _cleanup_(tee_freep) struct tee *tee = NULL;
  if ((r = cli_tee_open(force && (!backend || !*backend) ? "tdx" : NULL, &tee)))
    return r;
  /* On real TDX extend only inside a TD (the guest device exists) unless forced. */
  if (strcmp(tee_name(tee), "tdx") == 0 && !force && access("/dev/tdx_guest", F_OK) < 0)
    return cli_fail(-ENODEV, "not extending RTMR %u: /dev/tdx_guest is missing (use --force)",
                    (unsigned)index);

  if (payload_hex) {
    _cleanup_buf_ struct buf line = BUF_INIT(TEE_EVENT_LINE_MAX);
    if ((r = eventlog_runtime_digest(assoc, payload.data, payload.len, 1, digest48)) < 0 ||
        (r = eventlog_runtime_line(assoc, digest48, payload.data, payload.len, &line)) < 0)
      return cli_fail(r, "bad runtime event");
    r = tee_extend_event_line(tee, 3, digest48, line.data, line.len);
  } else {
    r = tee_extend_event(tee, (unsigned)index, (uint32_t)type, digest48, assoc);
  }
  if (r < 0)
    return cli_fail(r, "extending RTMR %u", (unsigned)index);

  char hex[2 * TEE_RTMR_SIZE + 1];
  hex_encode(digest48, sizeof(digest48), hex);
  printf("Extended RTMR %u: %s\n", (unsigned)index, hex);
  if (fflush(stdout) != 0)
    return cli_fail(-errno, "writing to stdout");
  /* stdout keeps upstream's line (scripts parse it); the label goes to stderr. */
  fprintf(stderr, "tdxctl: printed the digest extended into RTMR %u (event '%s'), not the RTMR's "
          "new value (tdxctl show)\n", (unsigned)index, assoc);
  return 0;
}
