/* The Cloudflare DNS provider: see certbot_dns_cf.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "certbot_dns_cf.h"
#include "net/http_client.h"

#define CF_DEFAULT_TIMEOUT_MS 30000u
#define CF_DEFAULT_RETRIES 4u
#define CF_MAX_RETRIES 10u
#define CF_DEFAULT_BACKOFF_MS 500u
#define CF_MAX_RETRY_AFTER_MS 10000u
#define CF_NAME_MAX 253
#define CF_PER_PAGE 100
/* Cloudflare's "An identical record already exists." */
#define CF_CODE_IDENTICAL 81058

struct cf {
  struct certbot_dns base;
  char *api_url;     /* without a final '/' */
  char *auth_header; /* secret: "Authorization: Bearer <token>" */
  char *zone_id;     /* configured, or NULL */
  char *cached_zone_name, *cached_zone_id;
  char *ca_file;
  unsigned timeout_ms, retries, backoff_ms;
  char **name_servers;
  long last_code; /* first Cloudflare error code of the last failed call, 0 if none */
};

static void pause_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* Cloudflare's errors array as "[code] message; ..." into err (after prefix). Returns the first
 * code (0 when none is readable). */
static long errors_format(const json_t *root, char *out, size_t outlen) {
  long first = 0;
  size_t off = 0;
  json_t *errs = json_object_get(root, "errors");
  if (outlen)
    out[0] = '\0';
  if (!json_is_array(errs))
    return 0;
  size_t i;
  json_t *e;
  json_array_foreach(errs, i, e) {
    if (i >= 5)
      break;
    json_t *c = json_object_get(e, "code");
    json_t *m = json_object_get(e, "message");
    long code = json_is_integer(c) ? (long)json_integer_value(c) : 0;
    const char *msg = json_is_string(m) ? json_string_value(m) : "(no message)";
    if (!first)
      first = code;
    if (off < outlen) {
      int k = snprintf(out + off, outlen - off, "%s[%ld] %.200s", i ? "; " : "", code, msg);
      if (k < 0)
        break;
      off += (size_t)k;
    }
  }
  return first;
}

static int envelope_check(long status, json_t *root, long *ret_code, char *err, size_t errlen) {
  char msgs[512];
  long code = errors_format(root, msgs, sizeof(msgs));
  if (ret_code)
    *ret_code = code;
  json_t *ok = json_object_get(root, "success");
  if (!json_is_boolean(ok))
    return str_err(err, errlen, -EBADMSG, "HTTP %ld: not a Cloudflare answer (no \"success\")",
                   status);
  json_t *errs = json_object_get(root, "errors");
  bool has_errs = json_is_array(errs) && json_array_size(errs) > 0;
  if (status < 200 || status > 299 || !json_is_true(ok) || has_errs)
    return str_err(err, errlen, -EREMOTEIO, "HTTP %ld: %s", status,
                   msgs[0] ? msgs : "failure without a message");
  return 0;
}

static int envelope_parse(long status, const char *body, size_t len, json_t **ret_root,
                          long *ret_code, char *err, size_t errlen) {
  json_t *root = NULL;
  if (ret_code)
    *ret_code = 0;
  int r = json_parse_buf(body, len, CERTBOT_DNS_CF_MAX_BODY, &root);
  if (r < 0 || !json_is_object(root)) {
    json_decref(root);
    if (r == -ENOBUFS)
      return str_err(err, errlen, r, "HTTP %ld: answer too long", status);
    return str_err(err, errlen, -EBADMSG, "HTTP %ld: answer is not a JSON object", status);
  }
  r = envelope_check(status, root, ret_code, err, errlen);
  if (r < 0 || !ret_root)
    json_decref(root);
  else
    *ret_root = root;
  return r;
}

int certbot_dns_cf_envelope_parse(long status, const char *body, size_t len, json_t **ret_root,
                                  char *err, size_t errlen) {
  if (!body && len)
    return str_err(err, errlen, -EINVAL, "no body");
  return envelope_parse(status, body ? body : "", len, ret_root, NULL, err, errlen);
}

/* Names compare ASCII case-insensitively, one final dot ignored. */
static bool name_eq(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la && a[la - 1] == '.')
    la--;
  if (lb && b[lb - 1] == '.')
    lb--;
  return la == lb && strncasecmp(a, b, la) == 0;
}

/* "<flags> <tag> \"<value>\"" with '"' and '\' in value escaped. */
static char *caa_format(uint64_t flags, const char *tag, const char *value) {
  struct buf b = BUF_INIT(BUF_MAX_SMALL);
  int r = buf_printf(&b, "%u %s \"", (unsigned)flags, tag);
  for (const char *p = value; r == 0 && *p; p++) {
    if (*p == '"' || *p == '\\')
      r = buf_append_u8(&b, '\\');
    if (r == 0)
      r = buf_append_u8(&b, (uint8_t)*p);
  }
  if (r == 0)
    r = buf_append_u8(&b, '"');
  if (r == 0)
    r = buf_terminate(&b);
  if (r < 0) {
    buf_free(&b);
    return NULL;
  }
  return (char *)buf_steal(&b, NULL);
}

static int record_value(const char *type, const json_t *rec, char **ret) {
  json_t *data = json_object_get(rec, "data");
  if (strcasecmp(type, "CAA") == 0 && json_is_object(data)) {
    json_t *fl = json_object_get(data, "flags");
    json_t *tag = json_object_get(data, "tag");
    json_t *val = json_object_get(data, "value");
    if (!json_is_integer(fl) || json_integer_value(fl) < 0 || json_integer_value(fl) > 255 ||
        !json_is_string(tag) || !json_is_string(val))
      return -EBADMSG;
    *ret = caa_format((uint64_t)json_integer_value(fl), json_string_value(tag),
                      json_string_value(val));
    return *ret ? 0 : -ENOMEM;
  }
  const char *content = "";
  int r = json_get_str(rec, "content", &content);
  if (r == -EINVAL)
    return -EBADMSG;
  *ret = strdup(r == 0 ? content : "");
  return *ret ? 0 : -ENOMEM;
}

int certbot_dns_cf_records_parse(const json_t *root, const char *name, const char *type,
                                 struct certbot_dns_record **recs, size_t *n,
                                 unsigned *ret_total_pages) {
  if (!root || !name || !recs || !n)
    return -EINVAL;
  json_t *result = json_object_get(root, "result");
  if (!json_is_array(result))
    return -EBADMSG;
  unsigned total = 1;
  json_t *info = json_object_get(root, "result_info");
  if (info && !json_is_null(info)) {
    uint32_t tp;
    int r = json_get_u32(info, "total_pages", &tp);
    if (r == 0)
      total = tp ? tp : 1;
    else if (r != -ENOENT)
      return -EBADMSG;
  }
  size_t i;
  json_t *rec;
  json_array_foreach(result, i, rec) {
    const char *id, *rtype, *rname;
    if (!json_is_object(rec) || json_get_str(rec, "id", &id) < 0 ||
        json_get_str(rec, "type", &rtype) < 0 || json_get_str(rec, "name", &rname) < 0 || !*id)
      return -EBADMSG;
    if (!name_eq(rname, name) || (type && strcasecmp(rtype, type) != 0))
      continue;
    char *value = NULL;
    int r = record_value(rtype, rec, &value);
    if (r < 0)
      return r;
    struct certbot_dns_record *nr = realloc(*recs, (*n + 1) * sizeof(**recs));
    if (!nr) {
      free(value);
      return -ENOMEM;
    }
    *recs = nr;
    struct certbot_dns_record *d = &nr[*n];
    *d = (struct certbot_dns_record){.id = strdup(id), .type = strdup(rtype),
                                     .name = strdup(rname), .value = value};
    (*n)++; /* counted at once so that the caller frees it on every path */
    if (!d->id || !d->type || !d->name)
      return -ENOMEM;
  }
  if (ret_total_pages)
    *ret_total_pages = total;
  return 0;
}

/* One API call with bounded retries. 1 when ok_404 and the answer was 404, else 0 with the
 * checked envelope in *ret_root (may be NULL). */
static int cf_call(struct cf *cf, const char *method, const char *path, json_t *body, bool ok_404,
                   json_t **ret_root, char *err, size_t errlen) {
  _cleanup_free_ char *url = str_printf("%s%s", cf->api_url, path);
  _cleanup_free_ char *payload = body ? json_dump_compact(body) : NULL;
  if (!url || (body && !payload))
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  const char *headers[] = {cf->auth_header, "Accept: application/json", NULL};
  struct http_client_opts ho = {
      .timeout_ms = cf->timeout_ms,
      .connect_timeout_ms = MIN(cf->timeout_ms, 10000u),
      .max_body = CERTBOT_DNS_CF_MAX_BODY,
      .ca_file = cf->ca_file,
      .headers = headers,
  };
  cf->last_code = 0;
  unsigned wait = cf->backoff_ms;
  char why[600];
  int r = 0;
  for (unsigned attempt = 0;; attempt++) {
    struct http_response resp = {0};
    bool retry = false;
    r = http_request(method, url, payload ? "application/json" : NULL, payload,
                     payload ? strlen(payload) : 0, &ho, &resp);
    if (r < 0) {
      snprintf(why, sizeof(why), "%s", strerror(-r));
      retry = r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -EIO;
    } else if (resp.status == 404 && ok_404) {
      http_response_free(&resp);
      return 1;
    } else {
      r = envelope_parse(resp.status, (const char *)resp.body.data, resp.body.len, ret_root,
                         &cf->last_code, why, sizeof(why));
      retry = resp.status == 429 || resp.status >= 500;
      if (retry && r == 0) { /* an error status is never a success */
        if (ret_root) {
          json_decref(*ret_root);
          *ret_root = NULL;
        }
        r = -EREMOTEIO;
      }
      if (retry) {
        const char *ra = http_response_header(&resp, "Retry-After");
        uint32_t secs;
        if (ra && str_to_u32(ra, &secs) == 0)
          wait = MAX(wait, (unsigned)MIN((uint64_t)secs * 1000, CF_MAX_RETRY_AFTER_MS));
      }
    }
    http_response_free(&resp);
    if (r == 0)
      return 0;
    if (!retry || attempt >= cf->retries)
      break;
    log_debug("cloudflare: %s %s: %s; trying again in %u ms", method, path, why, wait);
    pause_ms(wait);
    wait = MIN(wait * 2, cf->backoff_ms * 8);
  }
  return str_err(err, errlen, r, "cloudflare: %s %s: %s", method, path, why);
}

/* Ids go into URL paths: hex digits, '-' and '_' only. */
static bool id_ok(const char *id) {
  size_t l = id ? strlen(id) : 0;
  return l > 0 && l <= 64 && strspn(id, "0123456789abcdefABCDEF-_") == l;
}

static char *name_plain(const char *name) {
  char *s = strdup(name);
  size_t l = s ? strlen(s) : 0;
  if (l && s[l - 1] == '.')
    s[l - 1] = '\0';
  return s;
}

static int name_check(const char *name, char *err, size_t errlen) {
  size_t l = name ? strlen(name) : 0;
  if (l == 0 || l > CF_NAME_MAX + 1 || !str_is_printable_ascii(name) || strchr(name, ' '))
    return str_err(err, errlen, -EINVAL, "cloudflare: bad record name");
  return 0;
}

/* Whether zone is name or one of its parents. */
static bool zone_holds(const char *zone, const char *name) {
  size_t lz = strlen(zone), ln = strlen(name);
  if (name_eq(zone, name))
    return true;
  return ln > lz + 1 && name[ln - lz - 1] == '.' && name_eq(name + ln - lz, zone);
}

static int cf_zone(struct cf *cf, const char *name, const char **ret, char *err, size_t errlen) {
  if (cf->zone_id) {
    *ret = cf->zone_id;
    return 0;
  }
  if (cf->cached_zone_name && zone_holds(cf->cached_zone_name, name)) {
    *ret = cf->cached_zone_id;
    return 0;
  }
  _cleanup_free_ char *plain = name_plain(name);
  if (!plain)
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  /* From the name itself up to the label below the top level. */
  for (const char *cand = plain; strchr(cand, '.'); cand = strchr(cand, '.') + 1) {
    _cleanup_free_ char *enc = NULL;
    if (http_url_encode(cand, &enc) < 0)
      return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
    _cleanup_free_ char *path = str_printf("/zones?name=%s", enc);
    if (!path)
      return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
    _cleanup_json_ json_t *root = NULL;
    int r = cf_call(cf, "GET", path, NULL, false, &root, err, errlen);
    if (r < 0)
      return r;
    json_t *result = json_object_get(root, "result");
    if (!json_is_array(result))
      return str_err(err, errlen, -EBADMSG, "cloudflare: GET /zones: \"result\" is not a list");
    size_t i;
    json_t *z;
    json_array_foreach(result, i, z) {
      const char *zn, *zid;
      if (json_get_str(z, "name", &zn) < 0 || json_get_str(z, "id", &zid) < 0 || !id_ok(zid))
        continue;
      if (!name_eq(zn, cand))
        continue;
      char *n2 = strdup(cand), *i2 = strdup(zid);
      if (!n2 || !i2) {
        free(n2), free(i2);
        return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
      }
      free(cf->cached_zone_name), free(cf->cached_zone_id);
      cf->cached_zone_name = n2;
      cf->cached_zone_id = i2;
      *ret = i2;
      return 0;
    }
  }
  return str_err(err, errlen, -ENOENT, "cloudflare: no zone of this account holds %s", plain);
}

static int cf_list(struct certbot_dns *d, const char *name, const char *type,
                   struct certbot_dns_record **ret, size_t *ret_n, char *err, size_t errlen) {
  struct cf *cf = (struct cf *)d;
  const char *zone;
  int r = name_check(name, err, errlen);
  if (r < 0 || (r = cf_zone(cf, name, &zone, err, errlen)) < 0)
    return r;
  if (type && (!*type || strlen(type) > 16 || !str_is_printable_ascii(type)))
    return str_err(err, errlen, -EINVAL, "cloudflare: bad record type");
  _cleanup_free_ char *plain = name_plain(name);
  _cleanup_free_ char *enc = NULL;
  if (!plain || http_url_encode(plain, &enc) < 0)
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  struct certbot_dns_record *recs = NULL;
  size_t n = 0;
  unsigned total = 1;
  for (unsigned page = 1; page <= total; page++) {
    _cleanup_free_ char *path =
        str_printf("/zones/%s/dns_records?name=%s%s%s&per_page=%d&page=%u", zone, enc,
                   type ? "&type=" : "", type ? type : "", CF_PER_PAGE, page);
    if (!path) {
      r = str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
      goto fail;
    }
    _cleanup_json_ json_t *root = NULL;
    if ((r = cf_call(cf, "GET", path, NULL, false, &root, err, errlen)) < 0)
      goto fail;
    unsigned tp = 1;
    r = certbot_dns_cf_records_parse(root, plain, type, &recs, &n, &tp);
    if (r < 0) {
      str_err(err, errlen, r, "cloudflare: GET /zones/%s/dns_records: malformed record list",
              zone);
      goto fail;
    }
    if (page == 1)
      total = tp;
    if (total > CERTBOT_DNS_CF_MAX_PAGES) {
      r = str_err(err, errlen, -E2BIG, "cloudflare: %s has more than %d pages of records",
                  plain, CERTBOT_DNS_CF_MAX_PAGES);
      goto fail;
    }
  }
  *ret = recs;
  *ret_n = n;
  return 0;
fail:
  certbot_dns_records_free(recs, n);
  return r;
}

/* Creates a record; with Cloudflare's "identical record exists" the existing one's id is taken
 * (a retried POST whose first try did reach Cloudflare ends here). */
static int cf_create(struct cf *cf, const char *name, json_t *rec, const char *type,
                     const char *want_value, char **ret_id, char *err, size_t errlen) {
  const char *zone;
  int r = cf_zone(cf, name, &zone, err, errlen);
  if (r < 0)
    return r;
  _cleanup_free_ char *path = str_printf("/zones/%s/dns_records", zone);
  if (!path)
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  _cleanup_json_ json_t *root = NULL;
  r = cf_call(cf, "POST", path, rec, false, &root, err, errlen);
  if (r < 0 && cf->last_code == CF_CODE_IDENTICAL) {
    struct certbot_dns_record *recs = NULL;
    size_t n = 0;
    char err2[256];
    if (cf_list(&cf->base, name, type, &recs, &n, err2, sizeof(err2)) == 0) {
      for (size_t i = 0; i < n; i++)
        if (str_eq(recs[i].value, want_value)) {
          *ret_id = TAKE_PTR(recs[i].id);
          r = 0;
          break;
        }
      certbot_dns_records_free(recs, n);
    }
    return r;
  }
  if (r < 0)
    return r;
  json_t *result = json_object_get(root, "result");
  const char *id;
  if (json_get_str(result, "id", &id) < 0 || !id_ok(id))
    return str_err(err, errlen, -EBADMSG, "cloudflare: POST %s: answer without a record id",
                   path);
  if (!(*ret_id = strdup(id)))
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  return 0;
}

static int cf_txt_add(struct certbot_dns *d, const char *name, const char *value, char **ret_id,
                      char *err, size_t errlen) {
  struct cf *cf = (struct cf *)d;
  int r = name_check(name, err, errlen);
  if (r < 0)
    return r;
  if (!value || strlen(value) > 2048)
    return str_err(err, errlen, -EINVAL, "cloudflare: bad TXT value");
  _cleanup_free_ char *plain = name_plain(name);
  _cleanup_json_ json_t *rec = json_pack("{s:s, s:s, s:s, s:i}", "type", "TXT", "name",
                                         plain ? plain : "", "content", value, "ttl", 120);
  if (!plain || !rec)
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  return cf_create(cf, name, rec, "TXT", value, ret_id, err, errlen);
}

static int cf_caa_add(struct certbot_dns *d, const char *name, unsigned flags, const char *tag,
                      const char *value, char **ret_id, char *err, size_t errlen) {
  struct cf *cf = (struct cf *)d;
  int r = name_check(name, err, errlen);
  if (r < 0)
    return r;
  if (flags > 255 || !tag || !*tag || strlen(tag) > 15 || !value || strlen(value) > 1024)
    return str_err(err, errlen, -EINVAL, "cloudflare: bad CAA record");
  _cleanup_free_ char *plain = name_plain(name);
  _cleanup_free_ char *want = caa_format(flags, tag, value);
  _cleanup_json_ json_t *rec =
      json_pack("{s:s, s:s, s:i, s:{s:i, s:s, s:s}}", "type", "CAA", "name", plain ? plain : "",
                "ttl", 120, "data", "flags", (int)flags, "tag", tag, "value", value);
  if (!plain || !want || !rec)
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  return cf_create(cf, name, rec, "CAA", want, ret_id, err, errlen);
}

static int cf_del(struct certbot_dns *d, const char *name, const char *id, char *err,
                  size_t errlen) {
  struct cf *cf = (struct cf *)d;
  const char *zone;
  int r = name_check(name, err, errlen);
  if (r < 0)
    return r;
  if (!id_ok(id))
    return str_err(err, errlen, -EINVAL, "cloudflare: bad record id");
  if ((r = cf_zone(cf, name, &zone, err, errlen)) < 0)
    return r;
  _cleanup_free_ char *path = str_printf("/zones/%s/dns_records/%s", zone, id);
  if (!path)
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  r = cf_call(cf, "DELETE", path, NULL, true, NULL, err, errlen);
  return r < 0 ? r : 0;
}

static int cf_authoritative(struct certbot_dns *d, const char *name, char ***ret, char *err,
                            size_t errlen) {
  struct cf *cf = (struct cf *)d;
  _cleanup_(strv_freep) char **l = NULL;
  if (cf->name_servers) {
    for (char *const *p = cf->name_servers; *p; p++)
      if (strv_push_dup(&l, *p) < 0)
        return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
    if (!l)
      return str_err(err, errlen, -ENOENT, "cloudflare: no name servers configured");
    *ret = TAKE_PTR(l);
    return 0;
  }
  const char *zone;
  int r = name_check(name, err, errlen);
  if (r < 0 || (r = cf_zone(cf, name, &zone, err, errlen)) < 0)
    return r;
  _cleanup_free_ char *path = str_printf("/zones/%s", zone);
  if (!path)
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  _cleanup_json_ json_t *root = NULL;
  if ((r = cf_call(cf, "GET", path, NULL, false, &root, err, errlen)) < 0)
    return r;
  json_t *ns = json_object_get(json_object_get(root, "result"), "name_servers");
  size_t i;
  json_t *s;
  json_array_foreach(ns, i, s) {
    const char *h = json_string_value(s);
    if (i >= 16 || !h || !*h || strlen(h) > CF_NAME_MAX || !str_is_printable_ascii(h) ||
        strpbrk(h, " :/"))
      return str_err(err, errlen, -EBADMSG, "cloudflare: GET %s: bad name server", path);
    char *hp = str_printf("%s:53", h);
    if (!hp || strv_push(&l, hp) < 0)
      return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  }
  if (!l)
    return str_err(err, errlen, -EBADMSG, "cloudflare: GET %s: no name servers", path);
  *ret = TAKE_PTR(l);
  return 0;
}

static void cf_free(struct certbot_dns *d) {
  struct cf *cf = (struct cf *)d;
  if (!cf)
    return;
  if (cf->auth_header) {
    secure_wipe(cf->auth_header, strlen(cf->auth_header));
    free(cf->auth_header);
  }
  free(cf->api_url);
  free(cf->zone_id);
  free(cf->cached_zone_name);
  free(cf->cached_zone_id);
  free(cf->ca_file);
  strv_free(cf->name_servers);
  free(cf);
}

static const struct certbot_dns_ops cf_ops = {
    .name = "cloudflare",
    .txt_add = cf_txt_add,
    .caa_add = cf_caa_add,
    .del = cf_del,
    .list = cf_list,
    .authoritative = cf_authoritative,
    .free = cf_free,
};

static bool token_ok(const char *t) {
  size_t l = t ? strlen(t) : 0;
  if (l == 0 || l > 512)
    return false;
  for (size_t i = 0; i < l; i++)
    if (t[i] <= ' ' || t[i] > '~')
      return false;
  return true;
}

int certbot_dns_cf_new(const struct certbot_dns_cf_opts *o, struct certbot_dns **ret, char *err,
                       size_t errlen) {
  if (!o || !ret)
    return str_err(err, errlen, -EINVAL, "cloudflare: no options");
  if (!token_ok(o->api_token))
    return str_err(err, errlen, -EINVAL,
                   "cloudflare: the API token is missing or holds spaces or control characters");
  const char *url = str_isempty(o->api_url) ? CERTBOT_DNS_CF_DEFAULT_API_URL : o->api_url;
  if (!str_startswith(url, "https://") && !str_startswith(url, "http://"))
    return str_err(err, errlen, -EINVAL, "cloudflare: api_url must be an http(s) URL");
  if (!str_isempty(o->zone_id) && !id_ok(o->zone_id))
    return str_err(err, errlen, -EINVAL, "cloudflare: bad zone_id");
  struct cf *cf = calloc(1, sizeof(*cf));
  if (!cf)
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  cf->base.ops = &cf_ops;
  cf->api_url = strdup(url);
  cf->auth_header = str_printf("Authorization: Bearer %s", o->api_token);
  cf->zone_id = str_isempty(o->zone_id) ? NULL : strdup(o->zone_id);
  cf->ca_file = str_isempty(o->ca_file) ? NULL : strdup(o->ca_file);
  cf->timeout_ms = o->timeout_ms ? o->timeout_ms : CF_DEFAULT_TIMEOUT_MS;
  cf->retries = MIN(o->retries ? o->retries : CF_DEFAULT_RETRIES, CF_MAX_RETRIES);
  cf->backoff_ms = MIN(o->backoff_ms ? o->backoff_ms : CF_DEFAULT_BACKOFF_MS, 10000u);
  bool oom = !cf->api_url || !cf->auth_header || (!str_isempty(o->zone_id) && !cf->zone_id) ||
             (!str_isempty(o->ca_file) && !cf->ca_file);
  for (char *const *p = o->name_servers; !oom && p && *p; p++)
    oom = strv_push_dup(&cf->name_servers, *p) < 0;
  if (oom) {
    cf_free(&cf->base);
    return str_err(err, errlen, -ENOMEM, "cloudflare: out of memory");
  }
  size_t l = strlen(cf->api_url);
  while (l > 0 && cf->api_url[l - 1] == '/')
    cf->api_url[--l] = '\0';
  *ret = &cf->base;
  return 0;
}
