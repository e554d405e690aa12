#include "base/hex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

void hex_encode(const void *data, size_t len, char *out) {
  const uint8_t *p = data;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = hex_digits[p[i] >> 4];
    out[2 * i + 1] = hex_digits[p[i] & 15];
  }
  out[2 * len] = 0;
}

char *hex_encode_alloc(const void *data, size_t len) {
  size_t n;
  if (!size_mul(len, 2, &n) || !size_add(n, 1, &n))
    return NULL;
  char *s = malloc(n);
  if (s)
    hex_encode(data, len, s);
  return s;
}

int hex_append(struct buf *b, const void *data, size_t len) {
  size_t n;
  if (!size_mul(len, 2, &n))
    return -ENOBUFS;
  int r = buf_reserve(b, n);
  if (r < 0)
    return r;
  hex_encode(data, len, (char *)b->data + b->len);
  b->len += n;
  return 0;
}

static void hex_strip_prefix(const char **s, size_t *slen) {
  if (*slen >= 2 && (*s)[0] == '0' && ((*s)[1] == 'x' || (*s)[1] == 'X')) {
    *s += 2;
    *slen -= 2;
  }
}

int hex_decode_exact(const char *s, size_t slen, uint8_t *out, size_t out_len) {
  hex_strip_prefix(&s, &slen);
  if (slen / 2 != out_len || slen % 2)
    return -EINVAL;
  for (size_t i = 0; i < out_len; i++) {
    int hi = hex_digit_value(s[2 * i]), lo = hex_digit_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -EINVAL;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

int hex_decode_buf(const char *s, size_t slen, bool lenient, struct buf *out) {
  int hi = -1, r;
  if (lenient)
    while (slen && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
      s++;
      slen--;
    }
  hex_strip_prefix(&s, &slen);
  for (size_t i = 0; i < slen; i++) {
    char c = s[i];
    if (lenient && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
      continue;
    int v = hex_digit_value(c);
    if (v < 0)
      return -EINVAL;
    if (hi < 0) {
      hi = v;
      continue;
    }
    r = buf_append_u8(out, (uint8_t)(hi << 4 | v));
    if (r < 0)
      return r;
    hi = -1;
  }
  return hi < 0 ? 0 : -EINVAL;
}
