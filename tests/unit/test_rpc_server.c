/* lib/daemon/rpc_server.c: the HTTPS server kms and tproxy share, with real TLS on loopback and
 * libcurl as the client: its pages, /health's three answers, methods and paths, the listening
 * line, and the caps it refuses. */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/json.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "daemon/rpc_server.h"
#include "net/http_tls.h"
#include "testutil.h"

static int g_health = 1; /* what the health callback answers */

static int page(void *ud, struct buf *out, const char **ret_ctype) {
  *ret_ctype = "text/html; charset=utf-8";
  return buf_printf(out, "<p>%s</p>", (const char *)ud);
}

static int health(void *ud, json_t *j) {
  (void)ud;
  if (g_health < 0)
    return g_health;
  return json_set_str(j, "detail", "fine") < 0 ? -ENOMEM : g_health;
}

static int metrics(void *ud, struct buf *out) {
  (void)ud;
  return buf_append_str(out, "# TYPE x counter\nx 1\n");
}

struct fixture {
  struct event_base *base;
  struct rpc_server *s;
  SSL_CTX *tls;
  pthread_t th;
  int stop[2];
  struct event *stop_ev;
  uint16_t port;
  char listening[128];
};

static void stop_cb(evutil_socket_t fd, short what, void *ud) {
  (void)fd, (void)what;
  event_base_loopbreak(ud);
}

static void *loop_thread(void *ud) {
  event_base_dispatch(ud);
  return NULL;
}

static SSL_CTX *tls_new(void) {
  EVP_PKEY *k = NULL;
  X509 *c = NULL;
  assert_int_equal(key_p256_generate(&k), 0);
  const char *sans[] = {"localhost"};
  struct x509_params p = {.subject_cn = "localhost", .dns_sans = sans, .n_dns_sans = 1,
                          .key_usage = X509_KU_DIGITAL_SIGNATURE,
                          .ext_key_usage = X509_EKU_SERVER_AUTH};
  assert_int_equal(x509_cert_build(&p, k, NULL, NULL, &c), 0);
  SSL_CTX *ctx = NULL;
  struct http_tls_mem m = {.cert = c, .key = k};
  assert_int_equal(http_tls_ctx_new_mem(&m, &ctx), 0);
  X509_free(c);
  EVP_PKEY_free(k);
  return ctx;
}

static const struct prpc_router no_services = {.svcs = NULL, .n = 0};

static struct rpc_server_config config(struct fixture *f) {
  return (struct rpc_server_config){
      .address = "127.0.0.1",
      .tls = f->tls,
      .router = &no_services,
      .pages = {.index = page, .index_max = 4096, .health = health, .metrics = metrics,
                .metrics_max = 4096, .ud = "hello"},
  };
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  signal(SIGPIPE, SIG_IGN); /* what daemon_start does for a daemon */
  f->base = event_base_new();
  f->tls = tls_new();
  struct rpc_server_config c = config(f);
  FILE *out = tmpfile();
  char err[256] = "";
  assert_int_equal(rpc_server_new(f->base, &c, out, &f->s, err, sizeof(err)), 0);
  f->port = rpc_server_port(f->s);
  rewind(out);
  assert_non_null(fgets(f->listening, sizeof(f->listening), out));
  fclose(out);
  assert_int_equal(pipe(f->stop), 0);
  f->stop_ev = event_new(f->base, f->stop[0], EV_READ, stop_cb, f->base);
  event_add(f->stop_ev, NULL);
  assert_int_equal(pthread_create(&f->th, NULL, loop_thread, f->base), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  assert_int_equal(write(f->stop[1], "x", 1), 1);
  pthread_join(f->th, NULL);
  rpc_server_free(f->s);
  event_base_loop(f->base, EVLOOP_NONBLOCK);
  event_free(f->stop_ev);
  close(f->stop[0]);
  close(f->stop[1]);
  SSL_CTX_free(f->tls);
  event_base_free(f->base);
  free(f);
  return 0;
}

struct reply {
  long status;
  char body[8192];
  size_t len;
  char ctype[128];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct reply *r = ud;
  size_t k = size * n;
  if (r->len + k >= sizeof(r->body))
    return 0;
  memcpy(r->body + r->len, p, k);
  r->len += k;
  r->body[r->len] = 0;
  return k;
}

static void get(struct fixture *f, const char *method, const char *path, struct reply *r) {
  memset(r, 0, sizeof(*r));
  char url[256];
  snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", f->port, path);
  CURL *c = curl_easy_init();
  assert_non_null(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  char *ct = NULL;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
  if (ct)
    snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
  curl_easy_cleanup(c);
}

static void test_listening_line(void **state) {
  struct fixture *f = *state;
  char want[64];
  snprintf(want, sizeof(want), "listening https://127.0.0.1:%u\n", f->port);
  assert_string_equal(f->listening, want);
}

static void test_pages(void **state) {
  struct fixture *f = *state;
  struct reply r;
  get(f, "GET", "/", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "<p>hello</p>");
  assert_string_equal(r.ctype, "text/html; charset=utf-8");
  get(f, "POST", "/", &r);
  assert_int_equal(r.status, 405);
  get(f, "GET", "/nope", &r);
  assert_int_equal(r.status, 404);
  get(f, "GET", "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "x 1\n"));
  assert_non_null(strstr(r.ctype, "version=0.0.4"));
  get(f, "GET", "/metricsx", &r);
  assert_int_equal(r.status, 404);
  get(f, "POST", "/prpc/Nothing", &r);
  assert_int_equal(r.status, 404);
}

/* 1: 200 ok, 0: 503 error, negative: 500; /healthz too; other methods 405. */
static void test_health(void **state) {
  struct fixture *f = *state;
  struct reply r;
  g_health = 1;
  get(f, "GET", "/health", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"status\":\"ok\""));
  assert_non_null(strstr(r.body, "\"detail\":\"fine\""));
  get(f, "GET", "/healthz", &r);
  assert_int_equal(r.status, 200);
  g_health = 0;
  get(f, "GET", "/health", &r);
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(r.body, "\"status\":\"error\""));
  g_health = -ENOMEM;
  get(f, "GET", "/health", &r);
  assert_int_equal(r.status, 500);
  g_health = 1;
  get(f, "DELETE", "/health", &r);
  assert_int_equal(r.status, 405);
  get(f, "GET", "/health/x", &r);
  assert_int_equal(r.status, 404);
}

/* A page without a cap is refused at set-up, not served with a made-up one. */
static void test_caps_required(void **state) {
  (void)state;
  struct fixture f = {.base = event_base_new(), .tls = tls_new()};
  struct rpc_server_config c = config(&f);
  c.pages.index_max = 0;
  struct rpc_server *s = NULL;
  char err[256] = "";
  assert_int_equal(rpc_server_new(f.base, &c, NULL, &s, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "cap of 0"));
  c = config(&f);
  c.address = "not-an-address";
  assert_true(rpc_server_new(f.base, &c, NULL, &s, err, sizeof(err)) < 0);
  assert_non_null(strstr(err, "not-an-address"));
  SSL_CTX_free(f.tls);
  event_base_free(f.base);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_listening_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health, setup, teardown),
      cmocka_unit_test(test_caps_required),
  };
  int r = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return r;
}
