/* The listeners of tappd and their routes:
 *   tappd.sock   /prpc/                      service Tappd
 *   dstack.sock  /                           service DstackGuest
 *   external     /                           dashboard (GET)
 *                /logs/<container>           Docker logs (public_logs, else 403)
 *                /metrics                    Prometheus text (public_sysinfo, else 403)
 *                /prpc/                      service Worker
 *   external-https: the external routes over TLS. */
#pragma once

#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>

#include "tappd_api.h"
#include "tappd.h"

struct event_base;
struct http_server;

struct tappd_server {
  struct tappd *t;
  struct event_base *base;
  struct tappd_api api;
  struct http_server *internal, *dstack, *external;
  SSL_CTX *tls;
  uint16_t external_port, https_port;
};

/* Binds every configured listener and prints one "listening <name> <address>" line per
 * listener to out (may be NULL). */
int tappd_server_new(struct tappd *t, struct event_base *base, FILE *out,
                     struct tappd_server **ret, char *err, size_t errlen);
void tappd_server_free(struct tappd_server *s);

/* Answers req once the Docker container list is in, without blocking the loop: fn runs later
 * on the loop (or at once when the socket cannot be connected) with err 0 and the containers,
 * or err < 0 and none; fn must answer req. If the client goes away first, fn never runs. */
struct docker_container;
typedef void (*tappd_containers_fn)(struct tappd_server *s, struct http_request *req, int err,
                                    const struct docker_container *cs, size_t n);
void tappd_server_with_containers(struct tappd_server *s, struct http_request *req,
                                  tappd_containers_fn fn);

/* Route handlers (dashboard.c, metrics.c, worker_api.c). */
void dashboard_http_handler(struct http_request *req, void *ud /* struct tappd_server */);
void metrics_http_handler(struct http_request *req, void *ud /* struct tappd_server */);
/* /prpc/Worker.ListContainers: the pRPC method, answered asynchronously (the pRPC dispatcher
 * only has synchronous handlers). */
void worker_list_containers_http_handler(struct http_request *req,
                                         void *ud /* struct tappd_server */);
/* The dashboard page and the metrics text with a given container list (list_err < 0: none). */
int dashboard_render(struct tappd *t, int list_err, const struct docker_container *cs, size_t n,
                     struct buf *out);
int metrics_render(struct tappd *t, int list_err, const struct docker_container *cs, size_t n,
                   struct buf *out);
