/* The one byte-buffer type: growable up to a mandatory cap, wiped on free when it held a secret.
 * Also non-owning slices and a cursor for reading untrusted input that fails on short data.
 *
 * Errors: -ENOBUFS when an append would pass the cap, -ENOMEM on allocation failure,
 * -EBADMSG when a cursor read runs past the end of its input. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macro.h"

struct slice {
  const uint8_t *ptr;
  size_t len;
};

#define SLICE(p, n) ((struct slice){.ptr = (const uint8_t *)(p), .len = (n)})
#define SLICE_STR(s) ((struct slice){.ptr = (const uint8_t *)(s), .len = strlen(s)})

/* The cap is part of the buffer: a zeroed struct buf (or BUF_INIT(0)) is a valid, empty buffer
 * with cap 0, so it can never hold a byte (appends are -ENOBUFS; buf_terminate works). Nothing
 * replaces a cap of 0 with another: give every buffer its cap when it is declared. A cap of
 * SIZE_MAX means "only memory limits this buffer" (allocations above PTRDIFF_MAX are -ENOMEM). */
struct buf {
  uint8_t *data;
  size_t len;
  size_t alloc;
  size_t max;  /* hard cap on len */
  bool secret; /* wipe on free/reset/growth */
};

/* Caps used across the tree. */
#define BUF_MAX_SMALL ((size_t)64 * 1024)
#define BUF_MAX_QUOTE ((size_t)64 * 1024)
#define BUF_MAX_FILE ((size_t)64 * 1024 * 1024)

#define BUF_INIT(cap) ((struct buf){.max = (cap)})
/* A buffer for key material: its bytes are wiped when freed, reset or moved by growth, and
 * when fd_read_all() fails into it. */
#define BUF_INIT_SECRET(cap) ((struct buf){.max = (cap), .secret = true})

void buf_init(struct buf *b, size_t max);
void buf_init_secret(struct buf *b, size_t max);
/* Releases memory (wiping it when secret); the buffer stays usable and empty. NULL is fine. */
void buf_free(struct buf *b);
/* Keeps the allocation, drops the content (wiped when secret). */
void buf_reset(struct buf *b);
/* Room for extra more bytes (and a NUL after them): -ENOBUFS past the cap, -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
/* s with < > & " ' as HTML character references (s may be NULL: nothing). */
int buf_append_html(struct buf *b, const char *s);
int buf_append_u8(struct buf *b, uint8_t v);
int buf_append_u16le(struct buf *b, uint16_t v);
int buf_append_u32le(struct buf *b, uint32_t v);
int buf_append_u64le(struct buf *b, uint64_t v);
int buf_append_u32be(struct buf *b, uint32_t v);
int buf_append_zero(struct buf *b, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) _printf_(2, 3);
/* Appends a NUL without counting it in len, so data can be used as a C string. */
int buf_terminate(struct buf *b);
/* Takes the data out (caller frees); the buffer becomes empty. ret_len may be NULL. */
uint8_t *buf_steal(struct buf *b, size_t *ret_len);
static inline struct slice buf_slice(const struct buf *b) {
  return SLICE(b->data, b->len);
}

static inline void buf_freep(struct buf *b) {
  buf_free(b);
}
#define _cleanup_buf_ _cleanup_(buf_freep)

bool slice_eq(struct slice a, struct slice b);
bool slice_eq_str(struct slice a, const char *s);
/* Allocated NUL-terminated copy, or NULL if out of memory or the slice holds a NUL. */
char *slice_strdup(struct slice s);

struct cursor {
  const uint8_t *p;
  size_t len;
  size_t off;
};

static inline void cursor_init(struct cursor *c, const void *p, size_t len) {
  c->p = p;
  c->len = len;
  c->off = 0;
}
static inline size_t cursor_left(const struct cursor *c) {
  return c->len - c->off;
}
static inline const uint8_t *cursor_pos(const struct cursor *c) {
  return c->p + c->off;
}
int cursor_skip(struct cursor *c, size_t n);
int cursor_read(struct cursor *c, void *out, size_t n);
int cursor_slice(struct cursor *c, size_t n, struct slice *ret);
int cursor_u8(struct cursor *c, uint8_t *ret);
int cursor_u16le(struct cursor *c, uint16_t *ret);
int cursor_u32le(struct cursor *c, uint32_t *ret);
int cursor_u64le(struct cursor *c, uint64_t *ret);
int cursor_u32be(struct cursor *c, uint32_t *ret);

/* Little-endian helpers for fixed layouts. */
static inline uint16_t le16_read(const uint8_t *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t le32_read(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t le64_read(const uint8_t *p) {
  return (uint64_t)le32_read(p) | ((uint64_t)le32_read(p + 4) << 32);
}
static inline void le16_write(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void le32_write(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline void le64_write(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
