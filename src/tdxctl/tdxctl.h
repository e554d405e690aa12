/* tdxctl: shared declarations of the subcommands and the small helpers they use. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/buf.h"

/* Exit status of a failed command. */
#define CLI_EXIT_FAILURE 1
/* Exit status of a usage error (bad options). */
#define CLI_EXIT_USAGE 2

/* Name of the running subcommand ("quote-info", "eventlog replay"), used in error lines. */
extern const char *cli_cmd;

/* Prints "tdxctl: <cmd>: <message>[: <strerror(-r)>]" as one line on stderr and returns
 * CLI_EXIT_FAILURE, so `return cli_fail(r, "reading %s", path)` ends a command. r may be 0. */
int cli_fail(int r, const char *fmt, ...) _printf_(2, 3);
/* Same, for bad arguments; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) _printf_(1, 2);

/* Reads a whole file, or stdin for "-" or NULL, into out; out->max is the cap (-EFBIG). */
int cli_read_input(const char *path, struct buf *out);
/* Reads exactly n bytes from stdin: -EBADMSG when stdin holds fewer or more. */
int cli_read_stdin_exact(uint8_t *out, size_t n);
/* Writes all of data to fd (retries short writes and EINTR). */
int cli_write_fd(int fd, const void *data, size_t len);
/* Writes data to stdout for "-" or NULL, else atomically into path with the given mode
 * (a temp file in the same directory renamed over path: no partial file on failure). */
int cli_write_output(const char *path, const void *data, size_t len, unsigned mode);
/* A file written in pieces that appears at its path only when complete: a temporary file in the
 * same directory, renamed over path by cli_atomic_commit (after fsync). */
struct cli_atomic {
  int fd;
  char *path;
  char *tmp;
  unsigned mode;
};
int cli_atomic_open(const char *path, unsigned mode, struct cli_atomic *ret);
int cli_atomic_commit(struct cli_atomic *a);
/* Removes the temporary file (if still there) and frees a. Safe after commit and on zeroed a. */
void cli_atomic_abort(struct cli_atomic *a);

/* Parses an unsigned integer (decimal, or hex with 0x) no larger than max. */
int cli_parse_uint(const char *s, uint64_t max, uint64_t *ret);

struct tee;

/* Opens the TEE backend (name NULL = $DSTACK_TEE or auto-detection). On failure prints the
 * error line and returns CLI_EXIT_FAILURE; 0 on success. */
int cli_tee_open(const char *name, struct tee **ret);
/* Prints j as indented JSON and a newline on stdout. 0 or CLI_EXIT_FAILURE (error printed). */
int cli_print_json(const json_t *j);

/* The shape shared by `report` and `quote`: no options but --help, 64 bytes of report data on
 * stdin, one TEE call, its bytes on stdout. what names the output in error messages. */
typedef int (*cli_tee_output_fn)(struct tee *t, const uint8_t report_data[64], struct buf *out);
int cli_run_report_data_cmd(int argc, char **argv, const char *usage, const char *what,
                            cli_tee_output_fn fn);

int cmd_report(int argc, char **argv);
int cmd_quote(int argc, char **argv);
int cmd_extend(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_hex(int argc, char **argv);
int cmd_gen_ra_cert(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_quote_info(int argc, char **argv);
int cmd_eventlog(int argc, char **argv);
int cmd_hash(int argc, char **argv);
int cmd_ratls_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_env(int argc, char **argv);
int cmd_measure(int argc, char **argv);
