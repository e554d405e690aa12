/* crt.sh JSON, walked one element at a time. */
#include "ct_monitor_crtsh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "base/json.h"
#include "base/str.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"

static bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *s, size_t len, size_t pos) {
  while (pos < len && is_ws(s[pos]))
    pos++;
  return pos;
}

void ct_entries_free(struct ct_entries *e) {
  if (!e)
    return;
  for (size_t i = 0; i < e->n; i++) {
    free(e->v[i].serial);
    free(e->v[i].common_name);
    free(e->v[i].name_value);
    free(e->v[i].issuer_name);
    free(e->v[i].not_before);
  }
  free(e->v);
  memset(e, 0, sizeof(*e));
}

/* A string field: its copy, "" when absent or null; -EBADMSG for another type. */
static int field_str(const json_t *o, const char *key, char **ret) {
  const char *s = NULL;
  int r = json_get_str(o, key, &s);
  if (r == -ENOENT)
    s = "";
  else if (r < 0)
    return -EBADMSG;
  *ret = strdup(s);
  return *ret ? 0 : -ENOMEM;
}

static int entry_add(struct ct_entries *e, const char *text, size_t len, size_t idx, char *err,
                     size_t errlen) {
  _cleanup_json_ json_t *o = NULL;
  int r = json_parse_buf(text, len, len, &o);
  if (r < 0 || !json_is_object(o))
    return str_err(err, errlen, -EBADMSG, "element %zu: not a JSON object", idx);
  int64_t id = 0;
  r = json_get_i64(o, "id", &id);
  if (r < 0 || id < 1)
    return str_err(err, errlen, -EBADMSG, "element %zu: no integer \"id\" >= 1", idx);
  if (e->n == e->alloc) {
    size_t na = e->alloc ? e->alloc * 2 : 64;
    struct ct_entry *v = realloc(e->v, na * sizeof(*v));
    if (!v)
      return -ENOMEM;
    e->v = v;
    e->alloc = na;
  }
  struct ct_entry *x = &e->v[e->n];
  memset(x, 0, sizeof(*x));
  x->id = id;
  static const char *const keys[] = {"serial_number", "common_name", "name_value", "issuer_name",
                                     "not_before"};
  char **dst[] = {&x->serial, &x->common_name, &x->name_value, &x->issuer_name, &x->not_before};
  for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
    r = field_str(o, keys[i], dst[i]);
    if (r < 0) {
      e->n++; /* freed with the list */
      return r == -EBADMSG ? str_err(err, errlen, r, "element %zu (id %lld): \"%s\" is not a "
                                                     "string", idx, (long long)id, keys[i])
                           : r;
    }
  }
  e->n++;
  return 0;
}

/* The end of the JSON value that starts at s[pos] with '{': the index after its closing brace.
 * Strings are skipped with their escapes; nesting is counted (jansson checks the rest). */
static int element_end(const char *s, size_t len, size_t pos, size_t *ret) {
  size_t start = pos;
  int depth = 0;
  bool in_str = false;
  for (; pos < len; pos++) {
    if (pos - start >= CT_CRTSH_MAX_ENTRY_TEXT)
      return -ENOBUFS;
    char c = s[pos];
    if (in_str) {
      if (c == '\\')
        pos++;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      if (++depth > CT_CRTSH_MAX_DEPTH)
        return -EBADMSG;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) {
        *ret = pos + 1;
        return 0;
      }
    }
  }
  return -EBADMSG; /* cut off */
}

int ct_crtsh_parse(const char *text, size_t len, size_t max_entries, struct ct_entries *ret,
                   char *err, size_t errlen) {
  memset(ret, 0, sizeof(*ret));
  if (!text && len)
    return -EINVAL;
  if (len > CT_CRTSH_MAX_BODY)
    return str_err(err, errlen, -ENOBUFS, "over %zu bytes", CT_CRTSH_MAX_BODY);
  size_t pos = skip_ws(text, len, 0);
  if (pos >= len || text[pos] != '[')
    return str_err(err, errlen, -EBADMSG, "not a JSON array");
  pos = skip_ws(text, len, pos + 1);
  if (pos < len && text[pos] == ']') {
    pos = skip_ws(text, len, pos + 1);
    return pos == len ? 0 : str_err(err, errlen, -EBADMSG, "text after the array");
  }
  for (size_t idx = 0;; idx++) {
    if (pos >= len || text[pos] != '{')
      return str_err(err, errlen, -EBADMSG, "element %zu: not a JSON object", idx);
    if (idx >= max_entries)
      return str_err(err, errlen, -E2BIG, "more than %zu entries", max_entries);
    size_t end = 0;
    int r = element_end(text, len, pos, &end);
    if (r == -ENOBUFS)
      return str_err(err, errlen, r, "element %zu: over %zu bytes", idx,
                     CT_CRTSH_MAX_ENTRY_TEXT);
    if (r < 0)
      return str_err(err, errlen, r, "element %zu: cut off or nested too deep", idx);
    if ((r = entry_add(ret, text + pos, end - pos, idx, err, errlen)) < 0)
      return r;
    pos = skip_ws(text, len, end);
    if (pos < len && text[pos] == ',') {
      pos = skip_ws(text, len, pos + 1);
      continue;
    }
    if (pos < len && text[pos] == ']')
      break;
    return str_err(err, errlen, -EBADMSG, "after element %zu: expected ',' or ']'", idx);
  }
  pos = skip_ws(text, len, pos + 1);
  return pos == len ? 0 : str_err(err, errlen, -EBADMSG, "text after the array");
}

static int entry_cmp(const void *a, const void *b) {
  const struct ct_entry *x = a, *y = b;
  return (x->id > y->id) - (x->id < y->id);
}

void ct_entries_sort(struct ct_entries *e) {
  if (e->n < 2)
    return;
  struct ct_entry *v = e->v;
  size_t n = e->n;
  /* Equal ids are the same certificate in crt.sh: which copy stays does not matter. */
  qsort(v, n, sizeof(*v), entry_cmp);
  size_t w = 1;
  for (size_t i = 1; i < n; i++) {
    if (v[i].id == v[w - 1].id) {
      free(v[i].serial);
      free(v[i].common_name);
      free(v[i].name_value);
      free(v[i].issuer_name);
      free(v[i].not_before);
    } else {
      v[w++] = v[i];
    }
  }
  e->n = w;
}

ssize_t ct_entries_find(const struct ct_entries *e, int64_t id) {
  size_t lo = 0, hi = e->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (e->v[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < e->n && e->v[lo].id == id ? (ssize_t)lo : -1;
}

int ct_pem_first_spki(const uint8_t *pem, size_t len, struct buf *spki) {
  _cleanup_(X509_freep) X509 *c = NULL;
  int r = x509_cert_from_pem(pem ? (const void *)pem : (const void *)"", len, &c);
  if (r == -ENOMEM)
    return r;
  if (r < 0)
    return -EBADMSG;
  return x509_cert_spki_der(c, spki);
}
