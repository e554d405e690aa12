/* Parses arbitrary text as TOML. Accepted documents are written back out (inline form) with
 * the writers of base/toml.h, parsed again and compared with the first tree. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns 1 when the value cannot be written by the C-string writers (embedded NUL). */
static int emit(const struct toml_value *v, struct buf *out) {
  int r = 0;
  switch (toml_type(v)) {
  case TOML_STRING: {
    const char *s;
    size_t n;
    toml_value_string(v, &s, &n);
    if (strlen(s) != n)
      return 1;
    return toml_append_string(out, s) < 0 ? -1 : 0;
  }
  case TOML_INTEGER: {
    int64_t i;
    toml_value_int(v, &i);
    return buf_printf(out, "%lld", (long long)i) < 0 ? -1 : 0;
  }
  case TOML_FLOAT: {
    double f;
    toml_value_float(v, &f);
    if (isnan(f))
      return buf_append_str(out, "nan") < 0 ? -1 : 0;
    if (isinf(f))
      return buf_append_str(out, f < 0 ? "-inf" : "inf") < 0 ? -1 : 0;
    char t[64];
    snprintf(t, sizeof(t), "%.17g", f);
    if (!strpbrk(t, ".e"))
      strcat(t, ".0");
    return buf_append_str(out, t) < 0 ? -1 : 0;
  }
  case TOML_BOOL: {
    bool b;
    toml_value_bool(v, &b);
    return buf_append_str(out, b ? "true" : "false") < 0 ? -1 : 0;
  }
  case TOML_ARRAY:
    if (buf_append_u8(out, '[') < 0)
      return -1;
    for (size_t i = 0; i < toml_array_len(v); i++) {
      if (i && buf_append_str(out, ", ") < 0)
        return -1;
      if ((r = emit(toml_array_at(v, i), out)) != 0)
        return r;
    }
    return buf_append_u8(out, ']') < 0 ? -1 : 0;
  case TOML_TABLE:
    if (buf_append_u8(out, '{') < 0)
      return -1;
    for (size_t i = 0; i < toml_table_len(v); i++) {
      if (i && buf_append_str(out, ", ") < 0)
        return -1;
      if (toml_append_key(out, toml_table_key_at(v, i)) < 0 || buf_append_str(out, " = ") < 0)
        return -1;
      if ((r = emit(toml_table_value_at(v, i), out)) != 0)
        return r;
    }
    return buf_append_u8(out, '}') < 0 ? -1 : 0;
  }
  return -1;
}

static bool same(const struct toml_value *a, const struct toml_value *b) {
  if (toml_type(a) != toml_type(b))
    return false;
  switch (toml_type(a)) {
  case TOML_STRING: {
    const char *x, *y;
    size_t n, m;
    toml_value_string(a, &x, &n);
    toml_value_string(b, &y, &m);
    return n == m && memcmp(x, y, n) == 0;
  }
  case TOML_INTEGER: {
    int64_t x, y;
    toml_value_int(a, &x);
    toml_value_int(b, &y);
    return x == y;
  }
  case TOML_FLOAT: {
    double x, y;
    toml_value_float(a, &x);
    toml_value_float(b, &y);
    if (isnan(x) || isnan(y))
      return isnan(x) && isnan(y);
    return memcmp(&x, &y, sizeof(x)) == 0;
  }
  case TOML_BOOL: {
    bool x, y;
    toml_value_bool(a, &x);
    toml_value_bool(b, &y);
    return x == y;
  }
  case TOML_ARRAY:
    if (toml_array_len(a) != toml_array_len(b))
      return false;
    for (size_t i = 0; i < toml_array_len(a); i++)
      if (!same(toml_array_at(a, i), toml_array_at(b, i)))
        return false;
    return true;
  case TOML_TABLE:
    if (toml_table_len(a) != toml_table_len(b))
      return false;
    for (size_t i = 0; i < toml_table_len(a); i++) {
      if (strcmp(toml_table_key_at(a, i), toml_table_key_at(b, i)) != 0)
        return false;
      if (!same(toml_table_value_at(a, i), toml_table_value_at(b, i)))
        return false;
      if (toml_get(a, toml_table_key_at(a, i)) != toml_table_value_at(a, i))
        return false;
    }
    return true;
  }
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct toml_value *root = NULL;
  struct toml_error err;
  int r = toml_parse((const char *)data, size, &root, &err);
  if (r < 0) {
    if (r != -EBADMSG && r != -ENOBUFS && r != -ENOMEM)
      abort();
    if (r == -EBADMSG && (err.line == 0 || err.col == 0 || !err.msg[0]))
      abort();
    return 0;
  }
  struct buf out = BUF_INIT(TOML_MAX_INPUT);
  bool ok = true;
  for (size_t i = 0; ok && i < toml_table_len(root); i++) {
    ok = toml_append_key(&out, toml_table_key_at(root, i)) == 0 &&
         buf_append_str(&out, " = ") == 0;
    if (ok) {
      int e = emit(toml_table_value_at(root, i), &out);
      if (e < 0 && out.len < TOML_MAX_INPUT - 64)
        abort();
      ok = e == 0 && buf_append_u8(&out, '\n') == 0;
    }
  }
  if (ok) {
    struct toml_value *again = NULL;
    r = toml_parse((const char *)out.data, out.len, &again, &err);
    if (r < 0) {
      fprintf(stderr, "reparse failed at %u:%u: %s\n%.*s\n", err.line, err.col, err.msg,
              (int)out.len, (const char *)out.data);
      abort();
    }
    if (!same(root, again)) {
      fprintf(stderr, "round trip differs:\n%.*s\n", (int)out.len, (const char *)out.data);
      abort();
    }
    toml_free(again);
  }
  buf_free(&out);
  toml_free(root);
  return 0;
}
