/* Table-driven configuration on top of the TOML parser. */
#include "base/conftab.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"

static void *field(void *obj, const struct conftab_opt *o) {
  return (char *)obj + o->offset;
}
static const void *cfield(const void *obj, const struct conftab_opt *o) {
  return (const char *)obj + o->offset;
}

static bool owns_str(enum conftab_type t) {
  return t == CONFTAB_T_STR || t == CONFTAB_T_TRIBOOL;
}
static bool is_list(enum conftab_type t) {
  return t == CONFTAB_T_STRV || t == CONFTAB_T_HEXV;
}

static void str_wipe_free(char *s) {
  if (s) {
    secure_wipe(s, strlen(s));
    free(s);
  }
}

static void strv_wipe_free(char **l) {
  for (size_t i = 0; l && l[i]; i++)
    secure_wipe(l[i], strlen(l[i]));
  strv_free(l);
}

int conftab_error(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* The helpers do not know whether dst is a secret: the value replaced is wiped either way. */
int conftab_set_str(char **dst, const char *v) {
  char *n = strdup(v);
  if (!n)
    return -ENOMEM;
  str_wipe_free(*dst);
  *dst = n;
  return 0;
}

int conftab_set_strv(char ***dst, char **l) {
  if (!l && (l = calloc(1, sizeof(char *))) == NULL)
    return -ENOMEM;
  strv_wipe_free(*dst);
  *dst = l;
  return 0;
}

/* Frees an owned value (wiped first when the option is a secret) and sets it to NULL. */
static void opt_clear(const struct conftab_opt *o, void *obj) {
  void *f = field(obj, o);
  if (owns_str(o->type)) {
    char **s = f;
    if (o->secret)
      str_wipe_free(*s);
    else
      free(*s);
    *s = NULL;
  } else if (is_list(o->type)) {
    char ***l = f;
    if (o->secret)
      strv_wipe_free(*l);
    else
      strv_free(*l);
    *l = NULL;
  }
}

static int opt_set_str(const struct conftab_opt *o, void *obj, const char *v) {
  char *n = strdup(v);
  if (!n)
    return -ENOMEM;
  opt_clear(o, obj);
  *(char **)field(obj, o) = n;
  return 0;
}

/* Takes l (NULL = an empty list). */
static int opt_set_strv(const struct conftab_opt *o, void *obj, char **l) {
  if (!l && (l = calloc(1, sizeof(char *))) == NULL)
    return -ENOMEM;
  opt_clear(o, obj);
  *(char ***)field(obj, o) = l;
  return 0;
}

/* One item of a CONFTAB_T_HEXV list: lowercased copy without 0x in *ret. */
static int hex_item(const struct conftab_opt *o, const char *s, char **ret) {
  if (str_startswith(s, "0x") || str_startswith(s, "0X"))
    s += 2;
  size_t n = strlen(s);
  if (n == 0 || n % 2 || (o->hexlen && n != 2 * o->hexlen) || (!o->hexlen && n > 128))
    return -EINVAL;
  for (const char *p = s; *p; p++)
    if (!strchr("0123456789abcdefABCDEF", *p))
      return -EINVAL;
  char *c = strdup(s);
  if (!c)
    return -ENOMEM;
  *ret = str_ascii_lower(c);
  return 0;
}

static uint64_t num_max(enum conftab_type t) {
  switch (t) {
  case CONFTAB_T_BOOL:
    return 1;
  case CONFTAB_T_U16:
    return UINT16_MAX;
  case CONFTAB_T_U32:
    return UINT32_MAX;
  case CONFTAB_T_SIZE:
    return INT64_MAX; /* so that the dump is a TOML integer that reads back */
  default:
    return 0;
  }
}

/* Sets one option to its default; a default its type cannot hold is -EINVAL. */
static int set_default(void *obj, const struct conftab_opt *o) {
  void *f = field(obj, o);
  const char *def = o->def ? o->def : "";
  switch (o->type) {
  case CONFTAB_T_STR:
    return opt_set_str(o, obj, def);
  case CONFTAB_T_TRIBOOL:
    if (!str_isempty(def) && !str_eq(def, "true") && !str_eq(def, "false"))
      return -EINVAL;
    return opt_set_str(o, obj, def);
  case CONFTAB_T_BOOL:
  case CONFTAB_T_U16:
  case CONFTAB_T_U32:
  case CONFTAB_T_SIZE:
    if (o->def_num > num_max(o->type))
      return -EINVAL;
    if (o->type == CONFTAB_T_BOOL)
      *(bool *)f = o->def_num != 0;
    else if (o->type == CONFTAB_T_U16)
      *(uint16_t *)f = (uint16_t)o->def_num;
    else if (o->type == CONFTAB_T_U32)
      *(uint32_t *)f = (uint32_t)o->def_num;
    else
      *(uint64_t *)f = o->def_num;
    return 0;
  case CONFTAB_T_STRV:
  case CONFTAB_T_HEXV: {
    _cleanup_strv_free_ char **l = NULL;
    int r = str_split(def, ",", true, &l);
    if (r < 0)
      return r;
    for (size_t k = 0; o->type == CONFTAB_T_HEXV && l && l[k]; k++) {
      char *h = NULL;
      if ((r = hex_item(o, l[k], &h)) < 0)
        return r;
      free(l[k]);
      l[k] = h;
    }
    return opt_set_strv(o, obj, TAKE_PTR(l));
  }
  }
  return -EINVAL;
}

/* s names a table (or is "") whose path components are all non-empty. */
static bool section_valid(const char *s) {
  if (!s)
    return false;
  if (!*s)
    return true;
  for (const char *p = s;; p++) {
    const char *dot = strchr(p, '.');
    if (dot == p || *p == '\0')
      return false;
    if (!dot)
      return true;
    p = dot;
  }
}

/* Table sec is the table "<parent>.<key>" (or "<key>" at the top level) or one below it. */
static bool table_is_under(const char *sec, const char *parent, const char *key) {
  size_t pn = strlen(parent), kn = strlen(key);
  if (pn) {
    if (strncmp(sec, parent, pn) != 0 || sec[pn] != '.')
      return false;
    sec += pn + 1;
  }
  return strncmp(sec, key, kn) == 0 && (sec[kn] == '\0' || sec[kn] == '.');
}

/* The shape conftab_dump() needs to write TOML that loads back (see the header). */
static int table_check(const struct conftab *t) {
  for (size_t i = 0; i < t->n_opts; i++) {
    const struct conftab_opt *o = &t->opts[i];
    if (!section_valid(o->section) || str_isempty(o->key) || o->type > CONFTAB_T_HEXV ||
        (o->type == CONFTAB_T_HEXV && o->hexlen > 64))
      return -EINVAL;
    if (i > 0 && !str_eq(o->section, t->opts[i - 1].section)) {
      /* a new run: its table (the top level included, where every table starts) is not left
       * behind already */
      if (!o->section[0])
        return -EINVAL;
      for (size_t j = 0; j + 1 < i; j++)
        if (str_eq(t->opts[j].section, o->section))
          return -EINVAL;
    }
    for (size_t j = 0; j < t->n_opts; j++) {
      if (j < i && ((str_eq(t->opts[j].section, o->section) && str_eq(t->opts[j].key, o->key)) ||
                    t->opts[j].offset == o->offset))
        return -EINVAL; /* a key or a field twice */
      if (table_is_under(t->opts[j].section, o->section, o->key))
        return -EINVAL; /* a key that is also a table */
    }
  }
  return 0;
}

int conftab_defaults(const struct conftab *t, void *obj) {
  int r = table_check(t);
  if (r < 0)
    return r;
  for (size_t i = 0; i < t->n_opts; i++) {
    r = set_default(obj, &t->opts[i]);
    if (r < 0)
      return r;
  }
  return 0;
}

void conftab_free(const struct conftab *t, void *obj) {
  if (!obj)
    return;
  for (size_t i = 0; i < t->n_opts; i++)
    opt_clear(&t->opts[i], obj);
}

/* Loading state: where errors go and how their position is written. */
struct load {
  const struct conftab *t;
  void *obj;
  const char *path; /* NULL: "line L:C: " */
  char *err;
  size_t errlen;
};

_printf_(3, 4) static int fail_at(const struct load *l, const struct toml_value *v, const char *fmt,
                                  ...) {
  if (!l->err || !l->errlen)
    return -EINVAL;
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (l->path)
    snprintf(l->err, l->errlen, "%s:%u:%u: %s", l->path, toml_value_line(v), toml_value_col(v),
             msg);
  else
    snprintf(l->err, l->errlen, "line %u:%u: %s", toml_value_line(v), toml_value_col(v), msg);
  return -EINVAL;
}

/* A table is known when an option lives in it or in a table below it. */
static bool is_section(const struct conftab *t, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i < t->n_opts; i++) {
    const char *sec = t->opts[i].section;
    if (strncmp(sec, s, n) == 0 && (sec[n] == '\0' || sec[n] == '.'))
      return true;
  }
  return false;
}

static bool has_top_level(const struct conftab *t) {
  for (size_t i = 0; i < t->n_opts; i++)
    if (!t->opts[i].section[0])
      return true;
  return false;
}

static const struct conftab_opt *find_opt(const struct conftab *t, const char *section,
                                          const char *key) {
  for (size_t i = 0; i < t->n_opts; i++)
    if (str_eq(t->opts[i].section, section) && str_eq(t->opts[i].key, key))
      return &t->opts[i];
  return NULL;
}

static const char *where(const struct conftab_opt *o, char *buf, size_t n) {
  if (o->section[0])
    snprintf(buf, n, "[%s] %s", o->section, o->key);
  else
    snprintf(buf, n, "%s", o->key);
  return buf;
}

static int apply_list(const struct load *l, const struct conftab_opt *o,
                      const struct toml_value *v) {
  char w[160];
  const char *s;
  size_t slen;
  if (toml_type(v) != TOML_ARRAY)
    return fail_at(l, v, "%s: expected an array of strings", where(o, w, sizeof(w)));
  _cleanup_strv_free_ char **list = NULL;
  for (size_t k = 0; k < toml_array_len(v); k++) {
    const struct toml_value *item = toml_array_at(v, k);
    if (toml_value_string(item, &s, &slen) < 0 || strlen(s) != slen)
      return fail_at(l, item, "%s: expected an array of strings", where(o, w, sizeof(w)));
    int r;
    if (o->type == CONFTAB_T_HEXV) {
      char *h = NULL;
      r = hex_item(o, s, &h);
      if (r == -EINVAL) {
        if (o->hexlen)
          return fail_at(l, item, "%s: item %zu: expected %zu hex characters",
                         where(o, w, sizeof(w)), k, 2 * o->hexlen);
        return fail_at(l, item, "%s: item %zu: expected hex (1..64 bytes)", where(o, w, sizeof(w)),
                       k);
      }
      if (r >= 0)
        r = strv_push(&list, h);
    } else {
      r = strv_push_dup(&list, s);
    }
    if (r < 0)
      return r;
  }
  return opt_set_strv(o, l->obj, TAKE_PTR(list));
}

static int apply_value(const struct load *l, const struct conftab_opt *o,
                       const struct toml_value *v) {
  void *f = field(l->obj, o);
  char w[160];
  int64_t i;
  bool b;
  const char *s;
  size_t slen;
  switch (o->type) {
  case CONFTAB_T_STR:
    if (toml_value_string(v, &s, &slen) < 0 || strlen(s) != slen)
      return fail_at(l, v, "%s: expected a string", where(o, w, sizeof(w)));
    return opt_set_str(o, l->obj, s);
  case CONFTAB_T_BOOL:
    if (toml_value_bool(v, (bool *)f) < 0)
      return fail_at(l, v, "%s: expected a boolean", where(o, w, sizeof(w)));
    return 0;
  case CONFTAB_T_TRIBOOL:
    if (toml_value_bool(v, &b) < 0)
      return fail_at(l, v, "%s: expected a boolean", where(o, w, sizeof(w)));
    return opt_set_str(o, l->obj, b ? "true" : "false");
  case CONFTAB_T_U16:
  case CONFTAB_T_U32: {
    uint64_t max = o->type == CONFTAB_T_U32 ? UINT32_MAX : UINT16_MAX;
    if (toml_value_int(v, &i) < 0 || i < 0 || (uint64_t)i > max)
      return fail_at(l, v, "%s: expected an integer 0..%llu", where(o, w, sizeof(w)),
                     (unsigned long long)max);
    if (o->type == CONFTAB_T_U32)
      *(uint32_t *)f = (uint32_t)i;
    else
      *(uint16_t *)f = (uint16_t)i;
    return 0;
  }
  case CONFTAB_T_SIZE: {
    if (toml_value_int(v, &i) == 0) {
      if (i < 0)
        return fail_at(l, v, "%s: negative size", where(o, w, sizeof(w)));
      *(uint64_t *)f = (uint64_t)i;
      return 0;
    }
    /* At most INT64_MAX, so that the dump is a TOML integer that reads back. */
    uint64_t sz;
    if (toml_value_string(v, &s, &slen) == 0 && strlen(s) == slen && str_to_size(s, &sz) == 0 &&
        sz <= INT64_MAX) {
      *(uint64_t *)f = sz;
      return 0;
    }
    return fail_at(l, v, "%s: expected a size (bytes, or \"10MiB\")", where(o, w, sizeof(w)));
  }
  case CONFTAB_T_STRV:
  case CONFTAB_T_HEXV:
    return apply_list(l, o, v);
  }
  return -EINVAL;
}

/* Walks one table; nested tables recurse with a dotted section name. */
static int apply_table(const struct load *l, const char *section, const struct toml_value *tv) {
  for (size_t i = 0; i < toml_table_len(tv); i++) {
    const char *key = toml_table_key_at(tv, i);
    const struct toml_value *v = toml_table_value_at(tv, i);
    int r;
    if (toml_type(v) == TOML_TABLE) {
      _cleanup_free_ char *sub = section[0] ? str_printf("%s.%s", section, key) : strdup(key);
      if (!sub)
        return -ENOMEM;
      if (!is_section(l->t, sub))
        return fail_at(l, v, "unknown table [%s]", sub);
      r = apply_table(l, sub, v);
      if (r < 0)
        return r;
      continue;
    }
    const struct conftab_opt *o = find_opt(l->t, section, key);
    if (!o) {
      if (section[0])
        return fail_at(l, v, "unknown key '%s' in [%s]", key, section);
      return fail_at(l, v, "unknown top-level key '%s'%s", key,
                     has_top_level(l->t) ? "" : " (options live in tables)");
    }
    r = apply_value(l, o, v);
    if (r < 0)
      return r;
  }
  return 0;
}

int conftab_load(const struct conftab *t, void *obj, const struct toml_value *root, char *err,
                 size_t errlen) {
  struct load l = {.t = t, .obj = obj, .err = err, .errlen = errlen};
  if (toml_type(root) != TOML_TABLE)
    return fail_at(&l, root, "expected a table");
  return apply_table(&l, "", root);
}

int conftab_load_text(const struct conftab *t, void *obj, const char *text, size_t len, char *err,
                      size_t errlen) {
  _cleanup_toml_ struct toml_value *root = NULL;
  struct toml_error te = {0};
  int r = toml_parse(text, len, &root, &te);
  if (r < 0) {
    if (err && errlen)
      snprintf(err, errlen, "line %u:%u: %s", te.line, te.col, te.msg);
    return r;
  }
  return conftab_load(t, obj, root, err, errlen);
}

int conftab_load_file(const struct conftab *t, void *obj, const char *path, char *err,
                      size_t errlen) {
  _cleanup_toml_ struct toml_value *root = NULL;
  struct toml_error te = {0};
  int r = toml_parse_file(path, &root, &te);
  if (r < 0) {
    if (err && errlen) {
      if (te.line)
        snprintf(err, errlen, "%s:%u:%u: %s", path, te.line, te.col, te.msg);
      else
        snprintf(err, errlen, "%s: %s", path, te.msg[0] ? te.msg : strerror(-r));
    }
    return r;
  }
  struct load l = {.t = t, .obj = obj, .path = path, .err = err, .errlen = errlen};
  return apply_table(&l, "", root);
}

static int dump_section_header(struct buf *out, const char *section, bool first) {
  _cleanup_strv_free_ char **parts = NULL;
  int r = buf_append_str(out, first ? "[" : "\n[");
  if (r >= 0)
    r = str_split(section, ".", false, &parts);
  for (size_t k = 0; r >= 0 && parts[k]; k++) {
    if (k)
      r = buf_append_u8(out, '.');
    if (r >= 0)
      r = toml_append_key(out, parts[k]);
  }
  if (r >= 0)
    r = buf_append_str(out, "]\n");
  return r;
}

static int dump_value(const struct conftab_opt *o, const void *f, struct buf *out) {
  switch (o->type) {
  case CONFTAB_T_STR: {
    const char *s = *(char *const *)f;
    return toml_append_string(out, s ? s : "");
  }
  case CONFTAB_T_TRIBOOL:
    return buf_append_str(out, str_eq(*(char *const *)f, "true") ? "true" : "false");
  case CONFTAB_T_BOOL:
    return buf_append_str(out, *(const bool *)f ? "true" : "false");
  case CONFTAB_T_U16:
    return buf_printf(out, "%u", (unsigned)*(const uint16_t *)f);
  case CONFTAB_T_U32:
    return buf_printf(out, "%u", *(const uint32_t *)f);
  case CONFTAB_T_SIZE:
    return buf_printf(out, "%llu", (unsigned long long)*(const uint64_t *)f);
  case CONFTAB_T_STRV:
  case CONFTAB_T_HEXV: {
    char *const *l = *(char **const *)f;
    int r = buf_append_u8(out, '[');
    for (size_t k = 0; r >= 0 && l && l[k]; k++) {
      if (k)
        r = buf_append_str(out, ", ");
      if (r >= 0)
        r = toml_append_string(out, l[k]);
    }
    if (r >= 0)
      r = buf_append_u8(out, ']');
    return r;
  }
  }
  return -EINVAL;
}

/* Whether a secret option holds something to hide. */
static bool secret_is_set(const struct conftab_opt *o, const void *f) {
  if (owns_str(o->type))
    return !str_isempty(*(char *const *)f);
  if (is_list(o->type)) {
    char *const *l = *(char **const *)f;
    return l && l[0];
  }
  return true;
}

static int dump_opt(const struct conftab_opt *o, const void *f, unsigned flags, struct buf *out) {
  int r;
  if (o->type == CONFTAB_T_TRIBOOL && str_isempty(*(char *const *)f))
    return buf_printf(out, "# %s: unset%s%s\n", o->key, o->note ? ", " : "",
                      o->note ? o->note : "");
  if (o->secret && !(flags & CONFTAB_DUMP_SECRETS) && secret_is_set(o, f)) {
    /* a comment, so that the dump still loads (to the default) */
    r = buf_append_str(out, "# ");
    if (r >= 0)
      r = toml_append_key(out, o->key);
    if (r >= 0)
      r = buf_append_str(out, " = " CONFTAB_SECRET_HIDDEN "\n");
    return r;
  }
  r = toml_append_key(out, o->key);
  if (r >= 0)
    r = buf_append_str(out, " = ");
  if (r >= 0)
    r = dump_value(o, f, out);
  if (r >= 0)
    r = buf_append_u8(out, '\n');
  return r;
}

int conftab_dump(const struct conftab *t, const void *obj, unsigned flags, struct buf *out) {
  /* secrets only go to a buffer that wipes them */
  if ((flags & CONFTAB_DUMP_SECRETS) && !out->secret)
    return -EINVAL;
  const char *cur = "";
  size_t start = out->len;
  int r = 0;
  for (size_t i = 0; i < t->n_opts && r >= 0; i++) {
    const struct conftab_opt *o = &t->opts[i];
    if (!str_eq(cur, o->section)) {
      r = dump_section_header(out, o->section, i == 0);
      cur = o->section;
    }
    if (r >= 0)
      r = dump_opt(o, cfield(obj, o), flags, out);
  }
  if (r < 0) {
    if (out->secret && out->data)
      secure_wipe(out->data + start, out->len - start);
    out->len = start;
    return r;
  }
  return 0;
}
