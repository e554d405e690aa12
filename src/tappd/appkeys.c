/* Loading the app keys (appkeys.json in its three shapes, or the seed-era CA files). */
#include "tappd_appkeys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/json.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/x509.h"

#define SECRET_MAX 4096

void appkeys_free(struct appkeys *k) {
  if (!k)
    return;
  X509_free(k->ca_cert);
  EVP_PKEY_free(k->ca_key);
  free(k->ca_pem);
  secure_wipe(k->k256_key, sizeof(k->k256_key));
  buf_free(&k->k256_signature);
  buf_free(&k->disk_crypt_key);
  buf_free(&k->env_crypt_key);
  free(k->gateway_app_id);
  free(k->key_provider);
  buf_free(&k->key_provider_id);
  free(k->kms_url);
  memset(k, 0, sizeof(*k));
}

static void appkeys_init(struct appkeys *k) {
  memset(k, 0, sizeof(*k));
  buf_init(&k->k256_signature, 1024);
  buf_init_secret(&k->disk_crypt_key, SECRET_MAX);
  buf_init_secret(&k->env_crypt_key, SECRET_MAX);
  buf_init(&k->key_provider_id, 4096);
}

_printf_(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -EBADMSG;
}

int appkeys_set_ca(struct appkeys *k, const char *cert_pem, size_t cert_len, const char *key_pem,
                   size_t key_len) {
  _cleanup_(X509_freep) X509 *cert = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  int r = x509_cert_from_pem(cert_pem, cert_len, &cert);
  if (r < 0)
    return r;
  if (key_pem) {
    r = key_from_pem_or_der(key_pem, key_len, &key);
    if (r < 0)
      return r;
    if (key_get_type(key) != KEY_TYPE_P256)
      return -ENOTSUP;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
    r = x509_cert_public_key(cert, &pub);
    if (r < 0)
      return r;
    if (key_public_equal(pub, key) != 0)
      return -EBADMSG; /* key does not belong to the certificate */
  }
  char *pem = strndup(cert_pem, cert_len);
  if (!pem)
    return -ENOMEM;
  X509_free(k->ca_cert);
  EVP_PKEY_free(k->ca_key);
  free(k->ca_pem);
  k->ca_cert = TAKE_PTR(cert);
  k->ca_key = TAKE_PTR(key);
  k->ca_pem = pem;
  return 0;
}

/* Optional hex field into a buffer. */
static int opt_hex(const json_t *o, const char *key, struct buf *out) {
  int r = json_get_hex_buf(o, key, out);
  return r == -ENOENT ? 0 : r;
}

static int opt_strdup(const json_t *o, const char *key, char **ret) {
  const char *s;
  int r = json_get_str(o, key, &s);
  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return r;
  char *d = strdup(s);
  if (!d)
    return -ENOMEM;
  free(*ret);
  *ret = d;
  return 0;
}

static int get_k256(const json_t *o, struct appkeys *k, char *err, size_t errlen) {
  _cleanup_buf_ struct buf b = BUF_INIT_SECRET(64);
  int r = json_get_hex_buf(o, "k256_key", &b);
  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return fail(err, errlen, "k256_key: expected hex");
  if (b.len == 0)
    return 0; /* empty: no k256 key (some providers leave it out) */
  if (b.len != 32)
    return fail(err, errlen, "k256_key: expected 32 bytes, got %zu", b.len);
  uint8_t pub[33];
  if (key_secp256k1_public_from_secret(b.data, pub) < 0)
    return fail(err, errlen, "k256_key: not a valid secp256k1 secret");
  memcpy(k->k256_key, b.data, 32);
  k->has_k256 = true;
  return 0;
}

int appkeys_parse_json(const char *text, size_t len, struct appkeys *ret, char *err,
                       size_t errlen) {
  appkeys_init(ret);
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(text, len, APPKEYS_MAX_FILE, &j);
  if (r < 0) {
    appkeys_free(ret);
    return fail(err, errlen, "not valid JSON");
  }
  if (!json_is_object(j)) {
    appkeys_free(ret);
    return fail(err, errlen, "expected a JSON object");
  }
  struct appkeys *k = ret;
  const char *s;

  if (json_get_str(j, "app_key", &s) == 0) {
    /* Seed-era KMS reply. */
    json_t *chain;
    k->format = APPKEYS_SEED_KMS;
    if (json_get_array(j, "certificate_chain", &chain) < 0 || json_array_size(chain) == 0 ||
        !json_is_string(json_array_get(chain, 0))) {
      r = fail(err, errlen, "certificate_chain: expected an array of PEM strings");
      goto out;
    }
    _cleanup_buf_ struct buf pem = BUF_INIT(APPKEYS_MAX_FILE);
    for (size_t i = 0; i < json_array_size(chain); i++) {
      const char *c = json_string_value(json_array_get(chain, i));
      if (!c) {
        r = fail(err, errlen, "certificate_chain: expected strings");
        goto out;
      }
      if ((r = buf_append_str(&pem, c)) < 0 ||
          (pem.len && pem.data[pem.len - 1] != '\n' && (r = buf_append_u8(&pem, '\n')) < 0))
        goto out;
    }
    r = appkeys_set_ca(k, (const char *)pem.data, pem.len, s, strlen(s));
    if (r < 0) {
      r = fail(err, errlen, "app_key / certificate_chain: %s", strerror(-r));
      goto out;
    }
    if (opt_hex(j, "disk_crypt_key", &k->disk_crypt_key) < 0) {
      r = fail(err, errlen, "disk_crypt_key: expected hex");
      goto out;
    }
    r = 0;
    if (!json_object_get(j, "k256_key"))
      goto out;
    /* Our KMS's reply carries both eras: the app CA above and the newest keys below (tboot
     * hands it to tappd as it came). */
    if ((r = get_k256(j, k, err, errlen)) < 0)
      goto out;
    if (opt_hex(j, "k256_signature", &k->k256_signature) < 0 ||
        opt_hex(j, "env_crypt_key", &k->env_crypt_key) < 0) {
      r = fail(err, errlen, "k256_signature / env_crypt_key: expected hex");
      goto out;
    }
    if ((r = opt_strdup(j, "gateway_app_id", &k->gateway_app_id)) < 0 ||
        (!k->gateway_app_id && (r = opt_strdup(j, "tproxy_app_id", &k->gateway_app_id)) < 0)) {
      r = fail(err, errlen, "gateway_app_id: expected a string");
      goto out;
    }
    if (!(k->key_provider = strdup("kms"))) {
      r = -ENOMEM;
      goto out;
    }
    r = 0;
    goto out;
  }

  if ((r = get_k256(j, k, err, errlen)) < 0)
    goto out;
  if (opt_hex(j, "k256_signature", &k->k256_signature) < 0 ||
      opt_hex(j, "disk_crypt_key", &k->disk_crypt_key) < 0 ||
      opt_hex(j, "env_crypt_key", &k->env_crypt_key) < 0) {
    r = fail(err, errlen, "k256_signature / disk_crypt_key / env_crypt_key: expected hex");
    goto out;
  }
  if ((r = opt_strdup(j, "gateway_app_id", &k->gateway_app_id)) < 0) {
    r = fail(err, errlen, "gateway_app_id: expected a string");
    goto out;
  }
  if (!k->gateway_app_id && (r = opt_strdup(j, "tproxy_app_id", &k->gateway_app_id)) < 0) {
    r = fail(err, errlen, "tproxy_app_id: expected a string");
    goto out;
  }
  const char *ca_cert = NULL;
  r = json_get_str(j, "ca_cert", &ca_cert);
  if (r < 0 && r != -ENOENT) {
    r = fail(err, errlen, "ca_cert: expected a PEM string");
    goto out;
  }

  json_t *kp = json_object_get(j, "key_provider");
  if (kp) {
    k->format = APPKEYS_GUEST;
    if (!json_is_object(kp) || json_object_size(kp) != 1) {
      r = fail(err, errlen, "key_provider: expected an object with one variant");
      goto out;
    }
    const char *variant = json_object_iter_key(json_object_iter(kp));
    json_t *v = json_object_iter_value(json_object_iter(kp));
    const char *key_pem = NULL, *cert_pem = ca_cert;
    if (!json_is_object(v)) {
      r = fail(err, errlen, "key_provider.%s: expected an object", variant);
      goto out;
    }
    const char *kind = str_eq(variant, "None")    ? "none"
                       : str_eq(variant, "Local") ? "local"
                       : str_eq(variant, "Tpm")   ? "tpm"
                       : str_eq(variant, "Kms")   ? "kms"
                                                  : NULL;
    if (!kind) {
      r = fail(err, errlen, "key_provider: unknown variant '%s'", variant);
      goto out;
    }
    if ((k->key_provider = strdup(kind)) == NULL) {
      r = -ENOMEM;
      goto out;
    }
    if (str_eq(kind, "kms")) {
      /* No SignCert client here: the temporary CA the KMS handed out issues certificates. */
      if (json_get_str(v, "tmp_ca_key", &key_pem) < 0 ||
          json_get_str(v, "tmp_ca_cert", &cert_pem) < 0) {
        r = fail(err, errlen, "key_provider.Kms: needs tmp_ca_key and tmp_ca_cert");
        goto out;
      }
      if (opt_strdup(v, "url", &k->kms_url) < 0 || opt_hex(v, "pubkey", &k->key_provider_id) < 0) {
        r = fail(err, errlen, "key_provider.Kms: bad url or pubkey");
        goto out;
      }
    } else {
      if (json_get_str(v, "key", &key_pem) < 0) {
        r = fail(err, errlen, "key_provider.%s: needs key (PEM)", variant);
        goto out;
      }
      if (opt_hex(v, str_eq(kind, "tpm") ? "pubkey" : "mr", &k->key_provider_id) < 0) {
        r = fail(err, errlen, "key_provider.%s: bad provider id (hex)", variant);
        goto out;
      }
    }
    if (!cert_pem) {
      r = fail(err, errlen, "ca_cert: missing");
      goto out;
    }
    r = appkeys_set_ca(k, cert_pem, strlen(cert_pem), key_pem, strlen(key_pem));
    if (r < 0) {
      r = fail(err, errlen, "app CA key / certificate: %s", strerror(-r));
      goto out;
    }
  } else {
    k->format = APPKEYS_KMS_RESPONSE;
    if (!k->has_k256 && !ca_cert) {
      r = fail(err, errlen, "no app keys found (expected k256_key, key_provider or app_key)");
      goto out;
    }
    if (ca_cert) {
      /* The KMS root CA: kept for app_cert; certificates are issued by cert_file/key_file. */
      r = appkeys_set_ca(k, ca_cert, strlen(ca_cert), NULL, 0);
      if (r < 0) {
        r = fail(err, errlen, "ca_cert: %s", strerror(-r));
        goto out;
      }
    }
  }
  r = 0;
out:
  if (r < 0)
    appkeys_free(ret);
  return r;
}

int appkeys_load(const char *keys_file, const char *cert_file, const char *key_file,
                 struct appkeys *ret, char *err, size_t errlen) {
  int r;
  bool have = false;
  memset(ret, 0, sizeof(*ret));
  if (!str_isempty(keys_file) && access(keys_file, F_OK) == 0) {
    /* .appkeys.json holds the app's keys (CA key, disk and env keys, k256 key) */
    _cleanup_buf_ struct buf b = BUF_INIT_SECRET(APPKEYS_MAX_FILE);
    r = file_read_all(keys_file, APPKEYS_MAX_FILE, &b);
    if (r < 0) {
      if (err && errlen)
        snprintf(err, errlen, "%s: %s", keys_file, strerror(-r));
      return r;
    }
    char sub[200] = "";
    r = appkeys_parse_json((const char *)b.data, b.len, ret, sub, sizeof(sub));
    if (r < 0) {
      if (err && errlen)
        snprintf(err, errlen, "%s: %s", keys_file, sub);
      return r;
    }
    have = true;
  } else {
    appkeys_init(ret);
    ret->format = APPKEYS_SEED_FILES;
  }
  if (!ret->ca_key && !str_isempty(cert_file) && !str_isempty(key_file) &&
      access(cert_file, F_OK) == 0 && access(key_file, F_OK) == 0) {
    _cleanup_buf_ struct buf c = BUF_INIT(APPKEYS_MAX_FILE);
    _cleanup_buf_ struct buf k = BUF_INIT_SECRET(APPKEYS_MAX_FILE);
    if ((r = file_read_all(cert_file, APPKEYS_MAX_FILE, &c)) < 0 ||
        (r = file_read_all(key_file, APPKEYS_MAX_FILE, &k)) < 0) {
      if (err && errlen)
        snprintf(err, errlen, "reading %s / %s: %s", cert_file, key_file, strerror(-r));
      appkeys_free(ret);
      return r;
    }
    r = appkeys_set_ca(ret, (const char *)c.data, c.len, (const char *)k.data, k.len);
    if (r < 0) {
      if (err && errlen)
        snprintf(err, errlen, "%s / %s: %s", cert_file, key_file, strerror(-r));
      appkeys_free(ret);
      return r;
    }
    have = true;
  }
  if (!have) {
    if (err && errlen)
      snprintf(err, errlen, "no app keys: neither %s nor %s + %s exist",
               str_isempty(keys_file) ? "(keys_file)" : keys_file,
               str_isempty(cert_file) ? "(cert_file)" : cert_file,
               str_isempty(key_file) ? "(key_file)" : key_file);
    appkeys_free(ret);
    return -ENOENT;
  }
  return 0;
}
