/* Dev mode: simulated platform, demo app keys and app files, boot events. */
#include "tappd_dev.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/boot_events.h"
#include "attest/sim.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "crypto/keccak.h"
#include "crypto/keys.h"
#include "crypto/x509.h"

/* Public on purpose: dev-mode keys are demo keys, the same everywhere. */
#define DEV_SEED "dstack dev mode demo keys (public, protect nothing)"

/* The demo app-compose.json: sorted keys, compact, as the SDKs write it. */
static const char dev_compose[] =
    "{\"docker_compose_file\":\"services: {}\\n\",\"gateway_enabled\":false,"
    "\"kms_enabled\":false,\"manifest_version\":2,\"name\":\"dstack-dev\","
    "\"public_logs\":true,\"public_sysinfo\":true,\"public_tcbinfo\":true,"
    "\"runner\":\"docker-compose\"}";

static int derive(const char *label, uint8_t out[32]) {
  struct slice ctx = SLICE_STR(label);
  return kdf_derive_key((const uint8_t *)DEV_SEED, strlen(DEV_SEED), &ctx, 1, out, 32);
}

int tappd_dev_kms_pubkey(uint8_t ret[33]) {
  uint8_t k[32];
  int r = derive("kms-root-k256", k);
  if (r >= 0)
    r = key_secp256k1_public_from_secret(k, ret);
  secure_wipe(k, sizeof(k));
  return r;
}

static void compose_app_id(uint8_t app_id[20], uint8_t compose_hash[32]) {
  sha256(dev_compose, strlen(dev_compose), compose_hash);
  memcpy(app_id, compose_hash, 20);
}

static int dev_ca(struct buf *cert_pem, struct buf *key_pem) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_(X509_freep) X509 *cert = NULL;
  struct slice ctx = SLICE_STR("app-ca");
  int r = kdf_derive_p256_key((const uint8_t *)DEV_SEED, strlen(DEV_SEED), &ctx, 1, &key);
  if (r < 0)
    return r;
  struct x509_params p = {
      .subject_cn = "Dstack App CA (dev mode)",
      .subject_org = "Dstack dev mode (demo keys, not secret)",
      .is_ca = true,
      .path_len = 1,
      .key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN | X509_KU_DIGITAL_SIGNATURE,
      .serial_from_spki = true,
      .skid_akid = true,
  };
  if ((r = x509_cert_build(&p, key, NULL, key, &cert)) < 0 ||
      (r = x509_cert_to_pem(cert, cert_pem)) < 0 || (r = key_to_pkcs8_pem(key, key_pem)) < 0)
    return r;
  return 0;
}

static int dev_appkeys(struct buf *out) {
  uint8_t k256[32], kms[32], disk[32], env[32], pub[33], app_id[20], ch[32], h[32], sig[65];
  _cleanup_buf_ struct buf cert = BUF_INIT(16384);
  _cleanup_buf_ struct buf key;
  _cleanup_json_ json_t *o = json_object(), *kp = json_object(), *none = json_object();
  buf_init_secret(&key, 16384);
  int r;
  if (!o || !kp || !none)
    return -ENOMEM;
  if ((r = derive("app-key", k256)) < 0 || (r = derive("kms-root-k256", kms)) < 0 ||
      (r = derive("app-disk-crypt-key", disk)) < 0 || (r = derive("env-encrypt-key", env)) < 0)
    goto out;
  if ((r = key_secp256k1_public_from_secret(k256, pub)) < 0)
    goto out;
  compose_app_id(app_id, ch);
  /* The demo KMS vouches for the app key: Keccak256("dstack-kms-issued:" || app_id || pub). */
  struct keccak_ctx kc;
  keccak_init(&kc, 32);
  keccak_update(&kc, "dstack-kms-issued:", 18);
  keccak_update(&kc, app_id, sizeof(app_id));
  keccak_update(&kc, pub, sizeof(pub));
  keccak_final(&kc, h);
  if ((r = key_secp256k1_sign_recoverable(kms, h, sig)) < 0)
    goto out;
  if ((r = dev_ca(&cert, &key)) < 0 || (r = buf_terminate(&cert)) < 0 ||
      (r = buf_terminate(&key)) < 0)
    goto out;
  if ((r = json_set_hex(o, "disk_crypt_key", disk, 32)) < 0 ||
      (r = json_set_hex(o, "env_crypt_key", env, 32)) < 0 ||
      (r = json_set_hex(o, "k256_key", k256, 32)) < 0 ||
      (r = json_set_hex(o, "k256_signature", sig, 65)) < 0 ||
      (r = json_set_str(o, "gateway_app_id", "")) < 0 ||
      (r = json_set_str(o, "ca_cert", (const char *)cert.data)) < 0 ||
      (r = json_set_str(none, "key", (const char *)key.data)) < 0)
    goto out;
  if ((r = json_set_new(kp, "None", json_incref(none))) < 0 ||
      (r = json_set_new(o, "key_provider", json_incref(kp))) < 0)
    goto out;
  r = json_dump_buf(o, JSON_INDENT(2), out);
out:
  secure_wipe(k256, sizeof(k256));
  secure_wipe(kms, sizeof(kms));
  secure_wipe(disk, sizeof(disk));
  secure_wipe(env, sizeof(env));
  return r;
}

/* The demo OS image: upstream's host puts SHA-256 of the image's digest.txt into
 * vm_config.os_image_hash, the KMS confirms it in GetAppKey and the guest records the confirmed
 * value as the RTMR3 runtime event "os-image-hash" (before "key-provider"). Dev mode plays host
 * and KMS with this fixed demo value. */
static const char dev_image_digest[] = "dstack dev mode demo OS image (no real image)\n";

int tappd_dev_os_image_hash(uint8_t ret[32]) {
  sha256(dev_image_digest, strlen(dev_image_digest), ret);
  return 0;
}

/* sys-config.json with vm_config naming the demo image. */
static int dev_sys_config(struct buf *out) {
  uint8_t h[32];
  char hx[65];
  tappd_dev_os_image_hash(h);
  hex_encode(h, sizeof(h), hx);
  return buf_printf(out,
                    "{\"kms_urls\":[],\"gateway_urls\":[],\"pccs_url\":null,"
                    "\"docker_registry\":null,\"host_api_url\":null,"
                    "\"vm_config\":\"{\\\"os_image_hash\\\":\\\"%s\\\","
                    "\\\"cpu_count\\\":1,\\\"memory_size\\\":1073741824}\"}",
                    hx);
}

/* What earlier dev directories got (no os_image_hash): replaced by the current demo file. */
static const char dev_sys_config_v0[] =
    "{\"kms_urls\":[],\"gateway_urls\":[],\"pccs_url\":null,\"docker_registry\":null,"
    "\"host_api_url\":null,\"vm_config\":\"{\\\"os_image_hash\\\":\\\"\\\","
    "\\\"cpu_count\\\":1,\\\"memory_size\\\":1073741824}\"}";

static int write_sys_config(const char *dir) {
  _cleanup_free_ char *p = str_printf("%s/sys-config.json", dir);
  _cleanup_buf_ struct buf cur = {0};
  _cleanup_buf_ struct buf want = BUF_INIT(4096);
  if (!p)
    return -ENOMEM;
  if (access(p, F_OK) == 0) {
    int r = file_read_capped(p, 64 * 1024, false, &cur);
    if (r == -EFBIG)
      return 0; /* not ours (a regular file that size was -EFBIG here before, not skipped) */
    if (r < 0)
      return r;
    if (cur.len != strlen(dev_sys_config_v0) || memcmp(cur.data, dev_sys_config_v0, cur.len))
      return 0; /* the user's (or already current) */
  }
  int r = dev_sys_config(&want);
  if (r < 0)
    return r;
  return file_write_atomic(p, want.data, want.len, 0644);
}

/* vm_config.os_image_hash (hex) as the demo KMS confirms it; the demo image when vm_config
 * names none. */
static int vm_config_os_image_hash(const char *vm_config, struct buf *out) {
  _cleanup_json_ json_t *j = NULL;
  const char *hx = NULL;
  if (vm_config && *vm_config &&
      json_parse_buf(vm_config, strlen(vm_config), 64 * 1024, &j) == 0 && json_is_object(j) &&
      json_get_str(j, "os_image_hash", &hx) == 0 && *hx &&
      hex_decode_buf(hx, strlen(hx), false, out) == 0 && out->len > 0)
    return 0;
  buf_reset(out);
  uint8_t h[32];
  tappd_dev_os_image_hash(h);
  return buf_append(out, h, sizeof(h));
}

static int write_if_missing(const char *dir, const char *name, const void *data, size_t len,
                            mode_t mode) {
  _cleanup_free_ char *p = str_printf("%s/%s", dir, name);
  if (!p)
    return -ENOMEM;
  if (access(p, F_OK) == 0)
    return 0;
  return file_write_atomic(p, data, len, mode);
}

int tappd_dev_prepare(const char *dir, char *err, size_t errlen) {
  int r = mkdir_p(dir, 0700);
  if (r < 0)
    return str_err(err, errlen, r, "creating %s: %s", dir, strerror(-r));
  _cleanup_free_ char *sim = str_printf("%s/sim", dir);
  if (!sim)
    return -ENOMEM;
  if (sim_platform_check(sim) < 0) {
    r = sim_platform_init(sim, NULL);
    if (r < 0)
      return str_err(err, errlen, r, "creating the simulated platform in %s: %s", sim, strerror(-r));
  }
  _cleanup_buf_ struct buf keys;
  buf_init_secret(&keys, 256 * 1024);
  if ((r = dev_appkeys(&keys)) < 0 ||
      (r = write_if_missing(dir, "appkeys.json", keys.data, keys.len, 0600)) < 0)
    return str_err(err, errlen, r, "writing %s/appkeys.json: %s", dir, strerror(-r));
  if ((r = write_if_missing(dir, "app-compose.json", dev_compose, strlen(dev_compose), 0644)) < 0)
    return str_err(err, errlen, r, "writing %s/app-compose.json: %s", dir, strerror(-r));
  if ((r = write_sys_config(dir)) < 0)
    return str_err(err, errlen, r, "writing %s/sys-config.json: %s", dir, strerror(-r));
  return 0;
}

int tappd_dev_boot(struct tappd *t) {
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  int r = tappd_eventlog_read(t, &log);
  if (r < 0)
    return r;
  const struct tdx_event *e;
  if (eventlog_find(&log, 3, "system-ready", &e) == 0)
    return 0;
  /* RTMR3 only grows: a boot cut short cannot be completed (its events would come twice). */
  for (size_t i = 0; i < log.n; i++)
    if (log.ev[i].imr == 3 && boot_event_name_reserved(log.ev[i].event))
      return log_errno(-EEXIST,
                       "dev mode: the simulated TD holds a boot that did not finish (\"%s\" "
                       "without system-ready); remove the dev directory's sim/ to boot afresh",
                       log.ev[i].event);
  uint8_t ch[32], app_id[20], instance_id[20];
  if (t->compose_raw && *t->compose_raw)
    sha256(t->compose_raw, strlen(t->compose_raw), ch);
  else
    compose_app_id(app_id, ch);
  memcpy(app_id, ch, 20);
  if (RAND_bytes(instance_id, sizeof(instance_id)) != 1)
    return -EIO;
  _cleanup_buf_ struct buf os_image = BUF_INIT(1024);
  if ((r = vm_config_os_image_hash(t->vm_config, &os_image)) < 0)
    return r;
  static const char kp[] = "{\"name\":\"none\",\"id\":\"\"}";
  struct {
    const char *name;
    const void *p;
    size_t n;
  } ev[] = {
      {"system-preparing", "", 0},
      {"app-id", app_id, 20},
      {"compose-hash", ch, 32},
      {"instance-id", instance_id, 20},
      {"boot-mr-done", "", 0},
      {"os-image-hash", os_image.data, os_image.len},
      {"key-provider", kp, sizeof(kp) - 1},
      {"system-ready", "", 0},
  };
  for (size_t i = 0; i < ARRAY_SIZE(ev); i++) {
    r = tappd_emit_event(t, ev[i].name, ev[i].p, ev[i].n, NULL);
    if (r < 0)
      return log_errno(r, "emitting the boot event %s", ev[i].name);
  }
  return 0;
}
