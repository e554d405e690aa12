#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base64.h"
#include "testutil.h"

/* RFC 4648 section 10 */
static const struct {
  const char *plain, *b64;
} rfc_vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(rfc_vectors); i++) {
    const char *pl = rfc_vectors[i].plain, *enc = rfc_vectors[i].b64;
    _cleanup_buf_ struct buf b = BUF_INIT(64);
    assert_int_equal(base64_encode_buf(pl, strlen(pl), &b), 0);
    assert_int_equal(b.len, strlen(enc));
    assert_int_equal(base64_encoded_len(strlen(pl)), strlen(enc));
    assert_memory_equal(b.data, enc, b.len);
    buf_reset(&b);
    assert_int_equal(base64_decode_buf(enc, strlen(enc), &b), 0);
    assert_int_equal(b.len, strlen(pl));
    if (b.len)
      assert_memory_equal(b.data, pl, b.len);
    char *s = base64_encode_alloc(pl, strlen(pl));
    assert_string_equal(s, enc);
    free(s);
  }
}

static void test_binary_roundtrip(void **state) {
  (void)state;
  uint8_t all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (uint8_t)i;
  for (size_t n = 0; n <= sizeof(all); n += 1) {
    _cleanup_buf_ struct buf e = BUF_INIT(1024), d = BUF_INIT(1024);
    assert_int_equal(base64_encode_buf(all + 256 - n, n, &e), 0);
    assert_int_equal(base64_decode_buf((char *)e.data, e.len, &d), 0);
    assert_int_equal(d.len, n);
    if (n)
      assert_memory_equal(d.data, all + 256 - n, n);
    buf_reset(&e);
    buf_reset(&d);
    assert_int_equal(base64url_encode_buf(all + 256 - n, n, false, &e), 0);
    assert_null(memchr(e.data, '=', e.len));
    assert_null(memchr(e.data, '+', e.len));
    assert_null(memchr(e.data, '/', e.len));
    assert_int_equal(base64url_decode_buf((char *)e.data, e.len, &d), 0);
    assert_int_equal(d.len, n);
    if (n)
      assert_memory_equal(d.data, all + 256 - n, n);
  }
}

static void test_alphabet(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  const uint8_t x[] = {0xfb, 0xff, 0xbf};
  assert_int_equal(base64_encode_buf(x, 3, &b), 0);
  assert_memory_equal(b.data, "+/+/", 4);
  buf_reset(&b);
  assert_int_equal(base64url_encode_buf(x, 3, false, &b), 0);
  assert_memory_equal(b.data, "-_-_", 4);
  buf_reset(&b);
  assert_int_equal(base64url_encode_buf("f", 1, true, &b), 0);
  assert_int_equal(b.len, 4);
  assert_memory_equal(b.data, "Zg==", 4);
  buf_reset(&b);
  /* each alphabet rejects the other's characters */
  assert_int_equal(base64_decode_buf("-_-_", 4, &b), -EINVAL);
  assert_int_equal(base64url_decode_buf("+/+/", 4, &b), -EINVAL);
  assert_int_equal(base64url_decode_buf("-_-_", 4, &b), 0);
  assert_memory_equal(b.data, x, 3);
  buf_reset(&b);
  /* url-safe accepts correct padding too, but not partial padding */
  assert_int_equal(base64url_decode_buf("Zg==", 4, &b), 0);
  assert_int_equal(b.len, 1);
  assert_int_equal(base64url_decode_buf("Zg=", 3, &b), -EINVAL);
  assert_int_equal(base64url_decode_buf("Zm8", 3, &b), 0);
  assert_int_equal(b.len, 3);
}

static void test_decode_rejects(void **state) {
  (void)state;
  static const char *const bad[] = {
      "Zg",       /* missing padding */
      "Zg=",      /* short padding */
      "Zm9",      /* length not a multiple of 4 */
      "Z===",     /* one data char in the last group */
      "====",     /* only padding */
      "Zg==Zg==", /* padding in the middle */
      "Zm=v",     /* '=' inside a group */
      "Zm9v\n",   /* whitespace */
      " Zm9v",    /* leading whitespace */
      "Zm9v====", /* extra padding group */
      "Zh==",     /* non-zero unused bits */
      "Zm9=",     /* non-zero unused bits */
      "Zm8*",     /* bad char */
      "Zm\x80v",  /* high byte */
      "Zg===",    /* too much padding */
      "A",
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(64);
    assert_int_equal(buf_append(&b, "keep", 4), 0);
    int r = base64_decode_buf(bad[i], strlen(bad[i]), &b);
    if (r != -EINVAL)
      fail_msg("accepted or wrong error %d for \"%s\"", r, bad[i]);
    assert_int_equal(b.len, 4); /* out keeps its length */
  }
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  assert_int_equal(base64_decode_buf("Zm9v\0Zm9", 8, &b), -EINVAL); /* embedded NUL */
  assert_int_equal(base64url_decode_buf("Z", 1, &b), -EINVAL);
  assert_int_equal(base64url_decode_buf("Zh", 2, &b), -EINVAL);
  assert_int_equal(base64url_decode_buf("Zg=A", 4, &b), -EINVAL);
}

static void test_caps(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(7);
  assert_int_equal(base64_encode_buf("foobar", 6, &b), -ENOBUFS);
  assert_int_equal(b.len, 0);
  assert_int_equal(base64_encode_buf("fooba", 5, &b), -ENOBUFS);
  assert_int_equal(base64_encode_buf("foo", 3, &b), 0);
  struct buf d = BUF_INIT(5);
  assert_int_equal(base64_decode_buf("Zm9vYmFy", 8, &d), -ENOBUFS);
  assert_int_equal(d.len, 0);
  assert_int_equal(base64_decode_buf("Zm9vYmE=", 8, &d), 0);
  assert_memory_equal(d.data, "fooba", 5);
  buf_free(&d);
  assert_int_equal(base64_encoded_len(SIZE_MAX), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_binary_roundtrip),
      cmocka_unit_test(test_alphabet),        cmocka_unit_test(test_decode_rejects),
      cmocka_unit_test(test_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
