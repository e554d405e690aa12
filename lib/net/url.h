/* URL pieces for the HTTP server: percent-decoding, query strings, request path normalisation.
 *
 * Errors: -EBADMSG malformed input (bad %-escape, decoded NUL, ".." segment, path not starting
 * with '/'), -ENOBUFS over a cap, -ENOMEM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Longest request path accepted (raw, before decoding), and most query parameters. */
#define URL_PATH_MAX 4096
#define URL_QUERY_MAX_PARAMS 256

/* Percent-decoding is str_pct_decode (base/str.h). */
/* Appends s[0..len) percent-encoded (everything except ALPHA DIGIT "-._~") to out. */
int url_encode(const char *s, size_t len, struct buf *out);

/* Decodes and normalises an origin-form path (s[0..len), no query): must start with '/';
 * "." segments and repeated slashes are removed; ".." segments (also when encoded), NUL bytes,
 * control characters and paths longer than URL_PATH_MAX are rejected. A trailing '/' is kept. */
int url_path_normalize(const char *s, size_t len, char **ret);

struct url_query_param {
  char *key;   /* decoded */
  char *value; /* decoded; "" when the parameter had no '=' */
  bool has_value;
};

struct url_query {
  struct url_query_param *params; /* in order, repeated keys kept */
  size_t n;
};

/* Parses "a=b&c&a=d" (s[0..len), without the '?'); '+' is a space in keys and values; empty
 * fields ("a&&b") are skipped. On error *ret is empty. */
int url_query_parse(const char *s, size_t len, struct url_query *ret);
/* Frees the parameters; the struct becomes empty. NULL is fine. */
void url_query_free(struct url_query *q);
/* First parameter named key, or NULL. */
const struct url_query_param *url_query_find(const struct url_query *q, const char *key);
/* Value of the first parameter named key ("" for a bare key); -ENOENT when absent. */
int url_query_get(const struct url_query *q, const char *key, const char **ret_value);
