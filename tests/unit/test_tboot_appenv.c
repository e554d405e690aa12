#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tboot_appenv.h"
#include "base/buf.h"
#include "crypto/envcrypt.h"
#include "testutil.h"

static const uint8_t env_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* The raw blob of plaintext json for env_key (hex when hex is true). */
static void seal(const char *json, size_t len, bool hex, struct buf *out) {
  uint8_t pub[32];
  assert_int_equal(envcrypt_public_key(env_key, pub), 0);
  *out = BUF_INIT(8 * 1024 * 1024);
  if (hex)
    assert_int_equal(envcrypt_encrypt(pub, json, len, out), 0);
  else
    assert_int_equal(envcrypt_encrypt_raw(pub, json, len, out), 0);
}

static int open_env(const char *json, bool hex, const char *const *allowed, size_t n_allowed,
                    struct appenv *e, char *why, size_t whylen) {
  _cleanup_buf_ struct buf b;
  seal(json, strlen(json), hex, &b);
  return appenv_decrypt(env_key, b.data, b.len, allowed, n_allowed, e, why, whylen);
}

static const char *const allowed[] = {"DB_PASS", "API_KEY", "EMPTY"};
static const char *env_json = "{\"env\":[{\"key\":\"DB_PASS\",\"value\":\"s3cret=x\"},"
                              "{\"key\":\"LD_PRELOAD\",\"value\":\"/tmp/evil.so\"},"
                              "{\"key\":\"EMPTY\",\"value\":\"\"},"
                              "{\"key\":\"API_KEY\",\"value\":\"k\\nline2\"}]}";

static void test_filter(void **state) {
  (void)state;
  for (int hex = 0; hex < 2; hex++) {
    struct appenv e;
    char why[256] = "";
    assert_int_equal(open_env(env_json, hex, allowed, 3, &e, why, sizeof(why)), 0);
    assert_int_equal(e.n, 3);
    assert_string_equal(e.envp[0], "DB_PASS=s3cret=x");
    assert_string_equal(e.envp[1], "EMPTY=");
    assert_string_equal(e.envp[2], "API_KEY=k\nline2");
    assert_null(e.envp[3]);
    assert_int_equal(e.n_dropped, 1);
    assert_string_equal(e.dropped[0], "LD_PRELOAD");
    assert_null(e.dropped[1]);
    appenv_free(&e);
    assert_null(e.envp);
    appenv_free(&e);
  }
  /* no allowed names: nothing is kept */
  struct appenv e;
  assert_int_equal(open_env(env_json, false, NULL, 0, &e, NULL, 0), 0);
  assert_int_equal(e.n, 0);
  assert_non_null(e.envp);
  assert_null(e.envp[0]);
  assert_int_equal(e.n_dropped, 4);
  appenv_free(&e);
  /* an empty env */
  assert_int_equal(open_env("{\"env\":[]}", false, allowed, 3, &e, NULL, 0), 0);
  assert_int_equal(e.n, 0);
  assert_int_equal(e.n_dropped, 0);
  appenv_free(&e);
}

static void test_hex_forms(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b;
  seal(env_json, strlen(env_json), true, &b);
  _cleanup_buf_ struct buf t = BUF_INIT(b.len + 16);
  assert_int_equal(buf_append_str(&t, "0x"), 0);
  assert_int_equal(buf_append(&t, b.data, b.len), 0);
  assert_int_equal(buf_append_str(&t, "\n"), 0);
  struct appenv e;
  assert_int_equal(appenv_decrypt(env_key, t.data, t.len, allowed, 3, &e, NULL, 0), 0);
  assert_int_equal(e.n, 3);
  appenv_free(&e);
  /* odd hex */
  char why[256];
  assert_int_equal(appenv_decrypt(env_key, t.data, t.len - 2, allowed, 3, &e, why, sizeof(why)),
                   -EBADMSG);
  assert_non_null(strstr(why, "odd"));
  /* short hex, short raw, empty */
  assert_int_equal(appenv_decrypt(env_key, (const uint8_t *)"abcd", 4, allowed, 3, &e, why,
                                  sizeof(why)),
                   -EBADMSG);
  assert_non_null(strstr(why, "too short"));
  assert_int_equal(appenv_decrypt(env_key, b.data, 0, allowed, 3, &e, why, sizeof(why)), -EBADMSG);
  assert_int_equal(appenv_decrypt(NULL, b.data, 0, allowed, 3, &e, why, sizeof(why)), -EINVAL);
  assert_int_equal(appenv_decrypt(env_key, b.data, 1, NULL, 3, &e, why, sizeof(why)), -EINVAL);
}

static void test_wrong_key(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b;
  seal(env_json, strlen(env_json), false, &b);
  uint8_t other[32];
  memcpy(other, env_key, 32);
  other[5] ^= 1; /* not byte 0: X25519 clamps its low bits away */
  struct appenv e;
  char why[256];
  assert_int_equal(appenv_decrypt(other, b.data, b.len, allowed, 3, &e, why, sizeof(why)),
                   -EKEYREJECTED);
  assert_non_null(strstr(why, "env key"));
  assert_null(e.envp);
  /* a flipped ciphertext byte looks the same */
  b.data[b.len - 20] ^= 1;
  assert_int_equal(appenv_decrypt(env_key, b.data, b.len, allowed, 3, &e, why, sizeof(why)),
                   -EKEYREJECTED);
}

static void expect_bad(const char *json, const char *needle) {
  struct appenv e;
  char why[256] = "";
  int r = open_env(json, false, allowed, 3, &e, why, sizeof(why));
  if (r != -EBADMSG || !strstr(why, needle))
    fail_msg("%.80s: r=%d why=\"%s\", wanted \"%s\"", json, r, why, needle);
  assert_null(e.envp);
}

static void test_bad_plaintext(void **state) {
  (void)state;
  expect_bad("{\"env\":[{\"key\":\"1BAD\",\"value\":\"x\"}]}", "invalid name");
  expect_bad("{\"env\":[{\"key\":\"A-B\",\"value\":\"x\"}]}", "invalid name");
  expect_bad("{\"env\":[{\"key\":\"\",\"value\":\"x\"}]}", "invalid name");
  expect_bad("{\"env\":[{\"key\":\"A\",\"value\":\"x\"},{\"key\":\"A\",\"value\":\"y\"}]}",
             "twice");
  expect_bad("{\"env\":[{\"key\":\"DB_PASS\",\"value\":\"a\\u0000b\"}]}", "");
  expect_bad("{\"env\":{}}", "not {");
  expect_bad("not json", "not {");
  expect_bad("{\"env\":[{\"key\":\"A\",\"value\":1}]}", "not {");
}

static void test_caps(void **state) {
  (void)state;
  /* 513 variables */
  _cleanup_buf_ struct buf j = BUF_INIT(1024 * 1024);
  assert_int_equal(buf_append_str(&j, "{\"env\":["), 0);
  for (int i = 0; i < APPENV_MAX_VARS + 1; i++)
    assert_int_equal(buf_printf(&j, "%s{\"key\":\"V%d\",\"value\":\"1\"}", i ? "," : "", i), 0);
  assert_int_equal(buf_append_str(&j, "]}"), 0);
  assert_int_equal(buf_terminate(&j), 0);
  expect_bad((const char *)j.data, "more than 512");

  /* 512 are fine */
  buf_reset(&j);
  assert_int_equal(buf_append_str(&j, "{\"env\":["), 0);
  for (int i = 0; i < APPENV_MAX_VARS; i++)
    assert_int_equal(buf_printf(&j, "%s{\"key\":\"V%d\",\"value\":\"1\"}", i ? "," : "", i), 0);
  assert_int_equal(buf_append_str(&j, "]}"), 0);
  assert_int_equal(buf_terminate(&j), 0);
  struct appenv e;
  assert_int_equal(open_env((const char *)j.data, false, allowed, 3, &e, NULL, 0), 0);
  assert_int_equal(e.n_dropped, APPENV_MAX_VARS);
  appenv_free(&e);

  /* 64 KiB in all: "DB_PASS=" + value */
  for (int over = 0; over < 2; over++) {
    size_t vlen = APPENV_MAX_BYTES - strlen("DB_PASS=") + (size_t)over;
    buf_reset(&j);
    assert_int_equal(buf_append_str(&j, "{\"env\":[{\"key\":\"DB_PASS\",\"value\":\""), 0);
    assert_int_equal(buf_reserve(&j, vlen), 0);
    memset(j.data + j.len, 'v', vlen);
    j.len += vlen;
    assert_int_equal(buf_append_str(&j, "\"}]}"), 0);
    assert_int_equal(buf_terminate(&j), 0);
    if (over) {
      expect_bad((const char *)j.data, "larger than");
    } else {
      assert_int_equal(open_env((const char *)j.data, true, allowed, 3, &e, NULL, 0), 0);
      assert_int_equal(strlen(e.envp[0]), APPENV_MAX_BYTES);
      appenv_free(&e);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_filter),    cmocka_unit_test(test_hex_forms),
      cmocka_unit_test(test_wrong_key), cmocka_unit_test(test_bad_plaintext),
      cmocka_unit_test(test_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
