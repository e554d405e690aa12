#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "tu_conftab.h"

static void *at(void *obj, const struct conftab_opt *o) {
  return (char *)obj + o->offset;
}
static const void *cat(const void *obj, const struct conftab_opt *o) {
  return (const char *)obj + o->offset;
}

static bool str_same(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

bool tu_conftab_opt_equal(const struct conftab_opt *o, const void *a, const void *b) {
  const void *x = cat(a, o), *y = cat(b, o);
  switch (o->type) {
  case CONFTAB_T_STR:
  case CONFTAB_T_TRIBOOL:
    return str_same(*(char *const *)x, *(char *const *)y);
  case CONFTAB_T_BOOL:
    return *(const bool *)x == *(const bool *)y;
  case CONFTAB_T_U16:
    return *(const uint16_t *)x == *(const uint16_t *)y;
  case CONFTAB_T_U32:
    return *(const uint32_t *)x == *(const uint32_t *)y;
  case CONFTAB_T_SIZE:
    return *(const uint64_t *)x == *(const uint64_t *)y;
  case CONFTAB_T_STRV:
  case CONFTAB_T_HEXV: {
    char *const *l = *(char **const *)x, *const *m = *(char **const *)y;
    if (!l || !m)
      return l == m;
    size_t k = 0;
    for (; l[k] && m[k]; k++)
      if (strcmp(l[k], m[k]) != 0)
        return false;
    return !l[k] && !m[k];
  }
  }
  return false;
}

static char *fill_str(const struct conftab_opt *o, size_t i) {
  char *s = o->secret ? str_printf(TU_CONFTAB_SECRET_MARK "%zu-%s-" TU_CONFTAB_TRICKY, i, o->key)
                      : str_printf("%zu %s " TU_CONFTAB_TRICKY, i, o->key);
  assert_non_null(s);
  return s;
}

/* n bytes of hex, varied by i. */
static char *fill_hex(size_t n, size_t i) {
  char *s = malloc(2 * n + 1);
  assert_non_null(s);
  for (size_t k = 0; k < n; k++)
    snprintf(s + 2 * k, 3, "%02x", (unsigned)((k * 37 + i + 0xa0) & 0xff));
  return s;
}

void tu_conftab_fill(const struct conftab *t, void *obj) {
  for (size_t i = 0; i < t->n_opts; i++) {
    const struct conftab_opt *o = &t->opts[i];
    void *f = at(obj, o);
    switch (o->type) {
    case CONFTAB_T_STR:
      free(*(char **)f);
      *(char **)f = fill_str(o, i);
      break;
    case CONFTAB_T_TRIBOOL: {
      const char *v = str_eq(o->def ? o->def : "", "") ? (i % 2 ? "true" : "false")
                      : str_eq(o->def, "true")        ? "false"
                                                      : "true";
      assert_int_equal(conftab_set_str((char **)f, v), 0);
      break;
    }
    case CONFTAB_T_BOOL:
      *(bool *)f = !o->def_num;
      break;
    case CONFTAB_T_U16:
      *(uint16_t *)f = (uint16_t)(UINT16_MAX - (o->def_num == UINT16_MAX - i ? i + 1 : i));
      break;
    case CONFTAB_T_U32:
      *(uint32_t *)f = (uint32_t)(UINT32_MAX - (o->def_num == UINT32_MAX - i ? i + 1 : i));
      break;
    case CONFTAB_T_SIZE:
      *(uint64_t *)f = (uint64_t)INT64_MAX - (o->def_num == (uint64_t)INT64_MAX - i ? i + 1 : i);
      break;
    case CONFTAB_T_STRV: {
      char **l = NULL;
      assert_int_equal(strv_push_dup(&l, ""), 0);
      assert_int_equal(strv_push_dup(&l, "a,b"), 0);
      assert_int_equal(strv_push(&l, fill_str(o, i)), 0);
      assert_int_equal(conftab_set_strv((char ***)f, l), 0);
      break;
    }
    case CONFTAB_T_HEXV: {
      char **l = NULL;
      assert_int_equal(strv_push(&l, fill_hex(o->hexlen ? o->hexlen : 64, i)), 0);
      assert_int_equal(strv_push(&l, fill_hex(o->hexlen ? o->hexlen : 1, i + 1)), 0);
      assert_int_equal(conftab_set_strv((char ***)f, l), 0);
      break;
    }
    }
  }
}

static const char *opt_name(const struct conftab_opt *o, char *buf, size_t n) {
  snprintf(buf, n, "[%s] %s", o->section, o->key);
  return buf;
}

/* Dumps src with flags, loads the dump onto fresh defaults (returned), and checks that the
 * loaded object dumps to the same text (unless hidden secrets came back as defaults). The dump
 * text is left in text. */
static void *dump_load(const struct conftab *t, size_t size, const void *src, unsigned flags,
                       bool same_text, struct buf *text) {
  char err[512] = "";
  struct buf again = BUF_INIT_SECRET(1 << 22);
  void *obj = calloc(1, size);
  assert_non_null(obj);
  assert_int_equal(conftab_defaults(t, obj), 0);
  buf_reset(text);
  assert_int_equal(conftab_dump(t, src, flags, text), 0);
  int r = conftab_load_text(t, obj, (const char *)text->data, text->len, err, sizeof(err));
  if (r < 0)
    fail_msg("dump does not load back: %s\n%.*s", err, (int)text->len, (const char *)text->data);
  assert_int_equal(conftab_dump(t, obj, flags, &again), 0);
  if (same_text && (again.len != text->len || memcmp(again.data, text->data, text->len) != 0))
    fail_msg("dump of the loaded dump differs:\n%.*s\n---\n%.*s", (int)text->len,
             (const char *)text->data, (int)again.len, (const char *)again.data);
  buf_free(&again);
  return obj;
}

void tu_conftab_roundtrip(const struct conftab *t, size_t size) {
  char name[256];
  struct buf text = BUF_INIT_SECRET(1 << 22);
  void *def = calloc(1, size), *a = calloc(1, size);
  assert_non_null(def);
  assert_non_null(a);
  assert_int_equal(conftab_defaults(t, def), 0);
  assert_int_equal(conftab_defaults(t, a), 0);

  /* 1. defaults */
  void *b = dump_load(t, size, a, 0, true, &text);
  for (size_t i = 0; i < t->n_opts; i++)
    if (!tu_conftab_opt_equal(&t->opts[i], a, b))
      fail_msg("default of %s does not round-trip", opt_name(&t->opts[i], name, sizeof(name)));
  conftab_free(t, b);
  free(b);

  /* 2. every option changed, secrets hidden */
  tu_conftab_fill(t, a);
  for (size_t i = 0; i < t->n_opts; i++)
    if (tu_conftab_opt_equal(&t->opts[i], a, def))
      fail_msg("fill left %s at its default", opt_name(&t->opts[i], name, sizeof(name)));
  size_t n_secret = 0;
  for (size_t i = 0; i < t->n_opts; i++)
    n_secret += t->opts[i].secret;
  b = dump_load(t, size, a, 0, n_secret == 0, &text);
  assert_int_equal(buf_terminate(&text), 0);
  if (memmem(text.data, text.len, TU_CONFTAB_SECRET_MARK, strlen(TU_CONFTAB_SECRET_MARK)))
    fail_msg("a secret is in the dump:\n%s", (const char *)text.data);
  for (size_t i = 0; i < t->n_opts; i++) {
    const struct conftab_opt *o = &t->opts[i];
    if (!o->secret && !tu_conftab_opt_equal(o, a, b))
      fail_msg("%s does not round-trip:\n%s", opt_name(o, name, sizeof(name)),
               (const char *)text.data);
    if (o->secret) {
      if (!tu_conftab_opt_equal(o, def, b))
        fail_msg("hidden secret %s does not load as its default", opt_name(o, name, sizeof(name)));
      char *line = str_printf("\n# %s = " CONFTAB_SECRET_HIDDEN "\n", o->key);
      assert_non_null(line);
      if (!strstr((const char *)text.data, line))
        fail_msg("no '%s' line in the dump", line + 1);
      free(line);
    }
  }
  conftab_free(t, b);
  free(b);

  /* 3. with secrets: everything */
  b = dump_load(t, size, a, CONFTAB_DUMP_SECRETS, true, &text);
  for (size_t i = 0; i < t->n_opts; i++)
    if (!tu_conftab_opt_equal(&t->opts[i], a, b))
      fail_msg("%s does not round-trip with secrets", opt_name(&t->opts[i], name, sizeof(name)));
  conftab_free(t, b);
  free(b);

  conftab_free(t, a);
  conftab_free(t, def);
  free(a);
  free(def);
  buf_free(&text);
}

size_t tu_conftab_check_secret_names(const struct conftab *t) {
  static const char *const words[] = {"private", "secret", "token", "password", "passwd",
                                      "passphrase", "api_key", "apikey", "credential"};
  size_t n = 0;
  for (size_t i = 0; i < t->n_opts; i++) {
    const struct conftab_opt *o = &t->opts[i];
    n += o->secret;
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
      if (strstr(o->key, words[k]) && !o->secret)
        fail_msg("[%s] %s looks like a secret but is not marked secret", o->section, o->key);
  }
  return n;
}
