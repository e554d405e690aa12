/* The CAA procedure: see certbot_caa.h. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/macro.h"
#include "base/str.h"
#include "certbot_caa.h"

#define CAA_VALUE_MAX 1024
#define CAA_NAME_MAX 253
#define GUARD ";"
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyz0123456789-._"

int certbot_caa_value_parse(const char *s, unsigned *ret_flags, char **ret_tag,
                            char **ret_value) {
  if (!s || !ret_flags || !ret_tag || !ret_value)
    return -EINVAL;
  const char *p = s;
  uint64_t flags = 0;
  size_t nd = strspn(p, "0123456789");
  if (nd == 0 || nd > 3 || str_to_u64_n(p, nd, &flags) < 0 || flags > 255 || p[nd] != ' ')
    return -EBADMSG;
  p += nd;
  while (*p == ' ')
    p++;
  size_t tl = 0;
  while (isalnum((unsigned char)p[tl]))
    tl++;
  if (tl == 0 || tl > 15 || (p[tl] != ' ' && p[tl] != '\0'))
    return -EBADMSG;
  const char *tag = p;
  p += tl;
  while (*p == ' ')
    p++;
  struct buf v = BUF_INIT(CAA_VALUE_MAX);
  int r = 0;
  if (*p == '"') {
    p++;
    for (; r == 0 && *p && *p != '"'; p++) {
      if (*p == '\\') {
        if (!*++p) {
          r = -EBADMSG;
          break;
        }
      }
      r = buf_append_u8(&v, (uint8_t)*p);
    }
    if (r == 0 && (*p != '"' || p[1] != '\0'))
      r = -EBADMSG;
  } else {
    r = buf_append_str(&v, p);
  }
  if (r == 0)
    r = buf_terminate(&v);
  char *t = r == 0 ? strndup(tag, tl) : NULL;
  if (r == 0 && !t)
    r = -ENOMEM;
  if (r < 0) {
    buf_free(&v);
    return r == -ENOBUFS ? -EBADMSG : r;
  }
  *ret_flags = (unsigned)flags;
  *ret_tag = t;
  *ret_value = v.data ? (char *)buf_steal(&v, NULL) : strdup("");
  if (!*ret_value) {
    free(t);
    return -ENOMEM;
  }
  return 0;
}

/* A CA name or account URI that fits into a CAA issue value unquoted and unescaped. */
static bool param_ok(const char *s, size_t max) {
  size_t l = s ? strlen(s) : 0;
  if (l == 0 || l > max)
    return false;
  for (size_t i = 0; i < l; i++)
    if (s[i] <= ' ' || s[i] > '~' || s[i] == ';' || s[i] == '"' || s[i] == '\\')
      return false;
  return true;
}

/* The domain list: "*." stripped, final dot dropped, lowercase, each once. */
static int domains_normalize(char *const *domains, char ***ret, char *err, size_t errlen) {
  _cleanup_(strv_freep) char **l = NULL;
  size_t n = 0;
  for (char *const *p = domains; p && *p; p++) {
    const char *d = str_startswith(*p, "*.") ? *p + 2 : *p;
    _cleanup_free_ char *c = strdup(d);
    if (!c)
      return str_err(err, errlen, -ENOMEM, "caa: out of memory");
    size_t cl = strlen(c);
    if (cl && c[cl - 1] == '.')
      c[--cl] = '\0';
    str_ascii_lower(c);
    if (cl == 0 || cl > CAA_NAME_MAX || strspn(c, NAME_CHARS) != cl || c[0] == '.' ||
        strstr(c, ".."))
      return str_err(err, errlen, -EINVAL, "caa: bad domain \"%.80s\"", *p);
    if (strv_contains(l, c))
      continue;
    if (++n > CERTBOT_CAA_MAX_DOMAINS)
      return str_err(err, errlen, -EINVAL, "caa: more than %d domains",
                     CERTBOT_CAA_MAX_DOMAINS);
    if (strv_push(&l, TAKE_PTR(c)) < 0)
      return str_err(err, errlen, -ENOMEM, "caa: out of memory");
  }
  if (!l)
    return str_err(err, errlen, -EINVAL, "caa: no domain");
  *ret = TAKE_PTR(l);
  return 0;
}

struct caa_rec {
  const char *id;
  unsigned flags;
  char *tag;
  char *value;
};

static void caa_recs_free(struct caa_rec *c, size_t n) {
  for (size_t i = 0; c && i < n; i++) {
    free(c[i].tag);
    free(c[i].value);
  }
  free(c);
}

/* The name's CAA records, read. The ids point into *raw. */
static int caa_list(struct certbot_dns *d, const char *name, struct certbot_dns_record **raw,
                    size_t *raw_n, struct caa_rec **ret, char *err, size_t errlen) {
  *raw = NULL;
  *raw_n = 0;
  *ret = NULL;
  int r = d->ops->list(d, name, "CAA", raw, raw_n, err, errlen);
  if (r < 0)
    return r;
  struct caa_rec *c = calloc(*raw_n ? *raw_n : 1, sizeof(*c));
  if (!c)
    return str_err(err, errlen, -ENOMEM, "caa: out of memory");
  for (size_t i = 0; i < *raw_n; i++) {
    c[i].id = (*raw)[i].id;
    r = certbot_caa_value_parse((*raw)[i].value ? (*raw)[i].value : "", &c[i].flags, &c[i].tag,
                                &c[i].value);
    if (r < 0) {
      caa_recs_free(c, *raw_n);
      return str_err(err, errlen, r == -ENOMEM ? r : -EBADMSG,
                     "caa: %s: cannot read CAA record \"%.120s\"", name,
                     (*raw)[i].value ? (*raw)[i].value : "");
    }
  }
  *ret = c;
  return 0;
}

static bool is_issue_tag(const char *tag) {
  return strcasecmp(tag, "issue") == 0 || strcasecmp(tag, "issuewild") == 0;
}

static bool is_guard(const struct caa_rec *c) {
  return c->flags == 0 && is_issue_tag(c->tag) && str_eq(c->value, GUARD);
}

static bool is_wanted(const struct caa_rec *c, const char *tag, const char *want) {
  return c->flags == 0 && strcasecmp(c->tag, tag) == 0 && str_eq(c->value, want);
}

static const char *const issue_tags[] = {"issue", "issuewild"};

static int caa_add(struct certbot_dns *d, const char *name, const char *tag, const char *value,
                   char *err, size_t errlen) {
  char *id = NULL;
  int r = d->ops->caa_add(d, name, 0, tag, value, &id, err, errlen);
  free(id);
  return r;
}

static int caa_set_one(struct certbot_dns *d, const char *name, const char *want, char *err,
                       size_t errlen) {
  struct certbot_dns_record *raw = NULL;
  size_t n = 0;
  struct caa_rec *c = NULL;
  int r;

  /* 1. The guards, unless a previous run left them. */
  if ((r = caa_list(d, name, &raw, &n, &c, err, errlen)) < 0)
    goto out;
  for (size_t t = 0; t < ARRAY_SIZE(issue_tags); t++) {
    bool have = false;
    for (size_t i = 0; i < n && !have; i++)
      have = is_guard(&c[i]) && strcasecmp(c[i].tag, issue_tags[t]) == 0;
    if (!have && (r = caa_add(d, name, issue_tags[t], GUARD, err, errlen)) < 0)
      goto out;
  }
  caa_recs_free(c, n);
  certbot_dns_records_free(raw, n);

  /* 2. Other issue/issuewild records go; one wanted record per tag may stay. */
  if ((r = caa_list(d, name, &raw, &n, &c, err, errlen)) < 0)
    goto out;
  bool have_want[ARRAY_SIZE(issue_tags)] = {false};
  for (size_t i = 0; i < n; i++) {
    if (!is_issue_tag(c[i].tag) || is_guard(&c[i]))
      continue;
    bool keep = false;
    for (size_t t = 0; t < ARRAY_SIZE(issue_tags) && !keep; t++)
      if (!have_want[t] && is_wanted(&c[i], issue_tags[t], want))
        keep = have_want[t] = true;
    if (!keep && (r = d->ops->del(d, name, c[i].id, err, errlen)) < 0)
      goto out;
  }

  /* 3. The wanted records. */
  for (size_t t = 0; t < ARRAY_SIZE(issue_tags); t++)
    if (!have_want[t] && (r = caa_add(d, name, issue_tags[t], want, err, errlen)) < 0)
      goto out;

  /* 4. The guards go (every copy of them). */
  for (size_t i = 0; i < n; i++)
    if (is_guard(&c[i]) && (r = d->ops->del(d, name, c[i].id, err, errlen)) < 0)
      goto out;
  r = 0;
out:
  caa_recs_free(c, n);
  certbot_dns_records_free(raw, n);
  return r;
}

int certbot_caa_set(struct certbot_dns *d, char *const *domains, const char *account_uri,
                    const char *ca_domain, char *err, size_t errlen) {
  if (!d || !d->ops)
    return str_err(err, errlen, -EINVAL, "caa: no DNS provider");
  const char *ca = str_isempty(ca_domain) ? CERTBOT_CAA_DEFAULT_CA : ca_domain;
  if (!param_ok(ca, CAA_NAME_MAX))
    return str_err(err, errlen, -EINVAL, "caa: bad CA domain");
  if (!param_ok(account_uri, 512))
    return str_err(err, errlen, -EINVAL, "caa: bad account URI");
  _cleanup_(strv_freep) char **names = NULL;
  int r = domains_normalize(domains, &names, err, errlen);
  if (r < 0)
    return r;
  _cleanup_free_ char *want =
      str_printf("%s;validationmethods=dns-01;accounturi=%s", ca, account_uri);
  if (!want)
    return str_err(err, errlen, -ENOMEM, "caa: out of memory");
  for (char **p = names; *p; p++)
    if ((r = caa_set_one(d, *p, want, err, errlen)) < 0)
      return r;
  return 0;
}
