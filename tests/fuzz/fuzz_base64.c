/* Base64 decoding of arbitrary text with round trips: accepted text is canonical, so it
 * re-encodes to exactly itself; any bytes encode to text that decodes back to them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_std(const char *s, size_t n) {
  struct buf d = BUF_INIT(1 << 16), e = BUF_INIT(1 << 17);
  int r = base64_decode_buf(s, n, &d);
  if (r == 0) {
    if (base64_encode_buf(d.data, d.len, &e) < 0)
      abort();
    if (e.len != n || memcmp(e.data, s, n) != 0)
      abort();
  } else if (r != -EINVAL && r != -ENOBUFS) {
    abort();
  }
  buf_free(&d);
  buf_free(&e);
}

static void check_url(const char *s, size_t n) {
  struct buf d = BUF_INIT(1 << 16), e = BUF_INIT(1 << 17);
  int r = base64url_decode_buf(s, n, &d);
  if (r == 0) {
    bool padded = n && s[n - 1] == '=';
    if (base64url_encode_buf(d.data, d.len, padded, &e) < 0)
      abort();
    if (e.len != n || memcmp(e.data, s, n) != 0)
      abort();
  } else if (r != -EINVAL && r != -ENOBUFS) {
    abort();
  }
  buf_free(&d);
  buf_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_std((const char *)data, size);
  check_url((const char *)data, size);

  struct buf e = BUF_INIT(1 << 17), d = BUF_INIT(1 << 16);
  if (base64_encode_buf(data, size, &e) < 0 || e.len != base64_encoded_len(size))
    abort();
  if (base64_decode_buf((const char *)e.data, e.len, &d) < 0 || d.len != size ||
      (size && memcmp(d.data, data, size) != 0))
    abort();
  char *a = base64_encode_alloc(data, size);
  if (!a || strlen(a) != e.len || memcmp(a, e.data, e.len) != 0)
    abort();
  free(a);
  buf_reset(&e);
  buf_reset(&d);
  if (base64url_encode_buf(data, size, false, &e) < 0)
    abort();
  if (base64url_decode_buf((const char *)e.data, e.len, &d) < 0 || d.len != size ||
      (size && memcmp(d.data, data, size) != 0))
    abort();
  buf_free(&e);
  buf_free(&d);
  return 0;
}
