/* A small strict TOML 1.0 parser building a tree of values.
 *
 * Supported: tables, arrays of tables, dotted/bare/quoted keys, basic/literal/multi-line
 * strings with every escape, integers (decimal, 0x, 0o, 0b, '_' separators), floats
 * (incl. inf/nan), booleans, arrays, inline tables, comments. Date-times are rejected with
 * an error. Redefinitions, bad escapes, control characters, invalid UTF-8 and the like are
 * errors, reported with 1-based line:column (column counted in bytes).
 *
 * Tables keep their keys in file order. Returned strings and values point into the tree
 * (valid until toml_free of the root). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/macro.h"

#define TOML_MAX_INPUT ((size_t)4 * 1024 * 1024)
#define TOML_MAX_DEPTH 64

enum toml_type {
  TOML_TABLE,
  TOML_ARRAY,
  TOML_STRING,
  TOML_INTEGER,
  TOML_FLOAT,
  TOML_BOOL,
};

struct toml_value;

struct toml_error {
  unsigned line, col; /* 1-based; 0 when the error has no position (e.g. input too large) */
  char msg[128];
};

/* Parses text[0..len). Returns 0, -EBADMSG (syntax or semantic error, err filled), -ENOBUFS
 * (input over TOML_MAX_INPUT), or -ENOMEM. err may be NULL. */
int toml_parse(const char *text, size_t len, struct toml_value **ret_root, struct toml_error *err);
/* Reads and parses a file ("-" = stdin). Errors reading the file are returned as is, with
 * err->msg describing them (line 0, and without the path: the caller names the file). */
int toml_parse_file(const char *path, struct toml_value **ret_root, struct toml_error *err);
void toml_free(struct toml_value *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct toml_value *, toml_free)
#define _cleanup_toml_ _cleanup_(toml_freep)

/* v must not be NULL. */
enum toml_type toml_type(const struct toml_value *v);
const char *toml_type_name(enum toml_type t);
/* Where the value starts in the input (1-based). */
unsigned toml_value_line(const struct toml_value *v);
unsigned toml_value_col(const struct toml_value *v);

/* Looks up one key in a table (NULL if absent or if table is not a table). */
const struct toml_value *toml_get(const struct toml_value *table, const char *key);
/* Looks up a dotted path "a.b.c" through nested tables (keys containing '.' need toml_get). */
const struct toml_value *toml_get_path(const struct toml_value *root, const char *path);

/* Typed getters by dotted path: 0, -ENOENT when absent, -EINVAL on the wrong type,
 * -ERANGE when an integer does not fit. Strings with an embedded NUL are -EINVAL. */
int toml_get_string(const struct toml_value *t, const char *path, const char **ret);
int toml_get_int(const struct toml_value *t, const char *path, int64_t *ret);
int toml_get_u64(const struct toml_value *t, const char *path, uint64_t *ret);
int toml_get_u32(const struct toml_value *t, const char *path, uint32_t *ret);
int toml_get_u16(const struct toml_value *t, const char *path, uint16_t *ret);
int toml_get_bool(const struct toml_value *t, const char *path, bool *ret);
/* Floats; integers are accepted and converted. */
int toml_get_float(const struct toml_value *t, const char *path, double *ret);
int toml_get_table(const struct toml_value *t, const char *path, const struct toml_value **ret);
int toml_get_array(const struct toml_value *t, const char *path, const struct toml_value **ret);
/* An array of strings as an allocated NULL-terminated vector (free with strv_free). */
int toml_get_strv(const struct toml_value *t, const char *path, char ***ret);

/* Accessors on a value itself: -EINVAL on the wrong type. */
int toml_value_string(const struct toml_value *v, const char **ret, size_t *ret_len);
int toml_value_int(const struct toml_value *v, int64_t *ret);
int toml_value_float(const struct toml_value *v, double *ret);
int toml_value_bool(const struct toml_value *v, bool *ret);

/* Arrays (0 / NULL when v is not an array or i is out of range). */
size_t toml_array_len(const struct toml_value *v);
const struct toml_value *toml_array_at(const struct toml_value *v, size_t i);

/* Tables in file order (0 / NULL when v is not a table or i is out of range). */
size_t toml_table_len(const struct toml_value *v);
const char *toml_table_key_at(const struct toml_value *v, size_t i);
const struct toml_value *toml_table_value_at(const struct toml_value *v, size_t i);

/* Config validation: finds the first key of table t that is not in the NULL-terminated list
 * allowed. Returns 0 when all keys are known, -EINVAL with *ret_key set otherwise. */
int toml_table_check_keys(const struct toml_value *t, const char *const *allowed,
                          const char **ret_key);

/* Writers for --dump-config: a quoted TOML basic string, and a key (bare when possible).
 * A string that is not valid UTF-8 cannot be written as TOML: -EILSEQ (out unchanged). */
int toml_append_string(struct buf *out, const char *s);
int toml_append_key(struct buf *out, const char *key);
