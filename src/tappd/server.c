/* Listeners and routes. */
#include "tappd_server.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "base/fileio.h"
#include "base/str.h"
#include "tappd_docker.h"
#include "tappd_logs.h"
#include "net/http_server.h"
#include "net/http_tls.h"
#include "net/prpc.h"

struct containers_wait {
  struct tappd_server *srv;
  struct http_request *req;
  struct docker_list *dl;
  tappd_containers_fn fn;
};

static void containers_client_gone(void *ud) {
  struct containers_wait *w = ud;
  docker_list_cancel(w->dl);
  free(w);
}

static void containers_done(void *ud, int err, struct docker_container *cs, size_t n) {
  struct containers_wait *w = ud;
  http_request_on_close(w->req, NULL, NULL);
  w->fn(w->srv, w->req, err, cs, n);
  docker_containers_free(cs, n);
  free(w);
}

void tappd_server_with_containers(struct tappd_server *s, struct http_request *req,
                                  tappd_containers_fn fn) {
  struct containers_wait *w = calloc(1, sizeof(*w));
  if (!w) {
    fn(s, req, -ENOMEM, NULL, 0);
    return;
  }
  *w = (struct containers_wait){.srv = s, .req = req, .fn = fn};
  int r = docker_list_containers_async(s->base, s->t->cfg->docker_socket, DOCKER_LIST_TIMEOUT_MS,
                                       containers_done, w, &w->dl);
  if (r < 0) {
    free(w);
    fn(s, req, r, NULL, 0);
    return;
  }
  http_request_on_close(req, containers_client_gone, w);
}

static int new_http(struct tappd_server *s, struct http_server **ret) {
  const struct tappd_config *c = s->t->cfg;
  struct http_server_config hc = {
      .max_body = (size_t)c->max_body,
      .max_header = (size_t)c->max_header,
      .idle_timeout_s = c->keep_alive ? c->keep_alive : 1,
      .request_timeout_s = c->request_timeout,
      .max_conns = c->max_conns,
      .max_conns_per_source = c->max_conns_per_source,
      .handshake_timeout_s = c->handshake_timeout,
  };
  return http_server_new(s->base, &hc, ret);
}

/* Binds a listener of l on hs (unix path or TCP). */
static int listen_one(struct http_server *hs, const char *name, const struct tappd_listen *l,
                      FILE *out, uint16_t *ret_port, char *err, size_t errlen) {
  const char *path = tappd_listen_unix_path(l);
  int r;
  if (path) {
    mode_t mode;
    if (tappd_listen_mode(l, &mode) < 0)
      return str_err(err, errlen, -EINVAL, "[%s] bad mode", name);
    (void)mkdir_parents(path, 0755);
    r = http_server_listen_unix(hs, path, mode);
    if (r < 0)
      return str_err(err, errlen, r, "[%s] listening on %s: %s", name, path, strerror(-r));
    if (out)
      fprintf(out, "listening %s unix:%s\n", name, path);
    return 0;
  }
  uint16_t port = 0;
  r = http_server_listen_tcp(hs, l->address, l->port, &port);
  if (r < 0)
    return str_err(err, errlen, r, "[%s] listening on %s:%u: %s", name, l->address, l->port,
                strerror(-r));
  if (ret_port)
    *ret_port = port;
  if (out)
    fprintf(out, "listening %s http://%s%s%s:%u\n", name, strchr(l->address, ':') ? "[" : "",
            l->address, strchr(l->address, ':') ? "]" : "", port);
  return 0;
}

int tappd_server_new(struct tappd *t, struct event_base *base, FILE *out,
                     struct tappd_server **ret, char *err, size_t errlen) {
  struct tappd_server *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->t = t;
  s->base = base;
  const struct tappd_config *c = t->cfg;
  char why[256] = "";
  int r = tappd_api_init(t, &s->api, why, sizeof(why));
  if (r < 0) {
    r = str_err(err, errlen, r, "setting up the RPC services: %s", why[0] ? why : strerror(-r));
    goto fail;
  }

  if (!str_isempty(c->internal.address)) {
    if ((r = new_http(s, &s->internal)) < 0 ||
        (r = http_server_route(s->internal, "/prpc/", prpc_http_handler, &s->api.tappd)) < 0)
      goto fail;
    if ((r = listen_one(s->internal, "tappd", &c->internal, out, NULL, err, errlen)) < 0)
      goto fail;
  }
  if (!str_isempty(c->dstack.address)) {
    if ((r = new_http(s, &s->dstack)) < 0 ||
        (r = http_server_route(s->dstack, "/", prpc_http_handler, &s->api.guest)) < 0)
      goto fail;
    if ((r = listen_one(s->dstack, "dstack", &c->dstack, out, NULL, err, errlen)) < 0)
      goto fail;
  }
  bool https = !str_isempty(c->tls_key) && !str_isempty(c->tls_certs) &&
               !str_isempty(c->external_https.address);
  if (!str_isempty(c->external.address) || https) {
    if ((r = new_http(s, &s->external)) < 0 ||
        (r = http_server_route(s->external, "/", dashboard_http_handler, s)) < 0 ||
        (r = http_server_route(s->external, "/logs/", logs_http_handler, s)) < 0 ||
        (r = http_server_route(s->external, "/metrics", metrics_http_handler, s)) < 0 ||
        (r = http_server_route(s->external, "/prpc/Worker.ListContainers",
                               worker_list_containers_http_handler, s)) < 0 ||
        (r = http_server_route(s->external, "/prpc/", prpc_http_handler, &s->api.worker)) < 0)
      goto fail;
  }
  if (!str_isempty(c->external.address) &&
      (r = listen_one(s->external, "external", &c->external, out, &s->external_port, err,
                      errlen)) < 0)
    goto fail;
  if (https) {
    struct http_tls_files f = {.cert_file = c->tls_certs, .key_file = c->tls_key};
    r = http_tls_ctx_new(&f, &s->tls);
    if (r < 0) {
      r = str_err(err, errlen, r, "[external-https.tls] loading %s / %s: %s", c->tls_certs,
               c->tls_key, strerror(-r));
      goto fail;
    }
    r = http_server_listen_tls(s->external, c->external_https.address, c->external_https.port,
                               s->tls, &s->https_port);
    if (r < 0) {
      r = str_err(err, errlen, r, "[external-https] listening on %s:%u: %s",
               c->external_https.address, c->external_https.port, strerror(-r));
      goto fail;
    }
    if (out)
      fprintf(out, "listening external-https https://%s:%u\n", c->external_https.address,
              s->https_port);
  }
  if (out)
    fflush(out);
  *ret = s;
  return 0;
fail:
  if (err && errlen && !err[0])
    snprintf(err, errlen, "setting up the listeners: %s", strerror(-r));
  tappd_server_free(s);
  return r;
}

void tappd_server_free(struct tappd_server *s) {
  if (!s)
    return;
  http_server_free(s->internal);
  http_server_free(s->dstack);
  http_server_free(s->external);
  if (s->tls)
    SSL_CTX_free(s->tls);
  free(s);
}
