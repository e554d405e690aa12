/* Table-driven configuration: one table of options per daemon drives the defaults, loading a
 * TOML document onto a struct, freeing the struct's owned fields, and --dump-config.
 *
 * Each option names a dotted table path ("" = top level), a key, a type and the offset of its
 * field in the config struct. Tables are known when an option lives in them or below them; any
 * other table or key is an error.
 *
 * Tables are written with the typed entry macros below, never with bare initializers:
 *
 *   static const struct conftab_opt opts[] = {
 *       CONFTAB_STR(struct kms_config, "", "address", address, "0.0.0.0"),
 *       CONFTAB_U16(struct kms_config, "", "port", port, 8043),
 *       CONFTAB_BOOL(struct kms_config, "tls", "ra_tls", tls_ra, false),
 *   };
 *
 * Each macro checks at compile time that the struct field has the C type of the option
 * (CONFTAB_U16 on a uint32_t field, CONFTAB_STR on a char ** field, ... do not compile: a
 * _Static_assert on __builtin_types_compatible_p inside an integer constant expression, see
 * CONFTAB_FIELD_), that numeric and boolean defaults are integer constants within the range
 * of the type (a misspelt `ture`, a string "true" or a port of 70000 do not compile), and
 * that string defaults are string literals. tests/unit/conftab_compile_fail.c holds the
 * snippets that must not compile; a unit test builds them with the compiler and expects
 * failure.
 *
 * conftab_defaults() checks the table too (for tables built by hand): defaults in range,
 * tri-state and hex defaults valid, no key or field twice, every table's options in one run
 * with the top-level ones first (what conftab_dump() needs to write TOML that loads back), no
 * key that is also the name of a table below it. A bad table is -EINVAL there, at start-up.
 *
 * Secrets: an option made with CONFTAB_SECRET_STR is wiped (not only freed) whenever its value
 * is replaced or freed, and conftab_dump() writes it, when set, as the comment line
 * "# key = (set, not shown)" unless asked for secrets. The dump stays valid TOML that loads
 * back; loading it leaves that option at its default. Load errors name keys, never values. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/macro.h"
#include "base/toml.h"

enum conftab_type {
  CONFTAB_T_STR,     /* char *; default as is */
  CONFTAB_T_BOOL,    /* bool; default 0 or 1 */
  CONFTAB_T_TRIBOOL, /* char *: "" (unset), "true" or "false"; TOML booleans */
  CONFTAB_T_U16,     /* uint16_t; TOML integer 0..65535 */
  CONFTAB_T_U32,     /* uint32_t; TOML integer 0..2^32-1 */
  CONFTAB_T_SIZE,    /* uint64_t; TOML integer >= 0 or a size string like "10MiB" (<= INT64_MAX) */
  CONFTAB_T_STRV,    /* char **, NULL-terminated, never NULL once set; default comma-separated */
  CONFTAB_T_HEXV,    /* like STRV, items hex (optional 0x, stored lowercase without it), hexlen
                      * bytes each, or 1..64 bytes when hexlen is 0 */
};

struct conftab_opt {
  const char *section; /* dotted table path; "" = top level */
  const char *key;
  enum conftab_type type;
  size_t offset;    /* of the field in the config struct */
  const char *def;  /* STR, TRIBOOL, STRV, HEXV (NULL = "") */
  uint64_t def_num; /* BOOL (0 or 1), U16, U32, SIZE */
  size_t hexlen;    /* HEXV only */
  const char *note; /* TRIBOOL: dumped as "# key: unset, <note>" while unset */
  bool secret;      /* wiped when replaced or freed; hidden by conftab_dump() */
};

struct conftab {
  const struct conftab_opt *opts;
  size_t n_opts;
};

/* The offset of T's member f_, which must have the C type ctype (a compile error otherwise).
 * The assertion sits in an anonymous struct inside sizeof, multiplied by 0, so the whole is an
 * integer constant expression usable in a static initializer. */
#define CONFTAB_FIELD_(T, f_, ctype)                                                              \
  (offsetof(T, f_) +                                                                              \
   0 * sizeof(struct {                                                                            \
     _Static_assert(__builtin_types_compatible_p(__typeof__(((T *)0)->f_), ctype),                \
                    "conftab: " #T "." #f_ " is not " #ctype);                                    \
     int conftab_ok_;                                                                             \
   }))
/* An integer constant default d_ in 0..max (a compile error otherwise). */
#define CONFTAB_NUM_(d_, max)                                                                     \
  ((uint64_t)(d_) +                                                                               \
   0 * sizeof(struct {                                                                            \
     _Static_assert((uintmax_t)(d_) <= (uintmax_t)(max),                                          \
                    "conftab: default " #d_ " is out of range");                                  \
     int conftab_ok_;                                                                             \
   }))

/* Entries: T the config struct type, s_ the table, k_ the key, f_ the member (may be nested,
 * "policy.mrtd"), d_ the default ("" d_: string literals only). */
#define CONFTAB_STR(T, s_, k_, f_, d_)                                                            \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_STR, .offset = CONFTAB_FIELD_(T, f_, char *),  \
   .def = "" d_}
#define CONFTAB_SECRET_STR(T, s_, k_, f_, d_)                                                     \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_STR, .offset = CONFTAB_FIELD_(T, f_, char *),  \
   .def = "" d_, .secret = true}
/* d_ is "", "true" or "false" (checked by conftab_defaults); note_ says what unset means. */
#define CONFTAB_TRIBOOL(T, s_, k_, f_, d_, note_)                                                 \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_TRIBOOL,                                       \
   .offset = CONFTAB_FIELD_(T, f_, char *), .def = "" d_, .note = (note_)}
#define CONFTAB_BOOL(T, s_, k_, f_, d_)                                                           \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_BOOL, .offset = CONFTAB_FIELD_(T, f_, bool),   \
   .def_num = CONFTAB_NUM_(d_, 1)}
#define CONFTAB_U16(T, s_, k_, f_, d_)                                                            \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_U16,                                           \
   .offset = CONFTAB_FIELD_(T, f_, uint16_t), .def_num = CONFTAB_NUM_(d_, UINT16_MAX)}
#define CONFTAB_U32(T, s_, k_, f_, d_)                                                            \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_U32,                                           \
   .offset = CONFTAB_FIELD_(T, f_, uint32_t), .def_num = CONFTAB_NUM_(d_, UINT32_MAX)}
#define CONFTAB_SIZE(T, s_, k_, f_, d_)                                                           \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_SIZE,                                          \
   .offset = CONFTAB_FIELD_(T, f_, uint64_t), .def_num = CONFTAB_NUM_(d_, INT64_MAX)}
/* d_ is a comma-separated list ("" = empty). */
#define CONFTAB_STRV(T, s_, k_, f_, d_)                                                           \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_STRV, .offset = CONFTAB_FIELD_(T, f_, char **),\
   .def = "" d_}
#define CONFTAB_HEXV(T, s_, k_, f_, d_, hexlen_)                                                  \
  {.section = (s_), .key = (k_), .type = CONFTAB_T_HEXV, .offset = CONFTAB_FIELD_(T, f_, char **),\
   .def = "" d_, .hexlen = CONFTAB_NUM_(hexlen_, 64)}

/* Checks the table (see above) and sets every option of obj to its default (replacing owned
 * values already there). -EINVAL for a bad table or default, -ENOMEM. */
int conftab_defaults(const struct conftab *t, void *obj);
/* Frees the owned fields (strings and lists; secrets wiped first) and sets them to NULL.
 * obj may be NULL. */
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

/* conftab_dump() flags. */
enum {
  CONFTAB_DUMP_SECRETS = 1 << 0, /* write secrets' values (for a 0600 file, never for logs) */
};
#define CONFTAB_SECRET_HIDDEN "(set, not shown)"

/* Writes obj as TOML that conftab_load() reads back to the same values (secrets hidden as
 * "# key = (set, not shown)" unless CONFTAB_DUMP_SECRETS; loading leaves them at their default):
 * top-level options first, then one [table] per run of options in table order. A string that
 * TOML cannot hold (not UTF-8) is -EILSEQ; on any error out keeps its previous length. */
int conftab_dump(const struct conftab *t, const void *obj, unsigned flags, struct buf *out);

/* Helpers for daemons' own checks and defaults. conftab_error formats into err (when given)
 * and returns -EINVAL. */
_printf_(3, 4) int conftab_error(char *err, size_t errlen, const char *fmt, ...);
/* Replaces *dst with a copy of v. */
int conftab_set_str(char **dst, const char *v);
/* Replaces the list *dst with l (owned; NULL = an empty list). */
int conftab_set_strv(char ***dst, char **l);
