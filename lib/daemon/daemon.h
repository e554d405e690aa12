/* The start-up every daemon shares, so that a daemon's main.c holds only what is its own.
 *
 *   daemon_start()  logging identity and DSTACK_LOG, the command line (cli.h), umask 077,
 *                   SIGPIPE ignored (once, here, in the process that owns it), the
 *                   configuration: the defaults or --dev DIR's, then -c FILE on top, then the
 *                   daemon's check; --dump-config prints it and ends; the config's log_level.
 *   daemon_run()    the event loop until SIGINT/SIGTERM, the signal logged.
 *
 * lib/daemon acts for the daemon: unlike the other libraries it reports on stderr and logs at
 * info (the signal that stops the loop), as the daemon's main would. 
 *
 * A daemon describes its configuration with struct daemon_config_ops (one struct per daemon,
 * void * is its config struct) and its command line with struct daemon_def. */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/buf.h"
#include "base/cli.h"

struct daemon_config_ops {
  /* The defaults. */
  int (*init)(void *cfg);
  /* --dev DIR (an absolute path that exists): the defaults for dev mode, with what DIR holds
   * (DIR/<daemon>.toml) or creates. err says what failed. */
  int (*init_dev)(void *cfg, const char *dev_dir, char *err, size_t errlen);
  /* -c FILE on top of what cfg holds. err says what failed (and names the file). */
  int (*apply_file)(void *cfg, const char *path, char *err, size_t errlen);
  /* The whole configuration is usable; err says what is not. */
  int (*check)(void *cfg, char *err, size_t errlen);
  /* --dump-config: TOML that loads back (secrets not shown). */
  int (*dump)(const void *cfg, struct buf *out);
  void (*free)(void *cfg);
  /* The configured log level name ("" or NULL: keep DSTACK_LOG's or the default). */
  const char *(*log_level)(const void *cfg);
};

/* Defines `static const struct daemon_config_ops NAME` from a daemon's typed functions, which
 * take `TYPE *` where the ops take `void *` (the compiler checks each against the op):
 *   int INIT(TYPE *)                              int CHECK(TYPE *, char *err, size_t)
 *   int INIT_DEV(TYPE *, const char *dir, char *err, size_t)
 *   int APPLY_FILE(TYPE *, const char *path, char *err, size_t)
 *   int DUMP(const TYPE *, struct buf *)          void FREE(TYPE *)
 * and LEVEL, the name of TYPE's `char *` log level field. */
#define DAEMON_CONFIG_OPS(NAME, TYPE, INIT, INIT_DEV, APPLY_FILE, CHECK, DUMP, FREE, LEVEL)    \
  static int NAME##_init(void *c) {                                                           \
    return INIT((TYPE *)c);                                                                   \
  }                                                                                           \
  static int NAME##_init_dev(void *c, const char *dir, char *err, size_t errlen) {            \
    return INIT_DEV((TYPE *)c, dir, err, errlen);                                             \
  }                                                                                           \
  static int NAME##_apply_file(void *c, const char *path, char *err, size_t errlen) {         \
    return APPLY_FILE((TYPE *)c, path, err, errlen);                                          \
  }                                                                                           \
  static int NAME##_check(void *c, char *err, size_t errlen) {                                \
    return CHECK((TYPE *)c, err, errlen);                                                     \
  }                                                                                           \
  static int NAME##_dump(const void *c, struct buf *out) {                                    \
    return DUMP((const TYPE *)c, out);                                                        \
  }                                                                                           \
  static void NAME##_free(void *c) {                                                          \
    FREE((TYPE *)c);                                                                          \
  }                                                                                           \
  static const char *NAME##_log_level(const void *c) {                                        \
    return ((const TYPE *)c)->LEVEL;                                                          \
  }                                                                                           \
  static const struct daemon_config_ops NAME = {                                              \
      .init = NAME##_init,                                                                    \
      .init_dev = NAME##_init_dev,                                                            \
      .apply_file = NAME##_apply_file,                                                        \
      .check = NAME##_check,                                                                  \
      .dump = NAME##_dump,                                                                    \
      .free = NAME##_free,                                                                    \
      .log_level = NAME##_log_level,                                                          \
  }

struct daemon_def {
  const char *ident; /* "kms": log identity and message prefix */
  void (*usage)(FILE *f);
  const struct cli_opt *extra; /* the daemon's own options (at most CLI_EXTRA_MAX) */
  size_t n_extra;
  const struct daemon_config_ops *config;
  /* Checks the daemon's own options once the command line is parsed, before any configuration
   * is read or any file made: 0 to go on, or an exit status (the message on stderr). NULL:
   * nothing to check. */
  int (*args_check)(void *ud);
  void *args_ud;
};

struct daemon_args {
  const char *config_file; /* -c FILE, or NULL */
  char *dev_dir;           /* --dev DIR made absolute (created 0700 when absent), or NULL */
  bool check;              /* --check-config: the daemon checks what only it can, then exits */
};

/* daemon_start's "go on" result; any other result is the process's exit status. */
#define DAEMON_CONTINUE (-1)

/* Runs the shared start-up into cfg. DAEMON_CONTINUE: cfg is loaded and checked, *ret filled
 * (free it with daemon_args_free; free cfg with the daemon's free). Otherwise the exit status
 * to return from main, with the reason on stderr and cfg already freed: 0 after --help or
 * --dump-config, CLI_EXIT_USAGE for a bad command line, CLI_EXIT_CONFIG for a configuration
 * that cannot be used, 1 for other failures. */
int daemon_start(const struct daemon_def *d, int argc, char **argv, void *cfg,
                 struct daemon_args *ret);
void daemon_args_free(struct daemon_args *a);
/* After a configuration error found past daemon_start (a missing key file, say): when neither
 * -c nor --dev was given, tells the user on stderr that the defaults were used and what to
 * pass instead. */
void daemon_config_hint(const char *ident, const struct daemon_args *a);

/* Dispatches base until SIGINT or SIGTERM (the signal is logged at info) or until it runs out
 * of events. 0, or 1 after "IDENT: cannot install signal handlers" on stderr. */
int daemon_run(const char *ident, struct event_base *base);
