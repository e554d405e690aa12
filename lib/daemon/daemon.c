/* The start-up every daemon shares (daemon.h). */
#include "daemon/daemon.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/str.h"
#include "net/loop.h"

void daemon_args_free(struct daemon_args *a) {
  if (!a)
    return;
  free(a->dev_dir);
  a->dev_dir = NULL;
}

void daemon_config_hint(const char *ident, const struct daemon_args *a) {
  if (a->config_file || a->dev_dir)
    return;
  fprintf(stderr, "%s: no configuration was given, so the defaults were used: pass -c FILE, or "
                  "--dev DIR for a local setup on a simulated TDX (see --help)\n",
          ident);
}

static int dev_dir_open(const char *ident, const char *dir, char **ret) {
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    fprintf(stderr, "%s: creating %s: %s\n", ident, dir, strerror(errno));
    return CLI_EXIT_CONFIG;
  }
  *ret = realpath(dir, NULL);
  if (!*ret) {
    fprintf(stderr, "%s: %s: %s\n", ident, dir, strerror(errno));
    return CLI_EXIT_CONFIG;
  }
  return 0;
}

/* The configuration in layers: defaults (or dev mode's), -c FILE, the check. */
static int config_load(const struct daemon_def *d, const struct daemon_args *a, void *cfg) {
  const struct daemon_config_ops *o = d->config;
  char err[1024] = "";
  int r = a->dev_dir ? o->init_dev(cfg, a->dev_dir, err, sizeof(err)) : o->init(cfg);
  if (r < 0) {
    fprintf(stderr, "%s: %s%s\n", d->ident, a->dev_dir ? "dev mode: " : "",
            err[0] ? err : strerror(-r));
    return CLI_EXIT_CONFIG; /* init failed: nothing to free */
  }
  if (a->config_file && (r = o->apply_file(cfg, a->config_file, err, sizeof(err))) < 0) {
    fprintf(stderr, "%s: config: %s\n", d->ident, err[0] ? err : strerror(-r));
    goto fail;
  }
  if ((r = o->check(cfg, err, sizeof(err))) < 0) {
    fprintf(stderr, "%s: config: %s\n", d->ident, err[0] ? err : strerror(-r));
    daemon_config_hint(d->ident, a);
    goto fail;
  }
  return 0;
fail:
  o->free(cfg);
  return CLI_EXIT_CONFIG;
}

static int config_dump(const struct daemon_def *d, void *cfg) {
  struct buf b;
  buf_init_secret(&b, 1024 * 1024);
  int r = d->config->dump(cfg, &b);
  if (r >= 0 && fwrite(b.data, 1, b.len, stdout) != b.len)
    r = -EIO;
  buf_free(&b);
  d->config->free(cfg);
  if (r < 0) {
    fprintf(stderr, "%s: printing the configuration: %s\n", d->ident, strerror(-r));
    return 1;
  }
  return 0;
}

int daemon_start(const struct daemon_def *d, int argc, char **argv, void *cfg,
                 struct daemon_args *ret) {
  assert(d->n_extra <= CLI_EXTRA_MAX);
  log_ident_set(d->ident);
  (void)log_level_from_env();
  memset(ret, 0, sizeof(*ret));
  struct cli_daemon_args args;
  int r = cli_daemon_args_parse(argc, argv, d->ident, d->extra, d->n_extra, d->usage, &args);
  if (r != 0)
    return r == 1 ? 0 : CLI_EXIT_USAGE;
  /* Files a daemon makes hold keys and state: nobody else reads them. A peer that hangs up
   * while we write is an error on that connection, not a reason for the process to die. */
  umask(077);
  signal(SIGPIPE, SIG_IGN);
  if (d->args_check && (r = d->args_check(d->args_ud)) != 0)
    return r;
  ret->config_file = args.config_file;
  ret->check = args.check;
  if (args.dev_dir && (r = dev_dir_open(d->ident, args.dev_dir, &ret->dev_dir)) != 0)
    return r;
  if ((r = config_load(d, ret, cfg)) != 0) {
    daemon_args_free(ret);
    return r;
  }
  if (args.dump) {
    daemon_args_free(ret);
    return config_dump(d, cfg);
  }
  if (d->config->log_level)
    log_level_from_config(d->config->log_level(cfg));
  return DAEMON_CONTINUE;
}

int daemon_run(const char *ident, struct event_base *base) {
  int r = net_loop_run(base);
  if (r < 0) {
    fprintf(stderr, "%s: cannot install signal handlers\n", ident);
    return 1;
  }
  if (r > 0)
    log_info("signal %d (%s): shutting down", r, strsignal(r));
  return 0;
}
