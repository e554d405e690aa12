/* The tproxy daemon's state, shared by the RPC service, the dashboard and the proxy. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tproxy_hosts.h"
#include "tproxy_registry.h"
#include "tproxy_config.h"

struct ratls_verifier;
struct tproxy_certs;
struct tproxy_proxy;
struct tproxy_wgproc;

/* Instance id stored for CVMs whose event log has no instance-id event (seed era). */
#define TPROXY_NO_INSTANCE "-"

struct tproxy_rpc_stats {
  uint64_t registered; /* RegisterCvm answered */
  uint64_t refused;    /* RegisterCvm refused (attestation, key, pool) */
};

struct tproxy {
  struct tproxy_config *cfg;
  struct tproxy_table table;
  struct tproxy_registry *reg;
  struct ratls_verifier *verifier;
  struct tproxy_certs *certs;  /* the proxy's wildcard certificate */
  struct tproxy_proxy *proxy;  /* NULL until started */
  struct tproxy_wgproc *wgproc; /* dev mode's wireguard-go (wgproc.h), or NULL */
  struct tproxy_rpc_stats stats;
  int64_t started;
  int64_t (*now)(void); /* NULL = time() */
};

int64_t tproxy_now(const struct tproxy *t);
/* Whether WireGuard works as configured: dev mode's wireguard-go runs (when there is one) and
 * the interface took the last configuration (mode "none": always). detail gets one line. */
bool tproxy_wg_healthy(const struct tproxy *t, char *detail, size_t len);
