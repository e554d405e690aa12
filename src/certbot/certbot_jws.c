/* ES256 JWS, JWK and thumbprints for the ACME client. */
#include "certbot_jws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/keys.h"

static int b64url(const void *p, size_t n, char **ret) {
  struct buf b = BUF_INIT(SIZE_MAX);
  int r = base64url_encode_buf(p, n, false, &b);
  if (r >= 0)
    r = buf_terminate(&b);
  if (r < 0) {
    buf_free(&b);
    return r;
  }
  *ret = (char *)buf_steal(&b, NULL);
  if (!*ret)
    *ret = strdup("");
  return *ret ? 0 : -ENOMEM;
}

int certbot_jwk_from_key(EVP_PKEY *k, json_t **ret) {
  uint8_t pt[65];
  _cleanup_free_ char *x = NULL, *y = NULL;
  int r;
  if (key_get_type(k) != KEY_TYPE_P256)
    return -EINVAL;
  if ((r = key_ec_public_point(k, pt)) < 0 || (r = b64url(pt + 1, 32, &x)) < 0 ||
      (r = b64url(pt + 33, 32, &y)) < 0)
    return r;
  json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "crv", "P-256", "kty", "EC", "x", x, "y", y);
  if (!j)
    return -ENOMEM;
  *ret = j;
  return 0;
}

int certbot_jwk_thumbprint(const json_t *jwk, char **ret) {
  static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
  static const char *const rsa[] = {"e", "kty", "n", NULL};
  const char *kty = NULL;
  if (!json_is_object(jwk) || json_get_str(jwk, "kty", &kty) < 0)
    return -EINVAL;
  const char *const *members = str_eq(kty, "EC") ? ec : str_eq(kty, "RSA") ? rsa : NULL;
  if (!members)
    return -EINVAL;
  _cleanup_json_ json_t *c = json_object();
  if (!c)
    return -ENOMEM;
  for (size_t i = 0; members[i]; i++) {
    const char *v = NULL;
    if (json_get_str(jwk, members[i], &v) < 0 || json_set_str(c, members[i], v) < 0)
      return -EINVAL;
  }
  _cleanup_free_ char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
  if (!text)
    return -ENOMEM;
  uint8_t h[32];
  sha256(text, strlen(text), h);
  return b64url(h, sizeof(h), ret);
}

int certbot_key_authorization(const char *token, const char *thumbprint, char **ret) {
  size_t n = token ? strlen(token) : 0;
  if (n == 0 || n > 1024 || !thumbprint)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    char c = token[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return -EINVAL;
  }
  *ret = str_printf("%s.%s", token, thumbprint);
  return *ret ? 0 : -ENOMEM;
}

int certbot_dns01_value(const char *key_authorization, char **ret) {
  uint8_t h[32];
  sha256(key_authorization, strlen(key_authorization), h);
  return b64url(h, sizeof(h), ret);
}

int certbot_jws_sign(EVP_PKEY *k, const char *url, const char *nonce, const char *kid,
                     const char *payload, char **ret) {
  _cleanup_json_ json_t *prot =
      json_pack("{s:s,s:s,s:s}", "alg", "ES256", "nonce", nonce, "url", url);
  _cleanup_free_ char *prot_text = NULL, *prot_b64 = NULL, *pay_b64 = NULL, *sig_b64 = NULL,
                      *input = NULL;
  uint8_t sig[64];
  int r;
  if (!prot)
    return -EINVAL;
  if (kid) {
    if ((r = json_set_str(prot, "kid", kid)) < 0)
      return r;
  } else {
    json_t *jwk = NULL;
    if ((r = certbot_jwk_from_key(k, &jwk)) < 0 || (r = json_set_new(prot, "jwk", jwk)) < 0)
      return r;
  }
  if (!(prot_text = json_dumps(prot, JSON_COMPACT)))
    return -ENOMEM;
  if ((r = b64url(prot_text, strlen(prot_text), &prot_b64)) < 0 ||
      (r = b64url(payload ? payload : "", payload ? strlen(payload) : 0, &pay_b64)) < 0)
    return r;
  if (!(input = str_printf("%s.%s", prot_b64, pay_b64)))
    return -ENOMEM;
  if ((r = key_ecdsa_sign_raw(k, input, strlen(input), sig)) < 0 ||
      (r = b64url(sig, sizeof(sig), &sig_b64)) < 0)
    return r;
  json_t *o =
      json_pack("{s:s,s:s,s:s}", "protected", prot_b64, "payload", pay_b64, "signature", sig_b64);
  if (!o)
    return -ENOMEM;
  *ret = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return *ret ? 0 : -ENOMEM;
}
