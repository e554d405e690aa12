/* RPC listener, dashboard and metrics. */
#include "tproxy_server.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "tproxy_acme.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "tproxy_certs.h"
#include "daemon/rpc_server.h"
#include "net/http_tls.h"
#include "tproxy_proxy.h"

static const char *domain_of(const struct tproxy *t) {
  const char *d = t->cfg->base_domain;
  while (*d == '.')
    d++;
  return d;
}

int tproxy_dashboard_render(struct tproxy *t, struct buf *out) {
  struct acme_info a;
  _cleanup_free_ struct tproxy_reg *rows = NULL;
  size_t n = 0;
  int r = acme_info_read(t->cfg->certbot_workdir, &a);
  if (r < 0)
    return r;
  if ((r = tproxy_registry_list(t->reg, &rows, &n)) < 0)
    goto out;
  r = buf_append_str(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                          "<title>tproxy</title><style>body{font-family:sans-serif;margin:2em}"
                          "table{border-collapse:collapse}td,th{border:1px solid #ccc;"
                          "padding:4px 8px;text-align:left}input{width:40em;font-family:monospace}"
                          "</style></head><body>\n<h1>ACME Information</h1>\n"
                          "<p>Account URI: <input readonly value=\"");
  if (r >= 0)
    r = buf_append_html(out, a.account_uri);
  if (r >= 0)
    r = buf_append_str(out, "\"></p>\n<p>Historical certificate public keys:</p>\n<ul>\n");
  for (size_t i = 0; r >= 0 && i < a.n_keys; i++) {
    _cleanup_free_ char *h = hex_encode_alloc(a.keys[i].der, a.keys[i].len);
    r = h ? buf_printf(out, "<li><input readonly value=\"%s\"></li>\n", h) : -ENOMEM;
  }
  if (r >= 0)
    r = buf_printf(out,
                   "</ul>\n<h1>CVM List</h1>\n<table>\n<tr><th>App ID</th><th>Instance</th>"
                   "<th>IP</th><th>Ports</th><th>Last handshake</th></tr>\n");
  for (size_t i = 0; r >= 0 && i < n; i++) {
    char ip[IPV4_STR_MAX];
    char hs[32] = "never";
    if (rows[i].last_handshake) {
      time_t tt = (time_t)rows[i].last_handshake;
      struct tm tm;
      if (gmtime_r(&tt, &tm))
        strftime(hs, sizeof(hs), "%Y-%m-%d %H:%M:%SZ", &tm);
    }
    r = buf_append_str(out, "<tr><td><code>");
    if (r >= 0)
      r = buf_append_html(out, rows[i].app_id);
    if (r >= 0)
      r = buf_append_str(out, "</code></td><td><code>");
    if (r >= 0)
      r = buf_append_html(out, rows[i].instance_id);
    if (r >= 0)
      r = buf_printf(out, "</code></td><td>%s</td><td>", ipv4_format(rows[i].ip, ip));
    /* endpoint is <app_id>.<base_domain>; app ids are hex, the domain was validated. */
    if (r >= 0)
      r = buf_printf(out, "<a href=\"https://%s.%s:%u\">%u</a>", rows[i].app_id, domain_of(t),
                     tproxy_external_port(t), tproxy_external_port(t));
    if (r >= 0)
      r = buf_printf(out, "</td><td>%s</td></tr>\n", hs);
  }
  if (r >= 0)
    r = buf_append_str(out, "</table>\n");
  if (r >= 0) {
    char detail[512];
    bool ok = tproxy_wg_healthy(t, detail, sizeof(detail));
    r = buf_printf(out, "<h1>WireGuard</h1>\n<p>%s: ", ok ? "up" : "<b>DOWN</b>");
    if (r >= 0)
      r = buf_append_html(out, detail);
    if (r >= 0)
      r = buf_printf(out, "; %zu registration(s)</p>\n", n);
  }
  if (r >= 0 && t->certs) {
    struct tproxy_certs_stats cs;
    tproxy_certs_stats(t->certs, &cs);
    char na[32] = "?";
    time_t tt = (time_t)cs.not_after;
    struct tm tm;
    if (gmtime_r(&tt, &tm))
      strftime(na, sizeof(na), "%Y-%m-%d %H:%M:%SZ", &tm);
    r = buf_printf(out, "<h1>Certificate</h1>\n<p>*.%s, valid until %s, reloads %llu ok / %llu "
                        "failed</p>\n",
                   domain_of(t), na, (unsigned long long)cs.reloads_ok,
                   (unsigned long long)cs.reloads_failed);
  }
  if (r >= 0 && t->proxy) {
    struct tproxy_proxy_stats ps;
    tproxy_proxy_stats(t->proxy, &ps);
    r = buf_printf(out,
                   "<h1>Proxy</h1>\n<p>%llu connections accepted, %llu open (at most %llu, "
                   "%llu per app); %llu terminated, %llu h2, %llu passthrough; %llu unknown app, "
                   "%llu bad hello; %llu refused for lack of room, accepting paused %llu "
                   "times</p>\n",
                   (unsigned long long)ps.accepted, (unsigned long long)ps.active,
                   (unsigned long long)ps.max_conns, (unsigned long long)ps.max_conns_per_app,
                   (unsigned long long)ps.terminated, (unsigned long long)ps.h2,
                   (unsigned long long)ps.passthrough, (unsigned long long)ps.unknown_app,
                   (unsigned long long)(ps.bad_hello + ps.no_sni + ps.bad_sni),
                   (unsigned long long)(ps.rejected_full + ps.rejected_app_full +
                                        ps.rejected_pending_full + ps.no_fds),
                   (unsigned long long)ps.accept_paused);
  }
  if (r >= 0)
    r = buf_append_str(out, "</body></html>\n");
out:
  acme_info_free(&a);
  return r;
}

static int dashboard_page(void *ud, struct buf *out, const char **ret_ctype) {
  struct tproxy_server *s = ud;
  *ret_ctype = "text/html; charset=utf-8";
  return tproxy_dashboard_render(s->t, out);
}

static int metrics_page(void *ud, struct buf *out) {
  struct tproxy_server *s = ud;
  struct tproxy *t = s->t;
  struct tproxy_hosts *h = tproxy_table_acquire(&t->table);
  size_t nh = tproxy_hosts_count(h);
  tproxy_hosts_release(h);
  char wg_detail[512];
  bool wg_ok = tproxy_wg_healthy(t, wg_detail, sizeof(wg_detail));
  int r = buf_printf(out,
                     "# TYPE tproxy_registrations gauge\ntproxy_registrations %zu\n"
                     "# TYPE tproxy_register_total counter\n"
                     "tproxy_register_total{result=\"ok\"} %llu\n"
                     "tproxy_register_total{result=\"refused\"} %llu\n"
                     "# TYPE tproxy_registrations_expired_total counter\n"
                     "tproxy_registrations_expired_total %llu\n"
                     "# TYPE tproxy_wg_failures_total counter\ntproxy_wg_failures_total %llu\n"
                     "# TYPE tproxy_wg_up gauge\ntproxy_wg_up %d\n",
                     nh, (unsigned long long)t->stats.registered,
                     (unsigned long long)t->stats.refused, (unsigned long long)t->reg->n_expired,
                     (unsigned long long)t->reg->n_wg_failures, wg_ok ? 1 : 0);
  if (r >= 0 && t->certs) {
    struct tproxy_certs_stats cs;
    tproxy_certs_stats(t->certs, &cs);
    r = buf_printf(out,
                   "# TYPE tproxy_cert_reloads_total counter\n"
                   "tproxy_cert_reloads_total{result=\"ok\"} %llu\n"
                   "tproxy_cert_reloads_total{result=\"failed\"} %llu\n"
                   "# TYPE tproxy_cert_not_after gauge\ntproxy_cert_not_after %lld\n",
                   (unsigned long long)cs.reloads_ok, (unsigned long long)cs.reloads_failed,
                   (long long)cs.not_after);
  }
  if (r >= 0 && t->proxy)
    r = tproxy_proxy_metrics(t->proxy, out);
  return r;
}

/* {"status":"ok","wireguard":"..."}, or 503 {"status":"error",...} when WireGuard does not
 * work (dev mode's wireguard-go is not running, the interface refused its configuration). */
static int health_fields(void *ud, json_t *j) {
  struct tproxy_server *s = ud;
  char detail[512];
  bool ok = tproxy_wg_healthy(s->t, detail, sizeof(detail));
  int r = json_set_str(j, "wireguard", detail);
  return r < 0 ? r : ok;
}

static int64_t server_now(void *ud) {
  return tproxy_now(ud);
}

/* Collateral fetches for RegisterCvm run on these threads (they wait on the network). */
#define FETCH_THREADS 2
#define FETCH_PENDING 32

int tproxy_server_new(struct tproxy *t, struct event_base *base, FILE *out,
                      struct tproxy_server **ret, char *err, size_t errlen) {
  struct tproxy_server *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->t = t;
  const struct tproxy_config *c = t->cfg;
  int r = tproxy_api_init(t, &s->api, err, errlen);
  if (r < 0)
    goto fail;
  /* No resumption: a CVM registers once per boot; a resumed session would also carry no
   * client certificate chain to verify again. */
  struct http_tls_files f = {.cert_file = c->tls_certs,
                             .key_file = c->tls_key,
                             .client_ca_file = c->mutual_ca_certs,
                             .client_cert_optional = !c->mutual_mandatory,
                             .no_resumption = true};
  if ((r = http_tls_ctx_new(&f, &s->tls)) < 0) {
    str_err(err, errlen, r, "[tls] setting up TLS (%s, %s, client CA %s): %s", c->tls_certs,
            c->tls_key, c->mutual_ca_certs, strerror(-r));
    goto fail;
  }
  SSL_CTX_set_verify_depth(s->tls, 8);
  struct rpc_server_config rc = {
      .address = c->address,
      .port = c->port,
      .tls = s->tls,
      .http = {.max_body = 64 * 1024,
               .request_timeout_s = c->request_timeout,
               .max_conns = c->max_conns,
               .max_conns_per_source = c->max_conns_per_source,
               .handshake_timeout_s = c->handshake_timeout_s},
      .router = &s->api.router,
      .verifier = t->verifier,
      .now = server_now,
      .now_ud = t,
      /* without a PCCS there is nothing to fetch */
      .fetch_threads = str_isempty(c->pccs_url) ? 0 : FETCH_THREADS,
      .fetch_pending = FETCH_PENDING,
      .pages = {.index = dashboard_page, .index_max = 16 * 1024 * 1024,
                .health = health_fields, .metrics = metrics_page, .metrics_max = 64 * 1024,
                .ud = s},
  };
  if ((r = rpc_server_new(base, &rc, out, &s->rpc, err, errlen)) < 0)
    goto fail;
  s->port = rpc_server_port(s->rpc);
  *ret = s;
  return 0;
fail:
  tproxy_server_free(s);
  return r;
}

void tproxy_server_free(struct tproxy_server *s) {
  if (!s)
    return;
  rpc_server_free(s->rpc); /* before the verifier */
  if (s->tls)
    SSL_CTX_free(s->tls);
  free(s);
}
