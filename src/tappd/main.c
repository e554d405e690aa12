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

int main(int argc, char **argv) {
  log_ident_set("tappd");
  (void)log_level_from_env();
  struct cli_daemon_args args;
  int pr = cli_daemon_args_parse(argc, argv, "tappd", NULL, 0, usage, &args);
  if (pr != 0)
    return pr == 1 ? 0 : EXIT_USAGE;
  const char *config_file = args.config_file, *dev_dir = args.dev_dir;
  bool dump = args.dump, check = args.check;
  umask(077);

  struct tappd_config cfg;
  char err[512] = "";
  _cleanup_free_ char *dev_abs = NULL;
  int r;
  if (dev_dir) {
    if (mkdir(dev_dir, 0700) < 0 && errno != EEXIST) {
      fprintf(stderr, "tappd: creating %s: %s\n", dev_dir, strerror(errno));
      return EXIT_CONFIG;
    }
    dev_abs = realpath(dev_dir, NULL);
    if (!dev_abs) {
      fprintf(stderr, "tappd: %s: %s\n", dev_dir, strerror(errno));
      return EXIT_CONFIG;
    }
    r = tappd_config_init_dev(&cfg, dev_abs);
  } else {
    r = tappd_config_init(&cfg);
  }
  if (r < 0) {
    fprintf(stderr, "tappd: %s\n", strerror(-r));
    return 1;
  }
  if (config_file && (r = tappd_config_apply_file(&cfg, config_file, err, sizeof(err))) < 0) {
    fprintf(stderr, "tappd: config: %s\n", err);
    tappd_config_free(&cfg);
    return EXIT_CONFIG;
  }
  if ((r = tappd_config_check(&cfg, err, sizeof(err))) < 0) {
    fprintf(stderr, "tappd: config: %s\n", err);
    tappd_config_free(&cfg);
    return EXIT_CONFIG;
  }
  if (dump) {
    _cleanup_buf_ struct buf b = BUF_INIT(1024 * 1024);
    r = tappd_config_dump(&cfg, &b);
    if (r >= 0)
      fwrite(b.data, 1, b.len, stdout);
    tappd_config_free(&cfg);
    return r < 0 ? 1 : 0;
  }
  log_level_from_config(cfg.log_level);
  if (dev_abs && (r = tappd_dev_prepare(dev_abs, err, sizeof(err))) < 0) {
    fprintf(stderr, "tappd: dev mode: %s\n", err);
    tappd_config_free(&cfg);
    return 1;
  }
  if (check) {
    struct appkeys k;
    r = appkeys_load(cfg.keys_file, cfg.cert_file, cfg.key_file, &k, err, sizeof(err));
    if (r < 0) {
      fprintf(stderr, "tappd: app keys: %s\n", err);
      tappd_config_free(&cfg);
      return EXIT_CONFIG;
    }
    printf("configuration OK (app keys: %s%s)\n", k.has_k256 ? "k256 key" : "no k256 key",
           k.ca_key ? ", app CA key" : ", no app CA key");
    appkeys_free(&k);
    tappd_config_free(&cfg);
    return 0;
  }

  struct tappd *t = NULL;
  struct event_base *base = NULL;
  struct tappd_server *srv = NULL;
  int ret = 1;
  if ((r = tappd_new(&cfg, &t, err, sizeof(err))) < 0) {
    fprintf(stderr, "tappd: %s\n", err[0] ? err : strerror(-r));
    goto out;
  }
  if (dev_abs && (r = tappd_dev_boot(t)) < 0) {
    fprintf(stderr, "tappd: dev mode: emitting boot events: %s\n", strerror(-r));
    goto out;
  }
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (!base) {
    fprintf(stderr, "tappd: cannot create the event loop\n");
    goto out;
  }
  if ((r = tappd_server_new(t, base, stdout, &srv, err, sizeof(err))) < 0) {
    fprintf(stderr, "tappd: %s\n", err[0] ? err : strerror(-r));
    goto out;
  }
  log_info("tappd %s (%s) running on the %s TEE", tappd_version(), tappd_git_rev(),
           str_isempty(cfg.tee) ? "auto-detected" : cfg.tee);
  if ((r = net_loop_run(base)) < 0) {
    fprintf(stderr, "tappd: cannot install signal handlers\n");
    goto out;
  }
  if (r > 0)
    log_info("signal %d: shutting down", r);
  ret = 0;
out:
  tappd_server_free(srv);
  net_loop_free(base);
  tappd_free(t);
  tappd_config_free(&cfg);
  return ret;
}
