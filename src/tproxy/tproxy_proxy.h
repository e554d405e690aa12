/* The TLS ingress proxy: worker threads, each with its own SO_REUSEPORT listener and event loop.
 *
 * Per connection: the ClientHello is peeked (never consumed) into a bounded buffer until it
 * parses, within handshake_timeout; its SNI picks the route (route.h); custom domains go
 * through the DNS TXT resolver (dns.h). Passthrough routes connect to the instance and move
 * bytes both ways with splice() (the hello is still in the socket and goes first); terminating
 * routes connect, then run the TLS handshake with the wildcard certificate (certs.h) and copy
 * plaintext to and from the backend. Instances that refuse a connection are skipped for a while
 * and the next one is tried. Failures before a TLS session exists are answered with a TLS
 * alert record, then the connection is closed; every outcome is counted.
 *
 * Limits: max_conns connections at once (main derives it from RLIMIT_NOFILE, fdlimit.h); one
 * app may hold at most max_conns_per_app of them, and connections that have to wait (for the
 * rest of their ClientHello, or for a TXT lookup) at most an eighth, so neither a flood aimed
 * at one app nor slow ClientHellos take the slots every other app needs. When accept() fails
 * for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) a worker stops accepting
 * for TPROXY_ACCEPT_PAUSE_MS instead of being woken again at once by its still-readable
 * listener. Such conditions are logged at most once per LOG_RATELIMIT_MS each. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

struct tproxy_table;
struct tproxy_certs;
struct tproxy_dns_cache;

struct tproxy_proxy_opts {
  const char *listen_addr;
  uint16_t listen_port; /* 0 = any free port (the same for every worker) */
  unsigned workers;     /* 0 = one per online CPU */
  unsigned max_conns;   /* client connections open at once, over all workers */
  unsigned max_conns_per_app; /* of those, one app's; 0 = max_conns - max_conns / 4 */
  unsigned pipe_pool;   /* idle splice pipes a worker keeps (at most TPROXY_PIPE_POOL_MAX) */
  unsigned connect_timeout_ms;
  unsigned handshake_timeout_ms; /* ClientHello and TLS handshake, each */
  unsigned idle_timeout_s;
  const char *base_domain;
  struct tproxy_table *table;
  struct tproxy_certs *certs;
  /* Custom domains (NULL cache: every custom domain is unknown). */
  struct tproxy_dns_cache *dns_cache;
  const char *dns_servers;
  bool dns_legacy;
  unsigned dns_timeout_ms;
  uint32_t dns_min_ttl, dns_max_ttl, dns_neg_ttl;
};

/* Counters, summed over the workers. */
struct tproxy_proxy_stats {
  uint64_t accepted;
  uint64_t active;
  uint64_t max_conns;       /* the limits in force */
  uint64_t max_conns_per_app;
  uint64_t max_pending;
  uint64_t rejected_full;   /* over max_conns */
  uint64_t rejected_app_full; /* the app holds max_conns_per_app */
  uint64_t rejected_pending_full; /* too many connections wait for a hello or DNS */
  uint64_t no_fds;          /* closed for want of a descriptor (backend socket, pipes) */
  uint64_t accept_paused;   /* accept() failed for want of resources: paused */
  uint64_t bad_hello;       /* not a TLS ClientHello, or too big */
  uint64_t no_sni;
  uint64_t bad_sni;         /* malformed name under the base domain */
  uint64_t unknown_app;     /* no registered instance (or no TXT record) */
  uint64_t dns_failed;      /* TXT lookup failed or the record is malformed */
  uint64_t backend_failed;  /* no instance accepted the connection */
  uint64_t hello_timeout;
  uint64_t connect_timeout;
  uint64_t handshake_failed; /* TLS handshake error or timeout */
  uint64_t idle_timeout;
  uint64_t passthrough;     /* connections relayed, by kind */
  uint64_t terminated;
  uint64_t h2;
  uint64_t bytes_in;        /* client → backend */
  uint64_t bytes_out;       /* backend → client */
};

struct tproxy_proxy;

#define TPROXY_ACCEPT_PAUSE_MS 250

/* The number of workers tproxy_proxy_start runs for a configured count (0 = one per CPU). */
unsigned tproxy_proxy_workers_resolve(unsigned configured);

/* Binds every listener (errors come back here, with a message in err), then starts the workers. */
int tproxy_proxy_start(const struct tproxy_proxy_opts *o, struct tproxy_proxy **ret, char *err,
                       size_t errlen);
uint16_t tproxy_proxy_port(const struct tproxy_proxy *p);
unsigned tproxy_proxy_workers(const struct tproxy_proxy *p);
void tproxy_proxy_stats(const struct tproxy_proxy *p, struct tproxy_proxy_stats *ret);
/* Prometheus text of the counters. */
int tproxy_proxy_metrics(const struct tproxy_proxy *p, struct buf *out);
/* Stops the workers (open connections are closed) and frees everything. NULL is fine. */
void tproxy_proxy_stop(struct tproxy_proxy *p);
