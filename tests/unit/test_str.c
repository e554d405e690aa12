#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/str.h"
#include "testutil.h"

static void test_prefix_suffix(void **state) {
  (void)state;
  assert_true(str_startswith("foobar", "foo"));
  assert_true(str_startswith("foo", ""));
  assert_false(str_startswith("fo", "foo"));
  assert_true(str_endswith("foobar", "bar"));
  assert_true(str_endswith("bar", "bar"));
  assert_false(str_endswith("ar", "bar"));
  assert_false(str_endswith("foobar", "foo"));
  assert_string_equal(str_after_prefix("key=value", "key="), "value");
  assert_null(str_after_prefix("key", "key="));
  assert_true(str_eq_ptr(NULL, NULL));
  assert_false(str_eq_ptr("a", NULL));
  assert_true(str_eq_ptr("a", "a"));
  assert_true(str_isempty(NULL));
  assert_true(str_isempty(""));
  assert_false(str_isempty("x"));
}

static void test_u64(void **state) {
  (void)state;
  uint64_t v = 7;
  assert_int_equal(str_to_u64("0", &v), 0);
  assert_true(v == 0);
  assert_int_equal(str_to_u64("18446744073709551615", &v), 0);
  assert_true(v == UINT64_MAX);
  v = 7;
  assert_int_equal(str_to_u64("18446744073709551616", &v), -ERANGE);
  assert_int_equal(str_to_u64("99999999999999999999999", &v), -ERANGE);
  assert_true(v == 7); /* untouched on error */
  assert_int_equal(str_to_u64("99999999999999999999999x", &v), -EINVAL);
  static const char *const bad[] = {"", " 1", "1 ", "+1", "-1", "1a", "0x10", "1.0", "1_000"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_int_equal(str_to_u64(bad[i], &v), -EINVAL);
  assert_int_equal(str_to_u64(NULL, &v), -EINVAL);
  assert_int_equal(str_to_u64("007", &v), 0); /* decimal, leading zeros harmless */
  assert_true(v == 7);
  assert_int_equal(str_to_u64_n("123abc", 3, &v), 0);
  assert_true(v == 123);
  assert_int_equal(str_to_u64_n("123", 0, &v), -EINVAL);
}

static void test_u64_base(void **state) {
  (void)state;
  uint64_t v;
  assert_int_equal(str_to_u64_base("0x1F", 0, &v), 0);
  assert_true(v == 31);
  assert_int_equal(str_to_u64_base("0o17", 0, &v), 0);
  assert_true(v == 15);
  assert_int_equal(str_to_u64_base("0b101", 0, &v), 0);
  assert_true(v == 5);
  assert_int_equal(str_to_u64_base("42", 0, &v), 0);
  assert_true(v == 42);
  assert_int_equal(str_to_u64_base("0", 0, &v), 0);
  assert_true(v == 0);
  assert_int_equal(str_to_u64_base("017", 0, &v), -EINVAL);
  assert_int_equal(str_to_u64_base("0x", 0, &v), -EINVAL);
  assert_int_equal(str_to_u64_base("0b2", 0, &v), -EINVAL);
  assert_int_equal(str_to_u64_base("ff", 16, &v), 0);
  assert_true(v == 255);
  assert_int_equal(str_to_u64_base("ffffffffffffffff", 16, &v), 0);
  assert_true(v == UINT64_MAX);
  assert_int_equal(str_to_u64_base("10000000000000000", 16, &v), -ERANGE);
  assert_int_equal(str_to_u64_base("12", 7, &v), -EINVAL);
  assert_int_equal(str_to_u64_base("8", 8, &v), -EINVAL);
}

static void test_narrow_and_signed(void **state) {
  (void)state;
  uint32_t u32;
  uint16_t u16;
  int64_t i64;
  int32_t i32;
  assert_int_equal(str_to_u32("4294967295", &u32), 0);
  assert_true(u32 == UINT32_MAX);
  assert_int_equal(str_to_u32("4294967296", &u32), -ERANGE);
  assert_int_equal(str_to_u16("65535", &u16), 0);
  assert_int_equal(u16, 65535);
  assert_int_equal(str_to_u16("65536", &u16), -ERANGE);
  assert_int_equal(str_to_u16("-1", &u16), -EINVAL);
  assert_int_equal(str_to_i64("-9223372036854775808", &i64), 0);
  assert_true(i64 == INT64_MIN);
  assert_int_equal(str_to_i64("9223372036854775807", &i64), 0);
  assert_true(i64 == INT64_MAX);
  assert_int_equal(str_to_i64("+5", &i64), 0);
  assert_true(i64 == 5);
  assert_int_equal(str_to_i64("9223372036854775808", &i64), -ERANGE);
  assert_int_equal(str_to_i64("-9223372036854775809", &i64), -ERANGE);
  assert_int_equal(str_to_i64("-", &i64), -EINVAL);
  assert_int_equal(str_to_i64("--1", &i64), -EINVAL);
  assert_int_equal(str_to_i64("", &i64), -EINVAL);
  assert_int_equal(str_to_i32("-2147483648", &i32), 0);
  assert_true(i32 == INT32_MIN);
  assert_int_equal(str_to_i32("2147483648", &i32), -ERANGE);
  assert_int_equal(str_to_i32("-2147483649", &i32), -ERANGE);
}

static void test_bool_size(void **state) {
  (void)state;
  bool b;
  assert_int_equal(str_to_bool("TRUE", &b), 0);
  assert_true(b);
  assert_int_equal(str_to_bool("off", &b), 0);
  assert_false(b);
  assert_int_equal(str_to_bool("yes", &b), 0);
  assert_true(b);
  assert_int_equal(str_to_bool("0", &b), 0);
  assert_false(b);
  assert_int_equal(str_to_bool("2", &b), -EINVAL);
  assert_int_equal(str_to_bool("", &b), -EINVAL);
  assert_int_equal(str_to_bool("truex", &b), -EINVAL);
  uint64_t v;
  assert_int_equal(str_to_size("512", &v), 0);
  assert_true(v == 512);
  assert_int_equal(str_to_size("512B", &v), 0);
  assert_true(v == 512);
  assert_int_equal(str_to_size("2K", &v), 0);
  assert_true(v == 2048);
  assert_int_equal(str_to_size("3MiB", &v), 0);
  assert_true(v == 3u << 20);
  assert_int_equal(str_to_size("1g", &v), 0);
  assert_true(v == 1u << 30);
  assert_int_equal(str_to_size("1GB", &v), 0);
  assert_true(v == 1u << 30);
  assert_int_equal(str_to_size("16E", &v), -ERANGE);
  assert_int_equal(str_to_size("15E", &v), 0);
  assert_int_equal(str_to_size("1X", &v), -EINVAL);
  assert_int_equal(str_to_size("1KK", &v), -EINVAL);
  assert_int_equal(str_to_size("K", &v), -EINVAL);
  assert_int_equal(str_to_size("1 K", &v), -EINVAL);
  assert_int_equal(str_to_size("1Kib", &v), -EINVAL);
}

static void test_strip(void **state) {
  (void)state;
  char s1[] = "  \t hello world \r\n";
  assert_string_equal(str_strip(s1), "hello world");
  char s2[] = "   ";
  assert_string_equal(str_strip(s2), "");
  char s3[] = "x";
  assert_string_equal(str_strip(s3), "x");
  struct slice s = slice_strip(SLICE_STR("\n abc \t"));
  assert_true(slice_eq_str(s, "abc"));
  s = slice_strip(SLICE_STR(" \n "));
  assert_int_equal(s.len, 0);
  char s4[] = "MiXeD-123";
  assert_string_equal(str_ascii_lower(s4), "mixed-123");
  assert_true(str_is_printable_ascii("abc ~"));
  assert_false(str_is_printable_ascii("a\tb"));
  assert_false(str_is_printable_ascii("\xc3\xa9"));
  char *p = str_printf("%s-%d", "x", 5);
  assert_string_equal(p, "x-5");
  free(p);
}

static void test_strv(void **state) {
  (void)state;
  _cleanup_strv_free_ char **l = NULL;
  assert_int_equal(strv_length(l), 0);
  assert_false(strv_contains(l, "a"));
  assert_int_equal(strv_push_dup(&l, "a"), 0);
  assert_int_equal(strv_push(&l, strdup("b")), 0);
  assert_int_equal(strv_length(l), 2);
  assert_true(strv_contains(l, "b"));
  assert_false(strv_contains(l, "c"));
  char *j;
  assert_int_equal(strv_join(l, ", ", &j), 0);
  assert_string_equal(j, "a, b");
  free(j);

  char **s;
  assert_int_equal(str_split("a,,b;c", ",;", false, &s), 0);
  assert_int_equal(strv_length(s), 4);
  assert_string_equal(s[1], "");
  assert_string_equal(s[3], "c");
  assert_int_equal(strv_join(s, "|", &j), 0);
  assert_string_equal(j, "a||b|c");
  free(j);
  strv_free(s);
  assert_int_equal(str_split(",a,,b,", ",", true, &s), 0);
  assert_int_equal(strv_length(s), 2);
  assert_string_equal(s[0], "a");
  assert_string_equal(s[1], "b");
  strv_free(s);
  assert_int_equal(str_split("", ",", true, &s), 0);
  assert_int_equal(strv_length(s), 0);
  assert_int_equal(strv_join(s, ",", &j), 0);
  assert_string_equal(j, "");
  free(j);
  strv_free(s);
  assert_int_equal(str_split("", ",", false, &s), 0);
  assert_int_equal(strv_length(s), 1);
  strv_free(s);
  /* many fields: growth */
  struct buf b = BUF_INIT(4096);
  for (int i = 0; i < 300; i++)
    assert_int_equal(buf_printf(&b, "%d ", i), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_int_equal(str_split((char *)b.data, " ", true, &s), 0);
  assert_int_equal(strv_length(s), 300);
  assert_string_equal(s[299], "299");
  strv_free(s);
  buf_free(&b);
  strv_free(NULL);
}

static void check_pct(const char *in, unsigned flags, const char *want) {
  char *out = NULL;
  size_t n = 0;
  assert_int_equal(str_pct_decode(in, strlen(in), flags, &out, &n), 0);
  assert_string_equal(out, want);
  assert_int_equal(n, strlen(want));
  free(out);
}

static void check_pct_fail(const char *in, unsigned flags) {
  char *out = NULL;
  assert_int_equal(str_pct_decode(in, strlen(in), flags, &out, NULL), -EBADMSG);
  assert_null(out);
}

static void test_pct_decode(void **state) {
  (void)state;
  check_pct("", 0, "");
  check_pct("abc", 0, "abc");
  check_pct("a%20b%2fc%2F", 0, "a b/c/");
  check_pct("%4a%4A", 0, "JJ");
  check_pct("a+b", 0, "a+b");
  check_pct("a+b%2B", PCT_PLUS_SPACE, "a b+");
  check_pct("%e2%82%AC", 0, "\xe2\x82\xac");
  check_pct("-----BEGIN%20CERT%0Aab%2Bc+d", 0, "-----BEGIN CERT\nab+c+d");
  /* Strict: every '%' needs two hex digits, at the end too. */
  check_pct_fail("%", 0);
  check_pct_fail("%4", 0);
  check_pct_fail("abc%", 0);
  check_pct_fail("abc%4", 0);
  check_pct_fail("abc%4g", PCT_PLUS_SPACE);
  check_pct_fail("%g0", 0);
  check_pct_fail("abc%zz", 0);
  /* Lenient: a bad escape stays as it is. */
  check_pct("100%", PCT_LENIENT, "100%");
  check_pct("%zz%41%4", PCT_LENIENT, "%zzA%4");
  check_pct("a%2", PCT_LENIENT | PCT_PLUS_SPACE, "a%2");
  /* A NUL, decoded or raw, is never let through. */
  check_pct_fail("a%00b", 0);
  check_pct_fail("a%00b", PCT_LENIENT);
  char *out = NULL;
  assert_int_equal(str_pct_decode("a\0b", 3, PCT_LENIENT, &out, NULL), -EBADMSG);
  assert_int_equal(str_pct_decode(NULL, 1, 0, &out, NULL), -EINVAL);
  assert_int_equal(str_pct_decode("a", 1, 0, NULL, NULL), -EINVAL);
}

static void check_utf8(const char *in, size_t len, const char *want) {
  char *out = NULL;
  size_t n = 0;
  assert_int_equal(str_utf8_sanitize(in, len, &out, &n), 0);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(out, want, n + 1);
  free(out);
}

static void test_utf8(void **state) {
  (void)state;
#define R "\xef\xbf\xbd"
  check_utf8("", 0, "");
  check_utf8("plain ascii", 11, "plain ascii");
  check_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  check_utf8("a\xff" "b", 3, "a" R "b");
  check_utf8("\xc3", 1, R);                    /* cut sequence */
  check_utf8("\xe2\x82", 2, R R);             /* cut: each byte replaced */
  check_utf8("\xc0\xaf", 2, R R);             /* overlong */
  check_utf8("\xed\xa0\x80", 3, R R R);       /* surrogate */
  check_utf8("\xf4\x90\x80\x80", 4, R R R R); /* above U+10FFFF */
  check_utf8("\x80x", 2, R "x");
#undef R
  assert_int_equal(str_utf8_seq_len("\xe2\x82\xac", 3), 3);
  assert_int_equal(str_utf8_seq_len("\xe2\x82\xac", 2), 0);
  assert_int_equal(str_utf8_seq_len("a", 0), 0);
  char *out = NULL;
  assert_int_equal(str_utf8_sanitize(NULL, 1, &out, NULL), -EINVAL);
}

static void test_reason_valid_copy(void **state) {
  (void)state;
  char *why = NULL;
  assert_int_equal(str_reason(&why, -EINVAL, "bad %s", "x"), -EINVAL);
  assert_string_equal(why, "bad x");
  /* the first reason stays */
  assert_int_equal(str_reason(&why, -ENOENT, "later"), -ENOENT);
  assert_string_equal(why, "bad x");
  free(why);
  assert_int_equal(str_reason(NULL, -EIO, "nowhere"), -EIO);

  assert_true(str_utf8_valid("", 0));
  assert_true(str_utf8_valid("h\xc3\xa9", 3));
  assert_false(str_utf8_valid("h\xc3", 2));          /* cut sequence */
  assert_false(str_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
  assert_false(str_utf8_valid("\xc0\xaf", 2));       /* overlong */

  char **l = NULL, **c = NULL;
  assert_int_equal(strv_copy(NULL, &c), 0);
  assert_null(c);
  assert_int_equal(strv_push_dup(&l, "a"), 0);
  assert_int_equal(strv_push_dup(&l, "b"), 0);
  assert_int_equal(strv_copy(l, &c), 0);
  assert_int_equal(strv_length(c), 2);
  assert_string_equal(c[1], "b");
  assert_ptr_not_equal(c[0], l[0]);
  strv_free(l);
  strv_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prefix_suffix), cmocka_unit_test(test_u64),
      cmocka_unit_test(test_u64_base),      cmocka_unit_test(test_narrow_and_signed),
      cmocka_unit_test(test_bool_size),     cmocka_unit_test(test_strip),
      cmocka_unit_test(test_strv),          cmocka_unit_test(test_pct_decode),
      cmocka_unit_test(test_utf8),          cmocka_unit_test(test_reason_valid_copy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
