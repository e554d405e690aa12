/* The ACME client. */
#include "certbot_acme.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base64.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "certbot_dns_wait.h"
#include "certbot_jws.h"
#include "crypto/ossl.h"
#include "net/http_client.h"

#define PROBLEM_PREFIX "urn:ietf:params:acme:error:"
#define POLL_DEFAULT_MS 1000
#define POLL_MIN_MS 250
#define POLL_MAX_MS 10000

struct certbot_acme {
  struct http_client_opts http;
  char *ca_file;
  int64_t deadline_ms;
  char *new_nonce, *new_account, *new_order;
  char *nonce;
  EVP_PKEY *key; /* owned */
  char *kid;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms, but never past the deadline: -ETIMEDOUT when the deadline comes first. */
static int sleep_bounded(struct certbot_acme *a, int64_t ms) {
  int64_t left = a->deadline_ms - now_ms();
  if (left <= 0 || ms > left)
    return -ETIMEDOUT;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
  return 0;
}

/* Retry-After in seconds (an HTTP date counts as absent), kept within POLL_MIN_MS and
 * POLL_MAX_MS so that neither a 0 nor a huge value from the server sets the pace. */
static int64_t retry_after_ms(const struct http_response *resp, int64_t def) {
  const char *v = http_response_header(resp, "Retry-After");
  uint64_t s;
  if (!v || str_to_u64(v, &s) < 0)
    return def;
  if (s > POLL_MAX_MS / 1000)
    return POLL_MAX_MS;
  return s == 0 ? POLL_MIN_MS : (int64_t)s * 1000;
}

int certbot_acme_problem_parse(const char *body, size_t len, char **ret_type, char **ret_detail) {
  _cleanup_json_ json_t *j = NULL;
  const char *type = NULL, *detail = NULL;
  int r = json_parse_buf(body, len, CERTBOT_ACME_MAX_BODY, &j);
  if (r < 0)
    return r;
  if (!json_is_object(j) || json_get_str(j, "type", &type) < 0)
    return -EBADMSG;
  (void)json_get_str(j, "detail", &detail);
  *ret_type = strdup(type);
  *ret_detail = strdup(detail ? detail : "");
  if (!*ret_type || !*ret_detail) {
    free(*ret_type);
    free(*ret_detail);
    return -ENOMEM;
  }
  return 0;
}

static void nonce_take(struct certbot_acme *a, const struct http_response *resp) {
  const char *n = http_response_header(resp, "Replay-Nonce");
  if (!n || !*n || strlen(n) > 512)
    return;
  free(a->nonce);
  a->nonce = strdup(n);
}

static int nonce_fetch(struct certbot_acme *a, char *err, size_t errlen) {
  struct http_response resp = {0};
  int r = http_request("HEAD", a->new_nonce, NULL, NULL, 0, &a->http, &resp);
  if (r < 0)
    return str_err(err, errlen, r, "ACME newNonce %s: %s", a->new_nonce, strerror(-r));
  nonce_take(a, &resp);
  http_response_free(&resp);
  if (!a->nonce)
    return str_err(err, errlen, -EPROTO, "ACME newNonce %s: no Replay-Nonce", a->new_nonce);
  return 0;
}

/* A signed POST. payload NULL: POST-as-GET. Problems become errors with type and detail; a
 * badNonce is retried with the nonce of the error, rateLimited and serverInternal after a
 * back-off. On success resp holds a 2xx response. */
static int acme_post(struct certbot_acme *a, const char *url, const char *payload,
                     struct http_response *resp, char *err, size_t errlen) {
  unsigned nonce_tries = 0, busy_tries = 0;
  int r;
  for (;;) {
    _cleanup_free_ char *jws = NULL;
    if (now_ms() >= a->deadline_ms)
      return str_err(err, errlen, -ETIMEDOUT, "ACME: out of time before POST %s", url);
    if (!a->nonce && (r = nonce_fetch(a, err, errlen)) < 0)
      return r;
    _cleanup_free_ char *nonce = a->nonce;
    a->nonce = NULL;
    if ((r = certbot_jws_sign(a->key, url, nonce, a->kid, payload, &jws)) < 0)
      return str_err(err, errlen, r, "ACME: signing the request to %s", url);
    *resp = (struct http_response){0};
    r = http_request("POST", url, "application/jose+json", jws, strlen(jws), &a->http, resp);
    if (r < 0)
      return str_err(err, errlen, r, "ACME POST %s: %s", url, strerror(-r));
    nonce_take(a, resp);
    if (resp->status >= 200 && resp->status < 300)
      return 0;
    _cleanup_free_ char *type = NULL, *detail = NULL;
    if (certbot_acme_problem_parse((const char *)resp->body.data, resp->body.len, &type, &detail) <
        0) {
      r = str_err(err, errlen, -EPROTO, "ACME POST %s: HTTP %ld without a problem document", url,
                  resp->status);
      http_response_free(resp);
      return r;
    }
    const char *t = str_after_prefix(type, PROBLEM_PREFIX);
    t = t ? t : type;
    int64_t wait = retry_after_ms(resp, 1000);
    http_response_free(resp);
    if (str_eq(t, "badNonce") && ++nonce_tries <= CERTBOT_ACME_NONCE_RETRIES) {
      log_debug("ACME: badNonce on %s, retrying with the fresh nonce", url);
      continue;
    }
    if ((str_eq(t, "rateLimited") || str_eq(t, "serverInternal")) &&
        ++busy_tries <= CERTBOT_ACME_BUSY_RETRIES) {
      log_debug("ACME: %s on %s, retrying in %lld ms", t, url, (long long)wait);
      if (sleep_bounded(a, wait * busy_tries) < 0)
        return str_err(err, errlen, -ETIMEDOUT, "ACME POST %s: %s: %s (out of time)", url, type,
                       detail);
      continue;
    }
    r = str_eq(t, "unauthorized") || str_eq(t, "rejectedIdentifier") ? -EPERM : -EPROTO;
    return str_err(err, errlen, r, "ACME POST %s: %s: %s", url, type, detail);
  }
}

/* POST and parse the body as a JSON object. */
static int acme_post_json(struct certbot_acme *a, const char *url, const char *payload,
                          json_t **ret, char **ret_location, int64_t *ret_retry_ms, char *err,
                          size_t errlen) {
  struct http_response resp = {0};
  int r = acme_post(a, url, payload, &resp, err, errlen);
  if (r < 0)
    return r;
  json_t *j = NULL;
  r = json_parse_buf((const char *)resp.body.data, resp.body.len, CERTBOT_ACME_MAX_BODY, &j);
  if (r < 0 || !json_is_object(j)) {
    json_decref(j);
    http_response_free(&resp);
    return str_err(err, errlen, -EBADMSG, "ACME POST %s: the answer is not a JSON object", url);
  }
  if (ret_location) {
    const char *loc = http_response_header(&resp, "Location");
    *ret_location = loc ? strdup(loc) : NULL;
  }
  if (ret_retry_ms)
    *ret_retry_ms = retry_after_ms(&resp, POLL_DEFAULT_MS);
  http_response_free(&resp);
  *ret = j;
  return 0;
}

static int dir_url(json_t *d, const char *key, char **dst, char *err, size_t errlen) {
  const char *v = NULL;
  if (json_get_str(d, key, &v) < 0 ||
      !(str_startswith(v, "https://") || str_startswith(v, "http://")))
    return str_err(err, errlen, -EBADMSG, "ACME directory: no %s URL", key);
  return (*dst = strdup(v)) ? 0 : -ENOMEM;
}

int certbot_acme_new(const struct certbot_acme_opts *o, struct certbot_acme **ret, char *err,
                     size_t errlen) {
  struct certbot_acme *a = calloc(1, sizeof(*a));
  struct http_response resp = {0};
  _cleanup_json_ json_t *d = NULL;
  int r;
  if (!a)
    return -ENOMEM;
  if (o->ca_file && *o->ca_file && !(a->ca_file = strdup(o->ca_file))) {
    r = -ENOMEM;
    goto fail;
  }
  a->http.ca_file = a->ca_file;
  a->http.timeout_ms = o->request_timeout_ms ? (long)o->request_timeout_ms : 30000;
  a->http.max_body = CERTBOT_ACME_MAX_BODY;
  a->deadline_ms = o->deadline_ms;
  if ((r = http_get(o->directory_url, &a->http, &resp)) < 0) {
    str_err(err, errlen, r, "ACME directory %s: %s", o->directory_url, strerror(-r));
    goto fail;
  }
  if (resp.status != 200 ||
      json_parse_buf((const char *)resp.body.data, resp.body.len, CERTBOT_ACME_MAX_BODY, &d) < 0 ||
      !json_is_object(d)) {
    r = str_err(err, errlen, -EBADMSG, "ACME directory %s: HTTP %ld, not a directory",
                o->directory_url, resp.status);
    goto fail;
  }
  if ((r = dir_url(d, "newNonce", &a->new_nonce, err, errlen)) < 0 ||
      (r = dir_url(d, "newAccount", &a->new_account, err, errlen)) < 0 ||
      (r = dir_url(d, "newOrder", &a->new_order, err, errlen)) < 0)
    goto fail;
  http_response_free(&resp);
  *ret = a;
  return 0;
fail:
  http_response_free(&resp);
  certbot_acme_free(a);
  return r;
}

void certbot_acme_free(struct certbot_acme *a) {
  if (!a)
    return;
  free(a->ca_file);
  free(a->new_nonce);
  free(a->new_account);
  free(a->new_order);
  free(a->nonce);
  free(a->kid);
  EVP_PKEY_free(a->key);
  free(a);
}

int certbot_acme_account(struct certbot_acme *a, EVP_PKEY *key, const char *kid, char **ret_kid,
                         char *err, size_t errlen) {
  EVP_PKEY_free(a->key);
  a->key = key;
  free(a->kid);
  a->kid = NULL;
  if (kid) {
    if (!(a->kid = strdup(kid)))
      return -ENOMEM;
  } else {
    _cleanup_json_ json_t *acct = NULL;
    _cleanup_free_ char *loc = NULL;
    const char *status = NULL;
    int r = acme_post_json(a, a->new_account, "{\"termsOfServiceAgreed\":true}", &acct, &loc, NULL,
                           err, errlen);
    if (r < 0)
      return r;
    if (!loc || !(str_startswith(loc, "https://") || str_startswith(loc, "http://")))
      return str_err(err, errlen, -EPROTO, "ACME newAccount: no account URL in Location");
    if (json_get_str(acct, "status", &status) >= 0 && !str_eq(status, "valid"))
      return str_err(err, errlen, -EPERM, "ACME account %s is %s", loc, status);
    a->kid = TAKE_PTR(loc);
  }
  if (ret_kid && !(*ret_kid = strdup(a->kid)))
    return -ENOMEM;
  return 0;
}

int certbot_csr_build(char *const *domains, EVP_PKEY *key, struct buf *ret_der) {
  _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
  _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *names = GENERAL_NAMES_new();
  STACK_OF(X509_EXTENSION) *exts = NULL;
  _cleanup_ossl_free_ unsigned char *der = NULL;
  int r = -EIO, n;
  if (!req || !names || !domains || !domains[0])
    return -EINVAL;
  for (size_t i = 0; domains[i]; i++) {
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!g || !s || !ASN1_STRING_set(s, domains[i], (int)strlen(domains[i]))) {
      GENERAL_NAME_free(g);
      ASN1_IA5STRING_free(s);
      return -ENOMEM;
    }
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    if (!sk_GENERAL_NAME_push(names, g)) {
      GENERAL_NAME_free(g);
      return -ENOMEM;
    }
  }
  exts = sk_X509_EXTENSION_new_null();
  X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
  if (!exts || !ext || !sk_X509_EXTENSION_push(exts, ext)) {
    X509_EXTENSION_free(ext);
    goto out;
  }
  if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key) ||
      !X509_REQ_add_extensions(req, exts) || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
    goto out;
  if ((n = i2d_X509_REQ(req, &der)) <= 0)
    goto out;
  buf_reset(ret_der);
  r = buf_append(ret_der, der, (size_t)n);
out:
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return r;
}

/* A challenge TXT record this run added, to be removed at the end. */
struct added {
  char *name, *id;
};

struct pending {
  char *authz_url, *chall_url, *name, *value;
};

static void pending_free(struct pending *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(p[i].authz_url);
    free(p[i].chall_url);
    free(p[i].name);
    free(p[i].value);
  }
  free(p);
}

/* Whether status is one of the space-separated words of want. */
static bool status_in(const char *status, const char *want) {
  size_t n = strlen(status);
  for (const char *w = want; n > 0 && *w;) {
    size_t l = strcspn(w, " ");
    if (l == n && strncmp(w, status, n) == 0)
      return true;
    w += l + (w[l] ? 1 : 0);
  }
  return false;
}

/* Polls url (POST-as-GET) until its status is one of want, -EPROTO on "invalid". */
static int poll_status(struct certbot_acme *a, const char *url, const char *want, json_t **ret,
                       char *err, size_t errlen) {
  for (unsigned i = 0; i < 10000; i++) {
    json_t *j = NULL;
    int64_t retry = POLL_DEFAULT_MS;
    const char *status = NULL;
    int r = acme_post_json(a, url, NULL, &j, NULL, &retry, err, errlen);
    if (r < 0)
      return r;
    if (json_get_str(j, "status", &status) < 0) {
      json_decref(j);
      return str_err(err, errlen, -EBADMSG, "ACME %s: no status", url);
    }
    if (status_in(status, want)) {
      *ret = j;
      return 0;
    }
    if (str_eq(status, "invalid")) {
      /* Name the failing challenge's error when there is one. */
      json_t *chs = json_object_get(j, "challenges"), *e;
      size_t k;
      json_t *ch;
      const char *type = "", *detail = "";
      json_t *perr = json_object_get(j, "error");
      json_array_foreach(chs, k, ch) {
        if ((e = json_object_get(ch, "error"))) {
          perr = e;
          break;
        }
      }
      if (perr) {
        (void)json_get_str(perr, "type", &type);
        (void)json_get_str(perr, "detail", &detail);
      }
      r = str_err(err, errlen, -EPROTO, "ACME %s is invalid: %s: %s", url, type, detail);
      json_decref(j);
      return r;
    }
    json_decref(j);
    if (sleep_bounded(a, retry) < 0)
      return str_err(err, errlen, -ETIMEDOUT, "ACME %s: still %s when time ran out", url, status);
  }
  return str_err(err, errlen, -ETIMEDOUT, "ACME %s: too many polls", url);
}

/* Removes every TXT record at name (left over from an interrupted run). */
static int txt_clear(struct certbot_dns *dns, const char *name, char *err, size_t errlen) {
  struct certbot_dns_record *recs = NULL;
  size_t n = 0;
  int r = dns->ops->list(dns, name, "TXT", &recs, &n, err, errlen);
  if (r < 0)
    return r;
  for (size_t i = 0; i < n && r >= 0; i++)
    if (str_eq(recs[i].type, "TXT"))
      r = dns->ops->del(dns, name, recs[i].id, err, errlen);
  certbot_dns_records_free(recs, n);
  return r;
}

static int authz_collect(struct certbot_acme *a, json_t *authzs, const char *thumb,
                         struct pending **ret, size_t *ret_n, char *err, size_t errlen) {
  size_t i, n = 0;
  json_t *u;
  struct pending *p = calloc(json_array_size(authzs) + 1, sizeof(*p));
  int r = 0;
  if (!p)
    return -ENOMEM;
  json_array_foreach(authzs, i, u) {
    _cleanup_json_ json_t *az = NULL;
    const char *url = json_string_value(u), *status = NULL, *ident = NULL;
    json_t *id = NULL, *chs = NULL, *ch;
    if (!url) {
      r = str_err(err, errlen, -EBADMSG, "ACME order: bad authorization URL");
      goto fail;
    }
    if ((r = acme_post_json(a, url, NULL, &az, NULL, NULL, err, errlen)) < 0)
      goto fail;
    if (json_get_str(az, "status", &status) < 0 || json_get_object(az, "identifier", &id) < 0 ||
        json_get_str(id, "value", &ident) < 0 || json_get_array(az, "challenges", &chs) < 0) {
      r = str_err(err, errlen, -EBADMSG, "ACME authorization %s: malformed", url);
      goto fail;
    }
    if (str_eq(status, "valid"))
      continue;
    if (!str_eq(status, "pending")) {
      r = str_err(err, errlen, -EPROTO, "ACME authorization %s for %s is %s", url, ident, status);
      goto fail;
    }
    const char *base = str_after_prefix(ident, "*.");
    base = base ? base : ident;
    size_t k;
    bool found = false;
    json_array_foreach(chs, k, ch) {
      const char *type = NULL, *token = NULL, *curl = NULL;
      if (json_get_str(ch, "type", &type) < 0 || !str_eq(type, "dns-01"))
        continue;
      if (json_get_str(ch, "token", &token) < 0 || json_get_str(ch, "url", &curl) < 0) {
        r = str_err(err, errlen, -EBADMSG, "ACME authorization %s: malformed dns-01", url);
        goto fail;
      }
      _cleanup_free_ char *ka = NULL;
      if ((r = certbot_key_authorization(token, thumb, &ka)) < 0) {
        str_err(err, errlen, r, "ACME authorization %s: bad token", url);
        goto fail;
      }
      struct pending *e = &p[n++];
      e->authz_url = strdup(url);
      e->chall_url = strdup(curl);
      e->name = str_printf("_acme-challenge.%s", base);
      if ((r = certbot_dns01_value(ka, &e->value)) < 0 || !e->authz_url || !e->chall_url ||
          !e->name) {
        r = -ENOMEM;
        goto fail;
      }
      found = true;
      break;
    }
    if (!found) {
      r = str_err(err, errlen, -EPROTO, "ACME authorization %s for %s offers no dns-01", url,
                  ident);
      goto fail;
    }
  }
  *ret = p;
  *ret_n = n;
  return 0;
fail:
  pending_free(p, n);
  return r;
}

/* Publishes the TXT records, waits for them, answers the challenges and waits for the
 * authorizations. added/n_added list what was added (for the caller to remove). */
static int challenges_run(struct certbot_acme *a, struct certbot_dns *dns, struct pending *p,
                          size_t n, unsigned max_dns_wait_ms, struct added *added, size_t *n_added,
                          char *err, size_t errlen) {
  int r;
  for (size_t i = 0; i < n; i++) {
    bool seen = false;
    for (size_t k = 0; k < i; k++)
      seen = seen || str_eq(p[k].name, p[i].name);
    if (!seen && (r = txt_clear(dns, p[i].name, err, errlen)) < 0)
      return r;
  }
  for (size_t i = 0; i < n; i++) {
    char *id = NULL;
    if ((r = dns->ops->txt_add(dns, p[i].name, p[i].value, &id, err, errlen)) < 0)
      return r;
    added[*n_added].name = strdup(p[i].name);
    added[*n_added].id = id;
    (*n_added)++;
    if (!added[*n_added - 1].name)
      return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    _cleanup_strv_free_ char **servers = NULL;
    if ((r = dns->ops->authoritative(dns, p[i].name, &servers, err, errlen)) < 0 ||
        (r = certbot_dns_wait_txt(servers, p[i].name, p[i].value, max_dns_wait_ms, err, errlen)) <
            0)
      return r;
  }
  for (size_t i = 0; i < n; i++) {
    _cleanup_json_ json_t *ch = NULL;
    if ((r = acme_post_json(a, p[i].chall_url, "{}", &ch, NULL, NULL, err, errlen)) < 0)
      return r;
  }
  for (size_t i = 0; i < n; i++) {
    _cleanup_json_ json_t *az = NULL;
    if ((r = poll_status(a, p[i].authz_url, "valid", &az, err, errlen)) < 0)
      return r;
  }
  return 0;
}

static int cert_download(struct certbot_acme *a, const char *url, struct buf *ret, char *err,
                         size_t errlen) {
  struct http_response resp = {0};
  int r = acme_post(a, url, NULL, &resp, err, errlen);
  if (r < 0)
    return r;
  if (resp.body.len == 0 || resp.body.len > ret->max ||
      !memmem(resp.body.data, resp.body.len, "-----BEGIN CERTIFICATE-----", 27)) {
    http_response_free(&resp);
    return str_err(err, errlen, -EBADMSG, "ACME certificate %s: not a PEM chain", url);
  }
  buf_reset(ret);
  r = buf_append(ret, resp.body.data, resp.body.len);
  http_response_free(&resp);
  return r;
}

int certbot_acme_issue(struct certbot_acme *a, char *const *domains, EVP_PKEY *cert_key,
                       struct certbot_dns *dns, unsigned max_dns_wait_ms, struct buf *ret_chain,
                       char *err, size_t errlen) {
  _cleanup_json_ json_t *ids = json_array(), *order = NULL, *jwk = NULL, *fin = NULL, *done = NULL;
  _cleanup_free_ char *order_url = NULL, *thumb = NULL, *payload = NULL, *csr_b64 = NULL;
  _cleanup_buf_ struct buf csr = BUF_INIT(64 * 1024);
  struct pending *p = NULL;
  size_t n = 0, n_added = 0;
  struct added *added = NULL;
  json_t *authzs = NULL;
  const char *finalize = NULL, *cert_url = NULL, *status = NULL;
  int r;
  if (!a->kid || !ids)
    return str_err(err, errlen, -EINVAL, "ACME: no account");
  for (size_t i = 0; domains[i]; i++)
    if (json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "dns", "value", domains[i])) < 0)
      return -ENOMEM;
  _cleanup_json_ json_t *req = json_pack("{s:O}", "identifiers", ids);
  if (!req || !(payload = json_dumps(req, JSON_COMPACT)))
    return -ENOMEM;
  if ((r = certbot_jwk_from_key(a->key, &jwk)) < 0 || (r = certbot_jwk_thumbprint(jwk, &thumb)) < 0)
    return str_err(err, errlen, r, "ACME: the account key's thumbprint");
  if ((r = acme_post_json(a, a->new_order, payload, &order, &order_url, NULL, err, errlen)) < 0)
    return r;
  if (!order_url || json_get_array(order, "authorizations", &authzs) < 0 ||
      json_get_str(order, "finalize", &finalize) < 0)
    return str_err(err, errlen, -EBADMSG, "ACME newOrder: malformed order");
  if ((r = authz_collect(a, authzs, thumb, &p, &n, err, errlen)) < 0)
    return r;
  added = calloc(n + 1, sizeof(*added));
  if (!added) {
    r = -ENOMEM;
    goto out;
  }
  if ((r = challenges_run(a, dns, p, n, max_dns_wait_ms, added, &n_added, err, errlen)) < 0)
    goto out;
  if ((r = poll_status(a, order_url, "ready valid", &fin, err, errlen)) < 0)
    goto out;
  if ((r = json_get_str(fin, "status", &status)) < 0)
    goto out;
  if (str_eq(status, "ready")) {
    _cleanup_free_ char *fp = NULL;
    _cleanup_json_ json_t *fr = NULL;
    if ((r = certbot_csr_build(domains, cert_key, &csr)) < 0) {
      str_err(err, errlen, r, "ACME: building the CSR");
      goto out;
    }
    struct buf b = BUF_INIT(SIZE_MAX);
    if ((r = base64url_encode_buf(csr.data, csr.len, false, &b)) < 0 ||
        (r = buf_terminate(&b)) < 0) {
      buf_free(&b);
      goto out;
    }
    csr_b64 = (char *)buf_steal(&b, NULL);
    if (!(fp = str_printf("{\"csr\":\"%s\"}", csr_b64))) {
      r = -ENOMEM;
      goto out;
    }
    if ((r = acme_post_json(a, finalize, fp, &fr, NULL, NULL, err, errlen)) < 0)
      goto out;
  }
  if ((r = poll_status(a, order_url, "valid", &done, err, errlen)) < 0)
    goto out;
  if (json_get_str(done, "certificate", &cert_url) < 0) {
    r = str_err(err, errlen, -EBADMSG, "ACME order %s: valid without a certificate URL", order_url);
    goto out;
  }
  r = cert_download(a, cert_url, ret_chain, err, errlen);
out:
  /* The challenge records go in every case; the first error stays the one reported. */
  for (size_t i = 0; i < n_added; i++) {
    char e2[256];
    int r2 = dns->ops->del(dns, added[i].name, added[i].id, e2, sizeof(e2));
    if (r2 < 0) {
      log_warn("removing the challenge record %s: %s", added[i].name, e2);
      if (r >= 0)
        r = str_err(err, errlen, r2, "removing the challenge record %s: %s", added[i].name, e2);
    }
    free(added[i].name);
    free(added[i].id);
  }
  free(added);
  pending_free(p, n);
  return r;
}
