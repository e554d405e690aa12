#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/hkdf.h"
#include "crypto/keys.h"
#include "testutil.h"

static void range(uint8_t *p, size_t n, uint8_t start) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(start + i);
}

static void expect_hex(const uint8_t *got, size_t n, const char *hex) {
  _cleanup_buf_ struct buf want = BUF_INIT(1024);
  tu_hex(hex, &want);
  assert_int_equal(want.len, n);
  assert_memory_equal(got, want.data, n);
}

/* RFC 5869 appendix A, test cases 1-3 (SHA-256). */
static void test_hkdf_rfc5869(void **state) {
  (void)state;
  uint8_t ikm[80], salt[80], info[80], okm[82];

  memset(ikm, 0x0b, 22);
  range(salt, 13, 0x00);
  range(info, 10, 0xf0);
  assert_int_equal(hkdf_sha256(salt, 13, ikm, 22, info, 10, okm, 42), 0);
  expect_hex(okm, 42,
             "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");

  range(ikm, 80, 0x00);
  range(salt, 80, 0x60);
  range(info, 80, 0xb0);
  assert_int_equal(hkdf_sha256(salt, 80, ikm, 80, info, 80, okm, 82), 0);
  expect_hex(okm, 82,
             "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41"
             "c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");

  memset(ikm, 0x0b, 22);
  assert_int_equal(hkdf_sha256(NULL, 0, ikm, 22, NULL, 0, okm, 42), 0);
  expect_hex(okm, 42,
             "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

static void test_hkdf_edges(void **state) {
  (void)state;
  uint8_t okm[32], big[255 * 32 + 1];
  /* empty IKM (values from an independent HKDF implementation) */
  assert_int_equal(hkdf_sha256((const uint8_t *)"RATLS", 5, NULL, 0, (const uint8_t *)"x", 1, okm,
                               32),
                   0);
  expect_hex(okm, 32, "05fe9e04cd6be60449a281282468121f3f13d099fb0f8b31d8dd4f9071c3d7f5");
  assert_int_equal(hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, okm, 32), 0);
  expect_hex(okm, 32, "eb70f01dede9afafa449eee1b1286504e1f62388b3f7dd4f956697b0e828fe18");
  /* long info (independent implementation's value) */
  static const uint8_t zeros[4000];
  assert_int_equal(hkdf_sha256((const uint8_t *)"RATLS", 5, NULL, 0, zeros, sizeof(zeros), okm, 32),
                   0);
  expect_hex(okm, 32, "bd1c44bb74ad3ee0e4dd3d798021164849d4e73dff9e6aab5a69621b9313758d");
  /* output length limits */
  assert_int_equal(hkdf_sha256(NULL, 0, (const uint8_t *)"k", 1, NULL, 0, big, 255 * 32), 0);
  assert_int_equal(hkdf_sha256(NULL, 0, (const uint8_t *)"k", 1, NULL, 0, big, 255 * 32 + 1),
                   -EINVAL);
  assert_int_equal(hkdf_sha256(NULL, 0, (const uint8_t *)"k", 1, NULL, 0, big, 0), -EINVAL);
  assert_int_equal(hkdf_sha256(NULL, 0, (const uint8_t *)"k", 1, NULL, 0, NULL, 32), -EINVAL);
  assert_int_equal(hkdf_sha256(NULL, 3, (const uint8_t *)"k", 1, NULL, 0, okm, 32), -EINVAL);
  assert_int_equal(hkdf_sha256(NULL, 0, NULL, 1, NULL, 0, okm, 32), -EINVAL);
  assert_int_equal(hkdf_sha256(NULL, 0, (const uint8_t *)"k", 1, NULL, 2, okm, 32), -EINVAL);
}

static void test_kdf_derive_key(void **state) {
  (void)state;
  const uint8_t *ikm = (const uint8_t *)"input key material";
  uint8_t a[32], b[32], c[256];
  struct slice two[] = {SLICE_STR("context one"), SLICE_STR("context two")};
  struct slice joined[] = {SLICE_STR("context onecontext two")};
  struct slice split3[] = {SLICE_STR("context"), SLICE_STR(" onecontext"), SLICE_STR(" two"),
                           SLICE(NULL, 0)};

  assert_int_equal(kdf_derive_key(ikm, 18, two, 2, a, 32), 0);
  expect_hex(a, 32, "5a4bdf0e9844c5a62b670705c9f96abdd0581f80b92e5328d6c8a4c4be35b0fc");
  /* info is the plain concatenation of the slices */
  assert_int_equal(kdf_derive_key(ikm, 18, joined, 1, b, 32), 0);
  assert_memory_equal(a, b, 32);
  assert_int_equal(kdf_derive_key(ikm, 18, split3, 4, b, 32), 0);
  assert_memory_equal(a, b, 32);
  /* salt is "RATLS" */
  assert_int_equal(hkdf_sha256((const uint8_t *)"RATLS", 5, ikm, 18,
                               (const uint8_t *)"context onecontext two", 22, b, 32),
                   0);
  assert_memory_equal(a, b, 32);
  /* the context matters */
  assert_int_equal(kdf_derive_key(ikm, 18, two, 1, b, 32), 0);
  assert_memory_not_equal(a, b, 32);
  /* long output (upstream test_derive_key256) */
  assert_int_equal(kdf_derive_key(ikm, 18, two, 1, c, 256), 0);
  assert_memory_equal(c, b, 32); /* HKDF output is a prefix-stable stream */
  /* no context at all */
  assert_int_equal(kdf_derive_key(ikm, 18, NULL, 0, b, 32), 0);
  /* bad arguments */
  assert_int_equal(kdf_derive_key(ikm, 18, NULL, 1, b, 32), -EINVAL);
  struct slice bad[] = {SLICE(NULL, 4)};
  assert_int_equal(kdf_derive_key(ikm, 18, bad, 1, b, 32), -EINVAL);
  assert_int_equal(kdf_derive_key(ikm, 18, two, 2, NULL, 32), -EINVAL);
  /* info over the 64 KiB cap */
  static uint8_t huge[40000];
  struct slice hs[] = {SLICE(huge, sizeof(huge)), SLICE(huge, sizeof(huge))};
  assert_int_equal(kdf_derive_key(ikm, 18, hs, 2, b, 32), -ENOBUFS);
}

/* Vector from upstream ra-tls kdf.rs test_derive_dh_secret_stable_output: a P-256 root key in
 * PKCS#8, context ["context one", "context two"]. */
static const char *root_der_hex =
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420f57527cea4ab7ffb49af99"
    "b158cdc0e3ec06398f528349ea236b7d2afe19cec1a1440342000491f50522407ce29dce3ed7d31a15d80c1c42f13a"
    "23552d2b33a0ce09ee11e47bce95936f3e7f80d195f879e28e1b144ef37ac9ab8e36a690cbf930b775897b27";

static void test_kdf_p256_and_dh_secret(void **state) {
  (void)state;
  _cleanup_buf_ struct buf root = BUF_INIT(1024);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *rk = NULL, *dk = NULL, *dk2 = NULL;
  uint8_t scalar[32], secret[32], dscalar[32];
  struct slice ctx[] = {SLICE_STR("context one"), SLICE_STR("context two")};

  tu_hex(root_der_hex, &root);
  assert_int_equal(key_from_pem_or_der(root.data, root.len, &rk), 0);
  assert_int_equal(key_ec_private_scalar(rk, scalar), 0);

  assert_int_equal(kdf_derive_p256_key(scalar, 32, ctx, 2, &dk), 0);
  assert_int_equal(key_get_type(dk), KEY_TYPE_P256);
  assert_int_equal(key_ec_private_scalar(dk, dscalar), 0);
  expect_hex(dscalar, 32, "b60ac47b8fcfbdf96031b9e94f0b60cfe9de05eccb5a1dca41a26f757833c0e7");
  /* deterministic */
  assert_int_equal(kdf_derive_p256_key(scalar, 32, ctx, 2, &dk2), 0);
  assert_int_equal(key_public_equal(dk, dk2), 0);

  assert_int_equal(kdf_derive_dh_secret(scalar, 32, ctx, 2, secret), 0);
  expect_hex(secret, 32, "663afd58820be8ad645f9c035e93199d114ab16f738db62393bc1d7d623e8813");

  /* a different context gives another secret */
  assert_int_equal(kdf_derive_dh_secret(scalar, 32, ctx, 1, secret), 0);
  assert_memory_not_equal(secret, "\x66\x3a\xfd\x58", 4);

  assert_int_equal(kdf_derive_p256_key(scalar, 32, ctx, 2, NULL), -EINVAL);
  assert_int_equal(kdf_derive_dh_secret(scalar, 32, ctx, 2, NULL), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hkdf_rfc5869),
      cmocka_unit_test(test_hkdf_edges),
      cmocka_unit_test(test_kdf_derive_key),
      cmocka_unit_test(test_kdf_p256_and_dh_secret),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
