/* A daemon's RPC server: HTTPS on one TCP listener (mutual TLS and RA-TLS client certificates
 * as the daemon's SSL_CTX says), serving
 *   /prpc/     the pRPC router; the collateral of the client's RA-TLS certificate is fetched
 *              first, on worker threads, so a slow PCCS stalls only the requests needing it
 *   /health    GET/HEAD: {"status": "ok"|"error", ...the daemon's fields}, 200 or 503
 *   /metrics   GET/HEAD: Prometheus text from the daemon
 *   /          GET/HEAD of exactly "/": the daemon's page (status text, dashboard); 404 else
 * and announcing itself with the "listening https://ADDR:PORT" line (net/loop.h). */
#pragma once

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "net/http_server.h"
#include "net/prpc.h"

struct event_base;
struct ratls_verifier;
struct rpc_server;

struct rpc_server_pages {
  /* "/": renders the page into out (capped at index_max bytes, which must not be 0);
   * *ret_ctype is its content type. NULL: "/" is 404. */
  int (*index)(void *ud, struct buf *out, const char **ret_ctype);
  size_t index_max;
  /* /health: adds the daemon's fields to j; 1 answers 200 "status": "ok", 0 answers 503
   * "status": "error", negative (a failure to answer) 500. NULL: {"status": "ok"}. */
  int (*health)(void *ud, json_t *j);
  /* /metrics: Prometheus text format into out (capped at metrics_max, not 0). NULL: 404. */
  int (*metrics)(void *ud, struct buf *out);
  size_t metrics_max;
  void *ud;
};

struct rpc_server_config {
  const char *address; /* numeric address to listen on */
  uint16_t port;       /* 0: a free port */
  SSL_CTX *tls;        /* a reference is taken */
  struct http_server_config http;
  const struct prpc_router *router;
  /* Client certificates' collateral is fetched with verifier before /prpc/ runs (NULL: no
   * fetching); now(now_ud) is the verification time in seconds. */
  struct ratls_verifier *verifier;
  int64_t (*now)(void *now_ud);
  void *now_ud;
  unsigned fetch_threads; /* 0: nothing to fetch (no PCCS): no threads are started */
  unsigned fetch_pending; /* fetches waiting for a thread before requests are refused */
  struct rpc_server_pages pages;
};

/* Sets up and listens. err says what failed (naming the address); -EINVAL for a page whose cap
 * is 0. The "listening" line goes to out (NULL: none). */
int rpc_server_new(struct event_base *base, const struct rpc_server_config *c, FILE *out,
                   struct rpc_server **ret, char *err, size_t errlen);
uint16_t rpc_server_port(const struct rpc_server *s);
/* Open connections (for tests and metrics). */
unsigned rpc_server_n_connections(const struct rpc_server *s);
/* Closes the listener and every connection (requests waiting for a fetch are cancelled), then
 * stops the fetch threads. Before freeing the verifier. NULL is fine. */
void rpc_server_free(struct rpc_server *s);
