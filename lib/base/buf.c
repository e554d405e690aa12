#include "base/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max) {
  *b = (struct buf){.max = max};
}

void buf_init_secret(struct buf *b, size_t max) {
  *b = (struct buf){.max = max, .secret = true};
}

void buf_free(struct buf *b) {
  if (!b)
    return;
  if (b->data && b->secret)
    secure_wipe(b->data, b->alloc);
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
}

void buf_reset(struct buf *b) {
  if (b->data && b->secret)
    secure_wipe(b->data, b->alloc);
  b->len = 0;
}

/* Largest allocation asked for: malloc cannot give more than PTRDIFF_MAX bytes, and sizes up to
 * it leave room for the arithmetic below. */
#define BUF_ALLOC_MAX ((size_t)PTRDIFF_MAX)

int buf_reserve(struct buf *b, size_t extra) {
  size_t need;
  if (!size_add(b->len, extra, &need) || need > b->max)
    return -ENOBUFS;
  /* one spare byte so buf_terminate never has to grow past the cap */
  if (need < b->alloc)
    return 0;
  if (need >= BUF_ALLOC_MAX)
    return -ENOMEM;
  /* want <= limit: need <= max and need < BUF_ALLOC_MAX; max + 1 cannot overflow below it */
  size_t want = need + 1;
  size_t limit = b->max < BUF_ALLOC_MAX ? b->max + 1 : BUF_ALLOC_MAX;
  size_t n = b->alloc ? b->alloc : 64;
  while (n < want)
    n = n > limit / 2 ? limit : n * 2;
  if (n > limit)
    n = limit;
  uint8_t *p;
  if (b->secret) {
    /* never leave a stale copy of a secret behind in freed memory */
    p = malloc(n);
    if (!p)
      return -ENOMEM;
    if (b->data) {
      memcpy(p, b->data, b->len);
      secure_wipe(b->data, b->alloc);
      free(b->data);
    }
  } else {
    p = realloc(b->data, n);
    if (!p)
      return -ENOMEM;
  }
  b->data = p;
  b->alloc = n;
  return 0;
}

int buf_append(struct buf *b, const void *p, size_t n) {
  int r = buf_reserve(b, n);
  if (r < 0)
    return r;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int buf_append_str(struct buf *b, const char *s) {
  return buf_append(b, s, strlen(s));
}

int buf_append_html(struct buf *b, const char *s) {
  int r = 0;
  for (; r >= 0 && s && *s; s++) {
    switch (*s) {
    case '<':
      r = buf_append_str(b, "&lt;");
      break;
    case '>':
      r = buf_append_str(b, "&gt;");
      break;
    case '&':
      r = buf_append_str(b, "&amp;");
      break;
    case '"':
      r = buf_append_str(b, "&quot;");
      break;
    case '\'':
      r = buf_append_str(b, "&#39;");
      break;
    default:
      r = buf_append(b, s, 1);
    }
  }
  return r;
}

int buf_append_u8(struct buf *b, uint8_t v) {
  return buf_append(b, &v, 1);
}

int buf_append_u16le(struct buf *b, uint16_t v) {
  uint8_t t[2];
  le16_write(t, v);
  return buf_append(b, t, sizeof(t));
}

int buf_append_u32le(struct buf *b, uint32_t v) {
  uint8_t t[4];
  le32_write(t, v);
  return buf_append(b, t, sizeof(t));
}

int buf_append_u64le(struct buf *b, uint64_t v) {
  uint8_t t[8];
  le64_write(t, v);
  return buf_append(b, t, sizeof(t));
}

int buf_append_u32be(struct buf *b, uint32_t v) {
  uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  return buf_append(b, t, sizeof(t));
}

int buf_append_zero(struct buf *b, size_t n) {
  int r = buf_reserve(b, n);
  if (r < 0)
    return r;
  memset(b->data + b->len, 0, n);
  b->len += n;
  return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -EINVAL;
  int r = buf_reserve(b, (size_t)n);
  if (r < 0)
    return r;
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int buf_terminate(struct buf *b) {
  int r = buf_reserve(b, 0);
  if (r < 0)
    return r;
  b->data[b->len] = 0;
  return 0;
}

uint8_t *buf_steal(struct buf *b, size_t *ret_len) {
  if (!b->data && buf_reserve(b, 0) < 0)
    return NULL;
  uint8_t *p = b->data;
  p[b->len] = 0;
  if (ret_len)
    *ret_len = b->len;
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
  return p;
}

bool slice_eq(struct slice a, struct slice b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool slice_eq_str(struct slice a, const char *s) {
  return slice_eq(a, SLICE_STR(s));
}

char *slice_strdup(struct slice s) {
  if (s.len && memchr(s.ptr, 0, s.len))
    return NULL;
  char *p = malloc(s.len + 1);
  if (!p)
    return NULL;
  if (s.len)
    memcpy(p, s.ptr, s.len);
  p[s.len] = 0;
  return p;
}

int cursor_skip(struct cursor *c, size_t n) {
  if (n > cursor_left(c))
    return -EBADMSG;
  c->off += n;
  return 0;
}

int cursor_read(struct cursor *c, void *out, size_t n) {
  if (n > cursor_left(c))
    return -EBADMSG;
  if (n)
    memcpy(out, c->p + c->off, n);
  c->off += n;
  return 0;
}

int cursor_slice(struct cursor *c, size_t n, struct slice *ret) {
  if (n > cursor_left(c))
    return -EBADMSG;
  *ret = SLICE(c->p + c->off, n);
  c->off += n;
  return 0;
}

int cursor_u8(struct cursor *c, uint8_t *ret) {
  return cursor_read(c, ret, 1);
}

int cursor_u16le(struct cursor *c, uint16_t *ret) {
  uint8_t t[2];
  int r = cursor_read(c, t, 2);
  if (r == 0)
    *ret = le16_read(t);
  return r;
}

int cursor_u32le(struct cursor *c, uint32_t *ret) {
  uint8_t t[4];
  int r = cursor_read(c, t, 4);
  if (r == 0)
    *ret = le32_read(t);
  return r;
}

int cursor_u64le(struct cursor *c, uint64_t *ret) {
  uint8_t t[8];
  int r = cursor_read(c, t, 8);
  if (r == 0)
    *ret = le64_read(t);
  return r;
}

int cursor_u32be(struct cursor *c, uint32_t *ret) {
  uint8_t t[4];
  int r = cursor_read(c, t, 4);
  if (r == 0)
    *ret = ((uint32_t)t[0] << 24) | ((uint32_t)t[1] << 16) | ((uint32_t)t[2] << 8) | t[3];
  return r;
}
