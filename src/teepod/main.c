/* teepod: the host's VM manager. */
#include <errno.h>
#include <event2/event.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/sim.h"
#include "base/cli.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "daemon/daemon.h"
#include "net/loop.h"
#include "teepod.h"
#include "teepod_config.h"
#include "teepod_server.h"

static void usage(FILE *f) {
  fprintf(f,
          "Usage: teepod [options]\n"
          "\n"
          "  -c, --config FILE   read teepod.toml FILE (on top of the defaults)\n"
          "      --dev DIR       dev mode: images in DIR/images, VMs in DIR/vm, the socket\n"
          "                      DIR/teepod.sock, a loopback port, simulated TDX (DIR/sim or\n"
          "                      $DSTACK_SIM_DIR); DIR/teepod.toml is read when present\n"
          "      --dump-config   print the effective configuration and exit\n"
          "      --check-config  validate the configuration, the tools and the platform, then exit\n"
          "  -h, --help          this text\n"
          "\n"
          "Listeners are announced on stdout as 'listening http://ADDR:PORT' and\n"
          "'listening unix:PATH' lines. Logging: DSTACK_LOG=error|warn|info|debug.\n");
}

DAEMON_CONFIG_OPS(teepod_config_ops, struct teepod_config, teepod_config_init,
                  teepod_config_init_dev, teepod_config_apply_file, teepod_config_check,
                  teepod_config_dump, teepod_config_free, log_level);

int main(int argc, char **argv) {
  const struct daemon_def def = {.ident = "teepod", .usage = usage, .config = &teepod_config_ops};
  struct teepod_config cfg;
  struct daemon_args args;
  int r = daemon_start(&def, argc, argv, &cfg, &args);
  if (r != DAEMON_CONTINUE)
    return r;
  /* every start reads the image's kernel and initrd (megabytes) to measure them: a fixed mmap
   * threshold gives that memory back at once instead of keeping it in the heap */
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  char err[512] = "";
  struct teepod *tp = NULL;
  struct teepod_server *srv = NULL;
  struct event_base *base = NULL;
  int ret = 1;
  if (args.dev_dir) {
    /* dev mode: the folders and the simulated platform, created on first use */
    if ((r = mkdir_p(cfg.image_path, 0700)) < 0 || (r = mkdir_p(cfg.run_path, 0700)) < 0) {
      fprintf(stderr, "teepod: dev mode: creating folders under %s: %s\n", args.dev_dir,
              strerror(-r));
      goto out;
    }
    if (sim_platform_check(cfg.sim_dir) < 0 && (r = sim_platform_init(cfg.sim_dir, NULL)) < 0) {
      fprintf(stderr, "teepod: dev mode: creating the simulated platform %s: %s\n", cfg.sim_dir,
              strerror(-r));
      goto out;
    }
  }
  /* the tools mcopy runs read this; set once, before any thread exists */
  setenv("MTOOLS_SKIP_CHECK", "1", 1);
  if (args.check) {
    /* checks only: a running teepod's VMs are not touched */
    size_t n_vms = 0;
    const char *backend = "";
    char *qemu = NULL;
    bool sim = false;
    if ((r = teepod_check(&cfg, &n_vms, &backend, &qemu, &sim, err, sizeof(err))) < 0) {
      fprintf(stderr, "teepod: %s\n", err[0] ? err : strerror(-r));
      daemon_config_hint("teepod", &args);
      ret = CLI_EXIT_CONFIG;
      goto out;
    }
    printf("configuration OK (%s, %s backend, %s, %zu VMs)\n", sim ? "simulated TDX" : "TDX",
           backend, qemu, n_vms);
    free(qemu);
    ret = 0;
    goto out;
  }
  base = event_base_new();
  if (!base) {
    fprintf(stderr, "teepod: cannot create the event loop\n");
    goto out;
  }
  if ((r = teepod_new(&cfg, base, &tp, err, sizeof(err))) < 0) {
    fprintf(stderr, "teepod: %s\n", err[0] ? err : strerror(-r));
    daemon_config_hint("teepod", &args);
    goto out;
  }
  if ((r = teepod_server_new(tp, base, stdout, &srv, err, sizeof(err))) < 0) {
    fprintf(stderr, "teepod: %s\n", err[0] ? err : strerror(-r));
    goto out;
  }
  if (tp->sim)
    log_warn("teepod running simulated TDX VMs (%s backend) with the simulated platform at %s: "
             "dev only, nothing here is confidential",
             teepod_backend_name(tp->backend), cfg.sim_dir);
  else
    log_info("teepod running TDX VMs with %s", tp->qemu);
  if (cfg.kms_urls && cfg.kms_urls[0] && !(cfg.kms_pubkeys && cfg.kms_pubkeys[0]))
    log_warn("[cvm] kms_pubkeys is empty: GetAppEnvEncryptPubKey replies are checked only "
             "against the root key the KMS itself names; clients must compare the signer");
  ret = daemon_run("teepod", base);
out:
  teepod_server_free(srv);
  teepod_free(tp);
  net_loop_free(base);
  teepod_config_free(&cfg);
  daemon_args_free(&args);
  return ret;
}
