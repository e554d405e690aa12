/* Small string helpers: prefixes and suffixes, strict number parsing, trimming, splitting,
 * and NULL-terminated string vectors (strv). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/macro.h"

static inline bool str_eq(const char *a, const char *b) {
  return strcmp(a, b) == 0;
}
/* NULL-safe: two NULLs are equal, NULL and a string are not. */
static inline bool str_eq_ptr(const char *a, const char *b) {
  if (!a || !b)
    return a == b;
  return strcmp(a, b) == 0;
}
static inline bool str_isempty(const char *s) {
  return !s || !*s;
}

bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);
/* Returns the rest of s after prefix, or NULL when s does not start with prefix. */
const char *str_after_prefix(const char *s, const char *prefix);

/* Strict number parsing: the whole string must be the number; no whitespace, no empty string.
 * Decimal only, except the _base variant (base 10, 16, 8, 2; or 0 = decimal, or 0x/0o/0b prefix).
 * Unsigned parsers reject any sign; signed ones accept a leading '-' or '+'.
 * Returns 0, -EINVAL (not a number) or -ERANGE (does not fit). *ret is untouched on error. */
int str_to_u64(const char *s, uint64_t *ret);
int str_to_u64_base(const char *s, unsigned base, uint64_t *ret);
int str_to_u32(const char *s, uint32_t *ret);
int str_to_u16(const char *s, uint16_t *ret);
int str_to_i64(const char *s, int64_t *ret);
int str_to_i32(const char *s, int32_t *ret);
/* Same as str_to_u64 on the first len bytes of s (which need not be NUL-terminated). */
int str_to_u64_n(const char *s, size_t len, uint64_t *ret);
/* "1", "true", "yes", "on" / "0", "false", "no", "off" (ASCII case-insensitive). */
int str_to_bool(const char *s, bool *ret);
/* A byte size: a decimal number with an optional binary suffix K, M, G, T (also "KiB", "KB",
 * "k"... all meaning powers of 1024) or "B". -ERANGE on overflow. */
int str_to_size(const char *s, uint64_t *ret);

/* ASCII whitespace: space, \t, \n, \v, \f, \r. */
static inline bool char_is_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}
/* Trims ASCII whitespace in place: cuts the end with a NUL and returns a pointer past the
 * leading whitespace (inside s). */
char *str_strip(char *s);
/* Trims ASCII whitespace off both ends of a slice. */
struct slice slice_strip(struct slice s);
/* Lowercases ASCII letters in place; returns s. */
char *str_ascii_lower(char *s);
/* True if every byte is printable ASCII (0x20..0x7e). */
bool str_is_printable_ascii(const char *s);
/* Allocated formatted string (NULL on error). */
char *str_printf(const char *fmt, ...) _printf_(1, 2);
/* The one-line error message convention: formats into err when errlen > 0, returns r. */
int str_err(char *err, size_t errlen, int r, const char *fmt, ...) _printf_(4, 5);
/* The same for an allocated reason: sets *ret (when ret is not NULL and holds none yet: the
 * first failure, where it was decided, names it) and returns r. */
int str_reason(char **ret, int r, const char *fmt, ...) _printf_(3, 4);

/* UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
/* Length of the valid UTF-8 sequence at s (n > 0 bytes available), 0 if it is not one. */
size_t str_utf8_seq_len(const void *s, size_t n);
/* True when s[0..len) is valid UTF-8 throughout (NUL bytes count as valid). */
bool str_utf8_valid(const char *s, size_t len);
/* Copy of s[0..len) with every byte that does not start a valid sequence replaced by U+FFFD,
 * NUL-terminated (*ret_len excludes the NUL). -ENOMEM, -EINVAL (s NULL with len > 0). */
int str_utf8_sanitize(const char *s, size_t len, char **ret, size_t *ret_len);

/* Percent-decoding (RFC 3986 %XX, either case), the one decoder of URLs, queries and
 * URL-encoded headers. A decoded NUL is always -EBADMSG. A '%' without two hex digits after
 * it is -EBADMSG, or kept as it is with PCT_LENIENT. PCT_PLUS_SPACE: '+' decodes to a space
 * (query strings). *ret is allocated and NUL-terminated; ret_len (may be NULL) gets its
 * length. */
enum {
  PCT_PLUS_SPACE = 1 << 0,
  PCT_LENIENT = 1 << 1,
};
int str_pct_decode(const char *s, size_t len, unsigned flags, char **ret, size_t *ret_len);

/* String vectors: NULL-terminated arrays of allocated strings. strv_free accepts NULL. */
void strv_free(char **l);
static inline void strv_freep(char ***l) {
  strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
/* Appends a copy of s; *l may be NULL (an empty vector). */
int strv_push_dup(char ***l, const char *s);
/* A deep copy of l (NULL or empty: *ret NULL). */
int strv_copy(char *const *l, char ***ret);
/* Appends s and takes ownership of it (freed on failure too). */
int strv_push(char ***l, char *s);
/* Splits s at every byte found in seps. Empty fields are dropped when skip_empty is true.
 * The result is never NULL on success (possibly an empty vector). */
int str_split(const char *s, const char *seps, bool skip_empty, char ***ret);
/* Joins the strings with sep between them. */
int strv_join(char *const *l, const char *sep, char **ret);
