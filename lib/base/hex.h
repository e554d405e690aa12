/* Lowercase hex encoding; decoding accepts either case and an optional 0x prefix. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* The value of one hex digit (either case), -1 for any other character. The one hex-digit
 * reader: parsers of hex numbers, %XX escapes and \\u escapes use it. */
static inline int hex_digit_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Writes 2*len hex chars plus NUL into out (size >= 2*len+1). */
void hex_encode(const void *data, size_t len, char *out);
/* Allocated hex string, NULL on out of memory. */
char *hex_encode_alloc(const void *data, size_t len);
int hex_append(struct buf *b, const void *data, size_t len);
/* Decodes exactly into out[out_len]: -EINVAL on bad chars or a length that is not 2*out_len. */
int hex_decode_exact(const char *s, size_t slen, uint8_t *out, size_t out_len);
/* Decodes into a buffer (its cap applies). Whitespace (space, \t, \r, \n) is skipped when
 * lenient is true, so hex text files with line breaks work. */
int hex_decode_buf(const char *s, size_t slen, bool lenient, struct buf *out);
