#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/buf.h"
#include "testutil.h"

static void test_buf_cap(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(8);
  assert_int_equal(buf_append(&b, "12345678", 8), 0);
  assert_int_equal(b.len, 8);
  assert_int_equal(buf_append(&b, "9", 1), -ENOBUFS);
  assert_int_equal(b.len, 8);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data, "12345678");
}

static void test_buf_grow_and_ints(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 20);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(buf_append_u32le(&b, (uint32_t)i), 0);
  assert_int_equal(b.len, 4000);
  assert_int_equal(le32_read(b.data + 4 * 999), 999);
  assert_int_equal(buf_append_u16le(&b, 0xabcd), 0);
  assert_int_equal(b.data[4000], 0xcd);
  assert_int_equal(buf_append_u32be(&b, 0x01020304), 0);
  assert_int_equal(b.data[4002], 1);
  assert_int_equal(buf_append_u64le(&b, 0x1122334455667788ULL), 0);
  assert_true(le64_read(b.data + 4006) == 0x1122334455667788ULL);
}

static void test_buf_printf_steal(void **state) {
  (void)state;
  struct buf b = BUF_INIT(32);
  assert_int_equal(buf_printf(&b, "%s-%d", "ab", 42), 0);
  assert_int_equal(buf_printf(&b, "%040d", 1), -ENOBUFS);
  size_t n;
  char *s = (char *)buf_steal(&b, &n);
  assert_string_equal(s, "ab-42");
  assert_int_equal(n, 5);
  assert_null(b.data);
  free(s);
}

static void test_buf_secret(void **state) {
  (void)state;
  struct buf b;
  buf_init_secret(&b, 4096);
  for (int i = 0; i < 100; i++)
    assert_int_equal(buf_append(&b, "secretsecret", 12), 0);
  buf_reset(&b);
  assert_int_equal(b.len, 0);
  buf_free(&b);
  assert_null(b.data);
  buf_free(NULL);
}

static void test_cursor(void **state) {
  (void)state;
  const uint8_t in[] = {1, 2, 0, 3, 0, 0, 0, 9, 9};
  struct cursor c;
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  struct slice s;
  cursor_init(&c, in, sizeof(in));
  assert_int_equal(cursor_u8(&c, &u8), 0);
  assert_int_equal(u8, 1);
  assert_int_equal(cursor_u16le(&c, &u16), 0);
  assert_int_equal(u16, 2);
  assert_int_equal(cursor_u32le(&c, &u32), 0);
  assert_int_equal(u32, 3);
  assert_int_equal(cursor_left(&c), 2);
  assert_int_equal(cursor_u64le(&c, &u64), -EBADMSG);
  assert_int_equal(cursor_left(&c), 2); /* a failed read consumes nothing */
  assert_int_equal(cursor_slice(&c, 3, &s), -EBADMSG);
  assert_int_equal(cursor_slice(&c, 2, &s), 0);
  assert_int_equal(s.len, 2);
  assert_int_equal(cursor_skip(&c, 1), -EBADMSG);
  assert_int_equal(cursor_u32be(&c, &u32), -EBADMSG);
}

static void test_slices(void **state) {
  (void)state;
  assert_true(slice_eq_str(SLICE("abc", 3), "abc"));
  assert_false(slice_eq_str(SLICE("abc", 3), "abd"));
  assert_false(slice_eq_str(SLICE("abc", 2), "abc"));
  assert_true(slice_eq(SLICE(NULL, 0), SLICE("", 0)));
  char *d = slice_strdup(SLICE("a\0b", 3));
  assert_null(d);
  d = slice_strdup(SLICE("xyz", 2));
  assert_string_equal(d, "xy");
  free(d);
}

static void test_memcmp_ct(void **state) {
  (void)state;
  assert_int_equal(memcmp_ct("abcd", "abcd", 4), 0);
  assert_int_not_equal(memcmp_ct("abcd", "abce", 4), 0);
}

static void test_buf_html(void **state) {
  (void)state;
  struct buf b = BUF_INIT(64);
  assert_int_equal(buf_append_html(&b, "<a href=\"x\">'&'</a>"), 0);
  assert_int_equal(buf_append_html(&b, NULL), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((const char *)b.data,
                      "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  struct buf small = BUF_INIT(4);
  assert_true(buf_append_html(&small, "&&") < 0);
  buf_free(&b);
  buf_free(&small);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buf_cap),     cmocka_unit_test(test_buf_grow_and_ints),
      cmocka_unit_test(test_buf_printf_steal), cmocka_unit_test(test_buf_secret),
      cmocka_unit_test(test_cursor),      cmocka_unit_test(test_slices),
      cmocka_unit_test(test_memcmp_ct), cmocka_unit_test(test_buf_html),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
