/* Table-driven configuration: one table of options per daemon drives the defaults, loading a
 * TOML document onto a struct, freeing the struct's owned fields, and --dump-config.
 *
 * Each option names a dotted table path ("" = top level), a key, a type and the offset of its
 * field in the config struct; the default is given as text. Tables are known when an option
 * lives in them or below them; any other table or key is an error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/macro.h"
#include "base/toml.h"

enum conftab_type {
  CONFTAB_STR,     /* char *; default as is */
  CONFTAB_BOOL,    /* bool; default "true" or anything else for false */
  CONFTAB_TRIBOOL, /* char *: "" (unset), "true" or "false"; TOML booleans */
  CONFTAB_U16,     /* uint16_t; TOML integer 0..65535 */
  CONFTAB_U32,     /* uint32_t; TOML integer 0..2^32-1 */
  CONFTAB_SIZE,    /* uint64_t; TOML integer >= 0 or a size string like "10MiB" (<= INT64_MAX) */
  CONFTAB_STRV,    /* char **, NULL-terminated, never NULL once set; default comma-separated */
  CONFTAB_HEXV,    /* like STRV, items hex (optional 0x, stored lowercase without it), hexlen
                    * bytes each, or 1..64 bytes when hexlen is 0 */
};

struct conftab_opt {
  const char *section; /* dotted table path; "" = top level */
  const char *key;
  enum conftab_type type;
  size_t offset; /* of the field in the config struct */
  const char *def;
  size_t hexlen;    /* CONFTAB_HEXV only */
  const char *note; /* CONFTAB_TRIBOOL: dumped as "# key: unset, <note>" while unset */
};

struct conftab {
  const struct conftab_opt *opts;
  size_t n_opts;
};

/* Sets every option of obj to its default (replacing owned values already there). */
int conftab_defaults(const struct conftab *t, void *obj);
/* Frees the owned fields (strings and lists) and sets them to NULL. obj may be NULL. */
void conftab_free(const struct conftab *t, void *obj);

/* Applies a parsed document on top of obj. Unknown tables or keys and values of the wrong type
 * are -EINVAL with "line L:C: message" in err (the message names the table and key). */
int conftab_load(const struct conftab *t, void *obj, const struct toml_value *root, char *err,
                 size_t errlen);
/* Parses and applies text; syntax errors are reported as "line L:C: message". */
int conftab_load_text(const struct conftab *t, void *obj, const char *text, size_t len, char *err,
                      size_t errlen);
/* Parses and applies a file ("-" = stdin); errors are "path:L:C: message" or "path: message". */
int conftab_load_file(const struct conftab *t, void *obj, const char *path, char *err,
                      size_t errlen);

/* Writes obj as TOML that conftab_load() reads back to the same values: top-level options
 * first, then one [table] per run of options in table order. */
int conftab_dump(const struct conftab *t, const void *obj, struct buf *out);

/* Helpers for daemons' own checks and defaults. conftab_error formats into err (when given)
 * and returns -EINVAL. */
_printf_(3, 4) int conftab_error(char *err, size_t errlen, const char *fmt, ...);
/* Replaces *dst with a copy of v. */
int conftab_set_str(char **dst, const char *v);
/* Replaces the list *dst with l (owned; NULL = an empty list). */
int conftab_set_strv(char ***dst, char **l);
