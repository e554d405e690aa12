/* certbot: ACME DNS-01 certificates for tproxy's wildcard domain, account key kept locally
 * (inside the TEE when there is one). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/tee.h"
#include "base/cli.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "certbot_bot.h"
#include "certbot_config.h"

static void usage(FILE *f) {
  fputs("usage: certbot renew [-c certbot.toml] [--once] [--force]\n"
        "       certbot init [-c certbot.toml]\n"
        "       certbot set-caa [-c certbot.toml]\n"
        "       certbot cfg [-w FILE]\n",
        f);
}

static int config_get(const char *path, struct certbot_config *c) {
  char err[512] = "";
  int r = certbot_config_init(c);
  if (r < 0) {
    fprintf(stderr, "certbot: config: %s\n", strerror(-r));
    return CLI_EXIT_CONFIG;
  }
  if (path && certbot_config_load_file(c, path, err, sizeof(err)) < 0) {
    fprintf(stderr, "certbot: config: %s\n", err);
    certbot_config_free(c);
    return CLI_EXIT_CONFIG;
  }
  if (certbot_config_check(c, err, sizeof(err)) < 0) {
    fprintf(stderr, "certbot: config: %s%s\n", err,
            path ? "" : " (no -c FILE given: these are the defaults)");
    certbot_config_free(c);
    return CLI_EXIT_CONFIG;
  }
  return 0;
}

/* A TEE when one is present (a real TDX device, or DSTACK_TEE=sim); none otherwise. */
static int tee_get(struct tee **ret) {
  int e = 0;
  *ret = NULL;
  const char *name = tee_detect(&e);
  if (!name) {
    if (e == -EINVAL)
      return log_errno(e, "%s is not a TEE backend", TEE_ENV_BACKEND);
    return 0;
  }
  int r = tee_open(name, ret);
  if (r < 0)
    return log_errno(r, "opening the TEE %s", name);
  log_info("TEE %s: quotes bind the account and the certificate keys", name);
  return 0;
}

static int cmd_cfg(int argc, char **argv) {
  const char *out = NULL;
  for (int i = 2; i < argc; i++) {
    if ((str_eq(argv[i], "-w") || str_eq(argv[i], "--write")) && i + 1 < argc)
      out = argv[++i];
    else {
      usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
  int r = certbot_config_default_toml(&b);
  if (r < 0)
    return log_errno(r, "writing the default configuration"), 1;
  if (out) {
    if ((r = file_write_atomic(out, b.data, b.len, 0600)) < 0)
      return log_errno(r, "writing %s", out), 1;
    return 0;
  }
  fwrite(b.data, 1, b.len, stdout);
  return 0;
}

int main(int argc, char **argv) {
  const char *cfg_path = NULL;
  bool once = false, force = false;
  log_ident_set("certbot");
  log_level_from_env();
  umask(077);
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (str_eq(cmd, "-h") || str_eq(cmd, "--help")) {
    usage(stdout);
    return 0;
  }
  if (str_eq(cmd, "cfg"))
    return cmd_cfg(argc, argv);
  if (!str_eq(cmd, "renew") && !str_eq(cmd, "init") && !str_eq(cmd, "set-caa")) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  for (int i = 2; i < argc; i++) {
    if ((str_eq(argv[i], "-c") || str_eq(argv[i], "--config")) && i + 1 < argc)
      cfg_path = argv[++i];
    else if (str_eq(cmd, "renew") && str_eq(argv[i], "--once"))
      once = true;
    else if (str_eq(cmd, "renew") && str_eq(argv[i], "--force"))
      force = true;
    else {
      usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  struct certbot_config c;
  int r = config_get(cfg_path, &c);
  if (r)
    return r;
  struct tee *tee = NULL;
  char err[1024] = "";
  int ret = 1;
  if (str_eq(cmd, "set-caa")) {
    if ((r = certbot_bot_set_caa(&c, err, sizeof(err))) < 0) {
      log_errno(r, "set-caa: %s", err);
      goto out;
    }
    ret = 0;
    goto out;
  }
  if (tee_get(&tee) < 0)
    goto out;
  if (str_eq(cmd, "init")) {
    bool created = false;
    if ((r = certbot_bot_account(&c, tee, &created, err, sizeof(err))) < 0) {
      log_errno(r, "init: %s", err);
      goto out;
    }
    ret = 0;
    goto out;
  }
  for (unsigned round = 0;; round++) {
    r = certbot_bot_renew_once(&c, tee, force && round == 0, err, sizeof(err));
    if (r < 0)
      log_errno(r, "renewal: %s", err);
    if (once) {
      ret = r < 0 ? 1 : 0;
      goto out;
    }
    struct timespec ts = {(time_t)c.renew_interval, 0};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
      ;
  }
out:
  if (tee)
    tee->ops->free(tee);
  certbot_config_free(&c);
  return ret;
}
