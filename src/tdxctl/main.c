/* tdxctl: TDX guest tool. Dispatches "tdxctl <command> [options]" to cmd_<command>(). */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "tdxctl.h"

struct cli_command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
};

static const struct cli_command cli_commands[] = {
    {"report", cmd_report, "read 64 bytes of report data on stdin, write the TDREPORT"},
    {"quote", cmd_quote, "read 64 bytes of report data on stdin, write the quote"},
    {"extend", cmd_extend, "extend an RTMR and append the event to the event log"},
    {"show", cmd_show, "print the TDINFO of a TDREPORT as JSON"},
    {"hex", cmd_hex, "hex-encode a file or stdin"},
    {"gen-ra-cert", cmd_gen_ra_cert, "generate an RA-TLS certificate signed by a CA"},
    {"quote-info", cmd_quote_info, "print the fields of a quote as JSON"},
    {"ratls-info", cmd_ratls_info, "show the attestation inside an RA-TLS certificate"},
    {"eventlog", cmd_eventlog, "replay an event log (CCEL or JSON) to RTMR values"},
    {"hash", cmd_hash, "stream stdin to stdout and print its digest (like iohash)"},
    {"sim", cmd_sim, "manage a simulated TDX platform (sim init DIR)"},
    {"verify", cmd_verify, "verify a quote with Intel DCAP collateral (QVL rules)"},
    {"env", cmd_env, "decrypt or encrypt an app environment (SDK encryptEnvVars format)"},
    {"measure", cmd_measure, "compute MRTD and RTMR0-2 of an image folder offline"},
};

static void cli_main_usage(FILE *f) {
  fprintf(f, "Usage: tdxctl <command> [options]\n\nCommands:\n");
  for (size_t i = 0; i < ARRAY_SIZE(cli_commands); i++)
    fprintf(f, "  %-12s %s\n", cli_commands[i].name, cli_commands[i].summary);
  fprintf(f, "\nRun 'tdxctl <command> --help' for the options of a command.\n"
             "The TEE backend is chosen by DSTACK_TEE (tdx, sim, hostch; default: tdx when\n"
             "present); the simulator keeps its state in DSTACK_SIM_DIR; hostch asks the host\n"
             "over its channel (teepod's simulated TDX; DSTACK_HOST_CHANNEL overrides the\n"
             "port).\n");
}

int main(int argc, char **argv) {
  log_ident_set("tdxctl");
  (void)log_level_from_env();
  if (argc < 2) {
    cli_main_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
    cli_main_usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < ARRAY_SIZE(cli_commands); i++)
    if (strcmp(name, cli_commands[i].name) == 0) {
      cli_cmd = cli_commands[i].name;
      return cli_commands[i].run(argc - 1, argv + 1);
    }
  return cli_usage_error("unknown command '%s' (see tdxctl --help)", name);
}
