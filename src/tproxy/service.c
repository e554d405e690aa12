/* The Tproxy pRPC methods. */
#include "tproxy_service.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tproxy_acme.h"
#include "tproxy_proxy.h"
#include "tproxy_wgproc.h"
#include "attest/dcap.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/str.h"
#include "net/http_server.h"
#include "net/prpc_json.h"
#include "ratls/ratls_verify.h"
#include "tproxy_rpc.pb-c.h"

#ifndef DSTACK_VERSION
#define DSTACK_VERSION "0.1.0"
#endif

uint32_t tproxy_external_port(const struct tproxy *t) {
  if (t->cfg->listen_port == 0 && t->proxy)
    return tproxy_proxy_port(t->proxy);
  return t->cfg->listen_port;
}

int64_t tproxy_now(const struct tproxy *t) {
  return t && t->now ? t->now() : (int64_t)time(NULL);
}

bool tproxy_wg_healthy(const struct tproxy *t, char *detail, size_t len) {
  const char *ifname = t->cfg->wg_interface;
  if (t->wgproc) {
    struct tproxy_wgproc_status st;
    tproxy_wgproc_status(t->wgproc, &st);
    if (!tproxy_wgproc_running(t->wgproc)) {
      snprintf(detail, len, "%s", st.detail);
      return false;
    }
  }
  if (!t->reg || !t->reg->wg) {
    snprintf(detail, len, "no WireGuard interface ([core.wg] mode = \"none\")");
    return true;
  }
  if (t->reg->wg_dirty) {
    snprintf(detail, len, "WireGuard interface %s did not take its configuration (retrying)",
             ifname);
    return false;
  }
  if (t->wgproc) {
    struct tproxy_wgproc_status st;
    tproxy_wgproc_status(t->wgproc, &st);
    snprintf(detail, len, "%s", st.detail);
  } else {
    snprintf(detail, len, "WireGuard interface %s configured", ifname);
  }
  return true;
}

int tproxy_verifier_new(const struct tproxy_config *c, struct ratls_verifier **ret, char *err,
                        size_t errlen) {
  struct ratls_verifier_opts o = {
      .pccs_url = c->pccs_url,
      .cache_dir = c->cache_dir,
      .simulator_dir = c->simulator_dir,
      .no_blocking_fetch = true, /* the RPC server prefetches off the loop (ratls_http.h) */
  };
  return ratls_verifier_new(&o, ret, err, errlen);
}

static bool status_allowed(const struct tproxy_config *c, enum dcap_status s) {
  for (size_t i = 0; c->tcb_statuses && c->tcb_statuses[i]; i++) {
    enum dcap_status a;
    if (dcap_status_from_name(c->tcb_statuses[i], &a) == 0 && a == s)
      return true;
  }
  return false;
}

static int refuse(struct tproxy *t, struct http_request *req, const struct ratls_peer *p,
                  const char *code, const char *why, char **ret_error) {
  _cleanup_buf_ struct buf d = BUF_INIT(4096);
  if (p)
    (void)ratls_peer_describe(p, NULL, &d);
  (void)buf_terminate(&d);
  t->stats.refused++;
  log_warn("RegisterCvm from %s refused: %s: %s;%s", http_request_remote(req), code, why,
           d.data ? (const char *)d.data : "");
  return prpc_error(ret_error, -EPERM, "%s: %s", code, why);
}

static char *ip_dup(uint32_t ip) {
  char s[IPV4_STR_MAX];
  return strdup(ipv4_format(ip, s));
}

static int build_register_reply(struct tproxy *t, const struct tproxy_reg *reg,
                                Tproxy__RegisterCvmResponse **ret) {
  const struct tproxy_config *c = t->cfg;
  Tproxy__RegisterCvmResponse *m = malloc(sizeof(*m));
  Tproxy__WireGuardConfig *wg = malloc(sizeof(*wg));
  Tproxy__TappdConfig *tp = malloc(sizeof(*tp));
  Tproxy__WireGuardPeer *peer = malloc(sizeof(*peer));
  Tproxy__WireGuardPeer **servers = malloc(sizeof(*servers));
  if (!m || !wg || !tp || !peer || !servers) {
    free(m), free(wg), free(tp), free(peer), free(servers);
    return -ENOMEM;
  }
  tproxy__register_cvm_response__init(m);
  tproxy__wire_guard_config__init(wg);
  tproxy__tappd_config__init(tp);
  tproxy__wire_guard_peer__init(peer);
  m->wg = wg;
  m->tappd = tp;
  servers[0] = peer;
  wg->servers = servers;
  wg->n_servers = 1;
  wg->server_public_key = strdup(c->wg_public_key);
  wg->client_ip = ip_dup(reg->ip);
  wg->server_ip = strdup(c->wg_ip);
  wg->server_endpoint = strdup(c->wg_endpoint);
  peer->pk = strdup(c->wg_public_key);
  peer->ip = strdup(c->wg_ip);
  peer->endpoint = strdup(c->wg_endpoint);
  tp->external_port = tproxy_external_port(t);
  tp->internal_port = c->tappd_port;
  const char *dom = c->base_domain;
  while (*dom == '.')
    dom++;
  tp->domain = strdup(dom);
  tp->app_address_ns_prefix = strdup(TPROXY_TXT_PREFIX);
  *ret = m;
  if (!wg->server_public_key || !wg->client_ip || !wg->server_ip || !wg->server_endpoint ||
      !peer->pk || !peer->ip || !peer->endpoint || !tp->domain || !tp->app_address_ns_prefix)
    return -ENOMEM;
  return 0;
}

static int m_register_cvm(void *ud, struct http_request *req, const ProtobufCMessage *in,
                          ProtobufCMessage **ret_out, char **ret_error) {
  struct tproxy *t = ud;
  const Tproxy__RegisterCvmRequest *rq = (const Tproxy__RegisterCvmRequest *)in;
  X509 *cert = http_request_peer_cert(req);
  char why[512] = "";
  int64_t now = tproxy_now(t);
  if (!cert)
    return refuse(t, req, NULL, "no_client_cert", "no attestation provided", ret_error);
  const char *key = rq->client_public_key ? rq->client_public_key : "";
  if (!store_pubkey_valid(key)) {
    t->stats.refused++;
    return prpc_error(ret_error, -EINVAL,
                      "client_public_key: not a WireGuard public key (base64 of 32 bytes)");
  }
  struct ratls_peer p;
  ratls_peer_init(&p);
  enum ratls_reason rr = ratls_verify_peer(t->verifier, cert, now, &p, why, sizeof(why));
  int r;
  if (rr != RATLS_OK) {
    r = refuse(t, req, &p, ratls_reason_code(rr), why, ret_error);
    goto out;
  }
  if (!status_allowed(t->cfg, p.dcap.status)) {
    snprintf(why, sizeof(why), "TCB status %s is not in [core.quote] tcb_statuses",
             dcap_status_name(p.dcap.status));
    r = refuse(t, req, &p, "tcb_status_not_allowed", why, ret_error);
    goto out;
  }
  struct ratls_app_identity id;
  rr = ratls_identity_from_log(&p.log, t->cfg->allow_seed_event_log ? RATLS_ID_ALLOW_SEED : 0,
                               &id, why, sizeof(why));
  if (rr != RATLS_OK) {
    r = refuse(t, req, &p, ratls_reason_code(rr), why, ret_error);
    goto out;
  }
  char instance[2 * sizeof(id.instance_id) + 1];
  if (id.instance_id_len)
    hex_encode(id.instance_id, id.instance_id_len, instance);
  else
    snprintf(instance, sizeof(instance), "%s", TPROXY_NO_INSTANCE);
  if (strlen(id.app_id_hex) > TPROXY_APP_ID_MAX || strlen(instance) > STORE_ID_MAX) {
    r = refuse(t, req, &p, "bad_event_log", "app id or instance id too long", ret_error);
    goto out;
  }
  struct tproxy_reg reg;
  r = tproxy_registry_register(t->reg, id.app_id_hex, instance, key, now, &reg);
  if (r < 0) {
    t->stats.refused++;
    const char *m = r == -ENOSPC   ? "the client address pool is exhausted"
                    : r == -EEXIST ? "this public key is registered by another CVM"
                    : r == -EINVAL ? "bad registration"
                                   : "storing the registration failed";
    log_warn("RegisterCvm of app %s instance %s from %s failed: %s (%s)", id.app_id_hex, instance,
             http_request_remote(req), m, strerror(-r));
    r = prpc_error(ret_error, r == -EINVAL || r == -EEXIST ? -EINVAL : -EIO, "%s", m);
    goto out;
  }
  char ip[IPV4_STR_MAX];
  log_info("RegisterCvm from %s: app %s instance %s, client IP %s (%s)",
           http_request_remote(req), id.app_id_hex, instance, ipv4_format(reg.ip, ip),
           r == STORE_REG_NEW ? "new" : r == STORE_REG_REPLACED ? "key replaced" : "unchanged");
  t->stats.registered++;
  Tproxy__RegisterCvmResponse *m = NULL;
  r = build_register_reply(t, &reg, &m);
  if (m)
    *ret_out = &m->base;
  if (r < 0)
    r = prpc_error(ret_error, r, "out of memory");
out:
  ratls_peer_free(&p);
  return r;
}

static const char *domain_of(const struct tproxy *t) {
  const char *d = t->cfg->base_domain;
  while (*d == '.')
    d++;
  return d;
}

static int m_list(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  struct tproxy *t = ud;
  (void)req, (void)in;
  _cleanup_free_ struct tproxy_reg *rows = NULL;
  size_t n = 0;
  int r = tproxy_registry_list(t->reg, &rows, &n);
  if (r < 0)
    return prpc_error(ret_error, -EIO, "reading the registrations failed");
  Tproxy__ListResponse *m = malloc(sizeof(*m));
  if (!m)
    return -ENOMEM;
  tproxy__list_response__init(m);
  *ret_out = &m->base;
  if (n && !(m->hosts = calloc(n, sizeof(*m->hosts))))
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    Tproxy__HostInfo *h = malloc(sizeof(*h));
    if (!h)
      return -ENOMEM;
    tproxy__host_info__init(h);
    m->hosts[m->n_hosts++] = h;
    h->ip = ip_dup(rows[i].ip);
    h->app_id = strdup(rows[i].app_id);
    h->endpoint = str_printf("%s.%s", rows[i].app_id, domain_of(t));
    h->instance_id = strdup(rows[i].instance_id);
    h->last_seen = (uint64_t)rows[i].last_seen;
    h->last_handshake = (uint64_t)rows[i].last_handshake;
    if (!(h->ports = malloc(sizeof(*h->ports))))
      return -ENOMEM;
    h->ports[0] = tproxy_external_port(t);
    h->n_ports = 1;
    if (!h->ip || !h->app_id || !h->endpoint || !h->instance_id)
      return -ENOMEM;
  }
  return 0;
}

static int m_acme_info(void *ud, struct http_request *req, const ProtobufCMessage *in,
                       ProtobufCMessage **ret_out, char **ret_error) {
  struct tproxy *t = ud;
  (void)req, (void)in, (void)ret_error;
  struct acme_info a;
  int r = acme_info_read(t->cfg->certbot_workdir, &a);
  if (r < 0)
    return r;
  Tproxy__AcmeInfoResponse *m = malloc(sizeof(*m));
  if (!m) {
    acme_info_free(&a);
    return -ENOMEM;
  }
  tproxy__acme_info_response__init(m);
  *ret_out = &m->base;
  m->account_uri = a.account_uri;
  a.account_uri = NULL;
  if (a.n_keys) {
    m->hist_keys = calloc(a.n_keys, sizeof(*m->hist_keys));
    if (!m->hist_keys) {
      acme_info_free(&a);
      return -ENOMEM;
    }
    for (size_t i = 0; i < a.n_keys; i++) {
      m->hist_keys[i].data = a.keys[i].der;
      m->hist_keys[i].len = a.keys[i].len;
      a.keys[i].der = NULL;
    }
    m->n_hist_keys = a.n_keys;
  }
  m->account_quote = a.account_quote;
  a.account_quote = NULL;
  if (a.n_quoted) {
    m->quoted_hist_keys = calloc(a.n_quoted, sizeof(*m->quoted_hist_keys));
    if (!m->quoted_hist_keys) {
      acme_info_free(&a);
      return -ENOMEM;
    }
    for (size_t i = 0; i < a.n_quoted; i++) {
      Tproxy__QuotedPublicKey *q = malloc(sizeof(*q));
      if (!q) {
        acme_info_free(&a);
        return -ENOMEM;
      }
      tproxy__quoted_public_key__init(q);
      m->quoted_hist_keys[m->n_quoted_hist_keys++] = q;
      q->public_key.data = a.quoted[i].der;
      q->public_key.len = a.quoted[i].len;
      q->quote = a.quoted[i].quote;
      a.quoted[i].der = NULL;
      a.quoted[i].quote = NULL;
    }
  }
  acme_info_free(&a);
  return 0;
}

static int m_info(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  struct tproxy *t = ud;
  (void)req, (void)in, (void)ret_error;
  Tproxy__InfoResponse *m = malloc(sizeof(*m));
  if (!m)
    return -ENOMEM;
  tproxy__info_response__init(m);
  *ret_out = &m->base;
  struct tproxy_hosts *h = tproxy_table_acquire(&t->table);
  m->hosts = (uint32_t)tproxy_hosts_count(h);
  tproxy_hosts_release(h);
  m->base_domain = strdup(domain_of(t));
  m->external_port = tproxy_external_port(t);
  m->app_address_ns_prefix = strdup(TPROXY_TXT_PREFIX);
  m->server_public_key = strdup(t->cfg->wg_public_key ? t->cfg->wg_public_key : "");
  m->server_ip = strdup(t->cfg->wg_ip);
  m->server_endpoint = strdup(t->cfg->wg_endpoint);
  m->version = strdup(DSTACK_VERSION);
  if (!m->base_domain || !m->app_address_ns_prefix || !m->server_public_key || !m->server_ip ||
      !m->server_endpoint || !m->version)
    return -ENOMEM;
  return 0;
}

int tproxy_api_init(struct tproxy *t, struct tproxy_api *ret, char *err, size_t errlen) {
  const ProtobufCServiceDescriptor *d = &tproxy__tproxy__descriptor;
  static const struct prpc_method_entry entries[] = {
      {"RegisterCvm", m_register_cvm},
      {"List", m_list},
      {"AcmeInfo", m_acme_info},
      {"Info", m_info},
  };
  memset(ret, 0, sizeof(*ret));
  int r = prpc_methods_fill(d, entries, ARRAY_SIZE(entries), ret->methods,
                            ARRAY_SIZE(ret->methods), err, errlen);
  if (r < 0)
    return r;
  for (size_t i = 0; i < ARRAY_SIZE(ret->svcs); i++)
    ret->svcs[i] = (struct prpc_service){
        .desc = d,
        .mount = i == 0 ? "/prpc/Tproxy." : "/prpc/",
        .methods = ret->methods,
        .n_methods = d->n_methods,
        .ud = t,
    };
  ret->router = (struct prpc_router){.svcs = ret->svcs, .n = ARRAY_SIZE(ret->svcs)};
  return 0;
}
