#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/json.h"
#include "testutil.h"

static json_t *parse_ok(const char *s) {
  json_t *j = NULL;
  json_error_t e;
  int r = json_parse_buf_full(s, strlen(s), 1 << 20, 0, &j, &e);
  if (r < 0)
    fail_msg("parse failed (%d) at %d:%d: %s", r, e.line, e.column, e.text);
  return j;
}

static void test_parse(void **state) {
  (void)state;
  json_t *j = NULL;
  const char *s = "{\"a\": [1, 2, {\"b\": null}]}";
  assert_int_equal(json_parse_buf(s, strlen(s), 1024, &j), 0);
  assert_true(json_is_object(j));
  json_decref(j);
  /* arrays are fine at the top level; scalars only with JSON_DECODE_ANY */
  assert_int_equal(json_parse_buf("[]", 2, 10, &j), 0);
  json_decref(j);
  assert_int_equal(json_parse_buf("42", 2, 10, &j), -EBADMSG);
  assert_int_equal(json_parse_buf_full("42", 2, 10, JSON_DECODE_ANY, &j, NULL), 0);
  assert_int_equal(json_integer_value(j), 42);
  json_decref(j);
  /* len bounds the input: text after len is not looked at */
  assert_int_equal(json_parse_buf("{}garbage", 2, 10, &j), 0);
  json_decref(j);
}

static void test_parse_errors(void **state) {
  (void)state;
  json_t *j = (json_t *)0x1;
  json_error_t e;
  const char *big = "{\"k\": \"0123456789\"}";
  assert_int_equal(json_parse_buf_full(big, strlen(big), 10, 0, &j, &e), -ENOBUFS);
  assert_int_equal(json_parse_buf(big, strlen(big), strlen(big), &j), 0); /* exactly the cap */
  json_decref(j);

  const char *multi = "{\n  \"a\": 1,\n  \"b\": tru\n}";
  assert_int_equal(json_parse_buf_full(multi, strlen(multi), 1024, 0, &j, &e), -EBADMSG);
  assert_int_equal(e.line, 3);
  assert_true(e.column >= 8);

  assert_int_equal(json_parse_buf_full("{\"a\":1}\0", 8, 64, 0, &j, &e), -EBADMSG);
  assert_int_equal(e.position, 7);
  assert_non_null(strstr(e.text, "NUL"));
  const char *nul = "{\"a\":\"x\\u0000y\"}";
  assert_int_equal(json_parse_buf(nul, strlen(nul), 64, &j), -EBADMSG);
  const char *dup = "{\"a\":1,\"a\":2}";
  assert_int_equal(json_parse_buf_full(dup, strlen(dup), 64, 0, &j, &e), -EBADMSG);
  assert_non_null(strstr(e.text, "duplicate"));
  static const char *const bad[] = {
      "", "{", "}", "{\"a\"}", "{\"a\":1,}", "[1,]", "[1 2]", "{a:1}", "{} {}", "[\"\\x\"]",
      "[1e999999]", "[99999999999999999999]", "[\"\xff\"]", "[01]", "{'a':1}", "[NaN]",
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    j = NULL;
    int r = json_parse_buf(bad[i], strlen(bad[i]), 64, &j);
    if (r != -EBADMSG)
      fail_msg("accepted or wrong error %d for %s", r, bad[i]);
    assert_null(j);
  }
  /* deep nesting is refused by jansson's own depth limit */
  struct buf deep = BUF_INIT(1 << 20);
  for (int i = 0; i < 5000; i++)
    assert_int_equal(buf_append_u8(&deep, '['), 0);
  for (int i = 0; i < 5000; i++)
    assert_int_equal(buf_append_u8(&deep, ']'), 0);
  assert_int_equal(json_parse_buf((char *)deep.data, deep.len, deep.len, &j), -EBADMSG);
  buf_free(&deep);
}

static void test_dump(void **state) {
  (void)state;
  _cleanup_json_ json_t *j = parse_ok("{\"b\": [1, \"x\"], \"a\": true}");
  _cleanup_buf_ struct buf b = BUF_INIT(1024);
  assert_int_equal(json_dump_buf(j, JSON_COMPACT, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data, "{\"b\":[1,\"x\"],\"a\":true}");
  buf_reset(&b);
  assert_int_equal(json_dump_buf(j, JSON_COMPACT | JSON_SORT_KEYS, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data, "{\"a\":true,\"b\":[1,\"x\"]}");
  struct buf small = BUF_INIT(10);
  assert_int_equal(buf_append(&small, "ab", 2), 0);
  assert_int_equal(json_dump_buf(j, JSON_COMPACT, &small), -ENOBUFS);
  assert_int_equal(small.len, 2);
  buf_free(&small);
  char *s = json_dump_compact(j);
  assert_string_equal(s, "{\"b\":[1,\"x\"],\"a\":true}");
  free(s);
  assert_int_equal(json_dump_buf(NULL, 0, &b), -EINVAL);
  /* scalars need JSON_ENCODE_ANY */
  _cleanup_json_ json_t *n = json_integer(5);
  buf_reset(&b);
  assert_int_equal(json_dump_buf(n, 0, &b), -EINVAL);
  assert_int_equal(json_dump_buf(n, JSON_ENCODE_ANY, &b), 0);
  assert_int_equal(b.len, 1);
}

static void test_getters(void **state) {
  (void)state;
  _cleanup_json_ json_t *j = parse_ok(
      "{\"s\": \"str\", \"n\": 42, \"neg\": -1, \"big\": 9223372036854775807, \"f\": 1.5,"
      " \"t\": true, \"nul\": null, \"o\": {}, \"a\": [], \"h\": \"0xA0b1\", \"h2\": \"a0b1c2\","
      " \"bh\": \"zz\", \"b64\": \"Zm9v\", \"u32big\": 4294967296, \"empty\": \"\"}");
  const char *s;
  uint64_t u;
  uint32_t u32;
  int64_t i;
  bool b;
  json_t *o;
  assert_int_equal(json_get_str(j, "s", &s), 0);
  assert_string_equal(s, "str");
  assert_int_equal(json_get_str(j, "empty", &s), 0);
  assert_string_equal(s, "");
  assert_int_equal(json_get_str(j, "n", &s), -EINVAL);
  assert_int_equal(json_get_str(j, "missing", &s), -ENOENT);
  assert_int_equal(json_get_str(j, "nul", &s), -ENOENT);
  assert_int_equal(json_get_u64(j, "n", &u), 0);
  assert_true(u == 42);
  assert_int_equal(json_get_u64(j, "big", &u), 0);
  assert_true(u == INT64_MAX);
  assert_int_equal(json_get_u64(j, "neg", &u), -ERANGE);
  assert_int_equal(json_get_u64(j, "f", &u), -EINVAL);
  assert_int_equal(json_get_u64(j, "s", &u), -EINVAL);
  assert_int_equal(json_get_u32(j, "n", &u32), 0);
  assert_int_equal(u32, 42);
  assert_int_equal(json_get_u32(j, "u32big", &u32), -ERANGE);
  assert_int_equal(json_get_i64(j, "neg", &i), 0);
  assert_true(i == -1);
  assert_int_equal(json_get_bool(j, "t", &b), 0);
  assert_true(b);
  assert_int_equal(json_get_bool(j, "n", &b), -EINVAL);
  assert_int_equal(json_get_bool(j, "x", &b), -ENOENT);
  assert_int_equal(json_get_object(j, "o", &o), 0);
  assert_true(json_is_object(o));
  assert_int_equal(json_get_object(j, "a", &o), -EINVAL);
  assert_int_equal(json_get_array(j, "a", &o), 0);
  assert_int_equal(json_get_array(j, "o", &o), -EINVAL);

  uint8_t h[3];
  assert_int_equal(json_get_hex(j, "h2", h, 3), 0);
  assert_memory_equal(h, "\xa0\xb1\xc2", 3);
  assert_int_equal(json_get_hex(j, "h", h, 2), 0);
  assert_memory_equal(h, "\xa0\xb1", 2);
  assert_int_equal(json_get_hex(j, "h2", h, 2), -EINVAL); /* exact length */
  assert_int_equal(json_get_hex(j, "bh", h, 1), -EINVAL);
  assert_int_equal(json_get_hex(j, "n", h, 1), -EINVAL);
  assert_int_equal(json_get_hex(j, "nope", h, 1), -ENOENT);
  _cleanup_buf_ struct buf hb = BUF_INIT(16);
  assert_int_equal(json_get_hex_buf(j, "h2", &hb), 0);
  assert_int_equal(hb.len, 3);
  assert_int_equal(json_get_hex_buf(j, "bh", &hb), -EINVAL);
  assert_int_equal(hb.len, 3); /* unchanged on error */
  struct buf tiny = BUF_INIT(2);
  assert_int_equal(json_get_hex_buf(j, "h2", &tiny), -ENOBUFS);
  assert_int_equal(tiny.len, 0);
  buf_free(&tiny);
  buf_reset(&hb);
  assert_int_equal(json_get_base64_buf(j, "b64", &hb), 0);
  assert_memory_equal(hb.data, "foo", 3);
  assert_int_equal(json_get_base64_buf(j, "s", &hb), -EINVAL);

  /* not an object */
  _cleanup_json_ json_t *arr = json_array();
  assert_int_equal(json_get_str(arr, "s", &s), -EINVAL);
  assert_int_equal(json_get_str(NULL, "s", &s), -EINVAL);

  /* strings built in code can hold a NUL: refused by the C-string getter */
  _cleanup_json_ json_t *x = json_object();
  assert_int_equal(json_set_strn(x, "z", "a\0b", 3), 0);
  assert_int_equal(json_get_str(x, "z", &s), -EINVAL);
}

static void test_setters(void **state) {
  (void)state;
  _cleanup_json_ json_t *j = json_object();
  assert_int_equal(json_set_hex(j, "h", "\x01\xab", 2), 0);
  assert_int_equal(json_set_hex(j, "e", "", 0), 0);
  assert_int_equal(json_set_base64(j, "b", "foob", 4), 0);
  assert_int_equal(json_set_str(j, "s", "v"), 0);
  assert_int_equal(json_set_str(j, "s", "w"), 0); /* replaces */
  assert_int_equal(json_set_u64(j, "u", 7), 0);
  assert_int_equal(json_set_u64(j, "huge", UINT64_MAX), -ERANGE);
  assert_int_equal(json_set_i64(j, "i", -3), 0);
  assert_int_equal(json_set_bool(j, "t", false), 0);
  assert_int_equal(json_set_new(j, "arr", json_array()), 0);
  assert_int_equal(json_set_str(j, "bad", NULL), -EINVAL);
  _cleanup_buf_ struct buf b = BUF_INIT(1024);
  assert_int_equal(json_dump_buf(j, JSON_COMPACT, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data, "{\"h\":\"01ab\",\"e\":\"\",\"b\":\"Zm9vYg==\",\"s\":\"w\","
                                      "\"u\":7,\"i\":-3,\"t\":false,\"arr\":[]}");
  uint8_t h[2];
  assert_int_equal(json_get_hex(j, "h", h, 2), 0);
  assert_memory_equal(h, "\x01\xab", 2);
  _cleanup_json_ json_t *arr = json_array();
  assert_int_equal(json_set_str(arr, "k", "v"), -EINVAL);
  assert_int_equal(json_set_new(arr, "k", json_true()), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),   cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_dump),    cmocka_unit_test(test_getters),
      cmocka_unit_test(test_setters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
