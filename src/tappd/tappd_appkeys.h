/* The app's keys as tappd receives them.
 *
 * appkeys.json, one of:
 *  - the guest AppKeys file of the newest version: {disk_crypt_key, env_crypt_key, k256_key,
 *    k256_signature (hex), gateway_app_id, ca_cert (PEM), key_provider: {"None":{"key":PEM}} |
 *    {"Local":{"key":PEM,"mr":hex}} | {"Tpm":{"key":PEM,"pubkey":hex}} |
 *    {"Kms":{"url","pubkey","tmp_ca_key","tmp_ca_cert"}}};
 *  - the newest KMS reply AppKeyResponse {ca_cert, disk_crypt_key, env_crypt_key, k256_key,
 *    k256_signature, tproxy_app_id, gateway_app_id, os_image_hash} (no CA key: the app CA then
 *    comes from cert_file/key_file);
 *  - the seed-era KMS reply {app_key (PEM), disk_crypt_key, certificate_chain [PEM...]}.
 * Without appkeys.json, the seed-era pair cert_file + key_file (app CA cert and key, PEM).
 *
 * The app CA issues the certificates of DeriveKey / GetTlsKey. The k256 key (when present) is
 * the root of GetKey and of DeriveKey's key derivation; without it DeriveKey derives from the
 * app CA's P-256 scalar as the seed era did. */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

#define APPKEYS_MAX_FILE ((size_t)1024 * 1024)

enum appkeys_format {
  APPKEYS_SEED_FILES,    /* cert_file + key_file only */
  APPKEYS_SEED_KMS,      /* {app_key, disk_crypt_key, certificate_chain} */
  APPKEYS_GUEST,         /* newest AppKeys with key_provider */
  APPKEYS_KMS_RESPONSE,  /* newest AppKeyResponse */
};

struct appkeys {
  enum appkeys_format format;
  X509 *ca_cert;     /* issuer of derived certificates (first certificate of ca_pem); may be NULL */
  EVP_PKEY *ca_key;  /* its private key; NULL when none was given */
  char *ca_pem;      /* the app CA certificate text as received (second chain entry, app_cert) */
  bool has_k256;
  uint8_t k256_key[32];
  struct buf k256_signature;
  struct buf disk_crypt_key; /* secret */
  struct buf env_crypt_key;  /* secret */
  char *gateway_app_id;
  char *key_provider; /* "none", "local", "tpm", "kms", or "" */
  struct buf key_provider_id;
  char *kms_url;
};

void appkeys_free(struct appkeys *k);

/* Parses appkeys.json text. ret is initialised here. -EBADMSG with err on malformed input. */
int appkeys_parse_json(const char *text, size_t len, struct appkeys *ret, char *err, size_t errlen);

/* Loads keys_file when it exists; then, if no CA key came from it, cert_file + key_file when
 * they exist. -ENOENT when neither gives any keys. */
int appkeys_load(const char *keys_file, const char *cert_file, const char *key_file,
                 struct appkeys *ret, char *err, size_t errlen);

/* Loads the app CA from PEM texts (cert text may hold a chain: the first is the CA). */
int appkeys_set_ca(struct appkeys *k, const char *cert_pem, size_t cert_len, const char *key_pem,
                   size_t key_len);
