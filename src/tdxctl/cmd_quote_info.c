/* tdxctl quote-info [--hex] FILE: the fields of a quote as one JSON object. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attest/quote.h"
#include "attest/quote_json.h"
#include "base/hex.h"
#include "base/json.h"
#include "tdxctl.h"

/* Input cap: a hex text quote with line breaks is a bit over twice QUOTE_MAX_SIZE. */
#define QUOTE_INFO_MAX_INPUT ((size_t)4 * QUOTE_MAX_SIZE)

static void quote_info_usage(FILE *f) {
  fprintf(f, "Usage: tdxctl quote-info [--hex] FILE|-\n\n"
             "Parses a TDX (v4, v5) or SGX (v3) quote and prints its fields as JSON.\n"
             "Nothing is verified. Trailing bytes after the signature data are ignored.\n"
             "  --hex   the input is hex text (whitespace and a 0x prefix allowed)\n");
}

int cmd_quote_info(int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'}, {"hex", no_argument, NULL, 'x'}, {}};
  bool hex = false;
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "hx", opts, NULL)) != -1) {
    if (c == 'h') {
      quote_info_usage(stdout);
      return 0;
    }
    if (c == 'x') {
      hex = true;
      continue;
    }
    quote_info_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (argc - optind != 1)
    return cli_usage_error("expected one FILE (- for stdin)");
  const char *path = argv[optind];

  _cleanup_buf_ struct buf in = BUF_INIT(QUOTE_INFO_MAX_INPUT);
  r = cli_read_input(path, &in);
  if (r < 0)
    return cli_fail(r, "reading %s", path);
  _cleanup_buf_ struct buf bin = BUF_INIT(QUOTE_INFO_MAX_INPUT);
  const struct buf *q = &in;
  if (hex) {
    r = hex_decode_buf((const char *)in.data, in.len, true, &bin);
    if (r < 0)
      return cli_fail(r == -EINVAL ? -EBADMSG : r, "decoding hex of %s", path);
    q = &bin;
  }

  struct quote quote;
  char why[256] = "";
  r = quote_parse_msg(q->data, q->len, &quote, why, sizeof(why));
  if (r < 0) {
    if (why[0])
      return cli_fail(r, "parsing %s: %s", path, why);
    return cli_fail(r, "parsing %s", path);
  }
  _cleanup_json_ json_t *j = NULL;
  r = quote_to_json(&quote, &j);
  if (r < 0)
    return cli_fail(r, "formatting %s", path);
  return cli_print_json(j);
}
