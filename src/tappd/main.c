/* tappd: the guest agent inside a CVM (tappd.sock, dstack.sock, external port). */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cli.h"
#include "base/log.h"
#include "daemon/daemon.h"
#include "net/loop.h"
#include "base/str.h"
#include "tappd_config.h"
#include "tappd_dev.h"
#include "tappd_server.h"
#include "tappd.h"

#define EXIT_USAGE CLI_EXIT_USAGE
#define EXIT_CONFIG CLI_EXIT_CONFIG

static void usage(FILE *f) {
  fprintf(f,
          "Usage: tappd [options]\n"
          "\n"
          "  -c, --config FILE   read tappd.toml FILE (on top of the defaults)\n"
          "      --dev DIR       dev mode: simulated TDX, demo app keys and sockets in DIR\n"
          "                      (DIR/tappd.sock, DIR/dstack.sock, external port printed)\n"
          "      --dump-config   print the effective configuration and exit\n"
          "      --check-config  validate the configuration and the app keys, then exit\n"
          "  -h, --help          this text\n"
          "\n"
          "Listeners are announced on stdout as 'listening <name> <address>' lines.\n"
          "Logging: DSTACK_LOG=error|warn|info|debug (default from [default] log_level).\n");
}

DAEMON_CONFIG_OPS(tappd_config_ops, struct tappd_config, tappd_config_init, tappd_config_init_dev, tappd_config_apply_file, tappd_config_check,
                  tappd_config_dump, tappd_config_free, log_level);

int main(int argc, char **argv) {
  const struct daemon_def def = {.ident = "tappd", .usage = usage, .config = &tappd_config_ops};
  struct tappd_config cfg;
  struct daemon_args args;
  int r = daemon_start(&def, argc, argv, &cfg, &args);
  if (r != DAEMON_CONTINUE)
    return r;
  const char *dev_abs = args.dev_dir;
  char err[512] = "";
  struct tappd *t = NULL;
  struct event_base *base = NULL;
  struct tappd_server *srv = NULL;
  int ret = 1;
  if (dev_abs && (r = tappd_dev_prepare(dev_abs, err, sizeof(err))) < 0) {
    fprintf(stderr, "tappd: dev mode: %s\n", err);
    goto out;
  }
  if (args.check) {
    struct appkeys k;
    r = appkeys_load(cfg.keys_file, cfg.cert_file, cfg.key_file, &k, err, sizeof(err));
    if (r < 0) {
      fprintf(stderr, "tappd: app keys: %s\n", err);
      daemon_config_hint("tappd", &args);
      ret = EXIT_CONFIG;
      goto out;
    }
    printf("configuration OK (app keys: %s%s)\n", k.has_k256 ? "k256 key" : "no k256 key",
           k.ca_key ? ", app CA key" : ", no app CA key");
    appkeys_free(&k);
    ret = 0;
    goto out;
  }
  if ((r = tappd_new(&cfg, &t, err, sizeof(err))) < 0) {
    fprintf(stderr, "tappd: %s\n", err[0] ? err : strerror(-r));
    daemon_config_hint("tappd", &args);
    goto out;
  }
  if (dev_abs && (r = tappd_dev_boot(t)) < 0) {
    fprintf(stderr, "tappd: dev mode: emitting boot events: %s\n", strerror(-r));
    goto out;
  }
  base = event_base_new();
  if (!base) {
    fprintf(stderr, "tappd: cannot create the event loop\n");
    goto out;
  }
  if ((r = tappd_server_new(t, base, stdout, &srv, err, sizeof(err))) < 0) {
    fprintf(stderr, "tappd: %s\n", err[0] ? err : strerror(-r));
    goto out;
  }
  if (str_eq_ptr(cfg.tee, "sim"))
    log_info("tappd %s (%s) running on the simulated TDX platform at %s: dev only",
             tappd_version(), tappd_git_rev(), cfg.sim_dir);
  else
    log_info("tappd %s (%s) running on the %s TEE", tappd_version(), tappd_git_rev(),
             str_isempty(cfg.tee) ? "auto-detected" : cfg.tee);
  ret = daemon_run("tappd", base);
out:
  tappd_server_free(srv);
  net_loop_free(base);
  tappd_free(t);
  tappd_config_free(&cfg);
  daemon_args_free(&args);
  return ret;
}
