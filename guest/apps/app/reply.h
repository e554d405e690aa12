/* The HTTP/1.1 reply dstack-attest reads from tappd's socket (connection: close), split into its
 * status and body; a chunked body is decoded in place. */
#pragma once

#include <stddef.h>

/* buf holds the whole reply, n bytes, and one more byte that may be written (buf[n] = 0).
 * On success returns 0 with *status, and *body / *body_len pointing into buf (the headers are
 * NUL-terminated in place). On a malformed reply returns -1 and *why says what is wrong. */
int attest_reply_parse(char *buf, size_t n, int *status, char **body, size_t *body_len,
                       const char **why);
