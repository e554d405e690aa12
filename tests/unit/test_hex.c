#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>

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

static void test_hex_digit_value(void **state) {
  (void)state;
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    assert_int_equal(hex_digit_value(digits[i]), i);
    assert_int_equal(hex_digit_value((char)toupper((unsigned char)digits[i])), i);
  }
  int n_valid = 0;
  for (int c = -128; c < 128; c++)
    n_valid += hex_digit_value((char)c) >= 0;
  assert_int_equal(n_valid, 22);
  assert_int_equal(hex_digit_value('g'), -1);
  assert_int_equal(hex_digit_value('G'), -1);
  assert_int_equal(hex_digit_value('/'), -1);
  assert_int_equal(hex_digit_value(':'), -1);
  assert_int_equal(hex_digit_value('@'), -1);
  assert_int_equal(hex_digit_value('`'), -1);
  assert_int_equal(hex_digit_value('\0'), -1);
  assert_int_equal(hex_digit_value((char)0xe0), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hex_encode),
      cmocka_unit_test(test_hex_decode_exact),
      cmocka_unit_test(test_hex_decode_buf),
      cmocka_unit_test(test_hex_digit_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
