/* tproxy.toml: one table of options drives the defaults, the parser and --dump-config. */
#include "tproxy_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tproxy_addrpool.h"
#include "attest/dcap.h"
#include "base/conftab.h"
#include "base/str.h"
#include "tproxy_wg.h"

#define CFG struct tproxy_config
#define CERTS "/etc/tproxy/certs/"

static const struct conftab_opt opts[] = {
    CONFTAB_STR(CFG, "", "address", address, "0.0.0.0"),
    CONFTAB_U16(CFG, "", "port", port, 8010),
    CONFTAB_STR(CFG, "", "log_level", log_level, "normal"),
    CONFTAB_U32(CFG, "", "max_conns", max_conns, 1024),
    CONFTAB_U32(CFG, "", "max_conns_per_source", max_conns_per_source, 128),
    CONFTAB_U32(CFG, "", "request_timeout", request_timeout, 30),
    CONFTAB_U32(CFG, "", "handshake_timeout", handshake_timeout_s, 5),
    CONFTAB_STR(CFG, "tls", "key", tls_key, CERTS "tproxy-rpc.key"),
    CONFTAB_STR(CFG, "tls", "certs", tls_certs, CERTS "tproxy-rpc.cert"),
    CONFTAB_STR(CFG, "tls.mutual", "ca_certs", mutual_ca_certs, CERTS "root-ca.cert"),
    CONFTAB_BOOL(CFG, "tls.mutual", "mandatory", mutual_mandatory, false),
    CONFTAB_STR(CFG, "core", "state_db", state_db, "/var/lib/tproxy/tproxy.db"),
    CONFTAB_BOOL(CFG, "core", "dev", dev, false),
    CONFTAB_STR(CFG, "core.quote", "pccs_url", pccs_url, ""),
    CONFTAB_STR(CFG, "core.quote", "cache_dir", cache_dir, ""),
    CONFTAB_STR(CFG, "core.quote", "simulator_dir", simulator_dir, ""),
    CONFTAB_BOOL(CFG, "core.quote", "allow_seed_event_log", allow_seed_event_log, false),
    CONFTAB_STRV(CFG, "core.quote", "tcb_statuses", tcb_statuses, "UpToDate"),
    CONFTAB_STR(CFG, "core.certbot", "workdir", certbot_workdir, "/etc/certbot"),
    CONFTAB_STR(CFG, "core.wg", "public_key", wg_public_key, ""),
    CONFTAB_SECRET_STR(CFG, "core.wg", "private_key", wg_private_key, ""),
    CONFTAB_STR(CFG, "core.wg", "ip", wg_ip, "10.0.0.1"),
    CONFTAB_U16(CFG, "core.wg", "listen_port", wg_listen_port, 51820),
    CONFTAB_STR(CFG, "core.wg", "client_ip_range", wg_client_ip_range, "10.0.0.0/24"),
    CONFTAB_STR(CFG, "core.wg", "config_path", wg_config_path, "/etc/wireguard/wg0.conf"),
    CONFTAB_STR(CFG, "core.wg", "interface", wg_interface, "wg0"),
    CONFTAB_STR(CFG, "core.wg", "endpoint", wg_endpoint, "10.0.2.2:51820"),
    CONFTAB_STR(CFG, "core.wg", "mode", wg_mode, "syncconf"),
    CONFTAB_STR(CFG, "core.wg", "sock_dir", wg_sock_dir, WG_DEFAULT_SOCK_DIR),
    CONFTAB_STR(CFG, "core.wg", "wg_bin", wg_bin, "wg"),
    CONFTAB_U32(CFG, "core.wg", "stale_timeout", wg_stale_timeout, 86400),
    CONFTAB_U32(CFG, "core.wg", "poll_interval", wg_poll_interval, 10),
    CONFTAB_STR(CFG, "core.proxy", "cert_chain", proxy_cert_chain, "/etc/certbot/live/cert.pem"),
    CONFTAB_STR(CFG, "core.proxy", "cert_key", proxy_cert_key, "/etc/certbot/live/key.pem"),
    CONFTAB_STR(CFG, "core.proxy", "base_domain", base_domain, "app.localhost"),
    CONFTAB_STR(CFG, "core.proxy", "listen_addr", listen_addr, "0.0.0.0"),
    CONFTAB_U16(CFG, "core.proxy", "listen_port", listen_port, 8443),
    CONFTAB_U16(CFG, "core.proxy", "tappd_port", tappd_port, 8090),
    CONFTAB_U32(CFG, "core.proxy", "workers", workers, 0),
    CONFTAB_U32(CFG, "core.proxy", "max_conns", proxy_max_conns, 16384),
    CONFTAB_U32(CFG, "core.proxy", "max_conns_per_app", proxy_max_conns_per_app, 0),
    CONFTAB_U32(CFG, "core.proxy", "connect_timeout", connect_timeout_ms, 5000),
    CONFTAB_U32(CFG, "core.proxy", "handshake_timeout", handshake_timeout_ms, 10000),
    CONFTAB_U32(CFG, "core.proxy", "idle_timeout", idle_timeout_s, 600),
    CONFTAB_U32(CFG, "core.proxy", "cert_poll", cert_poll_s, 5),
    CONFTAB_STR(CFG, "core.proxy", "dns_servers", dns_servers, ""),
    CONFTAB_BOOL(CFG, "core.proxy", "dns_legacy", dns_legacy, true),
    CONFTAB_U32(CFG, "core.proxy", "dns_timeout", dns_timeout_ms, 3000),
    CONFTAB_U32(CFG, "core.proxy", "dns_min_ttl", dns_min_ttl, 5),
    CONFTAB_U32(CFG, "core.proxy", "dns_max_ttl", dns_max_ttl, 3600),
    CONFTAB_U32(CFG, "core.proxy", "dns_neg_ttl", dns_neg_ttl, 10),
};

static const struct conftab table = {opts, ARRAY_SIZE(opts)};

const struct conftab *tproxy_config_table(void) {
  return &table;
}

int tproxy_config_init(struct tproxy_config *c) {
  memset(c, 0, sizeof(*c));
  int r = conftab_defaults(&table, c);
  if (r < 0)
    tproxy_config_free(c);
  return r;
}

void tproxy_config_free(struct tproxy_config *c) {
  conftab_free(&table, c);
}

int tproxy_config_apply(struct tproxy_config *c, const char *text, size_t len, char *err,
                        size_t errlen) {
  return conftab_load_text(&table, c, text, len, err, errlen);
}

int tproxy_config_apply_file(struct tproxy_config *c, const char *path, char *err,
                             size_t errlen) {
  return conftab_load_file(&table, c, path, err, errlen);
}

int tproxy_config_set(char **dst, const char *v) {
  return conftab_set_str(dst, v);
}

int tproxy_config_dump(const struct tproxy_config *c, struct buf *out) {
  return conftab_dump(&table, c, 0, out);
}

int tproxy_config_dump_secrets(const struct tproxy_config *c, struct buf *out) {
  return conftab_dump(&table, c, CONFTAB_DUMP_SECRETS, out);
}

static bool is_ip_literal(const char *s) {
  if (str_isempty(s))
    return false;
  for (const char *p = s; *p; p++)
    if (!strchr("0123456789abcdefABCDEF.:", *p))
      return false;
  return true;
}

/* "host:port" or "[v6]:port", host an IP address or a DNS name. */
static bool endpoint_valid(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || strlen(s) > 255)
    return false;
  char *end;
  errno = 0;
  unsigned long port = strtoul(colon + 1, &end, 10);
  if (errno || *end || port == 0 || port > 65535 || colon[1] == '+' || colon[1] == '-')
    return false;
  for (const char *p = s; p < colon; p++)
    if (!strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:[]", *p))
      return false;
  return true;
}

static bool domain_valid(const char *s) {
  while (*s == '.')
    s++;
  size_t n = strlen(s);
  if (n == 0 || n > 200)
    return false;
  size_t label = 0;
  for (const char *p = s; *p; p++) {
    if (*p == '.') {
      if (label == 0)
        return false;
      label = 0;
      continue;
    }
    if (!strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-", *p) ||
        ++label > 63)
      return false;
  }
  return true;
}

int tproxy_config_check(struct tproxy_config *c, char *err, size_t errlen) {
  int r;
  if (!is_ip_literal(c->address))
    return conftab_error(err, errlen, "address: '%s' is not an IP address", c->address);
  if (!is_ip_literal(c->listen_addr))
    return conftab_error(err, errlen, "[core.proxy] listen_addr: '%s' is not an IP address",
                         c->listen_addr);
  if (c->max_conns == 0 || c->proxy_max_conns == 0)
    return conftab_error(err, errlen, "max_conns: must be > 0");
  if (c->max_conns_per_source == 0)
    return conftab_error(err, errlen, "max_conns_per_source: must be > 0");
  if (c->request_timeout == 0)
    return conftab_error(err, errlen, "request_timeout: must be > 0");
  if (c->handshake_timeout_s == 0)
    return conftab_error(err, errlen, "handshake_timeout: must be > 0");
  if (str_isempty(c->tls_key) || str_isempty(c->tls_certs))
    return conftab_error(err, errlen, "[tls] needs key and certs");
  if (str_isempty(c->mutual_ca_certs))
    return conftab_error(err, errlen,
                         "[tls.mutual] ca_certs: required (the CA that CVM certificates chain to)");
  if (str_isempty(c->state_db))
    return conftab_error(err, errlen, "[core] state_db: a file path is required");
  for (size_t i = 0; c->tcb_statuses && c->tcb_statuses[i]; i++) {
    enum dcap_status s;
    if (dcap_status_from_name(c->tcb_statuses[i], &s) < 0)
      return conftab_error(err, errlen, "[core.quote] tcb_statuses: unknown TCB status '%s'",
                           c->tcb_statuses[i]);
    if (s == DCAP_STATUS_REVOKED)
      return conftab_error(err, errlen, "[core.quote] tcb_statuses: Revoked is never accepted");
  }
  if (!str_isempty(c->pccs_url) && !str_startswith(c->pccs_url, "http://") &&
      !str_startswith(c->pccs_url, "https://"))
    return conftab_error(err, errlen, "[core.quote] pccs_url: expected an http(s) URL");

  uint32_t ip;
  if (ipv4_parse(c->wg_ip, &ip) < 0)
    return conftab_error(err, errlen, "[core.wg] ip: '%s' is not an IPv4 address", c->wg_ip);
  struct addrpool pool;
  if (addrpool_init(&pool, c->wg_client_ip_range, c->wg_ip) < 0)
    return conftab_error(err, errlen,
                         "[core.wg] client_ip_range: '%s' is not an IPv4 range with usable "
                         "addresses (a.b.c.d/n, n <= 30)",
                         c->wg_client_ip_range);
  if (str_isempty(c->wg_endpoint) || !endpoint_valid(c->wg_endpoint))
    return conftab_error(err, errlen, "[core.wg] endpoint: expected host:port, got '%s'",
                         c->wg_endpoint);
  if (!str_eq(c->wg_mode, "syncconf") && !str_eq(c->wg_mode, "uapi") &&
      !str_eq(c->wg_mode, "none"))
    return conftab_error(err, errlen, "[core.wg] mode: expected \"syncconf\", \"uapi\" or \"none\"");
  size_t iflen = strlen(c->wg_interface);
  if (iflen == 0 || iflen > WG_IFNAME_MAX ||
      strspn(c->wg_interface, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
          iflen)
    return conftab_error(err, errlen, "[core.wg] interface: bad name '%s'", c->wg_interface);
  if (c->wg_poll_interval == 0 || c->wg_stale_timeout < c->wg_poll_interval)
    return conftab_error(err, errlen,
                         "[core.wg] poll_interval must be > 0 and stale_timeout >= it");
  if (str_isempty(c->wg_private_key)) {
    if (!str_eq(c->wg_mode, "none"))
      return conftab_error(err, errlen, "[core.wg] private_key: required");
  } else {
    char pub[WG_KEY_B64_LEN + 1];
    if (wg_key_public_from_private_b64(c->wg_private_key, pub) < 0)
      return conftab_error(err, errlen,
                           "[core.wg] private_key: not a WireGuard key (base64 of 32 bytes)");
    if (str_isempty(c->wg_public_key)) {
      if ((r = conftab_set_str(&c->wg_public_key, pub)) < 0)
        return r;
    } else if (!str_eq(c->wg_public_key, pub))
      return conftab_error(err, errlen, "[core.wg] public_key does not belong to private_key");
  }
  if (!str_isempty(c->wg_public_key)) {
    uint8_t k[WG_KEY_LEN];
    if (wg_key_decode(c->wg_public_key, k) < 0)
      return conftab_error(err, errlen, "[core.wg] public_key: not a WireGuard key");
  }

  if (!domain_valid(c->base_domain))
    return conftab_error(err, errlen, "[core.proxy] base_domain: bad domain '%s'",
                         c->base_domain);
  if (str_isempty(c->proxy_cert_chain) || str_isempty(c->proxy_cert_key))
    return conftab_error(err, errlen, "[core.proxy] needs cert_chain and cert_key");
  if (c->workers > 256)
    return conftab_error(err, errlen, "[core.proxy] workers: at most 256");
  if (c->connect_timeout_ms == 0 || c->handshake_timeout_ms == 0 || c->idle_timeout_s == 0)
    return conftab_error(err, errlen, "[core.proxy] timeouts must be > 0");
  if (c->cert_poll_s == 0)
    return conftab_error(err, errlen, "[core.proxy] cert_poll: must be > 0");
  if (c->dns_timeout_ms == 0 || c->dns_min_ttl > c->dns_max_ttl)
    return conftab_error(err, errlen,
                         "[core.proxy] dns_timeout must be > 0 and dns_min_ttl <= dns_max_ttl");
  return 0;
}
