#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/x509.h>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "testutil.h"

#define P256_G                                                                                     \
  "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e" \
  "162bce33576b315ececbb6406837bf51f5"
#define P256_N "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"
#define K1_G                                                                                       \
  "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108" \
  "a8fd17b448a68554199c47d08ffb10d4b8"
#define K1_N "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"

static void hex32(const char *hex, uint8_t out[32]) {
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  tu_hex(hex, &b);
  assert_int_equal(b.len, 32);
  memcpy(out, b.data, 32);
}

static void expect_hex(const uint8_t *got, size_t n, const char *hex) {
  _cleanup_buf_ struct buf want = BUF_INIT(4096);
  tu_hex(hex, &want);
  assert_int_equal(want.len, n);
  assert_memory_equal(got, want.data, n);
}

static void scalar_small(uint8_t s[32], uint8_t v) {
  memset(s, 0, 32);
  s[31] = v;
}

static void test_p256_scalar(void **state) {
  (void)state;
  uint8_t s[32], pub[65], back[32], comp[33];
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL, *k2 = NULL;
  EVP_PKEY *bad = NULL;

  scalar_small(s, 1);
  assert_int_equal(key_p256_from_scalar(s, &k), 0);
  assert_int_equal(key_get_type(k), KEY_TYPE_P256);
  assert_true(key_has_private(k));
  assert_int_equal(key_ec_public_point(k, pub), 0);
  expect_hex(pub, 65, P256_G);
  assert_int_equal(key_ec_public_compressed(k, comp), 0);
  assert_int_equal(comp[0], 0x03); /* Gy is odd */
  assert_memory_equal(comp + 1, pub + 1, 32);
  assert_int_equal(key_ec_private_scalar(k, back), 0);
  assert_memory_equal(back, s, 32);

  /* 0, n and above are refused without retry */
  scalar_small(s, 0);
  assert_int_equal(key_p256_from_scalar(s, &bad), -EINVAL);
  hex32(P256_N, s);
  assert_int_equal(key_p256_from_scalar(s, &bad), -EINVAL);
  memset(s, 0xff, 32);
  assert_int_equal(key_p256_from_scalar(s, &bad), -EINVAL);
  assert_null(bad);
  /* n - 1 is the largest valid scalar: the point -G */
  hex32(P256_N, s);
  s[31] -= 1;
  assert_int_equal(key_p256_from_scalar(s, &k2), 0);
  assert_int_equal(key_ec_public_point(k2, pub), 0);
  _cleanup_buf_ struct buf g = BUF_INIT(65);
  tu_hex(P256_G, &g);
  assert_memory_equal(pub + 1, g.data + 1, 32);
  assert_memory_not_equal(pub + 33, g.data + 33, 32);
  assert_int_equal(key_p256_from_scalar(NULL, &bad), -EINVAL);
  assert_int_equal(key_p256_from_scalar(s, NULL), -EINVAL);
}

static void test_p256_generate_and_public(void **state) {
  (void)state;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL, *k2 = NULL, *pubk = NULL, *pubc = NULL,
                                     *other = NULL;
  uint8_t s[32], pub[65], comp[33];
  EVP_PKEY *bad = NULL;

  assert_int_equal(key_p256_generate(&k), 0);
  assert_int_equal(key_p256_generate(&other), 0);
  assert_int_equal(key_public_equal(k, other), -EBADMSG);
  assert_int_equal(key_ec_private_scalar(k, s), 0);
  assert_int_equal(key_p256_from_scalar(s, &k2), 0);
  assert_int_equal(key_public_equal(k, k2), 0);

  assert_int_equal(key_ec_public_point(k, pub), 0);
  assert_int_equal(pub[0], 0x04);
  assert_int_equal(key_p256_from_public_raw(pub + 1, &pubk), 0);
  assert_false(key_has_private(pubk));
  assert_int_equal(key_public_equal(k, pubk), 0);
  assert_int_equal(key_ec_private_scalar(pubk, s), -EINVAL);

  assert_int_equal(key_ec_public_compressed(k, comp), 0);
  assert_int_equal(key_ec_from_public_sec1(KEY_TYPE_P256, comp, 33, &pubc), 0);
  assert_int_equal(key_public_equal(k, pubc), 0);
  /* a key decoded from a compressed point still exports uncompressed */
  uint8_t pub2[65];
  assert_int_equal(key_ec_public_point(pubc, pub2), 0);
  assert_memory_equal(pub, pub2, 65);

  /* not on the curve */
  pub[64] ^= 1;
  assert_int_equal(key_p256_from_public_raw(pub + 1, &bad), -EBADMSG);
  assert_null(bad);
  /* bad SEC1 framing */
  comp[0] = 0x05;
  assert_int_equal(key_ec_from_public_sec1(KEY_TYPE_P256, comp, 33, &bad), -EBADMSG);
  assert_int_equal(key_ec_from_public_sec1(KEY_TYPE_P256, pub, 64, &bad), -EBADMSG);
  assert_int_equal(key_ec_from_public_sec1(KEY_TYPE_ED25519, comp, 33, &bad), -EINVAL);
  static const uint8_t zeros[64];
  assert_int_equal(key_p256_from_public_raw(zeros, &bad), -EBADMSG);
  assert_null(bad);
}

/* The P-256 PKCS#8 layout: the upstream root key vector round-trips byte for byte, and equals
 * what OpenSSL itself emits. */
static void test_pkcs8_p256_layout(void **state) {
  (void)state;
  static const char *root =
      "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420f57527cea4ab7ffb49af"
      "99b158cdc0e3ec06398f528349ea236b7d2afe19cec1a1440342000491f50522407ce29dce3ed7d31a15d80c1c42"
      "f13a23552d2b33a0ce09ee11e47bce95936f3e7f80d195f879e28e1b144ef37ac9ab8e36a690cbf930b775897b27";
  _cleanup_buf_ struct buf in = BUF_INIT(1024), der = BUF_INIT(1024), pem = BUF_INIT(4096);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL, *k2 = NULL, *g = NULL;

  tu_hex(root, &in);
  assert_int_equal(key_from_pem_or_der(in.data, in.len, &k), 0);
  assert_int_equal(key_get_type(k), KEY_TYPE_P256);
  assert_int_equal(key_to_pkcs8_der(k, &der), 0);
  assert_int_equal(der.len, 138);
  assert_memory_equal(der.data, in.data, in.len);

  /* OpenSSL's own encoder agrees for a fresh key */
  assert_int_equal(key_p256_generate(&g), 0);
  buf_reset(&der);
  assert_int_equal(key_to_pkcs8_der(g, &der), 0);
  PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(g);
  assert_non_null(p8);
  unsigned char *od = NULL;
  int on = i2d_PKCS8_PRIV_KEY_INFO(p8, &od);
  PKCS8_PRIV_KEY_INFO_free(p8);
  assert_int_equal(on, 138);
  assert_memory_equal(od, der.data, 138);
  OPENSSL_clear_free(od, (size_t)on);

  /* PEM */
  assert_int_equal(key_to_pkcs8_pem(k, &pem), 0);
  assert_int_equal(buf_terminate(&pem), 0);
  assert_true(strncmp((char *)pem.data, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
  assert_non_null(strstr((char *)pem.data, "\n-----END PRIVATE KEY-----\n"));
  assert_int_equal(key_from_pem_or_der(pem.data, pem.len, &k2), 0);
  assert_int_equal(key_public_equal(k, k2), 0);
  assert_true(key_has_private(k2));
}

static void test_pkcs8_other_types(void **state) {
  (void)state;
  /* RFC 8410 section 10.3 example Ed25519 private key */
  static const char *ed_pem = "-----BEGIN PRIVATE KEY-----\n"
                              "MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n"
                              "-----END PRIVATE KEY-----\n";
  uint8_t s[32], raw[32];
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = NULL, *ed2 = NULL, *x = NULL, *x2 = NULL, *k1 = NULL,
                                     *k12 = NULL, *sec1 = NULL;
  _cleanup_buf_ struct buf pem = BUF_INIT(4096), der = BUF_INIT(4096);

  assert_int_equal(key_from_pem_or_der(ed_pem, strlen(ed_pem), &ed), 0);
  assert_int_equal(key_get_type(ed), KEY_TYPE_ED25519);
  assert_int_equal(key_raw_private(ed, raw), 0);
  expect_hex(raw, 32, "d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842");
  assert_int_equal(key_to_pkcs8_pem(ed, &pem), 0);
  assert_int_equal(pem.len, strlen(ed_pem));
  assert_memory_equal(pem.data, ed_pem, pem.len);
  assert_int_equal(key_ed25519_from_secret(raw, &ed2), 0);
  assert_int_equal(key_public_equal(ed, ed2), 0);

  memset(s, 0x42, sizeof(s));
  assert_int_equal(key_x25519_from_secret(s, &x), 0);
  assert_int_equal(key_to_pkcs8_der(x, &der), 0);
  assert_int_equal(key_from_pem_or_der(der.data, der.len, &x2), 0);
  assert_int_equal(key_get_type(x2), KEY_TYPE_X25519);
  assert_int_equal(key_raw_private(x2, raw), 0);
  assert_memory_equal(raw, s, 32);

  buf_reset(&der);
  assert_int_equal(key_secp256k1_from_secret(s, &k1), 0);
  assert_int_equal(key_to_pkcs8_der(k1, &der), 0);
  assert_int_equal(key_from_pem_or_der(der.data, der.len, &k12), 0);
  assert_int_equal(key_get_type(k12), KEY_TYPE_SECP256K1);
  assert_int_equal(key_ec_private_scalar(k12, raw), 0);
  assert_memory_equal(raw, s, 32);

  /* SEC1 "EC PRIVATE KEY" PEM is read too */
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, k1, NULL, NULL, 0, NULL, NULL), 1);
  char *p = NULL;
  long n = BIO_get_mem_data(bio, &p);
  assert_non_null(strstr(p, "BEGIN EC PRIVATE KEY"));
  assert_int_equal(key_from_pem_or_der(p, (size_t)n, &sec1), 0);
  BIO_free(bio);
  assert_int_equal(key_public_equal(sec1, k1), 0);
  assert_true(key_has_private(sec1));
}

static void test_pkcs8_negative(void **state) {
  (void)state;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL, *pubonly = NULL;
  EVP_PKEY *bad = NULL;
  _cleanup_buf_ struct buf der = BUF_INIT(1024), pem = BUF_INIT(4096), spki = BUF_INIT(1024);
  uint8_t big[KEY_INPUT_MAX + 1];

  assert_int_equal(key_p256_generate(&k), 0);
  assert_int_equal(key_to_pkcs8_der(k, &der), 0);
  assert_int_equal(key_to_pkcs8_pem(k, &pem), 0);

  assert_int_equal(key_from_pem_or_der(der.data, der.len - 1, &bad), -EBADMSG);  /* truncated */
  assert_int_equal(key_from_pem_or_der(der.data, 10, &bad), -EBADMSG);
  assert_int_equal(buf_append_u8(&der, 0), 0);
  assert_int_equal(key_from_pem_or_der(der.data, der.len, &bad), -EBADMSG);      /* trailing */
  assert_int_equal(key_from_pem_or_der("garbage", 7, &bad), -EBADMSG);
  assert_int_equal(key_from_pem_or_der("", 0, &bad), -EBADMSG);
  static const char *junk = "-----BEGIN PRIVATE KEY-----\n!!!!notbase64\n-----END PRIVATE KEY-----\n";
  assert_int_equal(key_from_pem_or_der(junk, strlen(junk), &bad), -EBADMSG);
  static const char *nokey = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  assert_int_equal(key_from_pem_or_der(nokey, strlen(nokey), &bad), -EBADMSG);
  /* truncated PEM (no END line) */
  assert_int_equal(key_from_pem_or_der(pem.data, pem.len - 30, &bad), -EBADMSG);
  /* a public key is not a private key */
  assert_int_equal(key_to_spki_pem(k, &spki), 0);
  assert_int_equal(key_from_pem_or_der(spki.data, spki.len, &bad), -EBADMSG);
  memset(big, 'A', sizeof(big));
  assert_int_equal(key_from_pem_or_der(big, sizeof(big), &bad), -ENOBUFS);
  assert_int_equal(key_public_from_pem_or_der(big, sizeof(big), &bad), -ENOBUFS);
  assert_int_equal(key_from_pem_or_der(NULL, 4, &bad), -EINVAL);
  assert_null(bad);

  /* public-only keys have no PKCS#8 */
  uint8_t pub[65];
  assert_int_equal(key_ec_public_point(k, pub), 0);
  assert_int_equal(key_p256_from_public_raw(pub + 1, &pubonly), 0);
  buf_reset(&der);
  assert_int_equal(key_to_pkcs8_der(pubonly, &der), -EINVAL);
  assert_int_equal(key_to_pkcs8_pem(pubonly, &der), -EINVAL);
  assert_int_equal(der.len, 0);
  /* cap of the output buffer is honoured */
  struct buf tiny = BUF_INIT(16);
  assert_int_equal(key_to_pkcs8_der(k, &tiny), -ENOBUFS);
  buf_free(&tiny);
}

static void test_spki(void **state) {
  (void)state;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL, *p1 = NULL, *p2 = NULL, *ed = NULL, *edp = NULL;
  _cleanup_buf_ struct buf der = BUF_INIT(1024), pem = BUF_INIT(4096), bad_pem = BUF_INIT(4096);
  EVP_PKEY *bad = NULL;
  uint8_t pub[65];

  assert_int_equal(key_p256_generate(&k), 0);
  assert_int_equal(key_to_spki_der(k, &der), 0);
  assert_int_equal(der.len, 91);
  _cleanup_buf_ struct buf prefix = BUF_INIT(64);
  tu_hex("3059301306072a8648ce3d020106082a8648ce3d030107034200", &prefix);
  assert_memory_equal(der.data, prefix.data, prefix.len);
  assert_int_equal(key_ec_public_point(k, pub), 0);
  assert_memory_equal(der.data + 26, pub, 65);

  assert_int_equal(key_public_from_pem_or_der(der.data, der.len, &p1), 0);
  assert_int_equal(key_public_equal(k, p1), 0);
  assert_false(key_has_private(p1));
  assert_int_equal(key_to_spki_pem(k, &pem), 0);
  assert_int_equal(key_public_from_pem_or_der(pem.data, pem.len, &p2), 0);
  assert_int_equal(key_public_equal(k, p2), 0);

  /* Ed25519 SPKI, RFC 8410 section 10.1 */
  uint8_t edpub[32];
  hex32("19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1", edpub);
  assert_int_equal(key_ed25519_from_public(edpub, &ed), 0);
  buf_reset(&der);
  assert_int_equal(key_to_spki_der(ed, &der), 0);
  expect_hex(der.data, der.len,
             "302a300506032b657003210019bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1");
  assert_int_equal(key_public_from_pem_or_der(der.data, der.len, &edp), 0);
  assert_int_equal(key_get_type(edp), KEY_TYPE_ED25519);

  assert_int_equal(key_public_from_pem_or_der(der.data, der.len - 1, &bad), -EBADMSG);
  assert_int_equal(key_public_from_pem_or_der("xx", 2, &bad), -EBADMSG);
  assert_int_equal(key_to_pkcs8_pem(k, &bad_pem), 0);
  assert_int_equal(key_public_from_pem_or_der(bad_pem.data, bad_pem.len, &bad), -EBADMSG);
  assert_null(bad);
}

/* key_to_spki_der writes the SPKI itself for the project's key types: byte for byte what
 * OpenSSL's encoder (i2d_PUBKEY) gives, private or public keys, either EC point form. */
static void assert_spki_as_openssl(EVP_PKEY *k) {
  _cleanup_buf_ struct buf der = BUF_INIT(1024);
  assert_int_equal(key_to_spki_der(k, &der), 0);
  unsigned char *want = NULL;
  int n = i2d_PUBKEY(k, &want);
  assert_true(n > 0);
  assert_int_equal(der.len, (size_t)n);
  assert_memory_equal(der.data, want, (size_t)n);
  OPENSSL_free(want);
}

static void test_spki_direct(void **state) {
  (void)state;
  EVP_PKEY *k = NULL;
  uint8_t s[32], pt[65], c33[33];
  for (size_t i = 0; i < 32; i++)
    s[i] = (uint8_t)(0x40 + i);
  assert_int_equal(key_p256_generate(&k), 0);
  assert_spki_as_openssl(k);
  assert_int_equal(key_ec_public_point(k, pt), 0);
  assert_int_equal(key_ec_public_compressed(k, c33), 0);
  EVP_PKEY_free(k);
  /* public only, from either encoding */
  assert_int_equal(key_ec_from_public_sec1(KEY_TYPE_P256, c33, 33, &k), 0);
  assert_spki_as_openssl(k);
  uint8_t back[65];
  assert_int_equal(key_ec_public_point(k, back), 0);
  assert_memory_equal(back, pt, 65);
  EVP_PKEY_free(k);
  assert_int_equal(key_ec_from_public_sec1(KEY_TYPE_P256, pt, 65, &k), 0);
  assert_spki_as_openssl(k);
  uint8_t back33[33];
  assert_int_equal(key_ec_public_compressed(k, back33), 0);
  assert_memory_equal(back33, c33, 33);
  /* a key set to the compressed point form */
  assert_int_equal(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                  "compressed"),
                   1);
  assert_spki_as_openssl(k);
  EVP_PKEY_free(k);
  assert_int_equal(key_secp256k1_from_secret(s, &k), 0);
  assert_spki_as_openssl(k);
  EVP_PKEY_free(k);
  assert_int_equal(key_ed25519_from_secret(s, &k), 0);
  assert_spki_as_openssl(k);
  EVP_PKEY_free(k);
  assert_int_equal(key_x25519_from_secret(s, &k), 0);
  assert_spki_as_openssl(k);
  EVP_PKEY_free(k);
}

static void test_ecdsa(void **state) {
  (void)state;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL, *other = NULL, *ed = NULL, *k1 = NULL;
  _cleanup_buf_ struct buf der = BUF_INIT(128), der2 = BUF_INIT(128);
  uint8_t sig[64], sig2[64], pub[65], s[32];
  static const char msg[] = "attested message";

  assert_int_equal(key_p256_generate(&k), 0);
  assert_int_equal(key_p256_generate(&other), 0);
  assert_int_equal(key_ecdsa_sign_raw(k, msg, sizeof(msg), sig), 0);
  assert_int_equal(key_ecdsa_verify_raw(k, msg, sizeof(msg), sig), 0);
  assert_int_equal(key_ecdsa_verify_raw(other, msg, sizeof(msg), sig), -EBADMSG);
  assert_int_equal(key_ecdsa_verify_raw(k, msg, sizeof(msg) - 1, sig), -EBADMSG);
  assert_int_equal(key_ec_public_point(k, pub), 0);
  assert_int_equal(key_ecdsa_verify_raw_pub(pub + 1, msg, sizeof(msg), sig), 0);
  sig[10] ^= 0x80;
  assert_int_equal(key_ecdsa_verify_raw(k, msg, sizeof(msg), sig), -EBADMSG);
  assert_int_equal(key_ecdsa_verify_raw_pub(pub + 1, msg, sizeof(msg), sig), -EBADMSG);
  sig[10] ^= 0x80;
  static const uint8_t zero64[64];
  assert_int_equal(key_ecdsa_verify_raw(k, msg, sizeof(msg), zero64), -EBADMSG);
  pub[64] ^= 1;
  assert_int_equal(key_ecdsa_verify_raw_pub(pub + 1, msg, sizeof(msg), sig), -EBADMSG);

  /* DER forms and conversions */
  assert_int_equal(key_ecdsa_sig_raw_to_der(sig, &der), 0);
  assert_int_equal(key_ecdsa_verify_der(k, msg, sizeof(msg), der.data, der.len), 0);
  assert_int_equal(key_ecdsa_sig_der_to_raw(der.data, der.len, sig2), 0);
  assert_memory_equal(sig, sig2, 64);
  assert_int_equal(key_ecdsa_sig_der_to_raw(der.data, der.len - 1, sig2), -EBADMSG);
  assert_int_equal(key_ecdsa_sig_der_to_raw(der.data, 0, sig2), -EBADMSG);
  assert_int_equal(buf_append_u8(&der, 0), 0);
  assert_int_equal(key_ecdsa_sig_der_to_raw(der.data, der.len, sig2), -EBADMSG);
  assert_int_equal(key_ecdsa_sign_der(k, msg, sizeof(msg), &der2), 0);
  assert_int_equal(key_ecdsa_verify_der(k, msg, sizeof(msg), der2.data, der2.len), 0);
  assert_int_equal(key_ecdsa_verify_der(k, msg, sizeof(msg), der2.data, der2.len - 1), -EBADMSG);
  assert_int_equal(key_ecdsa_verify_der(k, msg, sizeof(msg), (const uint8_t *)"x", 1), -EBADMSG);
  /* r of 33 bytes does not fit the raw form */
  _cleanup_buf_ struct buf long_r = BUF_INIT(128);
  tu_hex("3026022101ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff020101", &long_r);
  assert_int_equal(key_ecdsa_sig_der_to_raw(long_r.data, long_r.len, sig2), -EBADMSG);

  /* RFC 6979 A.2.5, P-256 / SHA-256, message "sample" */
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *rk = NULL;
  _cleanup_buf_ struct buf xy = BUF_INIT(64), rs = BUF_INIT(64);
  tu_hex("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
         "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
         &xy);
  tu_hex("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
         "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
         &rs);
  assert_int_equal(key_ecdsa_verify_raw_pub(xy.data, "sample", 6, rs.data), 0);
  assert_int_equal(key_ecdsa_verify_raw_pub(xy.data, "sampl3", 6, rs.data), -EBADMSG);
  hex32("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721", s);
  assert_int_equal(key_p256_from_scalar(s, &rk), 0);
  assert_int_equal(key_ec_public_point(rk, pub), 0);
  assert_memory_equal(pub + 1, xy.data, 64);

  /* secp256k1 keys sign too */
  memset(s, 0x11, sizeof(s));
  assert_int_equal(key_secp256k1_from_secret(s, &k1), 0);
  assert_int_equal(key_ecdsa_sign_raw(k1, msg, sizeof(msg), sig), 0);
  assert_int_equal(key_ecdsa_verify_raw(k1, msg, sizeof(msg), sig), 0);
  assert_int_equal(key_ecdsa_verify_raw(k, msg, sizeof(msg), sig), -EBADMSG);

  /* wrong key types */
  memset(s, 0x22, sizeof(s));
  assert_int_equal(key_ed25519_from_secret(s, &ed), 0);
  assert_int_equal(key_ecdsa_sign_raw(ed, msg, sizeof(msg), sig), -EINVAL);
  assert_int_equal(key_ecdsa_verify_raw(ed, msg, sizeof(msg), sig), -EINVAL);
  assert_int_equal(key_ecdsa_sign_raw(NULL, msg, sizeof(msg), sig), -EINVAL);
  /* signing needs the private part */
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pubonly = NULL;
  assert_int_equal(key_ec_public_point(k, pub), 0);
  assert_int_equal(key_p256_from_public_raw(pub + 1, &pubonly), 0);
  assert_int_equal(key_ecdsa_sign_raw(pubonly, msg, sizeof(msg), sig), -EINVAL);
}

static void test_ed25519(void **state) {
  (void)state;
  /* RFC 8032 section 7.1, test 1 */
  uint8_t s[32], pub[32], sig[64];
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL, *p = NULL, *p256 = NULL;
  hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", s);
  assert_int_equal(key_ed25519_from_secret(s, &k), 0);
  assert_int_equal(key_get_type(k), KEY_TYPE_ED25519);
  assert_int_equal(key_raw_public(k, pub), 0);
  expect_hex(pub, 32, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  assert_int_equal(key_ed25519_sign(k, "", 0, sig), 0);
  expect_hex(sig, 64,
             "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
             "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  assert_int_equal(key_ed25519_from_public(pub, &p), 0);
  assert_false(key_has_private(p));
  assert_int_equal(key_ed25519_verify(p, "", 0, sig), 0);
  assert_int_equal(key_ed25519_verify(p, "x", 1, sig), -EBADMSG);
  sig[0] ^= 1;
  assert_int_equal(key_ed25519_verify(p, "", 0, sig), -EBADMSG);
  assert_int_equal(key_ed25519_sign(p, "", 0, sig), -EINVAL);
  assert_int_equal(key_raw_private(p, s), -EINVAL);
  assert_int_equal(key_p256_generate(&p256), 0);
  assert_int_equal(key_ed25519_sign(p256, "", 0, sig), -EINVAL);
  assert_int_equal(key_raw_public(p256, pub), -EINVAL);
  assert_int_equal(key_ec_public_point(k, (uint8_t[65]){0}), -EINVAL);
}

static void test_x25519(void **state) {
  (void)state;
  /* RFC 7748 section 6.1 */
  uint8_t a[32], b[32], pub[32], shared[32];
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ka = NULL, *kb = NULL, *gen = NULL;
  hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a);
  hex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b);
  assert_int_equal(key_x25519_from_secret(a, &ka), 0);
  assert_int_equal(key_x25519_from_secret(b, &kb), 0);
  assert_int_equal(key_get_type(ka), KEY_TYPE_X25519);
  assert_int_equal(key_raw_public(ka, pub), 0);
  expect_hex(pub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  assert_int_equal(key_raw_public(kb, pub), 0);
  expect_hex(pub, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  assert_int_equal(key_x25519_derive(ka, pub, shared), 0);
  expect_hex(shared, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  /* small-order peer point gives an all-zero secret: refused */
  static const uint8_t zero[32];
  assert_int_equal(key_x25519_derive(ka, zero, shared), -EBADMSG);
  assert_int_equal(key_x25519_generate(&gen), 0);
  assert_true(key_has_private(gen));
  assert_int_equal(key_x25519_derive(kb, a, shared), 0);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = NULL;
  assert_int_equal(key_ed25519_from_secret(a, &ed), 0);
  assert_int_equal(key_x25519_derive(ed, pub, shared), -EINVAL);
}

static void test_secp256k1(void **state) {
  (void)state;
  uint8_t s[32], pub[65], comp[33], comp2[33], hash[32], sig[65], sig64[64], back[32];
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *one = NULL, *k = NULL, *gen = NULL;
  EVP_PKEY *bad = NULL;

  scalar_small(s, 1);
  assert_int_equal(key_secp256k1_from_secret(s, &one), 0);
  assert_int_equal(key_get_type(one), KEY_TYPE_SECP256K1);
  assert_int_equal(key_ec_public_point(one, pub), 0);
  expect_hex(pub, 65, K1_G);
  assert_int_equal(key_ec_public_compressed(one, comp), 0);
  expect_hex(comp, 33, "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
  assert_int_equal(key_secp256k1_public_from_secret(s, comp2), 0);
  assert_memory_equal(comp, comp2, 33);

  scalar_small(s, 0);
  assert_int_equal(key_secp256k1_from_secret(s, &bad), -EINVAL);
  assert_int_equal(key_secp256k1_public_from_secret(s, comp2), -EINVAL);
  assert_int_equal(key_secp256k1_sign_recoverable(s, s, sig), -EINVAL);
  hex32(K1_N, s);
  assert_int_equal(key_secp256k1_from_secret(s, &bad), -EINVAL);
  assert_int_equal(key_secp256k1_sign_recoverable(s, s, sig), -EINVAL);
  assert_null(bad);

  /* recoverable signature: recovering gives the signer's key */
  hex32("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", s);
  assert_int_equal(key_secp256k1_from_secret(s, &k), 0);
  assert_int_equal(key_ec_private_scalar(k, back), 0);
  assert_memory_equal(back, s, 32);
  assert_int_equal(key_ec_public_compressed(k, comp), 0);
  assert_int_equal(hash_buf(HASH_KECCAK256, "signing:abcd", 12, hash), 0);
  assert_int_equal(key_secp256k1_sign_recoverable(s, hash, sig), 0);
  assert_true(sig[64] <= 3);
  assert_int_equal(key_secp256k1_recover(hash, sig, comp2), 0);
  assert_memory_equal(comp, comp2, 33);
  /* deterministic (RFC 6979), and the same r||s as the plain signature */
  uint8_t again[65];
  assert_int_equal(key_secp256k1_sign_recoverable(s, hash, again), 0);
  assert_memory_equal(sig, again, 65);
  assert_int_equal(key_secp256k1_sign_prehash(s, hash, sig64), 0);
  assert_memory_equal(sig64, sig, 64);
  assert_int_equal(key_secp256k1_verify_prehash(comp, 33, hash, sig64), 0);
  assert_int_equal(key_ec_public_point(k, pub), 0);
  assert_int_equal(key_secp256k1_verify_prehash(pub, 65, hash, sig64), 0);
  /* Ethereum-style v + 27 is accepted */
  again[64] = (uint8_t)(sig[64] + 27);
  assert_int_equal(key_secp256k1_recover(hash, again, comp2), 0);
  assert_memory_equal(comp, comp2, 33);
  /* another v recovers another key (or none) */
  again[64] = sig[64] ^ 1;
  int r = key_secp256k1_recover(hash, again, comp2);
  assert_true(r == -EBADMSG || (r == 0 && memcmp(comp, comp2, 33) != 0));
  again[64] = 4;
  assert_int_equal(key_secp256k1_recover(hash, again, comp2), -EBADMSG);
  /* another hash recovers another key */
  uint8_t hash2[32];
  memcpy(hash2, hash, 32);
  hash2[0] ^= 1;
  r = key_secp256k1_recover(hash2, sig, comp2);
  assert_true(r == -EBADMSG || (r == 0 && memcmp(comp, comp2, 33) != 0));
  assert_int_equal(key_secp256k1_verify_prehash(comp, 33, hash2, sig64), -EBADMSG);
  assert_int_equal(key_secp256k1_verify_prehash(comp, 32, hash, sig64), -EBADMSG);
  comp2[0] = 0x05;
  assert_int_equal(key_secp256k1_verify_prehash(comp2, 33, hash, sig64), -EBADMSG);

  /* high s (n - s) is refused by libsecp256k1 */
  _cleanup_(BN_freep) BIGNUM *n = NULL, *sv = BN_bin2bn(sig64 + 32, 32, NULL);
  assert_true(BN_hex2bn(&n, K1_N) > 0);
  assert_int_equal(BN_sub(sv, n, sv), 1);
  uint8_t high[64];
  memcpy(high, sig64, 32);
  assert_int_equal(BN_bn2binpad(sv, high + 32, 32), 32);
  assert_int_equal(key_secp256k1_verify_prehash(comp, 33, hash, high), -EBADMSG);

  /* cross-library: libsecp256k1 signature over SHA-256(msg) verifies through OpenSSL */
  static const char msg[] = "cross check";
  sha256(msg, sizeof(msg), hash);
  assert_int_equal(key_secp256k1_sign_prehash(s, hash, sig64), 0);
  assert_int_equal(key_ecdsa_verify_raw(k, msg, sizeof(msg), sig64), 0);
  /* and an OpenSSL one (normalised to low s) through libsecp256k1 */
  uint8_t osig[64];
  assert_int_equal(key_ecdsa_sign_raw(k, msg, sizeof(msg), osig), 0);
  _cleanup_(BN_freep) BIGNUM *os = BN_bin2bn(osig + 32, 32, NULL), *half = BN_dup(n);
  assert_int_equal(BN_rshift1(half, half), 1);
  if (BN_cmp(os, half) > 0) {
    assert_int_equal(BN_sub(os, n, os), 1);
    assert_int_equal(BN_bn2binpad(os, osig + 32, 32), 32);
  }
  assert_int_equal(key_secp256k1_verify_prehash(comp, 33, hash, osig), 0);

  assert_int_equal(key_secp256k1_generate(&gen), 0);
  assert_int_equal(key_get_type(gen), KEY_TYPE_SECP256K1);
  assert_int_equal(key_secp256k1_sign_recoverable(NULL, hash, sig), -EINVAL);
  assert_int_equal(key_secp256k1_recover(NULL, sig, comp), -EINVAL);
}

static void test_key_misc(void **state) {
  (void)state;
  assert_int_equal(key_get_type(NULL), KEY_TYPE_UNKNOWN);
  assert_false(key_has_private(NULL));
  assert_int_equal(key_public_equal(NULL, NULL), -EINVAL);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *p = NULL, *x = NULL, *rsa = NULL;
  uint8_t s[32];
  memset(s, 7, sizeof(s));
  assert_int_equal(key_p256_from_scalar(s, &p), 0);
  assert_int_equal(key_x25519_from_secret(s, &x), 0);
  assert_int_equal(key_public_equal(p, x), -EBADMSG);
  /* other key types are "unknown" and refused by the typed helpers */
  rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  assert_non_null(rsa);
  assert_int_equal(key_get_type(rsa), KEY_TYPE_UNKNOWN);
  assert_int_equal(key_ec_private_scalar(rsa, s), -EINVAL);
  assert_int_equal(key_to_pkcs8_der(rsa, &(struct buf)BUF_INIT(16)), -EINVAL);
  char err[256];
  ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
  assert_int_equal(ossl_error_string(err, sizeof(err)), 1);
  assert_true(strlen(err) > 0);
  assert_int_equal(ossl_error_string(err, sizeof(err)), 0);
  assert_string_equal(err, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_p256_scalar),      cmocka_unit_test(test_p256_generate_and_public),
      cmocka_unit_test(test_pkcs8_p256_layout), cmocka_unit_test(test_pkcs8_other_types),
      cmocka_unit_test(test_pkcs8_negative),   cmocka_unit_test(test_spki),
      cmocka_unit_test(test_ecdsa),            cmocka_unit_test(test_ed25519),
      cmocka_unit_test(test_x25519),           cmocka_unit_test(test_secp256k1),
      cmocka_unit_test(test_key_misc),         cmocka_unit_test(test_spki_direct),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
