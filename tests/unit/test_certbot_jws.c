/* src/certbot/certbot_jws.c and the pure parts of certbot_acme.c: JWK, thumbprints (RFC 7638's
 * example), key authorizations, ES256 JWS, problem documents and the CSR. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/base64.h"
#include "base/json.h"
#include "certbot_acme.h"
#include "certbot_jws.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "testutil.h"

/* RFC 7638 section 3.1. */
#define RFC7638_N                                                                                  \
  "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"   \
  "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"   \
  "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM"  \
  "4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
#define RFC7638_THUMB "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

static EVP_PKEY *fixed_key(void) {
  uint8_t s[32];
  for (int i = 0; i < 32; i++)
    s[i] = (uint8_t)(i + 1);
  EVP_PKEY *k = NULL;
  assert_int_equal(key_p256_from_scalar(s, &k), 0);
  return k;
}

static char *b64url(const void *p, size_t n) {
  struct buf b = BUF_INIT(SIZE_MAX);
  assert_int_equal(base64url_encode_buf(p, n, false, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  return (char *)buf_steal(&b, NULL);
}

static void test_thumbprint_rfc7638(void **state) {
  (void)state;
  json_t *jwk =
      json_pack("{s:s,s:s,s:s,s:s}", "kty", "RSA", "n", RFC7638_N, "e", "AQAB", "alg", "RS256");
  char *t = NULL;
  assert_int_equal(certbot_jwk_thumbprint(jwk, &t), 0);
  assert_string_equal(t, RFC7638_THUMB);
  free(t);
  json_decref(jwk);
}

static void test_thumbprint_ec(void **state) {
  (void)state;
  EVP_PKEY *k = fixed_key();
  json_t *jwk = NULL;
  char *t = NULL;
  assert_int_equal(certbot_jwk_from_key(k, &jwk), 0);
  const char *x = json_string_value(json_object_get(jwk, "x"));
  const char *y = json_string_value(json_object_get(jwk, "y"));
  assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
  assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
  uint8_t pt[65];
  assert_int_equal(key_ec_public_point(k, pt), 0);
  char *ex = b64url(pt + 1, 32), *ey = b64url(pt + 33, 32);
  assert_string_equal(x, ex);
  assert_string_equal(y, ey);
  /* The canonical form, written out by hand. */
  char canon[256];
  snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x,
           y);
  uint8_t h[32];
  sha256(canon, strlen(canon), h);
  char *et = b64url(h, 32);
  assert_int_equal(certbot_jwk_thumbprint(jwk, &t), 0);
  assert_string_equal(t, et);
  free(t);
  free(et);
  free(ex);
  free(ey);
  json_decref(jwk);
  EVP_PKEY_free(k);
}

static void test_thumbprint_bad(void **state) {
  (void)state;
  char *t = NULL;
  json_t *j = json_pack("{s:s,s:s}", "kty", "EC", "crv", "P-256"); /* no x, y */
  assert_int_equal(certbot_jwk_thumbprint(j, &t), -EINVAL);
  json_decref(j);
  j = json_pack("{s:s,s:s}", "kty", "oct", "k", "AAAA");
  assert_int_equal(certbot_jwk_thumbprint(j, &t), -EINVAL);
  json_decref(j);
  j = json_pack("{s:i}", "kty", 1);
  assert_int_equal(certbot_jwk_thumbprint(j, &t), -EINVAL);
  json_decref(j);
  j = json_array();
  assert_int_equal(certbot_jwk_thumbprint(j, &t), -EINVAL);
  json_decref(j);
}

static void test_key_authorization(void **state) {
  (void)state;
  char *ka = NULL, *v = NULL;
  assert_int_equal(
      certbot_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", RFC7638_THUMB, &ka),
      0);
  assert_string_equal(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA." RFC7638_THUMB);
  assert_int_equal(certbot_dns01_value(ka, &v), 0);
  uint8_t h[32];
  sha256(ka, strlen(ka), h);
  char *e = b64url(h, 32);
  assert_string_equal(v, e);
  assert_int_equal(strlen(v), 43); /* no padding */
  free(e);
  free(v);
  free(ka);
  ka = NULL;
  assert_int_equal(certbot_key_authorization("", "x", &ka), -EINVAL);
  assert_int_equal(certbot_key_authorization("a.b", "x", &ka), -EINVAL);
  assert_int_equal(certbot_key_authorization("a/b", "x", &ka), -EINVAL);
  assert_int_equal(certbot_key_authorization("a=", "x", &ka), -EINVAL);
  assert_int_equal(certbot_key_authorization(NULL, "x", &ka), -EINVAL);
  assert_null(ka);
}

static json_t *decode_part(const char *b64) {
  struct buf b = BUF_INIT(65536);
  assert_int_equal(base64url_decode_buf(b64, strlen(b64), &b), 0);
  json_t *j = NULL;
  if (b.len)
    assert_int_equal(json_parse_buf((const char *)b.data, b.len, 65536, &j), 0);
  buf_free(&b);
  return j;
}

static void check_sig(EVP_PKEY *k, json_t *jws) {
  const char *p = json_string_value(json_object_get(jws, "protected"));
  const char *pl = json_string_value(json_object_get(jws, "payload"));
  const char *s = json_string_value(json_object_get(jws, "signature"));
  char input[4096];
  snprintf(input, sizeof(input), "%s.%s", p, pl);
  struct buf sig = BUF_INIT(128);
  assert_int_equal(base64url_decode_buf(s, strlen(s), &sig), 0);
  assert_int_equal(sig.len, 64);
  assert_int_equal(key_ecdsa_verify_raw(k, input, strlen(input), sig.data), 0);
  sig.data[5] ^= 1;
  assert_int_not_equal(key_ecdsa_verify_raw(k, input, strlen(input), sig.data), 0);
  buf_free(&sig);
}

static void test_jws(void **state) {
  (void)state;
  EVP_PKEY *k = fixed_key();
  char *out = NULL;
  json_t *jws = NULL, *prot;
  /* With the JWK (newAccount). */
  assert_int_equal(certbot_jws_sign(k, "https://a/new-acct", "nonce1", NULL,
                                    "{\"termsOfServiceAgreed\":true}", &out),
                   0);
  assert_int_equal(json_parse_buf(out, strlen(out), 65536, &jws), 0);
  prot = decode_part(json_string_value(json_object_get(jws, "protected")));
  assert_string_equal(json_string_value(json_object_get(prot, "alg")), "ES256");
  assert_string_equal(json_string_value(json_object_get(prot, "nonce")), "nonce1");
  assert_string_equal(json_string_value(json_object_get(prot, "url")), "https://a/new-acct");
  assert_non_null(json_object_get(prot, "jwk"));
  assert_null(json_object_get(prot, "kid"));
  json_t *pl = decode_part(json_string_value(json_object_get(jws, "payload")));
  assert_true(json_is_true(json_object_get(pl, "termsOfServiceAgreed")));
  check_sig(k, jws);
  json_decref(pl);
  json_decref(prot);
  json_decref(jws);
  free(out);
  /* With the kid, POST-as-GET: empty payload. */
  assert_int_equal(certbot_jws_sign(k, "https://a/order/1", "n2", "https://a/acct/7", NULL, &out),
                   0);
  assert_int_equal(json_parse_buf(out, strlen(out), 65536, &jws), 0);
  prot = decode_part(json_string_value(json_object_get(jws, "protected")));
  assert_string_equal(json_string_value(json_object_get(prot, "kid")), "https://a/acct/7");
  assert_null(json_object_get(prot, "jwk"));
  assert_string_equal(json_string_value(json_object_get(jws, "payload")), "");
  check_sig(k, jws);
  json_decref(prot);
  json_decref(jws);
  free(out);
  EVP_PKEY_free(k);
}

static void test_problem(void **state) {
  (void)state;
  char *t = NULL, *d = NULL;
  const char *ok = "{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"stale\"}";
  assert_int_equal(certbot_acme_problem_parse(ok, strlen(ok), &t, &d), 0);
  assert_string_equal(t, "urn:ietf:params:acme:error:badNonce");
  assert_string_equal(d, "stale");
  free(t);
  free(d);
  const char *nodetail = "{\"type\":\"about:blank\"}";
  assert_int_equal(certbot_acme_problem_parse(nodetail, strlen(nodetail), &t, &d), 0);
  assert_string_equal(d, "");
  free(t);
  free(d);
  static const char *const bad[] = {
      "", "{", "[]", "{\"detail\":\"x\"}", "{\"type\":1}", "\"type\"", "{\"type\":\"a\"} x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_true(certbot_acme_problem_parse(bad[i], strlen(bad[i]), &t, &d) < 0);
}

static void test_csr(void **state) {
  (void)state;
  EVP_PKEY *k = fixed_key();
  char *domains[] = {"*.example.test", "example.test", NULL};
  struct buf der = BUF_INIT(65536);
  assert_int_equal(certbot_csr_build(domains, k, &der), 0);
  const unsigned char *p = der.data;
  X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der.len);
  assert_non_null(req);
  assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
  assert_int_equal(X509_REQ_verify(req, k), 1);
  STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
  GENERAL_NAMES *names = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
  assert_non_null(names);
  assert_int_equal(sk_GENERAL_NAME_num(names), 2);
  for (int i = 0; i < 2; i++) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    assert_int_equal(g->type, GEN_DNS);
    assert_memory_equal(ASN1_STRING_get0_data(g->d.dNSName), domains[i], strlen(domains[i]));
  }
  GENERAL_NAMES_free(names);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
  char *none[] = {NULL};
  assert_int_equal(certbot_csr_build(none, k, &der), -EINVAL);
  buf_free(&der);
  EVP_PKEY_free(k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thumbprint_rfc7638),
      cmocka_unit_test(test_thumbprint_ec),
      cmocka_unit_test(test_thumbprint_bad),
      cmocka_unit_test(test_key_authorization),
      cmocka_unit_test(test_jws),
      cmocka_unit_test(test_problem),
      cmocka_unit_test(test_csr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
