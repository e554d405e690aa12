/* One round of the watch: known keys, crt.sh, certificates, alarms, state. */
#include "ct_monitor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "ct_monitor_crtsh.h"
#include "ct_monitor_domain.h"
#include "ct_monitor_keys.h"
#include "ct_monitor_state.h"
#include "net/http_client.h"
#include "ratls/ratls_verify.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define WHY_MAX 384
/* Longest crt.sh text put in a log line or the webhook (names of a big SAN list get cut). */
#define FIELD_MAX 1024

/* A quote's verdict, kept CT_VERIFY_TTL_S (transient failures are never kept). */
struct verdict {
  uint8_t key[32]; /* SHA-256(report data || evidence text) */
  int result;      /* 0 accepted, 1 refused */
  char why[WHY_MAX];
  int64_t at;
  bool used; /* in this round's answer */
};

struct ct_monitor {
  struct ct_options o;
  char *crtsh;  /* base URL without a trailing '/' */
  char *tproxy; /* base URL without a trailing '/' */
  struct ct_state st;
  struct ratls_verifier *v;
  struct verdict *verdicts;
  size_t n_verdicts;
  char **notes; /* the key decisions of the last round, to log only what changed */
  size_t n_notes;
  bool warned_legacy;
};

static char *strip_slash(const char *s) {
  char *c = strdup(s);
  if (c) {
    size_t n = strlen(c);
    while (n > 0 && c[n - 1] == '/')
      c[--n] = '\0';
  }
  return c;
}

int ct_monitor_new(const struct ct_options *o, struct ct_monitor **ret, char *err, size_t errlen) {
  struct ct_monitor *m = calloc(1, sizeof(*m));
  if (!m)
    return -ENOMEM;
  m->o = *o;
  if (!m->o.timeout_ms)
    m->o.timeout_ms = DEFAULT_TIMEOUT_MS;
  int r = -EINVAL;
  if (!o->n_app_ids == !o->any_app) {
    str_err(err, errlen, r, "trusting quotes needs either app ids or any_app, not %s",
            o->any_app ? "both" : "neither");
    goto fail;
  }
  r = -ENOMEM;
  m->crtsh = strip_slash(o->crtsh_url);
  m->tproxy = strip_slash(o->tproxy_uri);
  if (!m->crtsh || !m->tproxy)
    goto fail;
  if (o->state_path) {
    char why[512] = "";
    r = ct_state_load(o->state_path, o->domain, m->crtsh, &m->st, why, sizeof(why));
    if (r < 0) {
      str_err(err, errlen, r, "%s", why);
      goto fail;
    }
    if (r > 0)
      log_warn("%s: starting over", why);
    else if (m->st.last_checked)
      log_info("state %s: crt.sh entries up to id %lld were checked%s", o->state_path,
               (long long)m->st.last_checked,
               m->st.quotes_seen ? "; tproxy has listed quoted keys" : "");
  }
  struct ratls_verifier_opts vo = {.pccs_url = o->pccs_url, .simulator_dir = o->sim_dir};
  if ((r = ratls_verifier_new(&vo, &m->v, err, errlen)) < 0)
    goto fail;
  *ret = m;
  return 0;
fail:
  if (r == -ENOMEM && err && errlen && !err[0])
    snprintf(err, errlen, "out of memory");
  ct_monitor_free(m);
  return r;
}

static void notes_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void ct_monitor_free(struct ct_monitor *m) {
  if (!m)
    return;
  ratls_verifier_free(m->v);
  free(m->crtsh);
  free(m->tproxy);
  free(m->verdicts);
  notes_free(m->notes, m->n_notes);
  free(m);
}

static bool stopping(const struct ct_monitor *m) {
  return m->o.stop && *m->o.stop;
}

/* Printable ASCII of s, at most max bytes of it (then "..."); never NULL but on ENOMEM. */
static char *clean(const char *s, size_t max) {
  size_t n = strlen(s ? s : "");
  size_t k = n > max ? max : n;
  char *c = malloc(k + 4);
  if (!c)
    return NULL;
  for (size_t i = 0; i < k; i++)
    c[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : (s[i] == '\n' ? ',' : '?');
  strcpy(c + k, n > max ? "..." : "");
  return c;
}

/* ---- quotes ---- */

static bool app_allowed(const struct ct_monitor *m, const char *hex) {
  for (size_t i = 0; i < m->o.n_app_ids; i++)
    if (str_eq(m->o.app_ids[i], hex))
      return true;
  return false;
}

/* The policy on a verified quote: not revoked; from one of the pinned apps when there are any.
 * 0 with a description in why, or 1 with the reason. */
static int quote_policy(const struct ct_monitor *m, const struct ratls_peer *p, char *why,
                        size_t whylen) {
  const char *status = dcap_status_name(p->dcap.status);
  if (p->dcap.status == DCAP_STATUS_REVOKED)
    return str_err(why, whylen, 1, "the platform's TCB status is %s", status);
  struct ratls_app_identity id;
  char idwhy[256] = "";
  enum ratls_reason rr = ratls_identity_from_log(&p->log, 0, &id, idwhy, sizeof(idwhy));
  if (m->o.n_app_ids) {
    if (rr != RATLS_OK)
      return str_err(why, whylen, 1, "no app identity in its event log (%s: %s)",
                     ratls_reason_code(rr), idwhy);
    if (!app_allowed(m, id.app_id_hex))
      return str_err(why, whylen, 1, "made by app %s, not one of --app-id", id.app_id_hex);
  }
  snprintf(why, whylen, "TCB %s%s%s%s", status, p->dcap.simulated ? ", SIMULATED" : "",
           rr == RATLS_OK ? ", app " : "", rr == RATLS_OK ? id.app_id_hex : "");
  return 0;
}

static int quote_check(void *ud, const uint8_t want[64], const char *text, size_t len,
                       char *why, size_t whylen) {
  struct ct_monitor *m = ud;
  int64_t now = (int64_t)time(NULL);
  uint8_t key[32];
  _cleanup_(hash_ctx_freep) struct hash_ctx *h = NULL;
  int r = hash_ctx_new(HASH_SHA256, &h);
  if (r >= 0)
    r = hash_ctx_update(h, want, 64);
  if (r >= 0)
    r = hash_ctx_update(h, text, len);
  if (r >= 0)
    r = hash_ctx_final(h, key);
  if (r < 0)
    return str_err(why, whylen, r, "hashing: %s", strerror(-r));
  struct verdict *slot = NULL;
  for (size_t i = 0; i < m->n_verdicts; i++)
    if (memcmp(m->verdicts[i].key, key, sizeof(key)) == 0)
      slot = &m->verdicts[i];
  if (slot && now - slot->at < CT_VERIFY_TTL_S && now >= slot->at) {
    slot->used = true;
    snprintf(why, whylen, "%s", slot->why);
    return slot->result;
  }

  struct ratls_peer p;
  ratls_peer_init(&p);
  char msg[WHY_MAX] = "";
  enum ratls_reason rr = ratls_verify_quoted_key(m->v, text, len, want, now, &p, msg, sizeof(msg));
  int result;
  if (rr == RATLS_R_COLLATERAL_UNAVAILABLE || rr == RATLS_R_INTERNAL) {
    ratls_peer_free(&p);
    return str_err(why, whylen, -EAGAIN, "%s: %s", ratls_reason_code(rr), msg);
  }
  if (rr != RATLS_OK) {
    char tmp[WHY_MAX];
    snprintf(tmp, sizeof(tmp), "%s: %s", ratls_reason_code(rr), msg);
    snprintf(msg, sizeof(msg), "%s", tmp);
    result = 1;
  } else {
    result = quote_policy(m, &p, msg, sizeof(msg));
  }
  ratls_peer_free(&p);
  if (!slot) {
    struct verdict *nv = realloc(m->verdicts, (m->n_verdicts + 1) * sizeof(*nv));
    if (nv) {
      m->verdicts = nv;
      slot = &m->verdicts[m->n_verdicts++];
      memcpy(slot->key, key, sizeof(key));
    }
  }
  if (slot) {
    slot->result = result;
    slot->at = now;
    slot->used = true;
    snprintf(slot->why, sizeof(slot->why), "%s", msg);
  }
  snprintf(why, whylen, "%s", msg);
  return result;
}

/* Verdicts of quotes no longer listed go. */
static void verdicts_prune(struct ct_monitor *m) {
  size_t w = 0;
  for (size_t i = 0; i < m->n_verdicts; i++)
    if (m->verdicts[i].used) {
      m->verdicts[i].used = false;
      m->verdicts[w++] = m->verdicts[i];
    }
  m->n_verdicts = w;
}

/* ---- tproxy ---- */

static void http_opts(const struct ct_monitor *m, struct http_client_opts *o, size_t max_body) {
  memset(o, 0, sizeof(*o));
  o->timeout_ms = m->o.timeout_ms;
  o->connect_timeout_ms = m->o.timeout_ms < 10000 ? m->o.timeout_ms : 10000;
  o->max_body = max_body;
}

/* A short printable piece of a reply body, for error messages. */
static void body_snippet(const struct http_response *resp, char *out, size_t outlen) {
  size_t n = resp->body.len < 120 ? resp->body.len : 120;
  _cleanup_free_ char *tmp = strndup(resp->body.data ? (const char *)resp->body.data : "", n);
  _cleanup_free_ char *c = tmp ? clean(tmp, 120) : NULL;
  snprintf(out, outlen, "%s", c ? c : "");
}

static int acme_info_fetch(struct ct_monitor *m, Tproxy__AcmeInfoResponse **ret, char *err,
                           size_t errlen) {
  static const char *const paths[] = {"/Tproxy.AcmeInfo", "/AcmeInfo"};
  struct http_client_opts ho;
  http_opts(m, &ho, CT_ACME_INFO_MAX_BODY);
  ho.ca_file = m->o.tproxy_ca;
  ho.insecure_skip_verify = !m->o.tproxy_ca;
  static const char *const hdr[] = {"Accept: application/octet-stream", NULL};
  ho.headers = hdr;
  for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
    _cleanup_free_ char *url = str_printf("%s%s", m->tproxy, paths[i]);
    if (!url)
      return -ENOMEM;
    struct http_response resp;
    int r = http_post(url, "application/octet-stream", NULL, 0, &ho, &resp);
    if (r < 0)
      return str_err(err, errlen, r, "tproxy %s: %s", url, strerror(-r));
    if (resp.status == 404 && i + 1 < ARRAY_SIZE(paths)) {
      http_response_free(&resp);
      continue;
    }
    if (resp.status != 200) {
      char snip[160];
      body_snippet(&resp, snip, sizeof(snip));
      long st = resp.status;
      http_response_free(&resp);
      return str_err(err, errlen, -EPROTO, "tproxy %s: HTTP %ld: %s", url, st, snip);
    }
    *ret = tproxy__acme_info_response__unpack(NULL, resp.body.len, resp.body.data);
    http_response_free(&resp);
    if (!*ret)
      return str_err(err, errlen, -EBADMSG, "tproxy %s: the reply is not an AcmeInfoResponse",
                     url);
    return 0;
  }
  return -ENOENT; /* not reached */
}

/* Logs the key decisions that differ from the last round's; keeps these. */
static void notes_log(struct ct_monitor *m, struct ct_known *k) {
  for (size_t i = 0; i < k->n_notes; i++) {
    bool old = false;
    for (size_t j = 0; j < m->n_notes && !old; j++)
      old = str_eq(m->notes[j], k->notes[i]);
    if (old)
      continue;
    if (strstr(k->notes[i], "NOT known") || strstr(k->notes[i], "REFUSED") ||
        strstr(k->notes[i], "WITHOUT"))
      log_warn("%s", k->notes[i]);
    else
      log_info("%s", k->notes[i]);
  }
  notes_free(m->notes, m->n_notes);
  m->notes = k->notes;
  m->n_notes = k->n_notes;
  k->notes = NULL;
  k->n_notes = 0;
}

static int known_keys(struct ct_monitor *m, struct ct_known *ret) {
  char err[768] = "";
  Tproxy__AcmeInfoResponse *a = NULL;
  int r = acme_info_fetch(m, &a, err, sizeof(err));
  if (r < 0) {
    log_error("known keys: %s", err);
    return r;
  }
  bool tls_verified = m->o.tproxy_ca && str_startswith(m->tproxy, "https://");
  const char *no_legacy = m->o.require_quotes ? "--require-quotes"
                          : m->st.quotes_seen ? "tproxy listed quoted keys before"
                          : !tls_verified     ? "AcmeInfo was not read over TLS verified with "
                                                "--tproxy-ca"
                                              : NULL;
  r = ct_known_build(a, no_legacy, quote_check, m, ret, err, sizeof(err));
  tproxy__acme_info_response__free_unpacked(a, NULL);
  if (r < 0) {
    log_error("known keys: %s", err[0] ? err : strerror(-r));
    return r;
  }
  verdicts_prune(m);
  notes_log(m, ret);
  if (ret->legacy)
    log_warn("tproxy lists no quoted key (a tproxy from before quotes): its %zu key(s) count "
             "WITHOUT attestation; whoever controls its host can add one",
             ret->n);
  else if (!ret->quotes_seen && m->st.quotes_seen && !m->warned_legacy)
    log_warn("tproxy lists no quoted key now, but it did before (state): keys without a quote "
             "are not trusted");
  else if (!ret->quotes_seen && !m->o.require_quotes && !tls_verified && !m->warned_legacy)
    log_warn("tproxy lists no quoted key (a tproxy from before quotes), and its answer was not "
             "read over verified TLS: its keys without a quote are IGNORED (anyone on the path "
             "could have added one); --tproxy-ca FILE with an https:// URL accepts them");
  m->warned_legacy = !ret->quotes_seen;
  return 0;
}

/* ---- crt.sh ---- */

static int crtsh_search(struct ct_monitor *m, struct ct_entries *ret) {
  _cleanup_free_ char *q = NULL;
  int r = http_url_encode(m->o.domain, &q);
  if (r < 0)
    return r;
  _cleanup_free_ char *url =
      str_printf("%s/?q=%s&output=json&limit=%d", m->crtsh, q, CT_CRTSH_LIMIT);
  if (!url)
    return -ENOMEM;
  struct http_client_opts ho;
  http_opts(m, &ho, CT_CRTSH_MAX_BODY);
  ho.timeout_ms = m->o.timeout_ms * 4; /* crt.sh's searches are slow */
  static const char *const hdr[] = {"Accept: application/json", NULL};
  ho.headers = hdr;
  struct http_response resp;
  r = http_get(url, &ho, &resp);
  if (r == -ENOBUFS)
    return log_error("crt.sh %s: the answer is over %zu MiB: refused", url,
                     CT_CRTSH_MAX_BODY >> 20),
           r;
  if (r < 0)
    return log_error("crt.sh %s: %s", url, strerror(-r)), r;
  if (resp.status != 200) {
    char snip[160];
    body_snippet(&resp, snip, sizeof(snip));
    log_error("crt.sh %s: HTTP %ld: %s", url, resp.status, snip);
    http_response_free(&resp);
    return -EPROTO;
  }
  char err[256] = "";
  r = ct_crtsh_parse(resp.body.data ? (const char *)resp.body.data : "", resp.body.len,
                     CT_CRTSH_MAX_ENTRIES, ret, err, sizeof(err));
  http_response_free(&resp);
  if (r < 0) {
    log_error("crt.sh %s: unusable answer: %s", url, err[0] ? err : strerror(-r));
    return r;
  }
  ct_entries_sort(ret);
  return 0;
}

static int crtsh_spki(struct ct_monitor *m, int64_t id, struct buf *spki) {
  _cleanup_free_ char *url = str_printf("%s/?d=%lld", m->crtsh, (long long)id);
  if (!url)
    return -ENOMEM;
  struct http_client_opts ho;
  http_opts(m, &ho, CT_PEM_MAX_BODY);
  struct http_response resp;
  int r = http_get(url, &ho, &resp);
  if (r < 0)
    return log_error("crt.sh %s: %s", url, strerror(-r)), r;
  if (resp.status != 200) {
    log_error("crt.sh %s: HTTP %ld", url, resp.status);
    http_response_free(&resp);
    return -EPROTO;
  }
  r = ct_pem_first_spki(resp.body.data, resp.body.len, spki);
  http_response_free(&resp);
  if (r < 0)
    log_error("crt.sh %s: no certificate in the answer", url);
  return r;
}

/* ---- alarms ---- */

/* The certificate's names (common name, then name_value's lines), each once, cleaned; at most
 * NAMES_MAX of them. */
#define NAMES_MAX 100
static json_t *names_of(const struct ct_entry *e) {
  json_t *a = json_array();
  const char *srcs[] = {e->common_name, e->name_value};
  for (size_t s = 0; a && s < ARRAY_SIZE(srcs); s++) {
    for (const char *p = srcs[s]; *p && json_array_size(a) < NAMES_MAX;) {
      const char *nl = strchr(p, '\n');
      size_t n = nl ? (size_t)(nl - p) : strlen(p);
      _cleanup_free_ char *raw = strndup(p, n < FIELD_MAX ? n : FIELD_MAX);
      _cleanup_free_ char *c = raw ? clean(raw, 255) : NULL;
      if (!c) {
        json_decref(a);
        return NULL;
      }
      bool dup = !c[0];
      for (size_t i = 0; i < json_array_size(a) && !dup; i++)
        dup = str_eq(json_string_value(json_array_get(a, i)), c);
      if (!dup && json_array_append_new(a, json_string(c)) < 0) {
        json_decref(a);
        return NULL;
      }
      p += n + (nl ? 1 : 0);
    }
  }
  return a;
}

static int webhook_post(struct ct_monitor *m, const struct ct_entry *e, const char *key,
                        json_t *names, const char *line) {
  _cleanup_json_ json_t *j = json_object();
  _cleanup_buf_ struct buf body = BUF_INIT(1024 * 1024);
  _cleanup_free_ char *link = str_printf("%s/?id=%lld", m->crtsh, (long long)e->id);
  _cleanup_free_ char *serial = clean(e->serial, FIELD_MAX);
  _cleanup_free_ char *issuer = clean(e->issuer_name, FIELD_MAX);
  _cleanup_free_ char *nb = clean(e->not_before, 64);
  if (!j || !link || !serial || !issuer || !nb)
    return -ENOMEM;
  int r;
  if ((r = json_set_str(j, "text", line)) < 0 ||
      (r = json_set_str(j, "event", "unknown_certificate_key")) < 0 ||
      (r = json_set_str(j, "domain", m->o.domain)) < 0 ||
      (r = json_set_i64(j, "crtsh_id", e->id)) < 0 || (r = json_set_str(j, "crtsh_url", link)) < 0 ||
      (r = json_set_str(j, "serial_number", serial)) < 0 ||
      (r = json_set_new(j, "names", json_incref(names))) < 0 ||
      (r = json_set_str(j, "issuer_name", issuer)) < 0 ||
      (r = json_set_str(j, "not_before", nb)) < 0 ||
      (r = json_set_str(j, "spki_sha256", key)) < 0 ||
      (r = json_dump_buf(j, JSON_COMPACT, &body)) < 0)
    return r;
  struct http_client_opts ho;
  http_opts(m, &ho, 64 * 1024);
  struct http_response resp;
  r = http_post(m->o.webhook, "application/json", body.data, body.len, &ho, &resp);
  if (r < 0)
    return log_error("webhook %s: %s (the alarm is raised again next round)", m->o.webhook,
                     strerror(-r)),
           r;
  long st = resp.status;
  http_response_free(&resp);
  if (st < 200 || st > 299) {
    log_error("webhook %s: HTTP %ld (the alarm is raised again next round)", m->o.webhook, st);
    return -EPROTO;
  }
  return 0;
}

/* The alarm for entry e with key spki: one error line, then the webhook. */
static int raise_alarm(struct ct_monitor *m, const struct ct_entry *e, const struct buf *spki) {
  char key[65];
  ct_key_name(spki->data, spki->len, key);
  _cleanup_json_ json_t *names = names_of(e);
  _cleanup_buf_ struct buf joined = BUF_INIT(64 * 1024);
  _cleanup_free_ char *serial = clean(e->serial, 128);
  _cleanup_free_ char *issuer = clean(e->issuer_name, 256);
  if (!names || !serial || !issuer)
    return -ENOMEM;
  for (size_t i = 0; i < json_array_size(names); i++)
    if (buf_printf(&joined, "%s%s", i ? "," : "", json_string_value(json_array_get(names, i))) <
        0)
      return -ENOMEM;
  if (buf_terminate(&joined) < 0)
    return -ENOMEM;
  _cleanup_free_ char *line =
      str_printf("ALARM: certificate crt.sh id %lld (serial %s, names %s, issuer %s) has key "
                 "SPKI sha256 %s that tproxy did not make",
                 (long long)e->id, serial, joined.len ? (const char *)joined.data : "?", issuer,
                 key);
  if (!line)
    return -ENOMEM;
  log_error("%s", line);
  return m->o.webhook ? webhook_post(m, e, key, names, line) : 0;
}

/* ---- the round ---- */

static bool entry_relevant(const struct ct_monitor *m, const struct ct_entry *e) {
  /* Names unknown: checked anyway. */
  if (!e->common_name[0] && !e->name_value[0])
    return true;
  return ct_names_in_domain(e->common_name, m->o.domain) ||
         ct_names_in_domain(e->name_value, m->o.domain);
}

static int state_save(struct ct_monitor *m) {
  if (!m->o.state_path)
    return 0;
  int r = ct_state_save(m->o.state_path, m->o.domain, m->crtsh, &m->st);
  if (r < 0)
    log_error("writing the state %s: %s", m->o.state_path, strerror(-r));
  return r;
}

void ct_monitor_round(struct ct_monitor *m, struct ct_round *ret) {
  memset(ret, 0, sizeof(*ret));
  struct ct_known k;
  struct ct_entries es = {0};
  _cleanup_buf_ struct buf spki = BUF_INIT(64 * 1024);
  int r = known_keys(m, &k);
  if (r < 0) {
    ret->error = r;
    return;
  }
  if ((r = crtsh_search(m, &es)) < 0) {
    ret->error = r;
    goto out;
  }
  ret->entries = es.n;
  int64_t last = m->st.last_checked;
  int64_t newest = es.n ? es.v[es.n - 1].id : 0;
  if (last && es.n && ct_entries_find(&es, last) < 0)
    log_warn("crt.sh's answer no longer holds the last checked entry (id %lld): removed, or "
             "past its limit of %d; checking the entries above it, then going on from the "
             "newest (%lld)",
             (long long)last, CT_CRTSH_LIMIT, (long long)newest);
  if (last && es.n >= CT_CRTSH_LIMIT && es.v[0].id > last)
    log_warn("crt.sh's answer is full (%zu entries) and starts at id %lld, above the last "
             "checked %lld: certificates in between were not listed and are not checked",
             es.n, (long long)es.v[0].id, (long long)last);

  /* Oldest first, so that what was checked can be remembered even if a later one fails. */
  int64_t done = last;
  size_t fetched = 0;
  size_t i = 0;
  while (i < es.n && es.v[i].id <= last)
    i++;
  for (; i < es.n; i++) {
    const struct ct_entry *e = &es.v[i];
    if (!entry_relevant(m, e)) {
      log_debug("crt.sh id %lld: no name in %s, skipped", (long long)e->id, m->o.domain);
      done = e->id;
      continue;
    }
    if (stopping(m)) {
      r = -EINTR;
      break;
    }
    if (!m->o.once && fetched >= CT_MAX_FETCH_PER_ROUND) {
      ret->left = es.n - i;
      log_info("%zu crt.sh entries left for the next round", ret->left);
      break;
    }
    buf_reset(&spki);
    fetched++;
    if ((r = crtsh_spki(m, e->id, &spki)) < 0)
      break;
    ret->checked++;
    if (ct_known_has(&k, spki.data, spki.len)) {
      log_debug("crt.sh id %lld: known key", (long long)e->id);
    } else {
      ret->alarms++;
      if ((r = raise_alarm(m, e, &spki)) < 0)
        break;
    }
    done = e->id;
  }
  if (r < 0) {
    ret->error = r;
    if (r == -EINTR)
      log_info("stopping: the round ends early");
  } else if (!ret->left && es.n) {
    done = newest; /* also below last when last vanished: go on from crt.sh's newest */
  }
  bool changed = done != m->st.last_checked || (k.quotes_seen && !m->st.quotes_seen);
  m->st.last_checked = done;
  m->st.quotes_seen = m->st.quotes_seen || k.quotes_seen;
  if (changed && (r = state_save(m)) < 0 && !ret->error)
    ret->error = r;
out:
  ct_entries_free(&es);
  ct_known_free(&k);
}
