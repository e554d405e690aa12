/* Step 3: the app's keys from the KMS.
 *
 * For each URL of kms_urls (the measured sys-config), in order, for a bounded number of rounds:
 *  1. GetTempCaCert: the temporary CA (it only authenticates transport; the KMS trusts the quote)
 *     and the KMS root CA. Nothing secret is sent, so this call does not verify the server.
 *  2. The root CA is the KMS's identity. When the app pinned one (app-compose key_provider_id,
 *     hex of the root key's SubjectPublicKeyInfo or of its uncompressed point), a KMS with another
 *     root is refused; either way the root's key is measured as the key provider (RTMR3
 *     `key-provider`), so every verifier of this TD sees which KMS gave its keys.
 *  3. An RA-TLS client certificate from this TD (a fresh P-256 key bound into a quote's
 *     report_data, the RTMR3 event log so far), issued by the temporary CA.
 *  4. GetAppKey over mutual TLS; the server's chain must lead to that root CA.
 * The reply's secrets stay in memory and in 0600 files under the work directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "attest/tee.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "net/http_client.h"
#include "ratls/ratls.h"
#include "tboot.h"

#define KMS_ROUNDS 4
#define KMS_REPLY_MAX ((size_t)1024 * 1024)

/* hex bytes of a JSON string field, "0x" allowed; -ENOENT when absent */
static int get_hex(json_t *j, const char *key, struct buf *out) {
  const char *s;
  int r = json_get_str(j, key, &s);
  if (r < 0)
    return r;
  if (!s)
    return -ENOENT;
  if (str_startswith(s, "0x") || str_startswith(s, "0X"))
    s += 2;
  return hex_decode_buf(s, strlen(s), false, out);
}

static int write_secret(const char *dir, const char *name, const void *data, size_t len,
                        char **ret_path) {
  _cleanup_free_ char *p = str_printf("%s/%s", dir, name);
  if (!p)
    return -ENOMEM;
  int r = file_write_atomic(p, data, len, 0600);
  if (r < 0)
    return r;
  if (ret_path)
    *ret_path = TAKE_PTR(p);
  return 0;
}

/* The KMS root CA from GetTempCaCert: exactly one certificate. *ret_pem is that certificate
 * re-encoded (what the TLS checks trust: never more than the pinned and measured root), *ret_hex
 * the hex of its SubjectPublicKeyInfo DER. */
static int root_parse(const char *pem, char **ret_pem, char **ret_hex, char *why, size_t whylen) {
  _cleanup_x509_chain_ STACK_OF(X509) *chain = NULL;
  _cleanup_buf_ struct buf spki = BUF_INIT(4096), out = BUF_INIT(64 * 1024);
  int r = x509_chain_from_pem(pem, strlen(pem), &chain);
  if (r < 0 || sk_X509_num(chain) != 1) {
    snprintf(why, whylen, "GetTempCaCert: ca_cert must be exactly one certificate");
    return r < 0 ? r : -EBADMSG;
  }
  X509 *ca = sk_X509_value(chain, 0);
  if ((r = x509_cert_spki_der(ca, &spki)) < 0 || (r = x509_cert_to_pem(ca, &out)) < 0 ||
      (r = buf_terminate(&out)) < 0) {
    snprintf(why, whylen, "GetTempCaCert: the root CA certificate does not parse");
    return r;
  }
  *ret_hex = hex_encode_alloc(spki.data, spki.len);
  *ret_pem = strdup((const char *)out.data);
  if (!*ret_hex || !*ret_pem) {
    free(*ret_hex);
    free(*ret_pem);
    return -ENOMEM;
  }
  return 0;
}

/* The app's pin, as SPKI DER hex or the 65-byte uncompressed point in hex. */
static bool pin_matches(const char *pin, const char *root_pem, const char *spki_hex) {
  if (strcasecmp(pin, spki_hex) == 0)
    return true;
  _cleanup_(X509_freep) X509 *ca = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
  uint8_t pt[65];
  char hex[131];
  if (x509_cert_from_pem(root_pem, strlen(root_pem), &ca) < 0 || x509_cert_public_key(ca, &k) < 0 ||
      key_ec_public_point(k, pt) < 0)
    return false;
  hex_encode(pt, sizeof(pt), hex);
  const char *p = str_startswith(pin, "0x") ? pin + 2 : pin;
  return strcasecmp(p, hex) == 0 || strcasecmp(p, hex + 2) == 0;
}

static int client_cert(struct tboot *t, const char *tmp_cert_pem, const char *tmp_key_pem,
                       char **ret_cert, char **ret_key, char *why, size_t whylen) {
  _cleanup_(X509_freep) X509 *issuer = NULL, *cert = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *issuer_key = NULL, *key = NULL;
  _cleanup_buf_ struct buf cpem = BUF_INIT(256 * 1024), kpem = BUF_INIT_SECRET(16 * 1024);
  int r = x509_cert_from_pem(tmp_cert_pem, strlen(tmp_cert_pem), &issuer);
  if (r >= 0)
    r = key_from_pem_or_der(tmp_key_pem, strlen(tmp_key_pem), &issuer_key);
  if (r < 0) {
    snprintf(why, whylen, "GetTempCaCert: the temporary CA does not parse");
    return r;
  }
  struct ratls_cert_params p;
  ratls_cert_params_default(&p);
  p.subject_cn = "dstack CVM";
  if ((r = ratls_cert_generate(&p, t->tee, issuer, issuer_key, &cert, &key)) < 0) {
    snprintf(why, whylen, "making the RA-TLS client certificate: %s", strerror(-r));
    return r;
  }
  if ((r = x509_cert_to_pem(cert, &cpem)) < 0 || (r = key_to_pkcs8_pem(key, &kpem)) < 0 ||
      (r = write_secret(t->paths->work, "kms-client.crt", cpem.data, cpem.len, ret_cert)) < 0 ||
      (r = write_secret(t->paths->work, "kms-client.key", kpem.data, kpem.len, ret_key)) < 0) {
    snprintf(why, whylen, "writing the client certificate: %s", strerror(-r));
    return r;
  }
  return 0;
}

static void keys_forget(struct tboot *t) {
  buf_free(&t->disk_key);
  buf_free(&t->os_image_hash);
  explicit_bzero(t->env_key, sizeof(t->env_key));
  t->have_env_key = false;
}

static int keys_take(struct tboot *t, json_t *reply, char *why, size_t whylen) {
  _cleanup_buf_ struct buf env = BUF_INIT_SECRET(64);
  keys_forget(t);
  buf_init_secret(&t->disk_key, 4096);
  int r = get_hex(reply, "disk_crypt_key", &t->disk_key);
  if (r < 0 || t->disk_key.len < 16) {
    snprintf(why, whylen, "GetAppKey: no disk_crypt_key in the reply");
    keys_forget(t);
    return -EBADMSG;
  }
  if (get_hex(reply, "env_crypt_key", &env) == 0 && env.len == 32) {
    memcpy(t->env_key, env.data, 32);
    t->have_env_key = true;
  }
  buf_init(&t->os_image_hash, 64);
  (void)get_hex(reply, "os_image_hash", &t->os_image_hash);
  const char *s;
  if (json_get_str(reply, "app_key", &s) < 0 || !s || !json_is_array(json_object_get(reply, "certificate_chain"))) {
    snprintf(why, whylen, "GetAppKey: no app key and certificate chain in the reply");
    keys_forget(t);
    return -EBADMSG;
  }
  return 0;
}

/* One KMS, one attempt. */
static int try_kms(struct tboot *t, const char *url, char *why, size_t whylen) {
  if (!str_startswith(url, "https://")) {
    /* over http the client certificate and the root check would silently not happen */
    snprintf(why, whylen, "%s: a KMS is reached over https only", url);
    return -EPROTO;
  }
  struct http_client_opts o = {.timeout_ms = 20000, .connect_timeout_ms = 5000,
                               .max_body = KMS_REPLY_MAX, .insecure_skip_verify = true};
  _cleanup_json_ json_t *tmp = NULL;
  int r = tboot_post_json(url, "GetTempCaCert", "{}", &o, &tmp, why, whylen);
  if (r < 0)
    return r;
  const char *tmp_cert, *tmp_key, *root;
  if (json_get_str(tmp, "temp_ca_cert", &tmp_cert) < 0 || json_get_str(tmp, "temp_ca_key", &tmp_key) < 0 ||
      json_get_str(tmp, "ca_cert", &root) < 0 || !tmp_cert || !tmp_key || !root) {
    snprintf(why, whylen, "GetTempCaCert: the reply lacks temp_ca_cert, temp_ca_key or ca_cert");
    return -EBADMSG;
  }
  _cleanup_free_ char *root_id = NULL, *root_pem = NULL;
  if ((r = root_parse(root, &root_pem, &root_id, why, whylen)) < 0)
    return r;
  if (t->key_provider_id_pin && !pin_matches(t->key_provider_id_pin, root_pem, root_id)) {
    snprintf(why, whylen, "the KMS at %s has root key %.24s..., not the app's key_provider_id",
             url, root_id);
    return -EPERM;
  }
  _cleanup_free_ char *root_path = NULL, *cert_path = NULL, *key_path = NULL;
  if ((r = write_secret(t->paths->work, "kms-root-ca.crt", root_pem, strlen(root_pem),
                        &root_path)) < 0) {
    snprintf(why, whylen, "writing the root CA: %s", strerror(-r));
    return r;
  }
  if ((r = client_cert(t, tmp_cert, tmp_key, &cert_path, &key_path, why, whylen)) < 0)
    return r;
  _cleanup_json_ json_t *req = json_object();
  _cleanup_free_ char *body = NULL;
  if (!req || json_set_u64(req, "api_version", 1) < 0 ||
      json_set_str(req, "vm_config", t->sys.vm_config ? t->sys.vm_config : "") < 0 ||
      !(body = json_dump_compact(req))) {
    (void)unlink(key_path);
    return -ENOMEM;
  }
  struct http_client_opts mo = {.timeout_ms = 30000, .connect_timeout_ms = 5000,
                                .max_body = KMS_REPLY_MAX, .ca_file = root_path,
                                .ca_pins_peer = true, .client_cert_file = cert_path,
                                .client_key_file = key_path};
  json_t *reply = NULL;
  r = tboot_post_json(url, "GetAppKey", body, &mo, &reply, why, whylen);
  (void)unlink(key_path);
  if (r < 0)
    return r;
  if ((r = keys_take(t, reply, why, whylen)) < 0) {
    json_decref(reply);
    return r;
  }
  t->kms_reply = reply;
  t->root_ca_pem = TAKE_PTR(root_pem);
  t->kms_root_pubkey_hex = TAKE_PTR(root_id);
  t->kms_url = strdup(url);
  if (!t->root_ca_pem || !t->kms_url)
    return -ENOMEM;
  t->have_keys = true;
  return 0;
}

int tboot_keys_fetch(struct tboot *t) {
  if (t->sys.n_kms_urls == 0)
    return tboot_fail(t, -ENOENT, "kms_enabled, but .sys-config.json names no kms_urls");
  char why[512] = "";
  int r = -EIO;
  unsigned delay = 1;
  for (unsigned round = 0; round < KMS_ROUNDS; round++) {
    for (size_t i = 0; i < t->sys.n_kms_urls; i++) {
      const char *url = t->sys.kms_urls[i];
      tboot_progress(t, "requesting app keys from %s", url);
      r = try_kms(t, url, why, sizeof(why));
      if (r >= 0) {
        log_info("app keys from %s (root key %.24s...)", url, t->kms_root_pubkey_hex);
        return 0;
      }
      log_warn("KMS %s: %s", url, why);
      if (r == -EACCES || r == -EPERM)
        break; /* refused: asking again will not change the answer this boot */
    }
    if (r == -EACCES || r == -EPERM)
      break;
    if (round + 1 < KMS_ROUNDS) {
      struct timespec ts = {delay, 0};
      nanosleep(&ts, NULL);
      delay *= 2;
    }
  }
  return tboot_fail(t, r, "no app keys: %s", why);
}
