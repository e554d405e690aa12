/* KMS app key derivation: the exact HKDF info bytes of every key (kms_derive.h), pinned two ways:
 * against hkdf_sha256 called here with the literal info bytes, and against values computed
 * independently (Python cryptography for HKDF / P-256 / PKCS#8 / X25519, node @noble/curves +
 * @noble/hashes for secp256k1 RFC 6979 signatures over Keccak-256) from the same roots:
 * root CA scalar 0x11 * 32, root k256 secret 0x22 * 32, app id 0123...4567, instance id
 * fedcba98 * 5, rootfs hash 89abcdef * 8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/hex.h"
#include "crypto/hkdf.h"
#include "crypto/keccak.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "kms_derive.h"
#include "kms_rootkeys.h"
#include "ratls/ratls.h"
#include "testutil.h"

#define APP_HEX "0123456789abcdef0123456789abcdef01234567"
#define ROOTFS_HEX "89abcdef89abcdef89abcdef89abcdef89abcdef89abcdef89abcdef89abcdef"
#define INST_HEX "fedcba98fedcba98fedcba98fedcba98fedcba98"

/* Independently computed (see the file comment). */
#define V_SEED_APP_KEY "1785f64dfb3876dbd1319b6f123314d679aa34b11cabf502b6d9f715d2b6fa1d"
#define V_SEED_DISK_DER                                                                            \
  "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b02010104205e010b9755c693e456ec" \
  "bc1fa49fec1d8a79293c2d1121df270aa4f8edcbf6daa14403420004cacc00054d1dab9a75910b31a0f1b8fca831" \
  "cf6cfd25a8c802a0ca9b7470c3c8e40a4d253a9958ec764c58397a5298ae475b90cae11223187f9999dbf323ccad"
#define V_NEW_APP_CA "65ac0eac07836a80186d50db8d1aa06b449efdcb1dbd4b1e4004af9f4e245c07"
#define V_NEW_DISK "f34e5addeb4062dcfc57fd0ce2eb6ca25f621691a8cf2bea4131a384a39826b0"
#define V_NEW_DISK_NOINST "007a1134ad5df3a42a3daa8ec130dcfed0edafe78d619cb09a431f68f66804a1"
#define V_ENV "2d85176dc0ae7eb395b4b8738d0b9bf6061444686a1fb09f6f750991aac868a4"
#define V_ENV_PUB "255ea3f487351f452785e53b54edefbd47d7e1e168e5f5b7610d43ece028fa59"
#define V_K256 "61dde8102bab89f0fef9aba924b5d5516bb14b163f60b9ff0f53ffb7036ddc52"
#define V_K256_PUB "0377d238d9f1d3f245b085a67642a7a1d36d3bc77a16d658494cf9897bc94c828b"
#define V_K256_SIG                                                                                 \
  "3163e8c4fdb5550a2ec27353541f136f7b4a4c9728e3c36a1ba016f7533090c42932d14a8cd31f87462e795ba446a8" \
  "127f3d0bb5531215afe90adb2f985eabbf01"
#define V_ENV_SIG                                                                                  \
  "cd4770d47540629df7e46fa8d84aacb623847982cdd07e3d490814e335260b550c26cae1846851827eeed11085f274" \
  "3dfd898ce76264bcd0db1171cc894cdc0b01"
#define V_ENV_SIG_V1                                                                               \
  "82cc8d1b2c2eaf049909295c6323ed17836f478216597aa44ba3bffcded7e65a1cb65dc66726c459ef58977ee1c64f" \
  "a001cc8bf004bc2782ae29e466ac83e4c401"
#define V_ROOT_K256_PUB "02466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
#define ENV_TS 1700000000ull

static void hex_eq(const void *data, size_t len, const char *want) {
  char *h = hex_encode_alloc(data, len);
  assert_non_null(h);
  assert_string_equal(h, want);
  free(h);
}

static void scalar_eq(EVP_PKEY *k, const char *want) {
  uint8_t s[32];
  assert_int_equal(key_ec_private_scalar(k, s), 0);
  hex_eq(s, 32, want);
}

/* Root keys from the fixed test scalars (with a root CA certificate for the app cert test). */
static void rk_fixed(struct kms_root_keys *rk) {
  memset(rk, 0, sizeof(*rk));
  memset(rk->ca_scalar, 0x11, 32);
  memset(rk->k256, 0x22, 32);
  assert_int_equal(key_p256_from_scalar(rk->ca_scalar, &rk->ca_key), 0);
  assert_int_equal(key_secp256k1_public_from_secret(rk->k256, rk->k256_pub), 0);
  struct x509_params p = {.subject_cn = "test root", .is_ca = true, .path_len = 3};
  assert_int_equal(x509_cert_build(&p, rk->ca_key, NULL, rk->ca_key, &rk->ca_cert), 0);
}

static void id_seed(struct ratls_app_identity *id) {
  memset(id, 0, sizeof(*id));
  id->era = RATLS_ERA_SEED;
  assert_int_equal(hex_decode_exact(APP_HEX, 40, id->app_id, 20), 0);
  id->app_id_len = 20;
  strcpy(id->app_id_hex, APP_HEX);
  strcpy(id->rootfs_hash_hex, ROOTFS_HEX);
  id->has_rootfs_hash = true;
}

static void id_newest(struct ratls_app_identity *id, bool with_instance) {
  memset(id, 0, sizeof(*id));
  id->era = RATLS_ERA_NEWEST;
  assert_int_equal(hex_decode_exact(APP_HEX, 40, id->app_id, 20), 0);
  id->app_id_len = 20;
  strcpy(id->app_id_hex, APP_HEX);
  if (with_instance) {
    assert_int_equal(hex_decode_exact(INST_HEX, 40, id->instance_id, 20), 0);
    id->instance_id_len = 20;
  }
}

static void test_root_k256_pub(void **state) {
  (void)state;
  struct kms_root_keys rk;
  rk_fixed(&rk);
  hex_eq(rk.k256_pub, 33, V_ROOT_K256_PUB);
  kms_root_keys_free(&rk);
}

/* The info bytes themselves: HKDF-SHA256(salt "RATLS", IKM = root scalar, info literal). */
static void test_info_bytes(void **state) {
  (void)state;
  struct kms_root_keys rk;
  rk_fixed(&rk);
  static const uint8_t salt[] = "RATLS";
  uint8_t want[32];
  struct ratls_app_identity id;
  struct kms_app_keys k;

  /* seed app key: ASCII hex app id || "app-key" */
  static const char seed_info[] = APP_HEX "app-key";
  assert_int_equal(hkdf_sha256(salt, 5, rk.ca_scalar, 32, (const uint8_t *)seed_info,
                               strlen(seed_info), want, 32),
                   0);
  id_seed(&id);
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), 0);
  uint8_t got[32];
  assert_int_equal(key_ec_private_scalar(k.app_key, got), 0);
  assert_memory_equal(got, want, 32);
  kms_app_keys_free(&k);

  /* newest app CA key: raw 20-byte app id || "app-ca" */
  uint8_t info[64];
  assert_int_equal(hex_decode_exact(APP_HEX, 40, info, 20), 0);
  memcpy(info + 20, "app-ca", 6);
  assert_int_equal(hkdf_sha256(salt, 5, rk.ca_scalar, 32, info, 26, want, 32), 0);
  id_newest(&id, true);
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), 0);
  assert_int_equal(key_ec_private_scalar(k.app_key, got), 0);
  assert_memory_equal(got, want, 32);
  kms_app_keys_free(&k);

  /* k256: IKM = root k256 secret, info = raw app id || "app-key" */
  memcpy(info + 20, "app-key", 7);
  assert_int_equal(hkdf_sha256(salt, 5, rk.k256, 32, info, 27, want, 32), 0);
  uint8_t key[32], sig[65];
  assert_int_equal(kms_derive_k256(&rk, info, 20, key, sig), 0);
  assert_memory_equal(key, want, 32);
  kms_root_keys_free(&rk);
}

static void test_seed_keys(void **state) {
  (void)state;
  struct kms_root_keys rk;
  struct ratls_app_identity id;
  struct kms_app_keys k;
  rk_fixed(&rk);
  id_seed(&id);
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), 0);
  scalar_eq(k.app_key, V_SEED_APP_KEY);
  assert_int_equal(k.disk_crypt_key.len, 138);
  hex_eq(k.disk_crypt_key.data, k.disk_crypt_key.len, V_SEED_DISK_DER);
  /* env and k256 use the raw app id in every era */
  hex_eq(k.env_crypt_key, 32, V_ENV);
  hex_eq(k.k256_key, 32, V_K256);
  hex_eq(k.k256_signature, 65, V_K256_SIG);
  kms_app_keys_free(&k);

  /* The rootfs hash matters for the seed disk key only. */
  id.rootfs_hash_hex[0] = '0';
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), 0);
  scalar_eq(k.app_key, V_SEED_APP_KEY);
  char *h = hex_encode_alloc(k.disk_crypt_key.data, k.disk_crypt_key.len);
  assert_string_not_equal(h, V_SEED_DISK_DER);
  free(h);
  kms_app_keys_free(&k);

  /* No rootfs hash: no seed disk key. */
  id.has_rootfs_hash = false;
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), -EINVAL);
  kms_root_keys_free(&rk);
}

static void test_newest_keys(void **state) {
  (void)state;
  struct kms_root_keys rk;
  struct ratls_app_identity id;
  struct kms_app_keys k;
  rk_fixed(&rk);
  id_newest(&id, true);
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), 0);
  scalar_eq(k.app_key, V_NEW_APP_CA);
  assert_int_equal(k.disk_crypt_key.len, 32);
  hex_eq(k.disk_crypt_key.data, 32, V_NEW_DISK);
  hex_eq(k.env_crypt_key, 32, V_ENV);
  hex_eq(k.k256_key, 32, V_K256);
  hex_eq(k.k256_signature, 65, V_K256_SIG);
  uint8_t pub[33];
  assert_int_equal(key_secp256k1_public_from_secret(k.k256_key, pub), 0);
  hex_eq(pub, 33, V_K256_PUB);
  kms_app_keys_free(&k);

  id_newest(&id, false);
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), 0);
  hex_eq(k.disk_crypt_key.data, 32, V_NEW_DISK_NOINST);
  hex_eq(k.env_crypt_key, 32, V_ENV); /* the instance id never enters the env key */
  kms_app_keys_free(&k);

  /* Another app id: everything changes. */
  id.app_id[19] ^= 1;
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), 0);
  char *h = hex_encode_alloc(k.env_crypt_key, 32);
  assert_string_not_equal(h, V_ENV);
  free(h);
  h = hex_encode_alloc(k.k256_key, 32);
  assert_string_not_equal(h, V_K256);
  free(h);
  kms_app_keys_free(&k);

  /* Bad identities. */
  id.app_id_len = 0;
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), -EINVAL);
  id.app_id_len = RATLS_APP_ID_MAX + 1;
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), -EINVAL);
  kms_root_keys_free(&rk);
}

/* Everything _cached returns equals what kms_derive_app_keys returns for the same identity. */
static void keys_equal(const struct kms_app_keys *a, const struct kms_app_keys *b) {
  uint8_t sa[32], sb[32];
  assert_int_equal(key_ec_private_scalar(a->app_key, sa), 0);
  assert_int_equal(key_ec_private_scalar(b->app_key, sb), 0);
  assert_memory_equal(sa, sb, 32);
  assert_int_equal(a->disk_crypt_key.len, b->disk_crypt_key.len);
  assert_memory_equal(a->disk_crypt_key.data, b->disk_crypt_key.data, a->disk_crypt_key.len);
  assert_memory_equal(a->env_crypt_key, b->env_crypt_key, 32);
  assert_memory_equal(a->k256_key, b->k256_key, 32);
  assert_memory_equal(a->k256_signature, b->k256_signature, 65);
}

static void cached_matches(struct kms_key_cache *c, const struct kms_root_keys *rk,
                           const struct ratls_app_identity *id, EVP_PKEY **ret_app_key) {
  struct kms_app_keys want, got;
  assert_int_equal(kms_derive_app_keys(rk, id, &want), 0);
  assert_int_equal(kms_derive_app_keys_cached(c, rk, id, &got), 0);
  keys_equal(&want, &got);
  _cleanup_buf_ struct buf pem = BUF_INIT(16 * 1024);
  assert_int_equal(key_to_pkcs8_pem(want.app_key, &pem), 0);
  assert_int_equal(got.app_key_pem.len, pem.len);
  assert_memory_equal(got.app_key_pem.data, pem.data, pem.len);
  assert_int_equal(((const char *)got.app_key_pem.data)[pem.len], 0);
  if (ret_app_key) { /* a reference, so that its address is not reused while compared */
    assert_int_equal(EVP_PKEY_up_ref(got.app_key), 1);
    *ret_app_key = got.app_key;
  }
  kms_app_keys_free(&want);
  kms_app_keys_free(&got);
}

static void test_key_cache(void **state) {
  (void)state;
  struct kms_root_keys rk, rk2;
  struct ratls_app_identity seed, newest, other;
  struct kms_app_keys k;
  struct kms_key_cache *c = NULL;
  rk_fixed(&rk);
  id_seed(&seed);
  id_newest(&newest, true);
  assert_int_equal(kms_key_cache_new(0, &c), -EINVAL);
  assert_int_equal(kms_key_cache_new(2, &c), 0);

  /* first and second call (from the cache) both equal the uncached derivation */
  EVP_PKEY *a1 = NULL, *a2 = NULL;
  cached_matches(c, &rk, &seed, &a1);
  cached_matches(c, &rk, &seed, &a2);
  assert_ptr_equal(a1, a2); /* the second came from the cache */
  EVP_PKEY_free(a2);
  /* the same app id in the other era is another entry with other keys */
  cached_matches(c, &rk, &newest, &a2);
  assert_ptr_not_equal(a1, a2);
  EVP_PKEY_free(a1);
  EVP_PKEY_free(a2);
  /* instance id / rootfs hash are not part of the entry: the disk key still follows them */
  newest.instance_id[0] ^= 1;
  cached_matches(c, &rk, &newest, NULL);
  id_newest(&newest, false);
  cached_matches(c, &rk, &newest, NULL);
  seed.rootfs_hash_hex[0] = 'f';
  cached_matches(c, &rk, &seed, NULL);
  /* errors are the uncached ones, cached entry or not */
  seed.has_rootfs_hash = false;
  assert_int_equal(kms_derive_app_keys_cached(c, &rk, &seed, &k), -EINVAL);
  id_seed(&seed);
  seed.app_id_hex[39] = 0;
  assert_int_equal(kms_derive_app_keys_cached(c, &rk, &seed, &k), -EINVAL);
  id_seed(&seed);
  seed.app_id_len = 0;
  assert_int_equal(kms_derive_app_keys_cached(c, &rk, &seed, &k), -EINVAL);
  id_seed(&seed);
  assert_int_equal(kms_derive_app_keys_cached(c, NULL, &seed, &k), -EINVAL);

  /* a third app evicts the least recently used one (two slots) */
  id_newest(&other, true);
  other.app_id[0] ^= 0xff;
  cached_matches(c, &rk, &seed, &a1);
  cached_matches(c, &rk, &other, NULL);
  cached_matches(c, &rk, &newest, NULL); /* evicts seed */
  cached_matches(c, &rk, &seed, &a2);
  assert_ptr_not_equal(a1, a2);
  EVP_PKEY_free(a1);
  EVP_PKEY_free(a2);
  /* newest is still there */
  cached_matches(c, &rk, &newest, &a1);
  cached_matches(c, &rk, &newest, &a2);
  assert_ptr_equal(a1, a2);
  EVP_PKEY_free(a1);
  EVP_PKEY_free(a2);

  /* other root keys: nothing of the first set is served */
  memset(&rk2, 0, sizeof(rk2));
  memset(rk2.ca_scalar, 0x33, 32);
  memset(rk2.k256, 0x44, 32);
  cached_matches(c, &rk2, &seed, NULL);
  struct kms_app_keys k1;
  assert_int_equal(kms_derive_app_keys(&rk, &seed, &k1), 0);
  assert_int_equal(kms_derive_app_keys_cached(c, &rk2, &seed, &k), 0);
  assert_memory_not_equal(k.k256_key, k1.k256_key, 32);
  kms_app_keys_free(&k);
  kms_app_keys_free(&k1);

  /* no cache: the same results */
  cached_matches(NULL, &rk, &seed, NULL);
  kms_key_cache_free(c);
  kms_key_cache_free(NULL);
  kms_root_keys_free(&rk);
}

static void test_k256_signature_recovers_root(void **state) {
  (void)state;
  struct kms_root_keys rk;
  rk_fixed(&rk);
  uint8_t app[20], key[32], sig[65], pub[33], h[32], rec[33];
  assert_int_equal(hex_decode_exact(APP_HEX, 40, app, 20), 0);
  assert_int_equal(kms_derive_k256(&rk, app, 20, key, sig), 0);
  assert_int_equal(key_secp256k1_public_from_secret(key, pub), 0);
  struct keccak_ctx kc;
  assert_int_equal(keccak_init(&kc, 32), 0);
  keccak_update(&kc, "dstack-kms-issued:", 18);
  keccak_update(&kc, app, 20);
  keccak_update(&kc, pub, 33);
  keccak_final(&kc, h);
  assert_int_equal(key_secp256k1_recover(h, sig, rec), 0);
  assert_memory_equal(rec, rk.k256_pub, 33);
  kms_root_keys_free(&rk);
}

static void test_env_pubkey(void **state) {
  (void)state;
  struct kms_root_keys rk;
  rk_fixed(&rk);
  uint8_t app[20], pub[32], sig[65], sig1[65];
  assert_int_equal(hex_decode_exact(APP_HEX, 40, app, 20), 0);
  assert_int_equal(kms_env_pubkey(&rk, app, 20, ENV_TS, pub, sig, sig1), 0);
  hex_eq(pub, 32, V_ENV_PUB);
  hex_eq(sig, 65, V_ENV_SIG);
  hex_eq(sig1, 65, V_ENV_SIG_V1);
  /* The public key is the one of the env secret the app gets. */
  uint8_t secret[32], pub2[32];
  EVP_PKEY *x = NULL;
  assert_int_equal(kms_derive_env_secret(&rk, app, 20, secret), 0);
  assert_int_equal(key_x25519_from_secret(secret, &x), 0);
  assert_int_equal(key_raw_public(x, pub2), 0);
  assert_memory_equal(pub, pub2, 32);
  EVP_PKEY_free(x);
  /* Another timestamp: only signature_v1 changes. */
  uint8_t sig_b[65], sig1_b[65];
  assert_int_equal(kms_env_pubkey(&rk, app, 20, ENV_TS + 1, pub2, sig_b, sig1_b), 0);
  assert_memory_equal(sig, sig_b, 65);
  assert_memory_not_equal(sig1, sig1_b, 65);
  assert_int_equal(kms_env_pubkey(&rk, app, RATLS_APP_ID_MAX + 1, ENV_TS, pub, sig, sig1), -EINVAL);
  kms_root_keys_free(&rk);
}

static void test_app_cert(void **state) {
  (void)state;
  struct kms_root_keys rk;
  struct ratls_app_identity id;
  struct kms_app_keys k;
  rk_fixed(&rk);
  id_seed(&id);
  assert_int_equal(kms_derive_app_keys(&rk, &id, &k), 0);
  struct ratls_attestation att;
  ratls_attestation_init(&att);
  assert_int_equal(buf_append(&att.quote, "QUOTE", 5), 0);
  assert_int_equal(buf_append(&att.event_log, "{}\n", 3), 0);
  X509 *c = NULL;
  assert_int_equal(kms_app_cert_build(&rk, &id, k.app_key, &att, ".phala", &c), 0);
  struct buf cn = BUF_INIT(256);
  assert_int_equal(x509_cert_subject_cn(c, &cn), 0);
  assert_int_equal(buf_terminate(&cn), 0);
  assert_string_equal((char *)cn.data, APP_HEX ".phala");
  assert_int_equal(x509_cert_verify_signed_by(c, rk.ca_key), 0);
  bool ca;
  int pl;
  assert_int_equal(x509_cert_basic_constraints(c, &ca, &pl), 0);
  assert_true(ca);
  assert_int_equal(pl, 1);
  struct ratls_attestation got;
  assert_int_equal(ratls_cert_attestation(c, &got), 0);
  assert_int_equal(got.quote.len, 5);
  assert_memory_equal(got.quote.data, "QUOTE", 5);
  assert_int_equal(got.event_log.len, 3);
  EVP_PKEY *pub = NULL;
  assert_int_equal(x509_cert_public_key(c, &pub), 0);
  assert_int_equal(key_public_equal(pub, k.app_key), 0);
  EVP_PKEY_free(pub);
  ratls_attestation_free(&got);
  ratls_attestation_free(&att);
  buf_free(&cn);
  X509_free(c);
  kms_app_keys_free(&k);
  kms_root_keys_free(&rk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_root_k256_pub),
      cmocka_unit_test(test_info_bytes),
      cmocka_unit_test(test_seed_keys),
      cmocka_unit_test(test_newest_keys),
      cmocka_unit_test(test_key_cache),
      cmocka_unit_test(test_k256_signature_recovers_root),
      cmocka_unit_test(test_env_pubkey),
      cmocka_unit_test(test_app_cert),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
