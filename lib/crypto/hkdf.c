/* HKDF-SHA256 through OpenSSL's EVP_KDF "HKDF", and the ra-tls derivations built on it. */
#include "crypto/hkdf.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"

#define KDF_INFO_MAX ((size_t)64 * 1024)

/* An HMAC-SHA256 context with its digest already set, made once per process: each HMAC
 * duplicates it and only sets the key, which spares the fetches of the MAC and of its digest
 * (OpenSSL 3.0's HKDF fetches both, several times, on every derivation, and its HKDF context
 * cannot be duplicated). Freed at exit before OpenSSL's own cleanup (registered earlier). */
static _Atomic(EVP_MAC_CTX *) hmac_tmpl;

static void hmac_template_free(void) {
  EVP_MAC_CTX_free(atomic_exchange(&hmac_tmpl, NULL));
}

static const EVP_MAC_CTX *hmac_template(void) {
  EVP_MAC_CTX *c = atomic_load_explicit(&hmac_tmpl, memory_order_acquire);
  if (c)
    return c;
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  c = mac ? EVP_MAC_CTX_new(mac) : NULL;
  EVP_MAC_free(mac); /* the context holds its own reference */
  OSSL_PARAM params[2] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
      OSSL_PARAM_construct_end(),
  };
  if (!c || EVP_MAC_CTX_set_params(c, params) != 1) {
    EVP_MAC_CTX_free(c);
    ERR_clear_error();
    return NULL;
  }
  EVP_MAC_CTX *expected = NULL;
  if (!atomic_compare_exchange_strong(&hmac_tmpl, &expected, c)) {
    EVP_MAC_CTX_free(c); /* another thread was first */
    return expected;
  }
  (void)atexit(hmac_template_free);
  return c;
}

/* out = HMAC-SHA256(key, a || b || c); any part may be empty. */
static int hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *a, size_t a_len,
                       const uint8_t *b, size_t b_len, const uint8_t *c, size_t c_len,
                       uint8_t out[32]) {
  static const uint8_t empty[1];
  const EVP_MAC_CTX *tmpl = hmac_template();
  if (!tmpl)
    return -ENOTSUP;
  EVP_MAC_CTX *m = EVP_MAC_CTX_dup(tmpl);
  size_t n = 0;
  if (!m) {
    ERR_clear_error();
    return -ENOMEM;
  }
  int r = 0;
  if (EVP_MAC_init(m, key_len ? key : empty, key_len, NULL) != 1 ||
      (a_len && EVP_MAC_update(m, a, a_len) != 1) || (b_len && EVP_MAC_update(m, b, b_len) != 1) ||
      (c_len && EVP_MAC_update(m, c, c_len) != 1) || EVP_MAC_final(m, out, &n, 32) != 1 ||
      n != 32) {
    ERR_clear_error();
    r = -EIO;
  }
  EVP_MAC_CTX_free(m); /* clears the keyed state */
  return r;
}

int hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len) {
  if ((!salt && salt_len) || (!ikm && ikm_len) || (!info && info_len) || !out || out_len == 0 ||
      out_len > 255 * 32)
    return -EINVAL;

  /* RFC 5869: PRK = HMAC(salt, IKM); T(i) = HMAC(PRK, T(i-1) || info || i). An empty salt
   * acts as HashLen zero bytes; HMAC pads a short key with zeros, so an empty key does too. */
  uint8_t prk[32], t[32];
  int r = hmac_sha256(salt, salt_len, ikm, ikm_len, NULL, 0, NULL, 0, prk);
  size_t done = 0;
  for (uint8_t i = 1; r >= 0 && done < out_len; i++) {
    r = hmac_sha256(prk, sizeof(prk), t, i == 1 ? 0 : sizeof(t), info, info_len, &i, 1, t);
    if (r < 0)
      break;
    size_t n = MIN(out_len - done, sizeof(t));
    memcpy(out + done, t, n);
    done += n;
  }
  secure_wipe(prk, sizeof(prk));
  secure_wipe(t, sizeof(t));
  if (r < 0)
    secure_wipe(out, out_len);
  return r;
}

int kdf_derive_key(const uint8_t *ikm, size_t ikm_len, const struct slice *ctx, size_t n_ctx,
                   uint8_t *out, size_t out_len) {
  static const uint8_t salt[] = "RATLS";
  if ((!ctx && n_ctx) || !out)
    return -EINVAL;

  _cleanup_buf_ struct buf info = BUF_INIT_SECRET(KDF_INFO_MAX);
  for (size_t i = 0; i < n_ctx; i++) {
    if (!ctx[i].ptr && ctx[i].len)
      return -EINVAL;
    if (ctx[i].len) {
      int r = buf_append(&info, ctx[i].ptr, ctx[i].len);
      if (r < 0)
        return r;
    }
  }
  return hkdf_sha256(salt, sizeof(salt) - 1, ikm, ikm_len, info.data, info.len, out, out_len);
}

int kdf_derive_p256_key(const uint8_t *ikm, size_t ikm_len, const struct slice *ctx, size_t n_ctx,
                        EVP_PKEY **ret) {
  uint8_t scalar[32];
  if (!ret)
    return -EINVAL;
  int r = kdf_derive_key(ikm, ikm_len, ctx, n_ctx, scalar, sizeof(scalar));
  if (r >= 0)
    r = key_p256_from_scalar(scalar, ret);
  secure_wipe(scalar, sizeof(scalar));
  return r;
}

int kdf_derive_dh_secret(const uint8_t *ikm, size_t ikm_len, const struct slice *ctx, size_t n_ctx,
                         uint8_t ret[32]) {
  if (!ret)
    return -EINVAL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
  int r = kdf_derive_p256_key(ikm, ikm_len, ctx, n_ctx, &k);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf der = BUF_INIT_SECRET(4096);
  r = key_to_pkcs8_der(k, &der);
  if (r < 0)
    return r;
  return hash_buf(HASH_SHA256, der.data, der.len, ret);
}
