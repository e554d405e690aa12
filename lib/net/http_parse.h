/* HTTP/1.1 request-head parsing for http_server.c (pure functions over bytes, fuzzed through the
 * server's connection path).
 *
 * Strict where ambiguity is dangerous (request smuggling): one space between request-line parts,
 * no whitespace before ':', no obs-fold, no bare CR, no control bytes in values. LF alone is
 * accepted as a line end. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX_FIELDS 100
#define HTTP_METHOD_MAX 32

struct http_head_field {
  char *name;  /* token, NUL-terminated in place */
  char *value; /* without surrounding SP/HTAB, NUL-terminated in place */
};

struct http_head {
  char *method;
  char *target; /* request-target as sent */
  int minor;    /* HTTP/1.<minor>, 0 or 1 */
  struct http_head_field fields[HTTP_HEAD_MAX_FIELDS];
  size_t n_fields;
};

/* Offset just past the empty line ending the head in p[0..len), searching from `from` (a
 * previous search's len, to avoid rescanning), or 0 when not there yet. p must not start with
 * CR/LF. */
size_t http_head_find_end(const char *p, size_t len, size_t from);

/* Parses a complete head p[0..len) (ending with the empty line) in place, writing NULs.
 * -EBADMSG malformed, -E2BIG more than HTTP_HEAD_MAX_FIELDS fields, -EPROTONOSUPPORT an
 * HTTP version other than 1.0/1.1, -EAGAIN no empty line within len. */
int http_head_parse(char *p, size_t len, struct http_head *ret);

/* Case-insensitive lookup of the first field named name; NULL if absent. */
const char *http_head_get(const struct http_head *h, const char *name);
/* Number of fields named name. */
size_t http_head_count(const struct http_head *h, const char *name);

/* Content-Length value: digits, or a comma list of identical values. -EBADMSG otherwise. */
int http_content_length_parse(const char *v, uint64_t *ret);
/* True if the comma-separated list v contains token (case-insensitive). */
bool http_list_has_token(const char *v, const char *token);
/* A chunk-size line (without its line end): hex size, optional ";ext". -EBADMSG malformed or
 * over 2^60. */
int http_chunk_size_parse(const char *line, size_t len, uint64_t *ret);
/* RFC 9110 token character. */
bool http_is_tchar(unsigned char c);
