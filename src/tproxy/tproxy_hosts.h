/* The table the proxy routes by: app id → WireGuard addresses of its registered instances.
 *
 * The registry (main thread) publishes a new immutable snapshot after every change; worker
 * threads take a reference for the few instructions a lookup needs. Instances that refused a
 * connection are marked down for a while (shared, atomically) so new connections go to the
 * others; when all are down, all are tried anyway. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tproxy_route.h"

#define HOSTS_DOWN_MS 5000 /* how long a failed instance is skipped */

struct tproxy_host {
  char app_id[TPROXY_APP_ID_MAX + 1];
  uint32_t ip; /* host byte order */
};

struct tproxy_hosts; /* one snapshot: hosts sorted by app id, then address */

struct tproxy_table {
  pthread_mutex_t lock;
  struct tproxy_hosts *cur;
};

int tproxy_table_init(struct tproxy_table *t);
void tproxy_table_destroy(struct tproxy_table *t);
/* Replaces the snapshot with a copy of hosts[0..n) (any order). */
int tproxy_table_publish(struct tproxy_table *t, const struct tproxy_host *hosts, size_t n);
/* A reference to the current snapshot (never NULL after init); release it. */
struct tproxy_hosts *tproxy_table_acquire(struct tproxy_table *t);
void tproxy_hosts_release(struct tproxy_hosts *h);
size_t tproxy_hosts_count(const struct tproxy_hosts *h);

/* Up to max addresses of app_id's instances for one connection, in the order to try them:
 * starting at a rotating position (spreading connections), instances marked down after the
 * others. Returns the number (0 = unknown app). now_ms: a monotonic clock. */
size_t tproxy_hosts_pick(struct tproxy_hosts *h, const char *app_id, uint64_t now_ms,
                         uint32_t *ret, size_t max);
/* Marks (app_id, ip) down until now_ms + HOSTS_DOWN_MS, or up again (a connection worked). */
void tproxy_hosts_mark(struct tproxy_hosts *h, const char *app_id, uint32_t ip, bool up,
                       uint64_t now_ms);
