/* jansson helpers: capped parsing of untrusted text, dumping into a struct buf, typed getters
 * and setters.
 *
 * Getters take an object and a key and return 0, -ENOENT when the key is absent or null,
 * or -EINVAL when obj is not an object or the value has the wrong type or form.
 * Returned strings point into the JSON value (valid while it lives). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/macro.h"

/* json_decrefp() comes with jansson >= 2.9. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Parses a JSON object or array from s[0..len). -ENOBUFS when len > max_len; -EBADMSG on a
 * syntax error, raw NUL bytes, \u0000 in strings, duplicate object keys, or trailing data. */
int json_parse_buf(const char *s, size_t len, size_t max_len, json_t **ret);
/* Same with extra jansson decode flags (e.g. JSON_DECODE_ANY to accept any top-level value,
 * JSON_ALLOW_NUL) and an optional error report (line, column, position, text). */
int json_parse_buf_full(const char *s, size_t len, size_t max_len, size_t flags, json_t **ret,
                        json_error_t *ret_err);

/* Appends the serialisation of j to out (jansson dump flags: JSON_COMPACT, JSON_SORT_KEYS,
 * JSON_INDENT(n), JSON_ENCODE_ANY...). -ENOBUFS past out's cap; out keeps its length on error. */
int json_dump_buf(const json_t *j, size_t flags, struct buf *out);
/* Allocated NUL-terminated compact serialisation; NULL on failure. */
char *json_dump_compact(const json_t *j);

int json_get_str(const json_t *obj, const char *key, const char **ret);
/* Integers: JSON integers only (no reals, no strings); -ERANGE when out of range. */
int json_get_u64(const json_t *obj, const char *key, uint64_t *ret);
int json_get_u32(const json_t *obj, const char *key, uint32_t *ret);
int json_get_i64(const json_t *obj, const char *key, int64_t *ret);
int json_get_bool(const json_t *obj, const char *key, bool *ret);
int json_get_object(const json_t *obj, const char *key, json_t **ret);
int json_get_array(const json_t *obj, const char *key, json_t **ret);
/* A hex string (either case, optional 0x) decoding to exactly len bytes. */
int json_get_hex(const json_t *obj, const char *key, uint8_t *out, size_t len);
/* A hex string of any length, appended to out (its cap applies: -ENOBUFS). */
int json_get_hex_buf(const json_t *obj, const char *key, struct buf *out);
/* A standard padded base64 string, appended to out. */
int json_get_base64_buf(const json_t *obj, const char *key, struct buf *out);

/* Setters replace any previous value. -EINVAL when obj is not an object, -ENOMEM otherwise. */
int json_set_str(json_t *obj, const char *key, const char *value);
int json_set_strn(json_t *obj, const char *key, const char *value, size_t len);
/* Lowercase hex without a prefix. */
int json_set_hex(json_t *obj, const char *key, const void *data, size_t len);
int json_set_base64(json_t *obj, const char *key, const void *data, size_t len);
/* -ERANGE when the value is larger than jansson's integer (INT64_MAX). */
int json_set_u64(json_t *obj, const char *key, uint64_t value);
int json_set_i64(json_t *obj, const char *key, int64_t value);
int json_set_bool(json_t *obj, const char *key, bool value);
/* Takes the reference to value (also on failure). */
int json_set_new(json_t *obj, const char *key, json_t *value);
