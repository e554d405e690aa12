/* Dev mode: simulated platform, dev config, root keys. */
#include "kms_dev.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/sim.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "kms_rootkeys.h"

int kms_dev_config(struct kms_config *c, const char *dir, char *err, size_t errlen) {
  int r = mkdir_p(dir, 0700);
  if (r < 0)
    return str_err(err, errlen, r, "creating %s: %s", dir, strerror(-r));
  _cleanup_free_ char *cfg_path = str_printf("%s/kms.toml", dir);
  if (!cfg_path)
    return -ENOMEM;
  if (access(cfg_path, F_OK) == 0) {
    if ((r = kms_config_init(c)) < 0)
      return r;
    r = kms_config_apply_file(c, cfg_path, err, errlen);
    if (r < 0)
      kms_config_free(c);
    return r;
  }
  _cleanup_free_ char *sim = NULL;
  if ((r = sim_platform_for_dev(dir, &sim, err, errlen)) < 0)
    return r;
  if (r > 0)
    log_info("dev mode: created a simulated TDX platform in %s", sim);
  struct sim_td td;
  r = sim_td_load(sim, &td);
  if (r < 0)
    return str_err(err, errlen, r, "reading the simulated TD in %s: %s", sim, strerror(-r));
  uint8_t rtmr[3][48];
  memcpy(rtmr, td.rtmr, sizeof(rtmr));
  if ((r = kms_config_init_dev(c, dir, sim, td.mr_td, (const uint8_t(*)[48])rtmr)) < 0)
    return r;
  _cleanup_buf_ struct buf text = BUF_INIT(256 * 1024);
  r = buf_append_str(&text, "# kms dev mode configuration (created by kms --dev; edit freely)\n");
  if (r >= 0)
    r = kms_config_dump(c, &text);
  if (r >= 0)
    r = file_write_atomic(cfg_path, text.data, text.len, 0644);
  if (r < 0) {
    kms_config_free(c);
    return str_err(err, errlen, r, "writing %s: %s", cfg_path, strerror(-r));
  }
  log_info("dev mode: wrote %s", cfg_path);
  return 0;
}

int kms_dev_keys(const struct kms_config *c, char *err, size_t errlen) {
  int n = kms_root_keys_present(c);
  if (n == 5)
    return 0;
  if (n > 0)
    return str_err(err, errlen, -EEXIST,
                "only some of the root key files exist; refusing to replace them");
  struct kms_root_keys k;
  int r = kms_root_keys_generate(&k);
  if (r < 0)
    return str_err(err, errlen, r, "generating root keys: %s", strerror(-r));
  r = kms_root_keys_store(&k, c, err, errlen);
  kms_root_keys_free(&k);
  if (r >= 0)
    log_info("dev mode: created new root keys (%s, %s)", c->root_ca_cert, c->k256_key);
  return r;
}
