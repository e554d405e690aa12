#include "base/base64.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64_encoded_len(size_t n) {
  size_t groups = n / 3 + (n % 3 != 0);
  size_t r;
  if (!size_mul(groups, 4, &r))
    return 0;
  return r;
}

static void b64_encode(const uint8_t *p, size_t len, const char *alpha, bool pad, char *out,
                       size_t *ret_n) {
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out[o++] = alpha[v >> 18];
    out[o++] = alpha[(v >> 12) & 63];
    out[o++] = alpha[(v >> 6) & 63];
    out[o++] = alpha[v & 63];
  }
  size_t rest = len - i;
  if (rest) {
    uint32_t v = (uint32_t)p[i] << 16 | (rest == 2 ? (uint32_t)p[i + 1] << 8 : 0);
    out[o++] = alpha[v >> 18];
    out[o++] = alpha[(v >> 12) & 63];
    if (rest == 2)
      out[o++] = alpha[(v >> 6) & 63];
    else if (pad)
      out[o++] = '=';
    if (pad)
      out[o++] = '=';
  }
  *ret_n = o;
}

static int b64_encode_buf(const void *data, size_t len, const char *alpha, bool pad,
                          struct buf *out) {
  size_t n = base64_encoded_len(len);
  if (n == 0 && len)
    return -ENOBUFS;
  int r = buf_reserve(out, n);
  if (r < 0)
    return r;
  size_t w;
  b64_encode(data, len, alpha, pad, (char *)out->data + out->len, &w);
  out->len += w;
  return 0;
}

int base64_encode_buf(const void *data, size_t len, struct buf *out) {
  return b64_encode_buf(data, len, b64_std, true, out);
}

int base64url_encode_buf(const void *data, size_t len, bool pad, struct buf *out) {
  return b64_encode_buf(data, len, b64_url, pad, out);
}

char *base64_encode_alloc(const void *data, size_t len) {
  size_t n = base64_encoded_len(len);
  if (n == 0 && len)
    return NULL;
  char *s = malloc(n + 1);
  if (!s)
    return NULL;
  size_t w;
  b64_encode(data, len, b64_std, true, s, &w);
  s[w] = 0;
  return s;
}

static int b64_val(char c, bool url) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == (url ? '-' : '+'))
    return 62;
  if (c == (url ? '_' : '/'))
    return 63;
  return -1;
}

/* Decodes the data characters s[0..n) (no padding), n % 4 != 1. */
static int b64_decode(const char *s, size_t n, bool url, struct buf *out) {
  size_t full = n / 4, rest = n % 4;
  size_t outlen = full * 3 + (rest ? rest - 1 : 0);
  int r = buf_reserve(out, outlen);
  if (r < 0)
    return r;
  uint8_t *o = out->data + out->len;
  for (size_t g = 0; g < full; g++) {
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
      int x = b64_val(s[4 * g + k], url);
      if (x < 0)
        return -EINVAL;
      v = v << 6 | (uint32_t)x;
    }
    *o++ = (uint8_t)(v >> 16);
    *o++ = (uint8_t)(v >> 8);
    *o++ = (uint8_t)v;
  }
  if (rest) {
    uint32_t v = 0;
    for (size_t k = 0; k < rest; k++) {
      int x = b64_val(s[4 * full + k], url);
      if (x < 0)
        return -EINVAL;
      v = v << 6 | (uint32_t)x;
    }
    if (rest == 2) {
      if (v & 0xf) /* non-canonical: unused bits set */
        return -EINVAL;
      *o++ = (uint8_t)(v >> 4);
    } else {
      if (v & 0x3)
        return -EINVAL;
      *o++ = (uint8_t)(v >> 10);
      *o++ = (uint8_t)(v >> 2);
    }
  }
  out->len += outlen;
  return 0;
}

int base64_decode_buf(const char *s, size_t slen, struct buf *out) {
  if (slen % 4)
    return -EINVAL;
  size_t n = slen;
  if (n && s[n - 1] == '=') {
    n--;
    if (s[n - 1] == '=')
      n--;
  }
  /* "xx==" leaves 2 data chars, "xxx=" 3; "x===" is caught by the alphabet check */
  if (n % 4 == 1)
    return -EINVAL;
  return b64_decode(s, n, false, out);
}

int base64url_decode_buf(const char *s, size_t slen, struct buf *out) {
  size_t n = slen;
  if (slen % 4 == 0 && n && s[n - 1] == '=') {
    n--;
    if (s[n - 1] == '=')
      n--;
  }
  if (n % 4 == 1)
    return -EINVAL;
  return b64_decode(s, n, true, out);
}
