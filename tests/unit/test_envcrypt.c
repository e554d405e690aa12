#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/hex.h"
#include "crypto/envcrypt.h"
#include "testutil.h"

/* Made with @phala/dstack-sdk 0.5.8 encryptEnvVars() (tests/sdk) for the X25519 secret
 * 01 02 .. 20: [{DATABASE_URL: "postgres://u:p@h/db"}, {API_KEY: "sk-ünïcode \"q\"\n"}]. */
static const char sdk_pub[] = "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c";
static const char sdk_blob[] =
    "301b3a52f6ed6778117e9556171ec24336e4c3a5e71dac5a7c5ce9fd56c226148a0581526c43369c60cc0ddd"
    "69edf86d6cd45dd02ee2a6865958179b984fd3b73cc258eab8f32ec3b0107b858dfbc914220646961ca2e1b0"
    "1d74b3e844da5834facbc45ae1f21c78758288861e78425e82dca9fc9ca9df2b1f66e77577637cc6b38eddcf"
    "1cba5fe6090a427063d18952217811e2a7c7aca2289afed801a6bb8141fe03471761355b873f2d";
static const char sdk_json[] = "{\"env\":[{\"key\":\"DATABASE_URL\",\"value\":\"postgres://u:p@h/"
                               "db\"},{\"key\":\"API_KEY\",\"value\":\"sk-\xc3\xbcn\xc3\xaf"
                               "code \\\"q\\\"\\n\"}]}";

/* The KMS signature over an env public key, made with @noble/curves secp256k1 (the SDK's own
 * dependency) with the secret 07 x 32, and checked with the SDK's verifyEnvEncryptPublicKey /
 * verifyEnvEncryptPublicKeyLegacy. */
static const char sig_app_id[] = "ea549f02e1a25fabd1cb788380e033ec5461b2ff";
static const uint64_t sig_ts = 1700000000;
static const char sig_signer[] =
    "02989c0b76cb563971fdc9bef31ec06c3560f3249d6ee9e5d83c57625596e05f6f";
static const char sig_v1[] =
    "7524e2d4d9e5e6c16c65678900047b5002931dfd1e8a60e354da3965c163691e32c1c814d10f04ef7a0a8c84fc"
    "fe0725c2895184e26bee60daec7eaea5e6791c01";
static const char sig_legacy[] =
    "df55a543adf3fa8bdd68a081505c54cafe41cf325c2d9ee354e4e3ecadbd8a431b59f2d5a9535eb5044f345338"
    "fec68fd249c6d4ab6806143e9e57ae5780912700";

static void sdk_secret(uint8_t s[32]) {
  for (int i = 0; i < 32; i++)
    s[i] = (uint8_t)(i + 1);
}

static void test_sdk_vector(void **state) {
  (void)state;
  uint8_t sec[32], pub[32];
  sdk_secret(sec);
  assert_int_equal(envcrypt_public_key(sec, pub), 0);
  char hex[65];
  hex_encode(pub, 32, hex);
  assert_string_equal(hex, sdk_pub);

  struct buf out = BUF_INIT(ENVCRYPT_MAX_JSON);
  assert_int_equal(envcrypt_decrypt(sec, sdk_blob, strlen(sdk_blob), &out), 0);
  assert_true(out.secret);
  assert_int_equal(out.len, strlen(sdk_json));
  assert_memory_equal(out.data, sdk_json, out.len);

  _cleanup_envcrypt_env_ struct envcrypt_env env = {};
  assert_int_equal(envcrypt_parse_env((const char *)out.data, out.len, &env), 0);
  assert_int_equal(env.n, 2);
  assert_string_equal(env.vars[0].key, "DATABASE_URL");
  assert_string_equal(env.vars[0].value, "postgres://u:p@h/db");
  assert_string_equal(env.vars[1].key, "API_KEY");
  assert_string_equal(env.vars[1].value, "sk-\xc3\xbcn\xc3\xaf"
                                         "code \"q\"\n");
  assert_int_equal(env.vars[1].value_len, strlen(env.vars[1].value));

  /* the canonical JSON of the parsed env is byte for byte what the SDK encrypted */
  struct buf again = BUF_INIT(ENVCRYPT_MAX_JSON);
  assert_int_equal(envcrypt_env_to_json(&env, &again), 0);
  assert_int_equal(again.len, out.len);
  assert_memory_equal(again.data, out.data, out.len);
  buf_free(&again);
  buf_free(&out);

  /* one step, hex and raw */
  _cleanup_envcrypt_env_ struct envcrypt_env e2 = {};
  assert_int_equal(
      envcrypt_decrypt_env(sec, (const uint8_t *)sdk_blob, strlen(sdk_blob), true, &e2), 0);
  assert_int_equal(e2.n, 2);
  _cleanup_buf_ struct buf raw = BUF_INIT(ENVCRYPT_MAX_BLOB);
  tu_hex(sdk_blob, &raw);
  _cleanup_envcrypt_env_ struct envcrypt_env e3 = {};
  assert_int_equal(envcrypt_decrypt_env(sec, raw.data, raw.len, false, &e3), 0);
  assert_int_equal(e3.n, 2);
  assert_string_equal(e3.vars[0].value, "postgres://u:p@h/db");
}

static void test_round_trip(void **state) {
  (void)state;
  uint8_t sec[32], pub[32];
  for (int i = 0; i < 32; i++)
    sec[i] = (uint8_t)(0xa0 ^ i);
  assert_int_equal(envcrypt_public_key(sec, pub), 0);

  static const char *texts[] = {"", "{}", "{\"env\":[]}", "{\"env\":[{\"key\":\"A\",\"value\":\"b\"}]}"};
  for (size_t t = 0; t < ARRAY_SIZE(texts); t++) {
    struct buf hex = BUF_INIT(ENVCRYPT_MAX_HEX);
    assert_int_equal(envcrypt_encrypt(pub, texts[t], strlen(texts[t]), &hex), 0);
    assert_int_equal(hex.len, 2 * (strlen(texts[t]) + ENVCRYPT_OVERHEAD));
    struct buf out = BUF_INIT(ENVCRYPT_MAX_JSON);
    assert_int_equal(envcrypt_decrypt(sec, (const char *)hex.data, hex.len, &out), 0);
    assert_int_equal(out.len, strlen(texts[t]));
    if (out.len)
      assert_memory_equal(out.data, texts[t], out.len);
    buf_free(&out);
    buf_free(&hex);
  }

  /* two encryptions of the same text differ (fresh ephemeral key and IV) */
  struct buf a = BUF_INIT(4096), b = BUF_INIT(4096);
  assert_int_equal(envcrypt_encrypt_raw(pub, "x", 1, &a), 0);
  assert_int_equal(envcrypt_encrypt_raw(pub, "x", 1, &b), 0);
  assert_int_equal(a.len, b.len);
  assert_memory_not_equal(a.data, b.data, ENVCRYPT_PUBKEY_LEN);
  assert_memory_not_equal(a.data + ENVCRYPT_PUBKEY_LEN, b.data + ENVCRYPT_PUBKEY_LEN,
                          ENVCRYPT_IV_LEN);
  buf_free(&a);
  buf_free(&b);

  /* the largest plaintext; output appended after existing content; 0x prefix and upper case */
  _cleanup_free_ char *big = malloc(ENVCRYPT_MAX_JSON);
  assert_non_null(big);
  memset(big, 'z', ENVCRYPT_MAX_JSON);
  struct buf hex = BUF_INIT(ENVCRYPT_MAX_HEX + 2);
  assert_int_equal(buf_append_str(&hex, "0X"), 0);
  assert_int_equal(envcrypt_encrypt(pub, big, ENVCRYPT_MAX_JSON, &hex), 0);
  for (size_t i = 2; i < hex.len; i++)
    if (hex.data[i] >= 'a' && hex.data[i] <= 'f')
      hex.data[i] = (uint8_t)(hex.data[i] - 'a' + 'A');
  struct buf out = BUF_INIT(ENVCRYPT_MAX_JSON + 3);
  assert_int_equal(buf_append_str(&out, "pre"), 0);
  assert_int_equal(envcrypt_decrypt(sec, (const char *)hex.data, hex.len, &out), 0);
  assert_int_equal(out.len, 3 + ENVCRYPT_MAX_JSON);
  assert_memory_equal(out.data, "pre", 3);
  assert_memory_equal(out.data + 3, big, ENVCRYPT_MAX_JSON);
  buf_free(&out);
  buf_free(&hex);
}

static void encrypt_small(const uint8_t sec[32], struct buf *blob) {
  uint8_t pub[32];
  assert_int_equal(envcrypt_public_key(sec, pub), 0);
  static const char text[] = "{\"env\":[{\"key\":\"K\",\"value\":\"v\"}]}";
  assert_int_equal(envcrypt_encrypt_raw(pub, text, strlen(text), blob), 0);
}

static void test_tamper(void **state) {
  (void)state;
  uint8_t sec[32];
  sdk_secret(sec);
  _cleanup_buf_ struct buf blob = BUF_INIT(4096);
  encrypt_small(sec, &blob);
  struct buf out = BUF_INIT(4096);
  assert_int_equal(envcrypt_decrypt_raw(sec, blob.data, blob.len, &out), 0);
  buf_free(&out);
  /* any flipped bit anywhere: ephemeral key, IV, ciphertext, tag */
  for (size_t i = 0; i < blob.len; i++) {
    for (int bit = 0; bit < 8; bit += 7) {
      blob.data[i] ^= (uint8_t)(1u << bit);
      struct buf o = BUF_INIT(4096);
      assert_int_equal(buf_append_str(&o, "keep"), 0);
      int r = envcrypt_decrypt_raw(sec, blob.data, blob.len, &o);
      if (r != -EBADMSG)
        fail_msg("byte %zu bit %d: %d", i, bit, r);
      assert_int_equal(o.len, 4); /* nothing appended on failure */
      buf_free(&o);
      blob.data[i] ^= (uint8_t)(1u << bit);
    }
  }
  /* same through the hex form */
  _cleanup_buf_ struct buf hex = BUF_INIT(8192);
  assert_int_equal(hex_append(&hex, blob.data, blob.len), 0);
  for (size_t i = 0; i < hex.len; i++) {
    uint8_t c = hex.data[i];
    hex.data[i] = c == '0' ? '1' : '0';
    out = BUF_INIT(4096);
    assert_int_equal(envcrypt_decrypt(sec, (const char *)hex.data, hex.len, &out), -EBADMSG);
    buf_free(&out);
    hex.data[i] = c;
  }
}

static void test_wrong_key(void **state) {
  (void)state;
  uint8_t sec[32], other[32];
  sdk_secret(sec);
  memcpy(other, sec, 32);
  other[1] ^= 0x01; /* a bit that clamping keeps: a different scalar */
  _cleanup_buf_ struct buf blob = BUF_INIT(4096);
  encrypt_small(sec, &blob);
  struct buf out = BUF_INIT(4096);
  assert_int_equal(envcrypt_decrypt_raw(other, blob.data, blob.len, &out), -EBADMSG);
  assert_int_equal(out.len, 0);
  /* the SDK vector with a wrong key */
  assert_int_equal(envcrypt_decrypt(other, sdk_blob, strlen(sdk_blob), &out), -EBADMSG);
  buf_free(&out);
}

static void test_truncated(void **state) {
  (void)state;
  uint8_t sec[32];
  sdk_secret(sec);
  _cleanup_buf_ struct buf blob = BUF_INIT(4096);
  encrypt_small(sec, &blob);
  for (size_t n = 0; n < blob.len; n++) {
    struct buf out = BUF_INIT(4096);
    assert_int_equal(envcrypt_decrypt_raw(sec, blob.data, n, &out), -EBADMSG);
    buf_free(&out);
  }
  /* extra trailing byte */
  assert_int_equal(buf_append_u8(&blob, 0), 0);
  struct buf out = BUF_INIT(4096);
  assert_int_equal(envcrypt_decrypt_raw(sec, blob.data, blob.len, &out), -EBADMSG);
  /* every even truncation of the SDK hex */
  for (size_t n = 0; n < strlen(sdk_blob); n += 2)
    assert_int_equal(envcrypt_decrypt(sec, sdk_blob, n, &out), -EBADMSG);
  assert_int_equal(out.len, 0);
  buf_free(&out);
}

static void test_bad_hex(void **state) {
  (void)state;
  uint8_t sec[32];
  sdk_secret(sec);
  size_t n = strlen(sdk_blob);
  _cleanup_free_ char *h = strdup(sdk_blob);
  assert_non_null(h);
  struct buf out = BUF_INIT(4096);
  /* odd length */
  assert_int_equal(envcrypt_decrypt(sec, h, n - 1, &out), -EBADMSG);
  /* a non-hex character, whitespace, a NUL */
  static const char bad[] = {'g', 'G', ' ', '\n', '\0', 'x', '-'};
  for (size_t i = 0; i < sizeof(bad); i++) {
    char c = h[10];
    h[10] = bad[i];
    assert_int_equal(envcrypt_decrypt(sec, h, n, &out), -EBADMSG);
    h[10] = c;
  }
  /* prefix only, empty input */
  assert_int_equal(envcrypt_decrypt(sec, "0x", 2, &out), -EBADMSG);
  assert_int_equal(envcrypt_decrypt(sec, "", 0, &out), -EBADMSG);
  assert_int_equal(envcrypt_decrypt(sec, NULL, 0, &out), -EBADMSG);
  assert_int_equal(out.len, 0);
  /* 0x prefix is fine */
  _cleanup_free_ char *p = malloc(n + 3);
  assert_non_null(p);
  snprintf(p, n + 3, "0x%s", sdk_blob);
  assert_int_equal(envcrypt_decrypt(sec, p, n + 2, &out), 0);
  buf_free(&out);
}

static void test_oversized(void **state) {
  (void)state;
  uint8_t sec[32], pub[32];
  sdk_secret(sec);
  assert_int_equal(envcrypt_public_key(sec, pub), 0);
  /* hex over the cap is refused before decoding */
  size_t n = ENVCRYPT_MAX_HEX + 2;
  _cleanup_free_ char *h = malloc(n);
  assert_non_null(h);
  memset(h, '0', n);
  struct buf out = BUF_INIT(ENVCRYPT_MAX_JSON);
  assert_int_equal(envcrypt_decrypt(sec, h, n, &out), -ENOBUFS);
  _cleanup_free_ uint8_t *raw = calloc(1, ENVCRYPT_MAX_BLOB + 1);
  assert_non_null(raw);
  assert_int_equal(envcrypt_decrypt_raw(sec, raw, ENVCRYPT_MAX_BLOB + 1, &out), -ENOBUFS);
  /* plaintext over the cap */
  _cleanup_free_ char *big = calloc(1, ENVCRYPT_MAX_JSON + 1);
  assert_non_null(big);
  struct buf hex = BUF_INIT(ENVCRYPT_MAX_HEX + 16);
  assert_int_equal(envcrypt_encrypt(pub, big, ENVCRYPT_MAX_JSON + 1, &hex), -ENOBUFS);
  assert_int_equal(hex.len, 0);
  /* a plaintext that does not fit the output buffer's cap */
  _cleanup_buf_ struct buf blob = BUF_INIT(4096);
  encrypt_small(sec, &blob);
  struct buf small = BUF_INIT(8);
  assert_int_equal(envcrypt_decrypt_raw(sec, blob.data, blob.len, &small), -ENOBUFS);
  assert_int_equal(small.len, 0);
  /* an output cap too small for the hex */
  struct buf tiny = BUF_INIT(10);
  assert_int_equal(envcrypt_encrypt(pub, "x", 1, &tiny), -ENOBUFS);
  assert_int_equal(tiny.len, 0);
  buf_free(&small);
  buf_free(&tiny);
  buf_free(&hex);
  buf_free(&out);
}

static void test_bad_keys(void **state) {
  (void)state;
  uint8_t sec[32], zero[32] = {0};
  sdk_secret(sec);
  _cleanup_buf_ struct buf blob = BUF_INIT(4096);
  encrypt_small(sec, &blob);
  /* an all-zero (small-order) ephemeral key gives an all-zero shared secret: refused */
  memset(blob.data, 0, ENVCRYPT_PUBKEY_LEN);
  struct buf out = BUF_INIT(4096);
  assert_int_equal(envcrypt_decrypt_raw(sec, blob.data, blob.len, &out), -EBADMSG);
  /* encrypting to a small-order recipient is a bad argument */
  assert_int_equal(envcrypt_encrypt_raw(zero, "x", 1, &out), -EINVAL);
  assert_int_equal(out.len, 0);
  buf_free(&out);
}

static int parse(const char *json, struct envcrypt_env *e) {
  return envcrypt_parse_env(json, strlen(json), e);
}

static void test_parse_env(void **state) {
  (void)state;
  _cleanup_envcrypt_env_ struct envcrypt_env e = {};
  assert_int_equal(parse("{\"env\":[{\"key\":\"_a1\",\"value\":\"\"},{\"value\":\"2\",\"key\":\"B\","
                         "\"x\":1}],\"other\":true}",
                         &e),
                   0);
  assert_int_equal(e.n, 2);
  assert_string_equal(e.vars[0].key, "_a1");
  assert_string_equal(e.vars[0].value, "");
  assert_string_equal(e.vars[1].key, "B");
  envcrypt_env_free(&e);
  assert_int_equal(parse("{\"env\":[]}", &e), 0);
  assert_int_equal(e.n, 0);

  static const struct {
    const char *json;
    int r;
  } bad[] = {
      {"", -EBADMSG},
      {"{", -EBADMSG},
      {"{\"env\":[{\"key\":\"A\",\"value\":\"b\"}]", -EBADMSG},
      {"[]", -EBADMSG},
      {"{}", -EBADMSG},
      {"{\"env\":null}", -EBADMSG},
      {"{\"env\":{}}", -EBADMSG},
      {"{\"env\":[1]}", -EBADMSG},
      {"{\"env\":[{\"key\":\"A\"}]}", -EBADMSG},
      {"{\"env\":[{\"value\":\"A\"}]}", -EBADMSG},
      {"{\"env\":[{\"key\":\"A\",\"value\":1}]}", -EBADMSG},
      {"{\"env\":[{\"key\":1,\"value\":\"1\"}]}", -EBADMSG},
      {"{\"env\":[{\"key\":\"A\",\"value\":\"a\\u0000b\"}]}", -EBADMSG},
      {"{\"env\":[],\"env\":[]}", -EBADMSG},
      {"{\"env\":[]} x", -EBADMSG},
      {"{\"env\":[{\"key\":\"\",\"value\":\"\"}]}", -EINVAL},
      {"{\"env\":[{\"key\":\"1A\",\"value\":\"\"}]}", -EINVAL},
      {"{\"env\":[{\"key\":\"A-B\",\"value\":\"\"}]}", -EINVAL},
      {"{\"env\":[{\"key\":\"A B\",\"value\":\"\"}]}", -EINVAL},
      {"{\"env\":[{\"key\":\"A=B\",\"value\":\"\"}]}", -EINVAL},
      {"{\"env\":[{\"key\":\"\xc3\xa9\",\"value\":\"\"}]}", -EINVAL},
      {"{\"env\":[{\"key\":\"A\",\"value\":\"1\"},{\"key\":\"A\",\"value\":\"2\"}]}", -EINVAL},
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    int r = parse(bad[i].json, &e);
    if (r != bad[i].r)
      fail_msg("%s: %d, expected %d", bad[i].json, r, bad[i].r);
    assert_int_equal(e.n, 0);
    assert_null(e.vars);
  }

  /* key length cap */
  char json[ENVCRYPT_MAX_KEY_LEN + 64];
  char key[ENVCRYPT_MAX_KEY_LEN + 2];
  memset(key, 'K', sizeof(key));
  key[ENVCRYPT_MAX_KEY_LEN] = '\0';
  snprintf(json, sizeof(json), "{\"env\":[{\"key\":\"%s\",\"value\":\"\"}]}", key);
  assert_int_equal(parse(json, &e), 0);
  envcrypt_env_free(&e);
  key[ENVCRYPT_MAX_KEY_LEN] = 'K';
  key[ENVCRYPT_MAX_KEY_LEN + 1] = '\0';
  snprintf(json, sizeof(json), "{\"env\":[{\"key\":\"%s\",\"value\":\"\"}]}", key);
  assert_int_equal(parse(json, &e), -EINVAL);

  /* variable count cap, text size cap */
  struct buf many = BUF_INIT(ENVCRYPT_MAX_JSON);
  assert_int_equal(buf_append_str(&many, "{\"env\":["), 0);
  for (int i = 0; i <= ENVCRYPT_MAX_VARS; i++)
    assert_int_equal(buf_printf(&many, "%s{\"key\":\"K%d\",\"value\":\"\"}", i ? "," : "", i), 0);
  assert_int_equal(buf_append_str(&many, "]}"), 0);
  assert_int_equal(envcrypt_parse_env((const char *)many.data, many.len, &e), -ENOBUFS);
  buf_free(&many);
  _cleanup_free_ char *huge = malloc(ENVCRYPT_MAX_JSON + 1);
  assert_non_null(huge);
  memset(huge, ' ', ENVCRYPT_MAX_JSON + 1);
  memcpy(huge, "{\"env\":[]}", 10);
  assert_int_equal(envcrypt_parse_env(huge, ENVCRYPT_MAX_JSON + 1, &e), -ENOBUFS);
  assert_int_equal(envcrypt_parse_env(huge, ENVCRYPT_MAX_JSON, &e), 0);
  assert_int_equal(e.n, 0);
}

static void test_env_add(void **state) {
  (void)state;
  _cleanup_envcrypt_env_ struct envcrypt_env e = {};
  assert_int_equal(envcrypt_env_add(&e, "A", 1, "x", 1), 0);
  assert_int_equal(envcrypt_env_add(&e, "A", 1, "y", 1), -EEXIST);
  assert_int_equal(envcrypt_env_add(&e, "AB", 1, "y", 1), -EEXIST); /* key_len counts */
  assert_int_equal(envcrypt_env_add(&e, "9", 1, "y", 1), -EINVAL);
  assert_int_equal(envcrypt_env_add(&e, "B", 1, "a\0b", 3), -EINVAL);
  assert_int_equal(envcrypt_env_add(&e, "B", 1, "line1\nline2 \"'\\", 15), 0);
  assert_int_equal(e.n, 2);
  assert_true(envcrypt_key_valid("abc_DEF_09", 10));
  assert_false(envcrypt_key_valid("", 0));
  assert_false(envcrypt_key_valid(NULL, 1));

  struct buf j = BUF_INIT(4096);
  assert_int_equal(envcrypt_env_to_json(&e, &j), 0);
  assert_int_equal(buf_terminate(&j), 0);
  assert_string_equal((const char *)j.data,
                      "{\"env\":[{\"key\":\"A\",\"value\":\"x\"},{\"key\":\"B\",\"value\":"
                      "\"line1\\nline2 \\\"'\\\\\"}]}");
  _cleanup_envcrypt_env_ struct envcrypt_env back = {};
  assert_int_equal(envcrypt_parse_env((const char *)j.data, j.len, &back), 0);
  assert_int_equal(back.n, 2);
  assert_string_equal(back.vars[1].value, "line1\nline2 \"'\\");
  buf_free(&j);

  /* a value that is not UTF-8 cannot go into JSON */
  _cleanup_envcrypt_env_ struct envcrypt_env bad = {};
  assert_int_equal(envcrypt_env_add(&bad, "C", 1, "\xff", 1), 0);
  struct buf j2 = BUF_INIT(4096);
  assert_int_equal(envcrypt_env_to_json(&bad, &j2), -EINVAL);
  buf_free(&j2);

  /* the count cap */
  _cleanup_envcrypt_env_ struct envcrypt_env full = {};
  char k[16];
  for (int i = 0; i < ENVCRYPT_MAX_VARS; i++) {
    int n = snprintf(k, sizeof(k), "V%d", i);
    assert_int_equal(envcrypt_env_add(&full, k, (size_t)n, "", 0), 0);
  }
  assert_int_equal(envcrypt_env_add(&full, "LAST", 4, "", 0), -ENOBUFS);
  envcrypt_env_free(NULL);
}

static void test_pubkey_signature(void **state) {
  (void)state;
  uint8_t pub[32], app_id[20], sig[65], signer[33];
  assert_int_equal(hex_decode_exact(sdk_pub, strlen(sdk_pub), pub, 32), 0);
  assert_int_equal(hex_decode_exact(sig_app_id, strlen(sig_app_id), app_id, 20), 0);
  char hex[67];

  assert_int_equal(hex_decode_exact(sig_v1, strlen(sig_v1), sig, 65), 0);
  assert_int_equal(envcrypt_pubkey_sig_recover(app_id, 20, &sig_ts, pub, sig, signer), 0);
  hex_encode(signer, 33, hex);
  assert_string_equal(hex, sig_signer);
  /* another timestamp, app id or key: another signer (or none) */
  uint64_t ts2 = sig_ts + 1;
  int r = envcrypt_pubkey_sig_recover(app_id, 20, &ts2, pub, sig, signer);
  hex_encode(signer, 33, hex);
  assert_true(r < 0 || strcmp(hex, sig_signer) != 0);
  r = envcrypt_pubkey_sig_recover(app_id, 20, NULL, pub, sig, signer);
  hex_encode(signer, 33, hex);
  assert_true(r < 0 || strcmp(hex, sig_signer) != 0);
  pub[0] ^= 1;
  r = envcrypt_pubkey_sig_recover(app_id, 20, &sig_ts, pub, sig, signer);
  hex_encode(signer, 33, hex);
  assert_true(r < 0 || strcmp(hex, sig_signer) != 0);
  pub[0] ^= 1;
  /* v = 27 form accepted, v out of range refused */
  sig[64] = (uint8_t)(sig[64] + 27);
  assert_int_equal(envcrypt_pubkey_sig_recover(app_id, 20, &sig_ts, pub, sig, signer), 0);
  sig[64] = 9;
  assert_int_equal(envcrypt_pubkey_sig_recover(app_id, 20, &sig_ts, pub, sig, signer), -EBADMSG);

  assert_int_equal(hex_decode_exact(sig_legacy, strlen(sig_legacy), sig, 65), 0);
  assert_int_equal(envcrypt_pubkey_sig_recover(app_id, 20, NULL, pub, sig, signer), 0);
  hex_encode(signer, 33, hex);
  assert_string_equal(hex, sig_signer);

  /* the digest is keccak256 over exactly prefix ":" app_id be64(ts) pub */
  uint8_t d1[32], d2[32];
  assert_int_equal(envcrypt_pubkey_sig_digest(app_id, 20, &sig_ts, pub, d1), 0);
  assert_int_equal(envcrypt_pubkey_sig_digest(app_id, 20, NULL, pub, d2), 0);
  assert_memory_not_equal(d1, d2, 32);
  assert_int_equal(envcrypt_pubkey_sig_digest(NULL, 1, NULL, pub, d2), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sdk_vector),      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_tamper),          cmocka_unit_test(test_wrong_key),
      cmocka_unit_test(test_truncated),       cmocka_unit_test(test_bad_hex),
      cmocka_unit_test(test_oversized),       cmocka_unit_test(test_bad_keys),
      cmocka_unit_test(test_parse_env),       cmocka_unit_test(test_env_add),
      cmocka_unit_test(test_pubkey_signature),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
