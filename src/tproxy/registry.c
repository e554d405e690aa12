/* Registrations: store → WireGuard interface → routing table. */
#include "tproxy_registry.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"

int tproxy_registry_open(const struct tproxy_config *cfg, struct tproxy_table *table,
                         struct tproxy_registry **ret, char *err, size_t errlen) {
  struct tproxy_registry *r = calloc(1, sizeof(*r));
  int e;
  if (!r)
    return -ENOMEM;
  r->cfg = cfg;
  r->table = table;
  if ((e = addrpool_init(&r->pool, cfg->wg_client_ip_range, cfg->wg_ip)) < 0) {
    str_err(err, errlen, e, "[core.wg] client_ip_range: %s", strerror(-e));
    goto fail;
  }
  if ((e = store_open(cfg->state_db, &r->store)) < 0) {
    str_err(err, errlen, e, "opening the registration store %s: %s", cfg->state_db,
         e == -EBADMSG ? "not a tproxy store (or corrupt)" : strerror(-e));
    goto fail;
  }
  if (!str_eq(cfg->wg_mode, "none")) {
    struct wg_iface_opts o = {
        .ifname = cfg->wg_interface,
        .mode = str_eq(cfg->wg_mode, "uapi") ? WG_MODE_UAPI : WG_MODE_SYNCCONF,
        .sock_dir = cfg->wg_sock_dir,
        .wg_bin = cfg->wg_bin,
    };
    if ((e = wg_iface_new(&o, &r->wg)) < 0) {
      str_err(err, errlen, e, "[core.wg]: %s", strerror(-e));
      goto fail;
    }
  }
  (void)tproxy_registry_sync(r);
  *ret = r;
  return 0;
fail:
  tproxy_registry_free(r);
  return e;
}

void tproxy_registry_free(struct tproxy_registry *r) {
  if (!r)
    return;
  wg_iface_free(r->wg);
  store_close(r->store);
  free(r);
}

int tproxy_registry_list(struct tproxy_registry *r, struct tproxy_reg **ret, size_t *ret_n) {
  return store_list(r->store, ret, ret_n);
}

/* Also writes the rendered config to config_path (0600), as upstream does, so that the
 * interface can be brought up again from it by wg-quick/wg setconf. */
static void write_config_path(struct tproxy_registry *r, const struct wg_config *wc) {
  if (str_isempty(r->cfg->wg_config_path) || !str_eq(r->cfg->wg_mode, "syncconf"))
    return;
  struct buf text;
  buf_init_secret(&text, (size_t)WG_MAX_PEERS * 256 + 4096);
  int e = wg_render_conf(wc, &text);
  if (e >= 0)
    e = file_write_atomic(r->cfg->wg_config_path, text.data, text.len, 0600);
  if (e < 0)
    log_warn("writing %s: %s", r->cfg->wg_config_path, strerror(-e));
  buf_free(&text);
}

int tproxy_registry_sync(struct tproxy_registry *r) {
  _cleanup_free_ struct tproxy_reg *rows = NULL;
  _cleanup_free_ struct wg_peer *peers = NULL;
  _cleanup_free_ struct tproxy_host *hosts = NULL;
  _cleanup_free_ char *ips = NULL;
  size_t n = 0;
  int e = store_list(r->store, &rows, &n);
  if (e < 0) {
    log_errno(e, "reading the registrations");
    return e;
  }
  if (n) {
    peers = calloc(n, sizeof(*peers));
    hosts = calloc(n, sizeof(*hosts));
    ips = calloc(n, IPV4_STR_MAX);
    if (!peers || !hosts || !ips)
      return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    char *ip = ips + i * IPV4_STR_MAX;
    ipv4_format(rows[i].ip, ip);
    peers[i] = (struct wg_peer){.public_key = rows[i].public_key, .allowed_ip = ip};
    /* Longer ids never come from RegisterCvm; such a row simply gets no route. */
    size_t idlen = strnlen(rows[i].app_id, sizeof(rows[i].app_id));
    if (idlen < sizeof(hosts[i].app_id))
      memcpy(hosts[i].app_id, rows[i].app_id, idlen + 1);
    hosts[i].ip = rows[i].ip;
  }
  if (r->wg) {
    struct wg_config wc = {.private_key = r->cfg->wg_private_key,
                           .listen_port = r->cfg->wg_listen_port,
                           .peers = peers,
                           .n_peers = n};
    bool changed = false;
    e = wg_apply(r->wg, &wc, &changed);
    if (e < 0) {
      if (!r->wg_dirty)
        log_warn("configuring WireGuard interface %s: %s (retrying every %us)",
                 r->cfg->wg_interface, strerror(-e), r->cfg->wg_poll_interval);
      r->wg_dirty = true;
      r->n_wg_failures++;
    } else {
      if (r->wg_dirty)
        log_info("WireGuard interface %s configured", r->cfg->wg_interface);
      r->wg_dirty = false;
      if (changed) {
        log_info("WireGuard interface %s: %zu peer(s)", r->cfg->wg_interface, n);
        write_config_path(r, &wc);
      }
    }
  }
  int p = tproxy_table_publish(r->table, hosts, n);
  return p < 0 ? p : e < 0 ? e : 0;
}

int tproxy_registry_register(struct tproxy_registry *r, const char *app_id,
                             const char *instance_id, const char *public_key, int64_t now,
                             struct tproxy_reg *ret) {
  int e = store_register(r->store, app_id, instance_id, public_key, &r->pool, now, ret);
  if (e < 0)
    return e;
  if (e == STORE_REG_NEW)
    r->n_registered++;
  else if (e == STORE_REG_REPLACED)
    r->n_replaced++;
  if (e != STORE_REG_UNCHANGED || r->wg_dirty)
    (void)tproxy_registry_sync(r);
  return e;
}

static void expired_cb(const struct tproxy_reg *reg, void *ud) {
  struct tproxy_registry *r = ud;
  char ip[IPV4_STR_MAX];
  r->n_expired++;
  log_info("registration of app %s instance %s (%s) expired: no WireGuard handshake", reg->app_id,
           reg->instance_id[0] ? reg->instance_id : "-", ipv4_format(reg->ip, ip));
}

int tproxy_registry_poll(struct tproxy_registry *r, int64_t now) {
  int e;
  if (r->wg_dirty)
    (void)tproxy_registry_sync(r);
  if (!r->wg)
    return 0;
  struct wg_status st = {0};
  e = wg_iface_status(r->wg, &st);
  if (e < 0) {
    if (!r->status_warned)
      log_warn("reading WireGuard handshakes of %s: %s; registrations do not expire meanwhile",
               r->cfg->wg_interface, strerror(-e));
    r->status_warned = true;
    return e;
  }
  r->status_warned = false;
  for (size_t i = 0; i < st.n_peers; i++) {
    if (!st.peers[i].last_handshake_sec)
      continue;
    char b64[WG_KEY_B64_LEN + 1];
    wg_key_encode(st.peers[i].public_key, b64);
    (void)store_touch_handshake(r->store, b64, st.peers[i].last_handshake_sec);
  }
  wg_status_free(&st);
  e = store_expire(r->store, now, r->cfg->wg_stale_timeout, expired_cb, r);
  if (e > 0)
    (void)tproxy_registry_sync(r);
  return e < 0 ? e : 0;
}
