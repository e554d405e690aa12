/* Base64 (RFC 4648): the standard alphabet with '=' padding, and the URL-safe alphabet
 * (used unpadded by JOSE/ACME). Decoding is strict: no whitespace, no characters outside the
 * alphabet, exact padding, and the unused low bits of the last character must be zero, so
 * every accepted text is the one canonical encoding of its bytes.
 *
 * Encoders and decoders append to out (its cap applies: -ENOBUFS). On any error out keeps its
 * previous length. Decoding errors are -EINVAL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Length of the padded standard encoding of n bytes (0 on overflow for absurd n). */
size_t base64_encoded_len(size_t n);

int base64_encode_buf(const void *data, size_t len, struct buf *out);
int base64_decode_buf(const char *s, size_t slen, struct buf *out);

/* URL-safe alphabet ('-' and '_'). Encoding pads only when pad is true; decoding accepts the
 * unpadded form and the correctly padded form. */
int base64url_encode_buf(const void *data, size_t len, bool pad, struct buf *out);
int base64url_decode_buf(const char *s, size_t slen, struct buf *out);

/* Allocated NUL-terminated standard encoding; NULL when out of memory. */
char *base64_encode_alloc(const void *data, size_t len);
