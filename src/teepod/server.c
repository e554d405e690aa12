/* teepod's HTTP listeners. */
#include "teepod_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/base64.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "net/http_server.h"
#include "teepod.h"
#include "net/offload.h"
#include "teepod_console.h"
#include "teepod_envkey.h"
#include "teepod_logs.h"

static bool token_ok(const struct teepod *tp, const char *t, size_t len) {
  bool ok = false;
  for (char **k = tp->tokens; k && *k; k++) {
    size_t kl = strlen(*k);
    /* compare every token, in constant time for a given length */
    if (kl == len && CRYPTO_memcmp(*k, t, len) == 0)
      ok = true;
  }
  return ok;
}

bool teepod_server_authorized(const struct teepod *tp, struct http_request *req) {
  if (!tp->cfg->auth_enabled)
    return true;
  const char *h = http_request_header(req, "X-Admin-Token");
  if (h && token_ok(tp, h, strlen(h)))
    return true;
  const char *a = http_request_header(req, "Authorization");
  if (!a)
    return false;
  const char *v;
  if ((v = str_after_prefix(a, "Bearer ")))
    return token_ok(tp, v, strlen(v));
  if ((v = str_after_prefix(a, "Basic "))) {
    _cleanup_buf_ struct buf b;
    buf_init_secret(&b, 4096);
    if (base64_decode_buf(v, strlen(v), &b) < 0)
      return false;
    const uint8_t *colon = memchr(b.data, ':', b.len);
    if (!colon)
      return false;
    size_t off = (size_t)(colon - b.data) + 1;
    return token_ok(tp, (const char *)b.data + off, b.len - off);
  }
  return false;
}

/* The Host a request names, without its port: an IP literal or localhost, so a page whose DNS
 * name was pointed at this listener (DNS rebinding) is refused. */
static bool host_ok(const char *host) {
  if (!host)
    return false;
  char h[300];
  size_t n = strlen(host);
  if (n == 0 || n >= sizeof(h))
    return false;
  memcpy(h, host, n + 1);
  if (h[0] == '[') { /* [v6]:port */
    char *e = strchr(h, ']');
    if (!e || (e[1] && e[1] != ':'))
      return false;
    *e = 0;
    struct in6_addr a6;
    return inet_pton(AF_INET6, h + 1, &a6) == 1;
  }
  char *colon = strchr(h, ':');
  if (colon)
    *colon = 0;
  struct in_addr a4;
  return inet_pton(AF_INET, h, &a4) == 1 || str_eq(h, "localhost");
}

/* What a browser on another site could make us do: only same-origin pages (the console) and
 * non-browser clients pass. A cross-site form or fetch carries an Origin that is not this
 * listener's; a DNS-rebound page carries a Host that is not an address. Unix-socket clients
 * are local and skip the Host check. */
bool teepod_server_same_origin(struct http_request *req) {
  bool unix_peer = str_eq(http_request_remote(req), "unix");
  const char *host = http_request_header(req, "Host");
  if (!unix_peer && !host_ok(host))
    return false;
  const char *origin = http_request_header(req, "Origin");
  if (!origin)
    return true;
  const char *rest = str_after_prefix(origin, "http://");
  return rest && host && str_eq(rest, host);
}

/* State-changing requests must be POSTs with a body type a cross-site form cannot send. */
static bool method_ok(struct http_request *req) {
  const char *m = http_request_method(req);
  if (str_eq(m, "POST")) {
    const char *ct = http_request_header(req, "Content-Type");
    if (!ct)
      return false;
    return str_startswith(ct, "application/json") || str_startswith(ct, "application/protobuf") ||
           str_startswith(ct, "application/x-protobuf") ||
           str_startswith(ct, "application/octet-stream");
  }
  if (!str_eq(m, "GET") && !str_eq(m, "HEAD"))
    return true; /* the dispatcher answers 405 */
  /* GET only for methods that change nothing */
  const char *p = http_request_path(req);
  static const char *const ro[] = {"Status", "GetInfo", "ListImages", "Version", "GetMeta",
                                   "ListGpus", "GetComposeHash", "ListVms"};
  const char *name = strrchr(p, '/');
  name = name ? name + 1 : p;
  const char *dot = strrchr(name, '.');
  name = dot ? dot + 1 : name;
  for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
    if (str_eq(name, ro[i]))
      return true;
  return false;
}

static bool gate(struct teepod_server *s, struct http_request *req) {
  if (!teepod_server_same_origin(req)) {
    http_reply_error(req, 403, "cross-site request refused (Host must be an address, Origin "
                               "this server)");
    return false;
  }
  if (teepod_server_authorized(s->tp, req))
    return true;
  http_reply_header(req, "WWW-Authenticate", "Bearer realm=\"teepod\"");
  http_reply_error(req, 401, "an admin token is required (X-Admin-Token)");
  return false;
}

static bool rpc_gate(struct teepod_server *s, struct http_request *req) {
  if (!gate(s, req))
    return false;
  if (!method_ok(req)) {
    http_reply_error(req, 415, "POST with Content-Type application/json or application/protobuf "
                               "(GET only for methods that change nothing)");
    return false;
  }
  return true;
}

static void h_prpc(struct http_request *req, void *ud) {
  struct teepod_server *s = ud;
  if (rpc_gate(s, req))
    prpc_http_handler(req, &s->api.router);
}

static void h_envkey(struct http_request *req, void *ud) {
  struct teepod_server *s = ud;
  if (!rpc_gate(s, req))
    return;
  if (teepod_envkey_path(http_request_path(req)))
    teepod_envkey_handle(s->tp, s->offload, req);
  else
    prpc_http_handler(req, &s->api.router);
}

static void h_logs(struct http_request *req, void *ud) {
  struct teepod_server *s = ud;
  if (!gate(s, req))
    return;
  if (!str_eq(http_request_path(req), "/logs")) {
    http_reply_error(req, 404, "not found");
    return;
  }
  teepod_logs_handle(s->tp, req);
}

static void h_root(struct http_request *req, void *ud) {
  struct teepod_server *s = ud;
  const char *path = http_request_path(req);
  const char *m = http_request_method(req);
  if (!str_eq(m, "GET") && !str_eq(m, "HEAD")) {
    http_reply_error(req, 405, "method not allowed");
    return;
  }
  if (str_eq(path, "/health")) {
    size_t running = 0;
    for (size_t i = 0; i < s->tp->n_vms; i++)
      running += teepod_vm_running(s->tp->vms[i]);
    _cleanup_json_ json_t *j = json_pack("{s:s,s:I,s:I}", "status", "ok", "vms",
                                         (json_int_t)s->tp->n_vms, "running", (json_int_t)running);
    if (!j)
      http_reply_error(req, 500, "out of memory");
    else
      http_reply_json(req, 200, j);
    return;
  }
  /* the console page holds no data and no secret, only code: it is served without the token
   * so that a browser can load it and then ask for the token, which it sends with every API
   * call (a browser cannot add X-Admin-Token to a page load) */
  if (str_eq(path, "/") || str_eq(path, "/index.html")) {
    http_reply_header(req, "Cache-Control", "no-store");
    http_reply_header(req, "Content-Security-Policy",
                      "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                      "style-src 'self' 'unsafe-inline'; img-src 'self' data:");
    http_reply_header(req, "X-Frame-Options", "DENY");
    http_reply(req, 200, "text/html; charset=utf-8", teepod_console_html, teepod_console_html_len);
    return;
  }
  if (!gate(s, req))
    return;
  if (str_eq(path, "/metrics")) {
    _cleanup_buf_ struct buf b = BUF_INIT(1024 * 1024);
    if (teepod_metrics_render(s->tp, &b) < 0)
      http_reply_error(req, 500, "cannot render the metrics");
    else
      http_reply(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    return;
  }
  http_reply_error(req, 404, "not found");
}

int teepod_metrics_render(const struct teepod *tp, struct buf *out) {
  size_t running = 0;
  uint64_t vcpu = 0, mem = 0;
  for (size_t i = 0; i < tp->n_vms; i++)
    if (teepod_vm_running(tp->vms[i])) {
      running++;
      vcpu += tp->vms[i]->m.vcpu;
      mem += tp->vms[i]->m.memory;
    }
  const struct teepod_metrics *m = &tp->metrics;
  return buf_printf(out,
                    "# HELP teepod_vms VMs known to teepod.\n# TYPE teepod_vms gauge\n"
                    "teepod_vms %zu\n"
                    "# HELP teepod_vms_running VMs whose QEMU runs.\n# TYPE teepod_vms_running gauge\n"
                    "teepod_vms_running %zu\n"
                    "# HELP teepod_vcpus_running vCPUs of running VMs.\n# TYPE teepod_vcpus_running gauge\n"
                    "teepod_vcpus_running %llu\n"
                    "# HELP teepod_memory_mb_running Memory of running VMs (MB).\n"
                    "# TYPE teepod_memory_mb_running gauge\nteepod_memory_mb_running %llu\n"
                    "# HELP teepod_vm_starts_total QEMU starts.\n# TYPE teepod_vm_starts_total counter\n"
                    "teepod_vm_starts_total %llu\n"
                    "# HELP teepod_vm_start_failures_total Failed starts.\n"
                    "# TYPE teepod_vm_start_failures_total counter\nteepod_vm_start_failures_total %llu\n"
                    "# HELP teepod_vm_exits_total QEMU exits.\n# TYPE teepod_vm_exits_total counter\n"
                    "teepod_vm_exits_total %llu\n"
                    "# HELP teepod_vm_restarts_total Automatic restarts.\n"
                    "# TYPE teepod_vm_restarts_total counter\nteepod_vm_restarts_total %llu\n"
                    "# HELP teepod_cids_used vsock CIDs in use.\n# TYPE teepod_cids_used gauge\n"
                    "teepod_cids_used %zu\n",
                    tp->n_vms, running, (unsigned long long)vcpu, (unsigned long long)mem,
                    (unsigned long long)m->vm_starts, (unsigned long long)m->vm_start_failures,
                    (unsigned long long)m->vm_exits, (unsigned long long)m->vm_restarts,
                    teepod_cidpool_n_used(&tp->cids));
}

int teepod_server_new(struct teepod *tp, struct event_base *base, FILE *out,
                      struct teepod_server **ret, char *err, size_t errlen) {
  const struct teepod_config *c = tp->cfg;
  struct teepod_server *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->tp = tp;
  char why[256] = "";
  int r = teepod_api_init(tp, &s->api, why, sizeof(why));
  if (r < 0) {
    r = str_err(err, errlen, r, "setting up the RPC services: %s", why);
    goto fail;
  }
  struct http_server_config hc = {
      .max_body = 4 * 1024 * 1024,
      .request_timeout_s = c->request_timeout,
      .max_conns = c->max_conns,
      /* CreateVm runs qemu-img and mkfs; ShutdownVm talks QMP: seconds at worst */
      .handler_timeout_s = 120,
  };
  if ((r = http_server_new(base, &hc, &s->http)) < 0 ||
      (r = http_server_route(s->http, "/", h_root, s)) < 0 ||
      (r = http_server_route(s->http, "/prpc/", h_prpc, s)) < 0 ||
      (r = http_server_route(s->http, "/prpc/GetAppEnvEncryptPubKey", h_envkey, s)) < 0 ||
      (r = http_server_route(s->http, "/prpc/Vmm.GetAppEnvEncryptPubKey", h_envkey, s)) < 0 ||
      (r = http_server_route(s->http, "/prpc/Teepod.GetAppEnvEncryptPubKey", h_envkey, s)) < 0 ||
      (r = http_server_route(s->http, "/logs", h_logs, s)) < 0 ||
      (r = offload_new(base, 2, 32, &s->offload)) < 0) {
    r = str_err(err, errlen, r, "setting up the HTTP server: %s", strerror(-r));
    goto fail;
  }
  if (!str_isempty(c->address)) {
    if ((r = http_server_listen_tcp(s->http, c->address, c->port, &s->port)) < 0) {
      r = str_err(err, errlen, r, "listening on %s:%u: %s", c->address, c->port, strerror(-r));
      goto fail;
    }
    if (out)
      fprintf(out, "listening http://%s%s%s:%u\n", strchr(c->address, ':') ? "[" : "",
              c->address, strchr(c->address, ':') ? "]" : "", s->port);
  }
  if (!str_isempty(c->unix_socket)) {
    (void)mkdir_parents(c->unix_socket, 0700);
    /* 0600: the socket is the admin interface */
    if ((r = http_server_listen_unix(s->http, c->unix_socket, 0600)) < 0) {
      r = str_err(err, errlen, r, "listening on %s: %s", c->unix_socket, strerror(-r));
      goto fail;
    }
    if (out)
      fprintf(out, "listening unix:%s\n", c->unix_socket);
  }
  if (out)
    fflush(out);
  *ret = s;
  return 0;
fail:
  teepod_server_free(s);
  return r;
}

void teepod_server_free(struct teepod_server *s) {
  if (!s)
    return;
  http_server_free(s->http);
  offload_free(s->offload);
  free(s);
}
