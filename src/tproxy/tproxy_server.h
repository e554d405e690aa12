/* tproxy's RPC listener: HTTPS with optional client certificates (required by RegisterCvm),
 * serving /prpc/ (service.h), the dashboard at GET / and Prometheus text at /metrics. */
#pragma once

#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>

#include "tproxy_service.h"

struct event_base;
struct rpc_server;

struct tproxy_server {
  struct tproxy *t;
  struct tproxy_api api;
  struct rpc_server *rpc;
  SSL_CTX *tls;
  uint16_t port;
};

/* Listens on address:port; announces "listening https://ADDR:PORT" on out when given. */
int tproxy_server_new(struct tproxy *t, struct event_base *base, FILE *out,
                      struct tproxy_server **ret, char *err, size_t errlen);
void tproxy_server_free(struct tproxy_server *s);

/* The dashboard page (upstream dstack). */
int tproxy_dashboard_render(struct tproxy *t, struct buf *out);
