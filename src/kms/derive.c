/* App key derivation; the exact info bytes of every derivation are listed in kms_derive.h and
 * pinned by tests/unit/test_kms_derive.c.
 *
 * Where the upstream sources leave a choice, this is what we do:
 *  - newest era: app id and instance id enter the HKDF info as raw bytes (upstream's BootInfo
 *    holds them as Vec<u8> decoded from the event payloads), not as hex text;
 *  - seed era: app id (40 hex) and rootfs hash (64 hex) enter as ASCII hex text, as the seed KMS
 *    did with its String values;
 *  - env key and k256 key use the raw app id in both eras, so GetAppEnvEncryptPubKey (which
 *    only knows the app id) names the same key the guest receives. */
#include "kms_derive.h"

#include <errno.h>
#include <string.h>

#include "base/str.h"
#include "crypto/hkdf.h"
#include "crypto/keccak.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "ratls/ratls.h"
#include "kms_rootkeys.h"

#define DISK_KEY_MAX 1024

#define APP_KEY_PEM_MAX ((size_t)16 * 1024)

void kms_app_keys_free(struct kms_app_keys *k) {
  if (!k)
    return;
  EVP_PKEY_free(k->app_key);
  buf_free(&k->app_key_pem);
  buf_free(&k->disk_crypt_key);
  secure_wipe(k, sizeof(*k));
}

static void app_keys_init(struct kms_app_keys *k) {
  memset(k, 0, sizeof(*k));
  buf_init_secret(&k->app_key_pem, APP_KEY_PEM_MAX);
  buf_init_secret(&k->disk_crypt_key, DISK_KEY_MAX);
}

/* Keccak256(prefix || ":" || app_id || mid || tail), signed recoverably by the root k256 key. */
static int sign_message(const struct kms_root_keys *rk, const char *prefix, const uint8_t *app_id,
                        size_t len, const uint8_t *mid, size_t mid_len, const uint8_t *tail,
                        size_t tail_len, uint8_t ret_sig[65]) {
  struct keccak_ctx kc;
  uint8_t h[32];
  int r = keccak_init(&kc, 32);
  if (r < 0)
    return r;
  keccak_update(&kc, prefix, strlen(prefix));
  keccak_update(&kc, ":", 1);
  keccak_update(&kc, app_id, len);
  if (mid_len)
    keccak_update(&kc, mid, mid_len);
  keccak_update(&kc, tail, tail_len);
  keccak_final(&kc, h);
  return key_secp256k1_sign_recoverable(rk->k256, h, ret_sig);
}

int kms_derive_env_secret(const struct kms_root_keys *rk, const uint8_t *app_id, size_t len,
                          uint8_t ret[32]) {
  if (!rk || (!app_id && len) || len > RATLS_APP_ID_MAX)
    return -EINVAL;
  struct slice ctx[] = {SLICE(app_id, len), SLICE_STR("env-encrypt-key")};
  return kdf_derive_dh_secret(rk->ca_scalar, sizeof(rk->ca_scalar), ctx, ARRAY_SIZE(ctx), ret);
}

int kms_derive_k256(const struct kms_root_keys *rk, const uint8_t *app_id, size_t len,
                    uint8_t ret_key[32], uint8_t ret_sig[65]) {
  if (!rk || (!app_id && len) || len > RATLS_APP_ID_MAX)
    return -EINVAL;
  struct slice ctx[] = {SLICE(app_id, len), SLICE_STR("app-key")};
  uint8_t pub[33];
  int r = kdf_derive_key(rk->k256, sizeof(rk->k256), ctx, ARRAY_SIZE(ctx), ret_key, 32);
  if (r >= 0)
    r = key_secp256k1_public_from_secret(ret_key, pub);
  if (r >= 0)
    r = sign_message(rk, "dstack-kms-issued", app_id, len, NULL, 0, pub, sizeof(pub), ret_sig);
  if (r < 0)
    secure_wipe(ret_key, 32);
  return r;
}

int kms_env_pubkey(const struct kms_root_keys *rk, const uint8_t *app_id, size_t len,
                   uint64_t timestamp, uint8_t ret_pub[32], uint8_t ret_sig[65],
                   uint8_t ret_sig_v1[65]) {
  uint8_t secret[32], ts[8];
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
  int r = kms_derive_env_secret(rk, app_id, len, secret);
  if (r >= 0)
    r = key_x25519_from_secret(secret, &k);
  secure_wipe(secret, sizeof(secret));
  if (r >= 0)
    r = key_raw_public(k, ret_pub);
  if (r < 0)
    return r;
  for (int i = 0; i < 8; i++)
    ts[i] = (uint8_t)(timestamp >> (56 - 8 * i));
  if ((r = sign_message(rk, "dstack-env-encrypt-pubkey", app_id, len, NULL, 0, ret_pub, 32,
                        ret_sig)) < 0 ||
      (r = sign_message(rk, "dstack-env-encrypt-pubkey", app_id, len, ts, sizeof(ts), ret_pub, 32,
                        ret_sig_v1)) < 0)
    return r;
  return 0;
}

/* What an identity must hold for its era's derivations. */
static int identity_check(const struct ratls_app_identity *id) {
  if (!id || id->app_id_len == 0 || id->app_id_len > RATLS_APP_ID_MAX ||
      id->instance_id_len > RATLS_INSTANCE_ID_MAX)
    return -EINVAL;
  if (id->era == RATLS_ERA_SEED &&
      (!id->has_rootfs_hash || strlen(id->app_id_hex) != 40 || strlen(id->rootfs_hash_hex) != 64))
    return -EINVAL;
  return 0;
}

/* The keys that depend on the era and the app id only: app_key, env_crypt_key, k256_*. */
static int derive_app_part(const struct kms_root_keys *rk, const struct ratls_app_identity *id,
                           struct kms_app_keys *k) {
  int r;
  if (id->era == RATLS_ERA_SEED) {
    struct slice app_ctx[] = {SLICE_STR(id->app_id_hex), SLICE_STR("app-key")};
    r = kdf_derive_p256_key(rk->ca_scalar, sizeof(rk->ca_scalar), app_ctx, ARRAY_SIZE(app_ctx),
                            &k->app_key);
  } else {
    struct slice app_ctx[] = {SLICE(id->app_id, id->app_id_len), SLICE_STR("app-ca")};
    r = kdf_derive_p256_key(rk->ca_scalar, sizeof(rk->ca_scalar), app_ctx, ARRAY_SIZE(app_ctx),
                            &k->app_key);
  }
  if (r >= 0)
    r = kms_derive_env_secret(rk, id->app_id, id->app_id_len, k->env_crypt_key);
  if (r >= 0)
    r = kms_derive_k256(rk, id->app_id, id->app_id_len, k->k256_key, k->k256_signature);
  return r;
}

/* disk_crypt_key: seed era PKCS#8 DER of a P-256 key, newest era a dh secret. */
static int derive_disk(const struct kms_root_keys *rk, const struct ratls_app_identity *id,
                       struct kms_app_keys *k) {
  int r;
  if (id->era == RATLS_ERA_SEED) {
    struct slice disk_ctx[] = {SLICE_STR(id->app_id_hex), SLICE_STR(id->rootfs_hash_hex),
                               SLICE_STR("app-disk-crypt-key")};
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *disk = NULL;
    if ((r = kdf_derive_p256_key(rk->ca_scalar, sizeof(rk->ca_scalar), disk_ctx,
                                 ARRAY_SIZE(disk_ctx), &disk)) < 0)
      return r;
    return key_to_pkcs8_der(disk, &k->disk_crypt_key);
  }
  struct slice disk_ctx[] = {SLICE(id->app_id, id->app_id_len),
                             SLICE(id->instance_id, id->instance_id_len),
                             SLICE_STR("app-disk-crypt-key")};
  uint8_t disk[32];
  if ((r = kdf_derive_dh_secret(rk->ca_scalar, sizeof(rk->ca_scalar), disk_ctx,
                                ARRAY_SIZE(disk_ctx), disk)) < 0)
    return r;
  r = buf_append(&k->disk_crypt_key, disk, sizeof(disk));
  secure_wipe(disk, sizeof(disk));
  return r;
}

int kms_derive_app_keys(const struct kms_root_keys *rk, const struct ratls_app_identity *id,
                        struct kms_app_keys *ret) {
  if (!rk || identity_check(id) < 0)
    return -EINVAL;
  struct kms_app_keys k;
  app_keys_init(&k);
  int r = derive_app_part(rk, id, &k);
  if (r >= 0)
    r = derive_disk(rk, id, &k);
  if (r < 0) {
    kms_app_keys_free(&k);
    return r;
  }
  *ret = k;
  secure_wipe(&k, sizeof(k));
  return 0;
}

/* ---- the per-app cache ---- */

struct key_entry {
  bool used;
  uint64_t stamp;
  enum ratls_era era;
  uint8_t app_id[RATLS_APP_ID_MAX];
  size_t app_id_len;
  struct kms_app_keys keys; /* disk_crypt_key unused */
};

struct kms_key_cache {
  const struct kms_root_keys *rk;
  uint64_t clock;
  size_t n;
  struct key_entry e[];
};

static void entry_clear(struct key_entry *e) {
  if (e->used)
    kms_app_keys_free(&e->keys);
  secure_wipe(e, sizeof(*e));
}

int kms_key_cache_new(size_t n_entries, struct kms_key_cache **ret) {
  if (n_entries == 0 || n_entries > 65536 || !ret)
    return -EINVAL;
  struct kms_key_cache *c = calloc(1, sizeof(*c) + n_entries * sizeof(c->e[0]));
  if (!c)
    return -ENOMEM;
  c->n = n_entries;
  *ret = c;
  return 0;
}

void kms_key_cache_free(struct kms_key_cache *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++)
    entry_clear(&c->e[i]);
  free(c);
}

/* Copies the cached part of src into dst (app_key shared by reference). */
static int copy_app_part(const struct kms_app_keys *src, struct kms_app_keys *dst) {
  int r = buf_append(&dst->app_key_pem, src->app_key_pem.data, src->app_key_pem.len);
  if (r >= 0)
    r = buf_terminate(&dst->app_key_pem);
  if (r < 0)
    return r;
  if (!EVP_PKEY_up_ref(src->app_key))
    return -ENOMEM;
  dst->app_key = src->app_key;
  memcpy(dst->env_crypt_key, src->env_crypt_key, sizeof(dst->env_crypt_key));
  memcpy(dst->k256_key, src->k256_key, sizeof(dst->k256_key));
  memcpy(dst->k256_signature, src->k256_signature, sizeof(dst->k256_signature));
  return 0;
}

static struct key_entry *cache_find(struct kms_key_cache *c, const struct kms_root_keys *rk,
                                    const struct ratls_app_identity *id) {
  if (c->rk != rk) {
    for (size_t i = 0; i < c->n; i++)
      entry_clear(&c->e[i]);
    c->rk = rk;
  }
  for (size_t i = 0; i < c->n; i++) {
    struct key_entry *e = &c->e[i];
    if (e->used && e->era == id->era && e->app_id_len == id->app_id_len &&
        memcmp(e->app_id, id->app_id, id->app_id_len) == 0) {
      e->stamp = ++c->clock;
      return e;
    }
  }
  return NULL;
}

/* Takes over the app part of k (k keeps a copy) into the least recently used slot. */
static void cache_put(struct kms_key_cache *c, const struct ratls_app_identity *id,
                      const struct kms_app_keys *k) {
  struct key_entry *slot = &c->e[0];
  for (size_t i = 0; i < c->n; i++) {
    struct key_entry *e = &c->e[i];
    if (!e->used) {
      slot = e;
      break;
    }
    if (e->stamp < slot->stamp)
      slot = e;
  }
  entry_clear(slot);
  app_keys_init(&slot->keys);
  if (copy_app_part(k, &slot->keys) < 0) {
    kms_app_keys_free(&slot->keys);
    secure_wipe(slot, sizeof(*slot));
    return; /* not cached: only a lost shortcut */
  }
  slot->used = true;
  slot->stamp = ++c->clock;
  slot->era = id->era;
  memcpy(slot->app_id, id->app_id, id->app_id_len);
  slot->app_id_len = id->app_id_len;
}

int kms_derive_app_keys_cached(struct kms_key_cache *c, const struct kms_root_keys *rk,
                               const struct ratls_app_identity *id, struct kms_app_keys *ret) {
  if (!rk || identity_check(id) < 0)
    return -EINVAL;
  struct kms_app_keys k;
  app_keys_init(&k);
  struct key_entry *e = c ? cache_find(c, rk, id) : NULL;
  int r;
  if (e) {
    r = copy_app_part(&e->keys, &k);
  } else {
    r = derive_app_part(rk, id, &k);
    if (r >= 0)
      r = key_to_pkcs8_pem(k.app_key, &k.app_key_pem);
    if (r >= 0)
      r = buf_terminate(&k.app_key_pem);
    if (r >= 0 && c)
      cache_put(c, id, &k);
  }
  if (r >= 0)
    r = derive_disk(rk, id, &k);
  if (r < 0) {
    kms_app_keys_free(&k);
    return r;
  }
  *ret = k;
  secure_wipe(&k, sizeof(k));
  return 0;
}

int kms_app_cert_build(const struct kms_root_keys *rk, const struct ratls_app_identity *id,
                       EVP_PKEY *app_key, const struct ratls_attestation *att,
                       const char *subject_postfix, X509 **ret) {
  if (!rk || !id || !app_key || !att || !ret)
    return -EINVAL;
  _cleanup_free_ char *cn =
      str_printf("%s%s", id->app_id_hex, subject_postfix ? subject_postfix : "");
  if (!cn)
    return -ENOMEM;
  struct ratls_cert_params p;
  ratls_cert_params_default(&p);
  p.subject_cn = cn;
  p.org_name = KMS_CA_ORG;
  p.ca_level = 1;
  p.app_info = att->app_info.data;
  p.app_info_len = att->app_info.len;
  struct ratls_evidence ev = {
      .quote = att->quote.data,
      .quote_len = att->quote.len,
      .event_log = att->event_log.data,
      .event_log_len = att->event_log.len,
  };
  return ratls_cert_build(&p, app_key, &ev, rk->ca_cert, rk->ca_key, ret);
}
