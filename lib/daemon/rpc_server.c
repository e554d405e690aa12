/* A daemon's HTTPS RPC server (rpc_server.h). */
#include "daemon/rpc_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "net/loop.h"
#include "net/offload.h"
#include "ratls/ratls_http.h"

struct rpc_server {
  struct rpc_server_config cfg;
  struct http_server *http;
  struct offload *pool;
  SSL_CTX *tls;
  uint16_t port;
};

static bool method_is_get(struct http_request *req) {
  const char *m = http_request_method(req);
  if (str_eq(m, "GET") || str_eq(m, "HEAD"))
    return true;
  (void)http_reply_error(req, 405, "method not allowed");
  return false;
}

static void index_handler(struct http_request *req, void *ud) {
  struct rpc_server *s = ud;
  const struct rpc_server_pages *p = &s->cfg.pages;
  if (!p->index || !str_eq(http_request_path(req), "/")) {
    (void)http_reply_error(req, 404, "not found");
    return;
  }
  if (!method_is_get(req))
    return;
  _cleanup_buf_ struct buf b = BUF_INIT(p->index_max);
  const char *ctype = "text/plain; charset=utf-8";
  if (p->index(p->ud, &b, &ctype) < 0) {
    (void)http_reply_error(req, 500, "rendering the page");
    return;
  }
  (void)http_reply(req, 200, ctype, b.data, b.len);
}

static void health_handler(struct http_request *req, void *ud) {
  struct rpc_server *s = ud;
  const struct rpc_server_pages *p = &s->cfg.pages;
  const char *path = http_request_path(req);
  if (!str_eq(path, "/health") && !str_eq(path, "/healthz")) {
    (void)http_reply_error(req, 404, "not found");
    return;
  }
  if (!method_is_get(req))
    return;
  _cleanup_json_ json_t *j = json_object();
  int ok = 1;
  if (j && p->health)
    ok = p->health(p->ud, j);
  if (!j || ok < 0 || json_set_str(j, "status", ok > 0 ? "ok" : "error") < 0) {
    (void)http_reply_error(req, 500, "cannot report health");
    return;
  }
  (void)http_reply_json(req, ok > 0 ? 200 : 503, j);
}

static void metrics_handler(struct http_request *req, void *ud) {
  struct rpc_server *s = ud;
  const struct rpc_server_pages *p = &s->cfg.pages;
  if (!p->metrics || !str_eq(http_request_path(req), "/metrics")) {
    (void)http_reply_error(req, 404, "not found");
    return;
  }
  if (!method_is_get(req))
    return;
  _cleanup_buf_ struct buf b = BUF_INIT(p->metrics_max);
  if (p->metrics(p->ud, &b) < 0) {
    (void)http_reply_error(req, 500, "rendering the metrics");
    return;
  }
  (void)http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
}

static void prpc_handler(struct http_request *req, void *ud) {
  struct rpc_server *s = ud;
  const struct rpc_server_config *c = &s->cfg;
  if (!c->verifier) {
    prpc_http_handler(req, (void *)c->router);
    return;
  }
  ratls_http_prefetch_then(req, c->verifier, s->pool, c->now ? c->now(c->now_ud) : 0,
                           prpc_http_handler, (void *)c->router);
}

int rpc_server_new(struct event_base *base, const struct rpc_server_config *c, FILE *out,
                   struct rpc_server **ret, char *err, size_t errlen) {
  if ((c->pages.index && !c->pages.index_max) || (c->pages.metrics && !c->pages.metrics_max))
    return str_err(err, errlen, -EINVAL, "a page of the RPC server has a cap of 0 bytes");
  struct rpc_server *s = calloc(1, sizeof(*s));
  int r;
  if (!s)
    return str_err(err, errlen, -ENOMEM, "out of memory");
  s->cfg = *c;
  if (!SSL_CTX_up_ref(c->tls)) {
    free(s);
    return str_err(err, errlen, -ENOMEM, "out of memory");
  }
  s->tls = c->tls;
  if (c->verifier && c->fetch_threads &&
      (r = offload_new(base, c->fetch_threads, c->fetch_pending, &s->pool)) < 0) {
    str_err(err, errlen, r, "starting the collateral fetch threads: %s", strerror(-r));
    goto fail;
  }
  if ((r = http_server_new(base, &c->http, &s->http)) < 0 ||
      (r = http_server_route(s->http, "/", index_handler, s)) < 0 ||
      (r = http_server_route(s->http, "/health", health_handler, s)) < 0 ||
      (r = http_server_route(s->http, "/metrics", metrics_handler, s)) < 0 ||
      (r = http_server_route(s->http, "/prpc/", prpc_handler, s)) < 0) {
    str_err(err, errlen, r, "setting up the HTTP server: %s", strerror(-r));
    goto fail;
  }
  if ((r = http_server_listen_tls(s->http, c->address, c->port, s->tls, &s->port)) < 0) {
    str_err(err, errlen, r, "listening on %s:%u: %s", c->address, c->port, strerror(-r));
    goto fail;
  }
  net_listening_print(out, "https", c->address, s->port);
  *ret = s;
  return 0;
fail:
  rpc_server_free(s);
  return r;
}

uint16_t rpc_server_port(const struct rpc_server *s) {
  return s->port;
}

unsigned rpc_server_n_connections(const struct rpc_server *s) {
  return http_server_n_connections(s->http);
}

void rpc_server_free(struct rpc_server *s) {
  if (!s)
    return;
  http_server_free(s->http); /* first: requests waiting for a fetch are cancelled */
  offload_free(s->pool);
  SSL_CTX_free(s->tls);
  free(s);
}
