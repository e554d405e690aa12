/* tproxy.toml: one table of options drives the defaults, the parser and --dump-config.
 *
 * Upstream dstack's keys:
 *   address = "0.0.0.0", port = 8010, log_level          RPC listener (Rocket keys)
 *   [tls] key, certs                                     RPC server certificate (PEM files)
 *   [tls.mutual] ca_certs, mandatory                     CA the CVMs' certificates chain to
 *   [core.certbot] workdir                               certbot's directory (AcmeInfo, certs)
 *   [core.wg] public_key, private_key, ip, listen_port, client_ip_range, config_path,
 *             interface, endpoint
 *   [core.proxy] cert_chain, cert_key, base_domain, listen_addr, listen_port, tappd_port
 * Ours:
 *   RPC server limits (lib/net/http_server.h): max_conns (lowered like [core.proxy]'s),
 *     max_conns_per_source, request_timeout, handshake_timeout (s; accept .. first byte)
 *   [core] state_db (SQLite registrations), dev
 *   [core.quote] pccs_url, cache_dir, simulator_dir ("" = simulated quotes are refused),
 *                tcb_statuses (accepted TCB statuses), allow_seed_event_log (accept seed-era
 *                event logs, whose names are not bound to digests; off, on in dev mode)
 *   [core.wg] mode ("syncconf" | "uapi" | "none"), sock_dir, wg_bin, stale_timeout (seconds
 *             without a handshake before a registration expires), poll_interval
 *   [core.proxy] workers (0 = one per CPU), max_conns (lowered, with a warning, to what
 *                RLIMIT_NOFILE allows: fdlimit.h), max_conns_per_app (0 = three quarters of
 *                max_conns), connect_timeout, handshake_timeout,
 *                idle_timeout (ms, ms, s), cert_poll (s), dns_servers ("" = resolv.conf),
 *                dns_legacy (also _tapp-address), dns_timeout (ms), dns_min_ttl, dns_max_ttl,
 *                dns_neg_ttl (s)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct tproxy_config {
  char *address;
  uint16_t port;
  char *log_level;
  uint32_t max_conns;
  uint32_t max_conns_per_source;
  uint32_t request_timeout;
  uint32_t handshake_timeout_s;
  char *tls_key;
  char *tls_certs;
  char *mutual_ca_certs;
  bool mutual_mandatory;

  char *state_db;
  bool dev;
  char *pccs_url;
  char *cache_dir;
  char *simulator_dir;
  char **tcb_statuses;
  bool allow_seed_event_log;

  char *certbot_workdir;

  char *wg_public_key;
  char *wg_private_key;
  char *wg_ip;
  uint16_t wg_listen_port;
  char *wg_client_ip_range;
  char *wg_config_path;
  char *wg_interface;
  char *wg_endpoint;
  char *wg_mode;
  char *wg_sock_dir;
  char *wg_bin;
  uint32_t wg_stale_timeout;
  uint32_t wg_poll_interval;

  char *proxy_cert_chain;
  char *proxy_cert_key;
  char *base_domain;
  char *listen_addr;
  uint16_t listen_port;
  uint16_t tappd_port;
  uint32_t workers;
  uint32_t proxy_max_conns;
  uint32_t proxy_max_conns_per_app;
  uint32_t connect_timeout_ms;
  uint32_t handshake_timeout_ms;
  uint32_t idle_timeout_s;
  uint32_t cert_poll_s;
  char *dns_servers;
  bool dns_legacy;
  uint32_t dns_timeout_ms;
  uint32_t dns_min_ttl;
  uint32_t dns_max_ttl;
  uint32_t dns_neg_ttl;
};

struct conftab;
/* The option table behind this file (for tests that walk every option). */
const struct conftab *tproxy_config_table(void);

int tproxy_config_init(struct tproxy_config *c);
void tproxy_config_free(struct tproxy_config *c);
int tproxy_config_apply(struct tproxy_config *c, const char *text, size_t len, char *err,
                        size_t errlen);
int tproxy_config_apply_file(struct tproxy_config *c, const char *path, char *err, size_t errlen);
/* Consistency: addresses, ranges, keys (public_key filled in from private_key when empty and
 * checked against it otherwise), modes. May fill derived values, hence not const. */
int tproxy_config_check(struct tproxy_config *c, char *err, size_t errlen);
/* The effective configuration as TOML that tproxy_config_apply() reads back. The secret
 * ([core.wg] private_key) is a table entry marked CONFTAB_SECRET_STR: tproxy_config_dump
 * (--dump-config) writes it, when set, as the comment "# private_key = (set, not shown)", so
 * the output can be pasted or logged and still loads (the key left empty);
 * tproxy_config_dump_secrets (dev mode's 0600 file; out must be a secret buffer) writes it, so
 * the text loads back to the same values. */
int tproxy_config_dump(const struct tproxy_config *c, struct buf *out);
int tproxy_config_dump_secrets(const struct tproxy_config *c, struct buf *out);
/* Replaces a string option. */
int tproxy_config_set(char **dst, const char *v);
