/* tproxy's registrations: the SQLite store, the address pool, the WireGuard interface and the
 * routing table the proxy workers read, kept in step. Main thread only.
 *
 * Every change of the set of peers (a new registration, a replaced key, an expiry) is written
 * to the store first, then the interface is configured from the store's rows (only when the
 * rendered config differs from the last one applied) and the routing table is republished. A
 * failed interface update is logged and retried at the next poll; registrations are never lost
 * because of it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tproxy_addrpool.h"
#include "tproxy_hosts.h"
#include "tproxy_store.h"
#include "tproxy_config.h"
#include "tproxy_wg.h"

struct tproxy_registry {
  const struct tproxy_config *cfg;
  struct tproxy_store *store;
  struct addrpool pool;
  struct wg_iface *wg; /* NULL with [core.wg] mode = "none" */
  struct tproxy_table *table;
  bool wg_dirty;       /* the interface may not match the store: retry at the next poll */
  bool status_warned;  /* "cannot read handshakes" was logged */
  uint64_t n_registered, n_replaced, n_expired, n_wg_failures;
};

int tproxy_registry_open(const struct tproxy_config *cfg, struct tproxy_table *table,
                         struct tproxy_registry **ret, char *err, size_t errlen);
void tproxy_registry_free(struct tproxy_registry *r);

/* store_register, then sync when anything changed. Returns STORE_REG_* or negative errno
 * (see store_register). */
int tproxy_registry_register(struct tproxy_registry *r, const char *app_id,
                             const char *instance_id, const char *public_key, int64_t now,
                             struct tproxy_reg *ret);
/* Applies the store's rows to the interface and republishes the table. */
int tproxy_registry_sync(struct tproxy_registry *r);
/* Reads the peers' last handshakes from the interface into the store, expires registrations
 * idle for longer than stale_timeout and syncs when needed. Without readable handshakes
 * nothing expires (a live CVM is never dropped for want of information). */
int tproxy_registry_poll(struct tproxy_registry *r, int64_t now);
/* All rows (store_list). */
int tproxy_registry_list(struct tproxy_registry *r, struct tproxy_reg **ret, size_t *ret_n);
