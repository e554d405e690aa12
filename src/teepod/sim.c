/* Simulated TDX played by the host. */
#include "teepod_sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/app_compose.h"
#include "attest/image_meta.h"
#include "attest/sim.h"
#include "attest/td_measure.h"
#include "attest/tee.h"
#include "base/base64.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "teepod.h"

#define CCEL_FILE "ccel.bin"
#define CCEL_MAX ((size_t)1024 * 1024)

int teepod_vm_mrconfigid(struct teepod_vm *vm, uint8_t ret[48]) {
  _cleanup_free_ char *p = str_printf("%s/shared/app-compose.json", vm->dir);
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  if (!p)
    return -ENOMEM;
  int r = file_read_capped(p, APP_COMPOSE_MAX, false, &b);
  if (r < 0)
    return r;
  uint8_t h[32];
  sha256(b.data, b.len, h);
  app_compose_mrconfigid(h, ret);
  return 0;
}

void teepod_sim_vm_free(struct teepod_vm *vm) {
  tee_free(vm->tee);
  vm->tee = NULL;
}

static int open_tee(struct teepod_vm *vm, const char *td_dir) {
  teepod_sim_vm_free(vm);
  return tee_sim_new_split(vm->tp->cfg->sim_dir, td_dir, &vm->tee);
}

int teepod_sim_vm_boot(struct teepod_vm *vm, const struct image_meta *img, char *err,
                       size_t errlen) {
  _cleanup_free_ char *td_dir = str_printf("%s/td", vm->dir);
  _cleanup_free_ char *log = str_printf("%s/td/" SIM_FILE_EVENTLOG, vm->dir);
  _cleanup_free_ char *ccel_path = str_printf("%s/td/" CCEL_FILE, vm->dir);
  _cleanup_buf_ struct buf ccel = BUF_INIT(CCEL_MAX);
  if (!td_dir || !log || !ccel_path)
    return -ENOMEM;
  int r = mkdir_p(td_dir, 0700);
  if (r < 0)
    return str_err(err, errlen, r, "creating %s: %s", td_dir, strerror(-r));
  /* the platform's TD template carries its TCB (SVNs, SEAM): the VM's TD gets those */
  struct sim_td td;
  if ((r = sim_td_load(vm->tp->cfg->sim_dir, &td)) < 0)
    return str_err(err, errlen, r, "simulated platform %s: %s", vm->tp->cfg->sim_dir,
                   strerror(-r));
  struct td_measure_input in = {.image = img, .vcpus = vm->m.vcpu, .memory_mb = vm->m.memory};
  struct td_measurements mr;
  if ((r = td_measure_image(&in, &mr, &ccel)) < 0)
    return str_err(err, errlen, r, "measuring image %s: %s", img->name, strerror(-r));
  memcpy(td.mr_td, mr.mrtd, 48);
  memcpy(td.rtmr, mr.rtmr, sizeof(mr.rtmr));
  memset(td.rtmr[3], 0, 48);
  memset(td.mr_owner, 0, 48);
  memset(td.mr_owner_config, 0, 48);
  if ((r = teepod_vm_mrconfigid(vm, td.mr_config_id)) < 0)
    return str_err(err, errlen, r, "reading the app's compose: %s", strerror(-r));
  /* a fresh boot: no runtime events yet */
  if (unlink(log) < 0 && errno != ENOENT)
    return str_err(err, errlen, -errno, "resetting %s: %s", log, strerror(errno));
  if ((r = sim_td_store(td_dir, &td)) < 0 ||
      (r = file_write_atomic(ccel_path, ccel.data, ccel.len, 0600)) < 0)
    return str_err(err, errlen, r, "writing the TD state in %s: %s", td_dir, strerror(-r));
  if ((r = open_tee(vm, td_dir)) < 0)
    return str_err(err, errlen, r, "opening the simulated TD: %s", strerror(-r));
  memcpy(vm->mrtd, mr.mrtd, 48);
  memcpy(vm->rtmr_boot, mr.rtmr, sizeof(vm->rtmr_boot));
  return 0;
}

void teepod_sim_vm_adopt(struct teepod_vm *vm) {
  if (!vm->tp->sim || vm->m.no_tee)
    return;
  _cleanup_free_ char *td_dir = str_printf("%s/td", vm->dir);
  struct sim_td td;
  if (!td_dir || sim_td_load(td_dir, &td) < 0 || open_tee(vm, td_dir) < 0) {
    log_warn("vm %s: its simulated TD state is gone; quotes will fail until it restarts",
             vm->m.id);
    return;
  }
  memcpy(vm->mrtd, td.mr_td, 48);
  memcpy(vm->rtmr_boot, td.rtmr, sizeof(vm->rtmr_boot));
}

static int get_report_data(json_t *params, uint8_t out[64], char **ret_error) {
  const char *h = NULL;
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  if (json_get_str(params, "report_data", &h) < 0 || !h ||
      hex_decode_buf(h, strlen(h), false, &b) < 0) {
    *ret_error = strdup("report_data: expected up to 64 bytes of hex");
    return -EINVAL;
  }
  memset(out, 0, 64);
  memcpy(out, b.data, b.len);
  return 0;
}

int teepod_sim_dispatch(struct teepod_vm *vm, const char *method, json_t *params,
                        json_t **ret_result, char **ret_error) {
  int r;
  if (str_eq(method, "Report") || str_eq(method, "Quote")) {
    uint8_t rd[64] = {0};
    if ((r = get_report_data(params, rd, ret_error)) < 0)
      return r;
    _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
    if (str_eq(method, "Report")) {
      uint8_t rep[TEE_REPORT_SIZE];
      r = tee_get_report(vm->tee, rd, rep);
      if (r >= 0)
        r = buf_append(&q, rep, sizeof(rep));
    } else {
      r = tee_get_quote(vm->tee, rd, &q);
    }
    if (r < 0) {
      log_error("vm %s: simulated %s failed: %s", vm->m.id, method, strerror(-r));
      *ret_error = strdup("the simulated TDX module failed");
      return r;
    }
    _cleanup_free_ char *hx = hex_encode_alloc(q.data, q.len);
    if (!hx)
      return -ENOMEM;
    *ret_result = json_pack("{s:s}", str_eq(method, "Report") ? "report" : "quote", hx);
    return *ret_result ? 0 : -ENOMEM;
  }
  if (str_eq(method, "Extend")) {
    uint32_t index;
    const char *h = NULL;
    uint8_t d[48];
    if (json_get_u32(params, "index", &index) < 0 || index != 3) {
      *ret_error = strdup("only RTMR3 can be extended");
      return -EPERM;
    }
    if (json_get_str(params, "digest", &h) < 0 || !h || strlen(h) != 96 ||
        hex_decode_exact(h, 96, d, 48) < 0) {
      *ret_error = strdup("digest: expected 48 bytes of hex");
      return -EINVAL;
    }
    if ((r = tee_extend_rtmr(vm->tee, 3, d)) < 0) {
      log_error("vm %s: simulated RTMR3 extend failed: %s", vm->m.id, strerror(-r));
      *ret_error = strdup("the simulated TDX module failed");
      return r;
    }
    *ret_result = json_object();
    return *ret_result ? 0 : -ENOMEM;
  }
  if (str_eq(method, "EventLog")) {
    _cleanup_free_ char *p = str_printf("%s/td/" CCEL_FILE, vm->dir);
    _cleanup_buf_ struct buf b = BUF_INIT(0);
    if (!p)
      return -ENOMEM;
    if ((r = file_read_capped(p, CCEL_MAX, false, &b)) < 0) {
      *ret_error = strdup("no boot event log");
      return r;
    }
    _cleanup_free_ char *b64 = base64_encode_alloc(b.data, b.len);
    if (!b64)
      return -ENOMEM;
    *ret_result = json_pack("{s:s}", "ccel", b64);
    return *ret_result ? 0 : -ENOMEM;
  }
  *ret_error = strdup("unknown Tdx method");
  return -EINVAL;
}
