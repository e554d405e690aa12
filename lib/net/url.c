/* Percent-decoding, query strings and request path normalisation. */
#include "net/url.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"

int url_encode(const char *s, size_t len, struct buf *out) {
  static const char hexd[] = "0123456789ABCDEF";
  if ((!s && len) || !out)
    return -EINVAL;
  size_t start = out->len;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    int r;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      r = buf_append_u8(out, c);
    } else {
      char e[3] = {'%', hexd[c >> 4], hexd[c & 15]};
      r = buf_append(out, e, 3);
    }
    if (r < 0) {
      out->len = start;
      return r;
    }
  }
  return 0;
}

int url_path_normalize(const char *s, size_t len, char **ret) {
  if ((!s && len) || !ret)
    return -EINVAL;
  if (len > URL_PATH_MAX)
    return -ENOBUFS;
  if (len == 0 || s[0] != '/')
    return -EBADMSG;
  char *dec = NULL;
  size_t dlen = 0;
  int r = str_pct_decode(s, len, 0, &dec, &dlen);
  if (r < 0)
    return r;
  /* The output is never longer than the decoded input. */
  char *out = malloc(dlen + 1);
  if (!out) {
    free(dec);
    return -ENOMEM;
  }
  size_t o = 0;
  size_t i = 0;
  while (i < dlen) {
    /* dec[i] == '/': skip the run of slashes, then take one segment. */
    while (i < dlen && dec[i] == '/')
      i++;
    size_t seg = i;
    while (i < dlen && dec[i] != '/') {
      unsigned char c = (unsigned char)dec[i];
      if (c < 0x20 || c == 0x7f) {
        r = -EBADMSG;
        goto fail;
      }
      i++;
    }
    size_t sl = i - seg;
    if (sl == 0)
      break; /* end of path (trailing slashes) */
    if (sl == 2 && dec[seg] == '.' && dec[seg + 1] == '.') {
      r = -EBADMSG;
      goto fail;
    }
    if (sl == 1 && dec[seg] == '.')
      continue;
    out[o++] = '/';
    memcpy(out + o, dec + seg, sl);
    o += sl;
  }
  /* Keep one trailing slash if the input had one (and the root). */
  if (o == 0 || dec[dlen - 1] == '/' ||
      (dlen >= 2 && dec[dlen - 1] == '.' && dec[dlen - 2] == '/'))
    out[o++] = '/';
  out[o] = '\0';
  free(dec);
  *ret = out;
  return 0;
fail:
  free(dec);
  free(out);
  return r;
}

void url_query_free(struct url_query *q) {
  if (!q)
    return;
  for (size_t i = 0; i < q->n; i++) {
    free(q->params[i].key);
    free(q->params[i].value);
  }
  free(q->params);
  q->params = NULL;
  q->n = 0;
}

int url_query_parse(const char *s, size_t len, struct url_query *ret) {
  if ((!s && len) || !ret)
    return -EINVAL;
  struct url_query q = {0};
  size_t cap = 0;
  size_t i = 0;
  int r = 0;
  while (i < len) {
    size_t start = i;
    while (i < len && s[i] != '&')
      i++;
    size_t end = i;
    if (i < len)
      i++; /* skip '&' */
    if (end == start)
      continue;
    if (q.n >= URL_QUERY_MAX_PARAMS) {
      r = -ENOBUFS;
      goto fail;
    }
    if (q.n == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      struct url_query_param *np = realloc(q.params, ncap * sizeof(*np));
      if (!np) {
        r = -ENOMEM;
        goto fail;
      }
      q.params = np;
      cap = ncap;
    }
    const char *eq = memchr(s + start, '=', end - start);
    size_t klen = eq ? (size_t)(eq - (s + start)) : end - start;
    struct url_query_param p = {.has_value = eq != NULL};
    r = str_pct_decode(s + start, klen, PCT_PLUS_SPACE, &p.key, NULL);
    if (r < 0)
      goto fail;
    if (eq)
      r = str_pct_decode(eq + 1, (size_t)((s + end) - (eq + 1)), PCT_PLUS_SPACE, &p.value,
                         NULL);
    else
      r = (p.value = strdup("")) ? 0 : -ENOMEM;
    if (r < 0) {
      free(p.key);
      goto fail;
    }
    q.params[q.n++] = p;
  }
  *ret = q;
  return 0;
fail:
  url_query_free(&q);
  *ret = (struct url_query){0};
  return r;
}

const struct url_query_param *url_query_find(const struct url_query *q, const char *key) {
  if (!q || !key)
    return NULL;
  for (size_t i = 0; i < q->n; i++)
    if (strcmp(q->params[i].key, key) == 0)
      return &q->params[i];
  return NULL;
}

int url_query_get(const struct url_query *q, const char *key, const char **ret_value) {
  const struct url_query_param *p = url_query_find(q, key);
  if (!p)
    return -ENOENT;
  if (ret_value)
    *ret_value = p->value;
  return 0;
}
