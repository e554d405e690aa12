/* Hex decoding of arbitrary text, strict and lenient, with round trips: whatever decodes
 * strictly encodes back to the same text (lowercased, prefix dropped), and any bytes encode
 * to text that decodes back to them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  struct buf d = BUF_INIT(1 << 16), l = BUF_INIT(1 << 16), e = BUF_INIT(1 << 17);

  int r = hex_decode_buf(s, size, false, &d);
  if (r == 0) {
    size_t off = size >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 2 : 0;
    if (d.len * 2 != size - off)
      abort();
    if (hex_append(&e, d.data, d.len) < 0)
      abort();
    for (size_t i = 0; i < e.len; i++) {
      char c = s[off + i];
      if (c >= 'A' && c <= 'F')
        c = (char)(c + 32);
      if (c != (char)e.data[i])
        abort();
    }
    /* the exact decoder agrees */
    uint8_t *x = malloc(d.len + 1);
    if (!x || hex_decode_exact(s, size, x, d.len) != 0 || memcmp(x, d.data, d.len) != 0)
      abort();
    if (hex_decode_exact(s, size, x, d.len + 1) != -EINVAL)
      abort();
    free(x);
    /* strict success implies lenient success with the same bytes */
    if (hex_decode_buf(s, size, true, &l) != 0 || l.len != d.len ||
        memcmp(l.data, d.data, d.len) != 0)
      abort();
  } else {
    (void)hex_decode_buf(s, size, true, &l);
  }

  /* bytes -> hex -> bytes */
  buf_reset(&e);
  buf_reset(&d);
  if (hex_append(&e, data, size) == 0) {
    char *a = hex_encode_alloc(data, size);
    if (!a || strlen(a) != e.len || memcmp(a, e.data, e.len) != 0)
      abort();
    free(a);
    if (hex_decode_buf((const char *)e.data, e.len, false, &d) != 0 || d.len != size ||
        (size && memcmp(d.data, data, size) != 0))
      abort();
  }
  buf_free(&d);
  buf_free(&l);
  buf_free(&e);
  return 0;
}
