/* App key derivation from the root keys (upstream dstack).
 *
 * All P-256 derivations use HKDF-SHA256 with salt "RATLS", IKM = the root CA's 32-byte private
 * scalar, info = the concatenation of the context parts listed below (no separators), and use
 * the 32-byte output as the P-256 scalar (kdf_derive_p256_key). "dh secret" means SHA-256 of the
 * PKCS#8 DER of that P-256 key (kdf_derive_dh_secret). APP_ID is the raw app id (20 bytes as
 * the guest measures it), APP_ID_HEX its lowercase hex text (ASCII bytes), INSTANCE_ID the raw
 * instance id (may be empty), ROOTFS_HEX the rootfs hash as 64 lowercase hex characters.
 *
 *   era-independent (upstream newest, raw bytes as upstream passes Vec<u8>):
 *     env_crypt_key   dh secret, info = APP_ID || "env-encrypt-key"   (X25519 secret, unclamped)
 *     k256_key        HKDF(IKM = root k256 secret, info = APP_ID || "app-key"), 32 bytes
 *     k256_signature  recoverable secp256k1 by the root k256 key over
 *                     Keccak256("dstack-kms-issued:" || APP_ID || compressed k256 public key)
 *   newest era (the app-id event is a runtime event with a payload):
 *     disk_crypt_key  dh secret, info = APP_ID || INSTANCE_ID || "app-disk-crypt-key" (32 bytes)
 *     app_key         P-256, info = APP_ID || "app-ca"  (upstream's app CA key; handed out as the
 *                     seed-era app_key field)
 *   seed era (the app-id event is a seed line; app id = digest[0..20]):
 *     disk_crypt_key  PKCS#8 DER of P-256, info = APP_ID_HEX || ROOTFS_HEX || "app-disk-crypt-key"
 *     app_key         P-256, info = APP_ID_HEX || "app-key"
 *
 * Env-key public key signatures (GetAppEnvEncryptPubKey), both by the root k256 key:
 *     signature       Keccak256("dstack-env-encrypt-pubkey:" || APP_ID || X25519 public key)
 *     signature_v1    Keccak256("dstack-env-encrypt-pubkey:" || APP_ID || be64(timestamp) ||
 *                     X25519 public key)
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ratls/ratls_verify.h"

struct kms_root_keys;
struct ratls_attestation;

struct kms_app_keys {
  EVP_PKEY *app_key;         /* P-256 */
  struct buf app_key_pem;    /* secret; PKCS#8 PEM of app_key, NUL-terminated (only filled by
                              * kms_derive_app_keys_cached) */
  struct buf disk_crypt_key; /* secret */
  uint8_t env_crypt_key[32];
  uint8_t k256_key[32];
  uint8_t k256_signature[65];
};

void kms_app_keys_free(struct kms_app_keys *k);

/* All keys of an app. -EINVAL when the identity lacks what its era needs (seed: rootfs hash). */
int kms_derive_app_keys(const struct kms_root_keys *rk, const struct ratls_app_identity *id,
                        struct kms_app_keys *ret);

/* The keys that depend on the era and app id only (app_key and its PEM, env_crypt_key,
 * k256_key, k256_signature), kept for the most recently served apps, so that the replicas of
 * an app do not derive them again; disk_crypt_key (instance id / rootfs hash) is derived on
 * every call. Entries are wiped when evicted or freed. One cache serves one set of root keys
 * (it empties itself when called with another). */
struct kms_key_cache;
int kms_key_cache_new(size_t n_entries, struct kms_key_cache **ret);
void kms_key_cache_free(struct kms_key_cache *c);
/* kms_derive_app_keys (same results, same errors) through cache c (NULL = derive everything),
 * also filling ret->app_key_pem. */
int kms_derive_app_keys_cached(struct kms_key_cache *c, const struct kms_root_keys *rk,
                               const struct ratls_app_identity *id, struct kms_app_keys *ret);

/* Pieces, for GetAppEnvEncryptPubKey and the tests. */
int kms_derive_env_secret(const struct kms_root_keys *rk, const uint8_t *app_id, size_t len,
                          uint8_t ret[32]);
int kms_derive_k256(const struct kms_root_keys *rk, const uint8_t *app_id, size_t len,
                    uint8_t ret_key[32], uint8_t ret_sig[65]);
/* X25519 public key of the app's env key and both signatures over it. */
int kms_env_pubkey(const struct kms_root_keys *rk, const uint8_t *app_id, size_t len,
                   uint64_t timestamp, uint8_t ret_pub[32], uint8_t ret_sig[65],
                   uint8_t ret_sig_v1[65]);

/* The seed-era app certificate: CN = APP_ID_HEX + subject_postfix, O = Dstack, CA pathLen 1,
 * public key = app_key, the caller's RA-TLS extensions (quote, event log, app info) copied,
 * signed by the root CA. */
int kms_app_cert_build(const struct kms_root_keys *rk, const struct ratls_app_identity *id,
                       EVP_PKEY *app_key, const struct ratls_attestation *att,
                       const char *subject_postfix, X509 **ret);
