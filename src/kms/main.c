/* kms: hands keys to attested CVMs (see kms_service.h, the README's "KMS trust assumptions"). */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collateral/dcap_fetch.h"
#include "base/cli.h"
#include "base/hex.h"
#include "base/log.h"
#include "daemon/daemon.h"
#include "net/loop.h"
#include "base/str.h"
#include "kms_config.h"
#include "kms_dev.h"
#include "kms_onboard.h"
#include "kms_rootkeys.h"
#include "kms_server.h"
#include "kms_service.h"

#define EXIT_USAGE CLI_EXIT_USAGE
#define EXIT_CONFIG CLI_EXIT_CONFIG

static void usage(FILE *f) {
  fprintf(f,
          "Usage: kms [options]                      serve\n"
          "       kms init DIR                       create root keys in DIR (0600 key files)\n"
          "       kms onboard --source URL [options] get the root keys from a running KMS over\n"
          "                                          mutually attested RA-TLS, then serve\n"
          "\n"
          "  -c, --config FILE   read kms.toml FILE (on top of the defaults, or of DIR/kms.toml)\n"
          "      --dev DIR       dev mode: simulated TDX ($DSTACK_SIM_DIR or DIR/sim), root keys,\n"
          "                      temporary CA and DIR/kms.toml created when absent; serves on a\n"
          "                      free loopback port\n"
          "      --dump-config   print the effective configuration and exit\n"
          "      --check-config  validate the configuration and the root keys, then exit\n"
          "      --source URL    (onboard) https:// URL of the source KMS\n"
          "      --exit          (onboard) exit after storing the keys instead of serving\n"
          "  -h, --help          this text\n"
          "\n"
          "The listener is announced on stdout as 'listening https://ADDR:PORT'.\n"
          "Logging: DSTACK_LOG=error|warn|info|debug (default from log_level).\n");
}

static int cmd_init(int argc, char **argv) {
  log_ident_set("kms");
  (void)log_level_from_env();
  if (argc != 3 || argv[2][0] == '-') {
    fprintf(stderr, "Usage: kms init DIR\n");
    return EXIT_USAGE;
  }
  umask(077);
  char err[512] = "";
  struct kms_root_keys k;
  int r = kms_init_dir(argv[2], &k, err, sizeof(err));
  if (r < 0) {
    fprintf(stderr, "kms init: %s\n", err[0] ? err : strerror(-r));
    return 1;
  }
  char pub[67];
  hex_encode(k.k256_pub, sizeof(k.k256_pub), pub);
  printf("created root keys in %s (root-ca.cert, root-ca.key, root-k256.key, tmp-ca.cert, "
         "tmp-ca.key)\nroot k256 public key: %s\n",
         argv[2], pub);
  kms_root_keys_free(&k);
  return 0;
}

static int serve(const struct kms_config *cfg, struct kms *k) {
  struct event_base *base = event_base_new();
  struct kms_server *srv = NULL;
  char err[512] = "";
  int ret = 1, r;
  if (!base) {
    fprintf(stderr, "kms: cannot create the event loop\n");
    return 1;
  }
  if ((r = kms_server_new(k, base, stdout, &srv, err, sizeof(err))) < 0) {
    fprintf(stderr, "kms: %s\n", err[0] ? err : strerror(-r));
    goto out;
  }
  log_info("kms serving on %s:%u (%s)", cfg->address, srv->port,
           cfg->dev ? "dev mode" : "production");
  if (kms_config_uses_simulator(cfg))
    log_warn("quotes of the simulated TDX platform at %s are trusted (simulator_dir): dev only",
             cfg->simulator_dir);
  else
    log_info("quotes are trusted only when Intel's root CA signs them");
  ret = daemon_run("kms", base);
out:
  kms_server_free(srv);
  net_loop_free(base);
  return ret;
}

DAEMON_CONFIG_OPS(kms_config_ops, struct kms_config, kms_config_init, kms_dev_config, kms_config_apply_file, kms_config_check,
                  kms_config_dump, kms_config_free, log_level);

struct kms_args {
  bool onboard, exit_after;
  const char *source;
};

/* --source URL (and --exit) belong to 'kms onboard', which needs --source. */
static int args_check(void *ud) {
  const struct kms_args *a = ud;
  if (a->onboard != (a->source != NULL) || (a->exit_after && !a->onboard)) {
    fprintf(stderr, "kms: --source URL (and --exit) belong to 'kms onboard'\n");
    return EXIT_USAGE;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && str_eq(argv[1], "init"))
    return cmd_init(argc, argv);
  struct kms_args ka = {.onboard = argc >= 2 && str_eq(argv[1], "onboard")};
  if (ka.onboard) {
    argv++;
    argc--;
  }
  const struct cli_opt extra[] = {{"source", &ka.source, NULL}, {"exit", NULL, &ka.exit_after}};
  const struct daemon_def def = {.ident = "kms", .usage = usage, .extra = extra,
                                 .n_extra = ARRAY_SIZE(extra), .config = &kms_config_ops,
                                 .args_check = args_check, .args_ud = &ka};
  struct kms_config cfg;
  struct daemon_args args;
  int ret = daemon_start(&def, argc, argv, &cfg, &args);
  if (ret != DAEMON_CONTINUE)
    return ret;
  ret = 1;
  char err[512] = "";
  struct kms *k = NULL;
  const char *source = ka.source;
  int r;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  /* a crash while creating the root keys leaves a staging directory: removed or completed */
  if ((r = kms_root_keys_recover(&cfg, err, sizeof(err))) < 0) {
    fprintf(stderr, "kms: %s\n", err);
    goto out;
  }

  if (ka.onboard) {
    if (kms_root_keys_present(&cfg) > 0) {
      fprintf(stderr, "kms onboard: root key files already exist (%s ...); refusing to replace "
                      "them\n",
              cfg.root_ca_key);
      goto out;
    }
    struct kms_root_keys keys;
    r = kms_onboard(&cfg, source, (int64_t)time(NULL), &keys, err, sizeof(err));
    if (r < 0) {
      fprintf(stderr, "kms onboard: %s\n", err[0] ? err : strerror(-r));
      goto out;
    }
    r = kms_root_keys_store(&keys, &cfg, err, sizeof(err));
    kms_root_keys_free(&keys);
    if (r < 0) {
      fprintf(stderr, "kms onboard: %s\n", err);
      goto out;
    }
    log_info("onboard: root keys from %s stored (%s)", source, cfg.root_ca_key);
    if (ka.exit_after) {
      ret = 0;
      goto out;
    }
  } else if (args.dev_dir && (r = kms_dev_keys(&cfg, err, sizeof(err))) < 0) {
    fprintf(stderr, "kms: dev mode: %s\n", err);
    goto out;
  }

  if ((r = kms_new(&cfg, &k, err, sizeof(err))) < 0) {
    fprintf(stderr, "kms: %s\n", err[0] ? err : strerror(-r));
    daemon_config_hint("kms", &args);
    ret = args.check ? EXIT_CONFIG : 1;
    goto out;
  }
  if (args.check) {
    printf("configuration OK (root CA %s, onboarding %s)\n", cfg.root_ca_cert,
           cfg.onboard_enabled ? "enabled" : "disabled");
    ret = 0;
    goto out;
  }
  ret = serve(&cfg, k);
out:
  kms_free(k);
  kms_config_free(&cfg);
  daemon_args_free(&args);
  dcap_fetch_caches_free();
  curl_global_cleanup();
  return ret;
}
