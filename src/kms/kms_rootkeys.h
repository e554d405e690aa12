/* The KMS root keys: a P-256 root CA (key + self-signed certificate), a secp256k1 root key, and
 * the temporary client CA (whose key is public by design: guests use it to sign their RA-TLS
 * client certificates; trust comes from the quote inside, not from the CA).
 *
 * Files (kms init DIR, dev mode, onboarding):
 *   root-ca.key    0600  PKCS#8 PEM
 *   root-ca.cert   0644  PEM, O=Dstack, CN=Dstack KMS CA, CA pathLen 3
 *   root-k256.key  0600  the 32-byte secret, raw (as upstream); 64 hex characters also load
 *   tmp-ca.key     0600  PKCS#8 PEM
 *   tmp-ca.cert    0644  PEM, O=Dstack, CN=Dstack KMS Client Temp CA, CA pathLen 1
 * Secrets are held in wiped memory and never logged. */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/fileset.h"

struct kms_config;

struct kms_root_keys {
  EVP_PKEY *ca_key;
  X509 *ca_cert;
  struct buf ca_cert_pem; /* NUL-terminated */
  uint8_t ca_scalar[32];  /* the root CA's private scalar: the IKM of every P-256 derivation */
  uint8_t k256[32];
  uint8_t k256_pub[33]; /* compressed */
  EVP_PKEY *tmp_ca_key;
  X509 *tmp_ca_cert;
  struct buf tmp_ca_cert_pem; /* NUL-terminated */
  struct buf tmp_ca_key_pem;  /* NUL-terminated (secret buffer, although public by design) */
};

#define KMS_ROOT_CA_CN "Dstack KMS CA"
#define KMS_TMP_CA_CN "Dstack KMS Client Temp CA"
#define KMS_CA_ORG "Dstack"

void kms_root_keys_free(struct kms_root_keys *k);

/* Fresh keys. */
int kms_root_keys_generate(struct kms_root_keys *ret);

/* From the encoded forms (as stored, or as received while onboarding). Checks that each key
 * matches its certificate, that both certificates are CAs, and that the k256 secret is valid.
 * k256 is the raw 32 bytes or 64 hex characters (surrounding whitespace ignored). */
int kms_root_keys_from_pem(const char *ca_cert_pem, size_t ca_cert_len, const char *ca_key_pem,
                           size_t ca_key_len, const uint8_t *k256, size_t k256_len,
                           const char *tmp_cert_pem, size_t tmp_cert_len, const char *tmp_key_pem,
                           size_t tmp_key_len, struct kms_root_keys *ret, char *err,
                           size_t errlen);

/* Loads the five files named by the configuration. */
int kms_root_keys_load(const struct kms_config *c, struct kms_root_keys *ret, char *err,
                       size_t errlen);

/* Creates the five files (keys 0600, certificates 0644) as one set (lib/base/fileset.h): they
 * are written and synced in the staging directory KMS_ROOT_KEYS_STAGING next to root_ca_key
 * (0700), committed by a marker written last, then linked into place. A crash leaves either no
 * file or the committed staging directory, which kms_root_keys_recover() completes. -EEXIST
 * when any of the files (or the staging directory) exists: nothing is replaced. */
int kms_root_keys_store(const struct kms_root_keys *k, const struct kms_config *c, char *err,
                        size_t errlen);

/* At every start, before the key files are looked at: removes a staging directory left by a
 * crash before its commit (no key file had been written) or finishes one after it, with a
 * warning either way. An error (err set) when a committed set cannot be completed, e.g. a
 * target file exists that is not the staged one: nothing is replaced then. */
int kms_root_keys_recover(const struct kms_config *c, char *err, size_t errlen);

/* The same two, with step called after every step (fileset.h: 1..5 the staged files, 6 the
 * commit marker, 7..11 the links into place; 1..5 the links when completing): tests kill the
 * process there. */
int kms_root_keys_store_stepped(const struct kms_root_keys *k, const struct kms_config *c,
                                fileset_step_fn step, void *userdata, char *err, size_t errlen);
int kms_root_keys_recover_stepped(const struct kms_config *c, fileset_step_fn step,
                                  void *userdata, char *err, size_t errlen);

#define KMS_ROOT_KEY_FILES 5
#define KMS_ROOT_KEYS_STAGING ".kms-root-keys.new"

/* How many of the five files exist (0..5). */
int kms_root_keys_present(const struct kms_config *c);

/* kms init DIR: creates DIR (0700) and new keys there under the names above. -EEXIST when any
 * of the files exists already (nothing is overwritten). */
int kms_init_dir(const char *dir, struct kms_root_keys *ret, char *err, size_t errlen);
