#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "testutil.h"
#include "tu_wipe.h"

/* Huge requests below are meant to fail in malloc with NULL; ASan would abort on them. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "allocator_may_return_null=1";
}

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

/* A cap of SIZE_MAX (or near it) means "no cap": growth works and its arithmetic does not
 * wrap. Requests no allocator can satisfy are errors, never a success with no memory. */
static void test_buf_huge_cap(void **state) {
  (void)state;
  static const size_t caps[] = {SIZE_MAX, SIZE_MAX - 1, (size_t)PTRDIFF_MAX + 1, PTRDIFF_MAX,
                                (size_t)PTRDIFF_MAX - 1};
  for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
    struct buf b = BUF_INIT(caps[i]);
    for (int k = 0; k < 100; k++)
      assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 1000);
    assert_true(b.alloc >= b.len + 1);
    assert_int_equal(buf_terminate(&b), 0);
    assert_int_equal(b.data[999], '9');
    /* beyond what malloc can give: -ENOMEM without asking (and no wrap to "enough room") */
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOBUFS); /* len + extra overflows */
    assert_int_equal(buf_reserve(&b, SIZE_MAX - b.len), caps[i] == SIZE_MAX ? -ENOMEM : -ENOBUFS);
    assert_int_equal(buf_reserve(&b, caps[i] - b.len), -ENOMEM);
    int want = 1000 + (size_t)PTRDIFF_MAX > caps[i] ? -ENOBUFS : -ENOMEM;
    assert_int_equal(buf_reserve(&b, (size_t)PTRDIFF_MAX), want);
    assert_int_equal(buf_append_zero(&b, SIZE_MAX / 2), want);
    assert_int_equal(b.len, 1000);
    assert_int_equal(buf_append(&b, "x", 1), 0);
    buf_free(&b);
  }
  /* The same requests against a small cap are over the cap. */
  struct buf s = BUF_INIT(16);
  assert_int_equal(buf_append(&s, "abc", 3), 0);
  assert_int_equal(buf_reserve(&s, SIZE_MAX), -ENOBUFS);
  assert_int_equal(buf_reserve(&s, SIZE_MAX - 3), -ENOBUFS);
  assert_int_equal(buf_reserve(&s, 14), -ENOBUFS);
  assert_int_equal(buf_reserve(&s, 13), 0);
  assert_true(s.alloc <= 17); /* never more than cap + 1 */
  buf_free(&s);
  /* A cap just below the doubling step still ends at cap + 1. */
  struct buf t = BUF_INIT(100);
  assert_int_equal(buf_append_zero(&t, 100), 0);
  assert_int_equal(t.alloc, 101);
  buf_free(&t);
}

/* A zeroed buffer is a valid empty buffer of cap 0: it holds no byte, and nothing gives it
 * another cap (fd_read_all used to set the cap of a zeroed buffer to its max argument). */
static void test_buf_zeroed(void **state) {
  (void)state;
  struct buf z = {0};
  assert_int_equal(buf_append(&z, "a", 1), -ENOBUFS);
  assert_int_equal(buf_append(&z, "", 0), 0);
  assert_int_equal(buf_printf(&z, "%d", 1), -ENOBUFS);
  assert_int_equal(buf_terminate(&z), 0);
  assert_string_equal((const char *)z.data, "");
  buf_free(&z);
  size_t n = 1;
  uint8_t *p = buf_steal(&z, &n);
  assert_non_null(p);
  assert_int_equal(n, 0);
  free(p);

  int fds[2];
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "data", 4), 4);
  close(fds[1]);
  struct buf r = {0};
  assert_int_equal(fd_read_all(fds[0], 1024, &r), -ENOBUFS);
  assert_int_equal(r.max, 0);
  assert_int_equal(r.len, 0);
  close(fds[0]);
  buf_free(&r);
  /* empty input fits */
  assert_int_equal(pipe(fds), 0);
  close(fds[1]);
  assert_int_equal(fd_read_all(fds[0], 1024, &r), 0);
  assert_int_equal(r.len, 0);
  close(fds[0]);
  buf_free(&r);
  /* with a cap it works */
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "data", 4), 4);
  close(fds[1]);
  r = BUF_INIT(1024);
  assert_int_equal(fd_read_all(fds[0], 1024, &r), 0);
  assert_int_equal(r.len, 4);
  close(fds[0]);
  buf_free(&r);
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

/* BUF_INIT_SECRET: wiped on reset, on growth (the old block), on free, and when fd_read_all
 * fails into it; buf_init_secret is the same. */
static void test_buf_init_secret(void **state) {
  (void)state;
  struct buf a = BUF_INIT_SECRET(4096), b;
  buf_init_secret(&b, 4096);
  assert_true(a.secret);
  assert_int_equal(a.max, 4096);
  assert_memory_equal(&a, &b, sizeof(a));
  assert_false(BUF_INIT(1).secret);

  assert_int_equal(buf_append(&a, "secretsecret", 12), 0);
  uint8_t *old = a.data;
  size_t old_alloc = a.alloc;
  tu_wipe_watch(old, old_alloc);
  assert_int_equal(buf_append_zero(&a, 1000), 0); /* grows: the old block is wiped and freed */
  assert_true(tu_wipe_freed());
  assert_true(tu_wipe_was_clean());
  assert_memory_equal(a.data, "secretsecret", 12);

  buf_reset(&a);
  assert_int_equal(a.len, 0);
  assert_true(all_zero(a.data, a.alloc));

  assert_int_equal(buf_append(&a, "secret", 6), 0);
  tu_wipe_watch(a.data, a.alloc);
  buf_free(&a);
  assert_true(tu_wipe_freed());
  assert_true(tu_wipe_was_clean());
  assert_null(a.data);

  /* a read that fails leaves no secret bytes behind */
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "0123456789", 10), 10);
  close(fds[1]);
  assert_int_equal(buf_append(&b, "kept", 4), 0);
  assert_int_equal(fd_read_all(fds[0], 8, &b), -EFBIG); /* it read 9 bytes: one too many */
  close(fds[0]);
  assert_int_equal(b.len, 4);
  assert_memory_equal(b.data, "kept", 4);
  assert_true(b.alloc >= 4 + 9);
  assert_true(all_zero(b.data + 4, 9));
  buf_free(&b);

  /* an ordinary buffer is not wiped on free */
  struct buf c = BUF_INIT(64);
  assert_int_equal(buf_append(&c, "x", 1), 0);
  tu_wipe_watch(c.data, 1);
  buf_free(&c);
  assert_true(tu_wipe_freed());
  assert_false(tu_wipe_was_clean());
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
      cmocka_unit_test(test_buf_cap),          cmocka_unit_test(test_buf_grow_and_ints),
      cmocka_unit_test(test_buf_printf_steal), cmocka_unit_test(test_buf_secret),
      cmocka_unit_test(test_buf_huge_cap),     cmocka_unit_test(test_buf_zeroed),
      cmocka_unit_test(test_buf_init_secret),  cmocka_unit_test(test_cursor),
      cmocka_unit_test(test_slices),           cmocka_unit_test(test_memcmp_ct),
      cmocka_unit_test(test_buf_html),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
