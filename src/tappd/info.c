/* Info / Worker.Info: identity values from the quote and the RTMR3 events, and the TCB info. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "attest/boot_events.h"
#include "attest/quote.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "tappd.h"

#ifndef TAPPD_VERSION
#define TAPPD_VERSION "0.0.0"
#endif
#ifndef TAPPD_GIT_REV
#define TAPPD_GIT_REV "unknown"
#endif

const char *tappd_version(void) {
  return TAPPD_VERSION;
}

const char *tappd_git_rev(void) {
  return TAPPD_GIT_REV;
}

void tappd_info_free(struct tappd_info *i) {
  if (!i)
    return;
  buf_free(&i->app_id);
  buf_free(&i->instance_id);
  buf_free(&i->device_id);
  buf_free(&i->mr_aggregated);
  buf_free(&i->os_image_hash);
  buf_free(&i->compose_hash);
  free(i->app_cert);
  free(i->tcb_info);
  free(i->app_name);
  free(i->key_provider_info);
  free(i->vm_config);
  free(i->cloud_vendor);
  free(i->cloud_product);
  memset(i, 0, sizeof(*i));
}

/* Runtime events carry the value as payload; seed-era events only as the digest. e is one of
 * the boot's events as boot_events_scan found them (NULL: the boot did not measure it). */
static int event_value(const struct tdx_event *e, size_t seed_len, struct buf *out) {
  if (!e)
    return 0;
  if (e->event_type == EVENTLOG_EV_RUNTIME || e->payload_len)
    return buf_append(out, e->payload, e->payload_len);
  return seed_len ? buf_append(out, e->digest, seed_len) : 0;
}

static char *read_dmi(const char *name) {
  _cleanup_free_ char *path = str_printf("/sys/class/dmi/id/%s", name);
  _cleanup_buf_ struct buf b = BUF_INIT(4096);
  if (path && file_read_all(path, 4096, &b) == 0 && buf_terminate(&b) == 0) {
    char *s = str_strip((char *)b.data);
    return strdup(s);
  }
  return strdup("");
}

static int tcb_info_json(const struct tappd *t, const struct tappd_info *i,
                         const struct eventlog *log, char **ret) {
  _cleanup_json_ json_t *o = json_object();
  json_t *ev = NULL;
  if (!o)
    return -ENOMEM;
  int r;
  if ((r = json_set_hex(o, "mrtd", i->mrtd, 48)) < 0 ||
      (r = json_set_hex(o, "rtmr0", i->rtmr[0], 48)) < 0 ||
      (r = json_set_hex(o, "rtmr1", i->rtmr[1], 48)) < 0 ||
      (r = json_set_hex(o, "rtmr2", i->rtmr[2], 48)) < 0 ||
      (r = json_set_hex(o, "rtmr3", i->rtmr[3], 48)) < 0 ||
      (r = json_set_hex(o, "mr_aggregated", i->mr_aggregated.data, i->mr_aggregated.len)) < 0 ||
      (r = json_set_hex(o, "os_image_hash", i->os_image_hash.data, i->os_image_hash.len)) < 0 ||
      (r = json_set_hex(o, "compose_hash", i->compose_hash.data, i->compose_hash.len)) < 0 ||
      (r = json_set_hex(o, "device_id", i->device_id.data, i->device_id.len)) < 0 ||
      (r = json_set_str(o, "app_compose", t->compose_raw ? t->compose_raw : "")) < 0)
    return r;
  if ((r = eventlog_to_json(log, EVENTLOG_JSON_API, &ev)) < 0)
    return r;
  if ((r = json_set_new(o, "event_log", ev)) < 0)
    return r;
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!s)
    return -ENOMEM;
  *ret = s;
  return 0;
}

int tappd_info(struct tappd *t, bool external, struct tappd_info *ret, char **ret_error) {
  _cleanup_buf_ struct buf kp = BUF_INIT(4096);
  memset(ret, 0, sizeof(*ret));
  buf_init(&ret->app_id, 1024);
  buf_init(&ret->instance_id, 1024);
  buf_init(&ret->device_id, 32);
  buf_init(&ret->mr_aggregated, 32);
  buf_init(&ret->os_image_hash, 1024);
  buf_init(&ret->compose_hash, 1024);

  uint8_t zero[64] = {0};
  _cleanup_buf_ struct buf qb = BUF_INIT(BUF_MAX_QUOTE);
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  int r = tappd_quote(t, zero, &qb, &log, NULL);
  if (r < 0)
    return prpc_error(ret_error, r, "getting a quote: %s", tappd_quote_strerror(r));
  struct quote q;
  if ((r = quote_parse(qb.data, qb.len, &q)) < 0 || q.body_type == QUOTE_BODY_SGX) {
    r = prpc_error(ret_error, r < 0 ? r : -ENOTSUP, "the TEE returned an unusable quote");
    goto fail;
  }
  memcpy(ret->mrtd, q.td.mr_td, 48);
  memcpy(ret->rtmr, q.td.rt_mr, sizeof(ret->rtmr));

  uint8_t h[32];
  sha256(q.user_data, sizeof(q.user_data), h);
  if ((r = buf_append(&ret->device_id, h, 32)) < 0)
    goto fail;
  /* mr_aggregated = SHA-256(MRTD || RTMR0..3 [|| MRCONFIGID || MROWNER || MROWNERCONFIG when any
   * of the three is non-zero]). */
  static const uint8_t z48[48];
  struct hash_ctx *c = NULL;
  if ((r = hash_ctx_new(HASH_SHA256, &c)) < 0)
    goto fail;
  hash_ctx_update(c, q.td.mr_td, 48);
  for (int i = 0; i < 4; i++)
    hash_ctx_update(c, q.td.rt_mr[i], 48);
  if (memcmp(q.td.mr_config_id, z48, 48) || memcmp(q.td.mr_owner, z48, 48) ||
      memcmp(q.td.mr_owner_config, z48, 48)) {
    hash_ctx_update(c, q.td.mr_config_id, 48);
    hash_ctx_update(c, q.td.mr_owner, 48);
    hash_ctx_update(c, q.td.mr_owner_config, 48);
  }
  r = hash_ctx_final(c, h);
  hash_ctx_free(c);
  if (r < 0 || (r = buf_append(&ret->mr_aggregated, h, 32)) < 0)
    goto fail;

  /* The identity a verifier would take: only the boot's own events count (boot_events.h). */
  struct boot_events be = {0};
  char why[256] = "";
  static atomic_flag warned = ATOMIC_FLAG_INIT;
  if (boot_events_scan(&log, BOOT_EVENTS_ALLOW_SEED, &be, why, sizeof(why)) < 0 &&
      !atomic_flag_test_and_set(&warned))
    log_warn("Info: the event log gives no app identity (said once): %s", why);
  if ((r = event_value(be.app_id, 20, &ret->app_id)) < 0 ||
      (r = event_value(be.instance_id, 0, &ret->instance_id)) < 0 ||
      (r = event_value(be.compose_hash, 0, &ret->compose_hash)) < 0 ||
      (r = event_value(be.os_image_hash, 0, &ret->os_image_hash)) < 0 ||
      (r = event_value(be.key_provider, 0, &kp)) < 0)
    goto fail;
  if (ret->compose_hash.len == 0 &&
      (r = event_value(be.upgraded_app_id, 0, &ret->compose_hash)) < 0)
    goto fail;
  /* mr_system = SHA-256(MRTD || RTMR0..2 || mr_key_provider) */
  uint8_t mr_kp[32] = {0};
  if (kp.len)
    sha256(kp.data, kp.len, mr_kp);
  if ((r = hash_ctx_new(HASH_SHA256, &c)) < 0)
    goto fail;
  hash_ctx_update(c, q.td.mr_td, 48);
  for (int i = 0; i < 3; i++)
    hash_ctx_update(c, q.td.rt_mr[i], 48);
  hash_ctx_update(c, mr_kp, sizeof(mr_kp));
  r = hash_ctx_final(c, ret->mr_system);
  hash_ctx_free(c);
  if (r < 0)
    goto fail;
  if ((r = buf_terminate(&kp)) < 0)
    goto fail;
  ret->key_provider_info = strndup((const char *)kp.data, kp.len);
  ret->app_cert = strdup(t->keys.ca_pem ? t->keys.ca_pem : "");
  ret->app_name = strdup(t->app_name ? t->app_name : "");
  ret->cloud_vendor = read_dmi("sys_vendor");
  ret->cloud_product = read_dmi("product_name");
  bool hide = external && !t->public_tcbinfo;
  ret->vm_config = strdup(hide ? "" : (t->vm_config ? t->vm_config : ""));
  if (!ret->key_provider_info || !ret->app_cert || !ret->app_name || !ret->cloud_vendor ||
      !ret->cloud_product || !ret->vm_config) {
    r = -ENOMEM;
    goto fail;
  }
  if (hide)
    ret->tcb_info = strdup("");
  else if ((r = tcb_info_json(t, ret, &log, &ret->tcb_info)) < 0)
    goto fail;
  if (!ret->tcb_info) {
    r = -ENOMEM;
    goto fail;
  }
  return 0;
fail:
  tappd_info_free(ret);
  return r;
}
