/* teepod's listeners: plain HTTP on TCP (address:port) and/or a unix socket, serving
 *   /prpc/      the RPC services (teepod_service.h)
 *   /logs       a VM's logs (teepod_logs.h)
 *   /           the web console (web/teepod/console.html, built into the binary)
 *   /health     {"status":"ok","vms":N,"running":N}; never needs the admin token
 *   /metrics    Prometheus text
 * With [auth] enabled every path but /health and the console page (code, no data: a browser
 * cannot send a header with a page load, the page asks for the token) needs one of the tokens: "X-Admin-Token: T",
 * "Authorization: Bearer T" or basic auth with T as the password (401 otherwise). Each
 * listener prints "listening http://ADDR:PORT" or "listening unix:PATH". */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "teepod_service.h"

struct event_base;
struct http_server;
struct teepod;

struct teepod_server {
  struct teepod *tp;
  struct http_server *http;
  struct teepod_api api;
  struct offload *offload; /* KMS calls (GetAppEnvEncryptPubKey) */
  uint16_t port;
};

int teepod_server_new(struct teepod *tp, struct event_base *base, FILE *out,
                      struct teepod_server **ret, char *err, size_t errlen);
void teepod_server_free(struct teepod_server *s);

/* Not a cross-site request: Host is an address or localhost (TCP), Origin absent or this
 * server's own. */
bool teepod_server_same_origin(struct http_request *req);
/* Is the request allowed (auth off, or a valid token)? Constant-time token comparison. */
bool teepod_server_authorized(const struct teepod *tp, struct http_request *req);
/* The metrics text. */
int teepod_metrics_render(const struct teepod *tp, struct buf *out);
