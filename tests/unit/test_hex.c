#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/hex.h"
#include "testutil.h"

static void test_hex_encode(void **state) {
  (void)state;
  char out[9];
  hex_encode("\x00\xff\x10\xab", 4, out);
  assert_string_equal(out, "00ff10ab");
  char *a = hex_encode_alloc("", 0);
  assert_string_equal(a, "");
  free(a);
  _cleanup_buf_ struct buf b = BUF_INIT(4);
  assert_int_equal(hex_append(&b, "\x01\x02", 2), 0);
  assert_int_equal(hex_append(&b, "\x03", 1), -ENOBUFS);
}

static void test_hex_decode_exact(void **state) {
  (void)state;
  uint8_t out[3];
  assert_int_equal(hex_decode_exact("0xA0b1C2", 8, out, 3), 0);
  assert_memory_equal(out, "\xa0\xb1\xc2", 3);
  assert_int_equal(hex_decode_exact("a0b1c", 5, out, 3), -EINVAL);
  assert_int_equal(hex_decode_exact("a0b1c2d3", 8, out, 3), -EINVAL);
  assert_int_equal(hex_decode_exact("a0b1cg", 6, out, 3), -EINVAL);
}

static void test_hex_decode_buf(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(16);
  const char *t = " 0x01 02\n0304\r\n";
  assert_int_equal(hex_decode_buf(t, strlen(t), true, &b), 0);
  assert_int_equal(b.len, 4);
  assert_memory_equal(b.data, "\x01\x02\x03\x04", 4);
  buf_reset(&b);
  assert_int_equal(hex_decode_buf(t, strlen(t), false, &b), -EINVAL);
  buf_reset(&b);
  assert_int_equal(hex_decode_buf("abc", 3, false, &b), -EINVAL);
  buf_reset(&b);
  assert_int_equal(hex_decode_buf("zz", 2, false, &b), -EINVAL);
  struct buf small = BUF_INIT(1);
  assert_int_equal(hex_decode_buf("0102", 4, false, &small), -ENOBUFS);
  buf_free(&small);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hex_encode),
      cmocka_unit_test(test_hex_decode_exact),
      cmocka_unit_test(test_hex_decode_buf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
