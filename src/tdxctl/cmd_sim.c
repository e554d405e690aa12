/* tdxctl sim init DIR: create a simulated TDX platform (keys, PCK chain, collateral, TD state). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/sim.h"
#include "base/hex.h"
#include "base/str.h"
#include "tdxctl.h"

static void sim_usage(FILE *f) {
  fprintf(f,
          "Usage: tdxctl sim init DIR [options]\n\n"
          "Creates (or re-creates, with fresh keys) a simulated TDX platform in DIR. Use it with\n"
          "DSTACK_TEE=sim DSTACK_SIM_DIR=DIR. Verifiers accept it only when given\n"
          "DIR/root_ca.pem explicitly.\n"
          "  --fmspc HEX         6-byte FMSPC (default 00806f050000)\n"
          "  --seed STR          seed of the TD measurements (default dstack-sim)\n"
          "  --not-before UNIX   start of certificate/collateral validity (default now - 1 h)\n"
          "  --not-after UNIX    end of validity (default now + 30 days)\n"
          "  --days N            validity of N days from --not-before (or now)\n");
}

int cmd_sim(int argc, char **argv) {
  enum { OPT_FMSPC = 0x100, OPT_SEED, OPT_NB, OPT_NA, OPT_DAYS };
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {"fmspc", required_argument, NULL, OPT_FMSPC},
      {"seed", required_argument, NULL, OPT_SEED},
      {"not-before", required_argument, NULL, OPT_NB},
      {"not-after", required_argument, NULL, OPT_NA},
      {"days", required_argument, NULL, OPT_DAYS},
      {},
  };
  struct sim_params p;
  sim_params_default(&p);
  uint64_t v, days = 0;
  int c, r;

  optind = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      sim_usage(stdout);
      return 0;
    case OPT_FMSPC:
      if (hex_decode_exact(optarg, strlen(optarg), p.fmspc, sizeof(p.fmspc)) < 0)
        return cli_usage_error("bad --fmspc '%s' (6 bytes of hex)", optarg);
      break;
    case OPT_SEED:
      p.seed = optarg;
      break;
    case OPT_NB:
      if (cli_parse_uint(optarg, INT64_MAX, &v) < 0)
        return cli_usage_error("bad --not-before '%s' (unix seconds)", optarg);
      p.not_before = (int64_t)v;
      break;
    case OPT_NA:
      if (cli_parse_uint(optarg, INT64_MAX, &v) < 0)
        return cli_usage_error("bad --not-after '%s' (unix seconds)", optarg);
      p.not_after = (int64_t)v;
      break;
    case OPT_DAYS:
      if (cli_parse_uint(optarg, 36500, &days) < 0 || days == 0)
        return cli_usage_error("bad --days '%s' (1..36500)", optarg);
      break;
    default:
      sim_usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (argc - optind != 2 || strcmp(argv[optind], "init") != 0) {
    sim_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  cli_cmd = "sim init";
  const char *dir = argv[optind + 1];
  if (days) {
    if (p.not_after)
      return cli_usage_error("--days and --not-after exclude each other");
    int64_t start = p.not_before ? p.not_before : (int64_t)time(NULL);
    p.not_after = start + (int64_t)days * 86400;
  }
  if (p.not_before && p.not_after && p.not_after <= p.not_before)
    return cli_usage_error("validity ends before it starts");

  r = sim_platform_init(dir, &p);
  if (r < 0)
    return cli_fail(r, "initialising a simulated platform in %s", dir);
  printf("Simulated TDX platform ready in %s\n"
         "Use it with: DSTACK_TEE=sim DSTACK_SIM_DIR=%s\n",
         dir, dir);
  if (fflush(stdout) != 0)
    return cli_fail(-errno, "writing to stdout");
  return 0;
}
