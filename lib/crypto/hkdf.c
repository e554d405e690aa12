/* HKDF-SHA256 through OpenSSL's EVP_KDF "HKDF", and the ra-tls derivations built on it. */
#include "crypto/hkdf.h"

#include <errno.h>
#include <string.h>

#include "base/macro.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"

#define KDF_INFO_MAX ((size_t)64 * 1024)

int hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len) {
  if ((!salt && salt_len) || (!ikm && ikm_len) || (!info && info_len) || !out || out_len == 0 ||
      out_len > 255 * 32)
    return -EINVAL;

  _cleanup_(EVP_KDF_freep) EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  if (!kdf) {
    ERR_clear_error();
    return -ENOTSUP;
  }
  _cleanup_(EVP_KDF_CTX_freep) EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
  if (!kctx)
    return -ENOMEM;

  /* An empty IKM or salt is fine (RFC 5869: an empty salt acts as HashLen zero bytes). */
  static const uint8_t empty[1];
  OSSL_PARAM params[6], *p = params;
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(ikm ? ikm : empty),
                                           ikm_len);
  if (salt_len)
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
  if (info_len)
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
  *p = OSSL_PARAM_construct_end();

  if (EVP_KDF_derive(kctx, out, out_len, params) != 1) {
    ERR_clear_error();
    return -EIO;
  }
  return 0;
}

int kdf_derive_key(const uint8_t *ikm, size_t ikm_len, const struct slice *ctx, size_t n_ctx,
                   uint8_t *out, size_t out_len) {
  static const uint8_t salt[] = "RATLS";
  if ((!ctx && n_ctx) || !out)
    return -EINVAL;

  _cleanup_buf_ struct buf info;
  buf_init_secret(&info, KDF_INFO_MAX);
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
  _cleanup_buf_ struct buf der;
  buf_init_secret(&der, 4096);
  r = key_to_pkcs8_der(k, &der);
  if (r < 0)
    return r;
  return hash_buf(HASH_SHA256, der.data, der.len, ret);
}
