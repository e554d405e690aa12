/* HTTP server: real sockets (TCP on 127.0.0.1, unix sockets, TLS/mTLS), the server running on
 * its own event_base in a thread, raw clients in the test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/fileio.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "net/http_parse.h"
#include "net/http_server.h"
#include "net/http_tls.h"
#include "net/url.h"
#include "testutil.h"

/* ------------------------------------------------------------------ server fixture */

struct srv {
  struct event_base *base;
  struct http_server *s;
  pthread_t th;
  int stop[2];
  struct event *stop_ev;
  uint16_t port;
  bool running;
};

/* Shared with handlers (server thread). */
static atomic_int g_async_started;
static atomic_int g_async_closed;
static atomic_int g_stream_eagain;
static atomic_int g_stream_closed;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void h_text(struct http_request *r, void *ud) {
  const char *t = ud;
  assert_int_equal(http_reply(r, 200, "text/plain", t, strlen(t)), 0);
}

static void h_echo(struct http_request *r, void *ud) {
  (void)ud;
  json_t *j = json_object();
  json_object_set_new(j, "method", json_string(http_request_method(r)));
  json_object_set_new(j, "path", json_string(http_request_path(r)));
  const char *q = http_request_query(r);
  json_object_set_new(j, "query", q ? json_string(q) : json_null());
  char *a = NULL;
  if (http_request_query_get(r, "a", &a) == 0) {
    json_object_set_new(j, "a", json_string(a));
    free(a);
  }
  json_object_set_new(j, "json", json_boolean(http_request_query_has(r, "json")));
  const char *x = http_request_header(r, "x-test");
  json_object_set_new(j, "x", x ? json_string(x) : json_null());
  struct slice b = http_request_body(r);
  assert_int_equal(b.ptr[b.len], 0);
  json_object_set_new(j, "body", json_stringn((const char *)b.ptr, b.len));
  json_object_set_new(j, "len", json_integer((json_int_t)b.len));
  json_object_set_new(j, "tls", json_boolean(http_request_is_tls(r)));
  assert_int_equal(http_reply_header(r, "X-Reply", "yes"), 0);
  assert_int_equal(http_reply_header(r, "Bad Name", "x"), -EINVAL);
  assert_int_equal(http_reply_header(r, "X-Inject", "a\r\nb: c"), -EINVAL);
  assert_int_equal(http_reply_header(r, "Content-Length", "5"), -EINVAL);
  assert_int_equal(http_reply_json(r, 200, j), 0);
  json_decref(j);
}

static void h_err(struct http_request *r, void *ud) {
  (void)ud;
  assert_int_equal(http_reply_error(r, 418, "teapot %d \"q\"", 7), 0);
}

static void h_twice(struct http_request *r, void *ud) {
  (void)ud;
  assert_int_equal(http_stream_write(r, "x", 1), -EINVAL); /* not streaming: refused */
  assert_int_equal(http_reply(r, 204, NULL, NULL, 0), 0);
}

/* A bad argument to a reply call: the call takes the request all the same (500 sent). */
static void h_bad_status(struct http_request *r, void *ud) {
  (void)ud;
  assert_int_equal(http_reply(r, 99, NULL, NULL, 0), -EINVAL);
}

/* Peer-supplied bytes in an error message need not be UTF-8. */
static void h_bad_utf8(struct http_request *r, void *ud) {
  (void)ud;
  assert_int_equal(http_reply_error(r, 400, "no container %s", "we\xff" "b\xc3"), 0);
}

/* Reply calls under fault injection: /fail?n=<allocations to fail>&how=<call>. The result of
 * the call is kept for the test; whatever it was, the handler does nothing more with r except
 * ending a stream. */
static atomic_int g_fail_result;
static atomic_int g_fail_result2;

static int query_int(struct http_request *r, const char *name) {
  char *v = NULL;
  if (http_request_query_get(r, name, &v) < 0)
    return 0;
  int n = atoi(v);
  free(v);
  return n;
}

static void h_fail(struct http_request *r, void *ud) {
  struct http_server *s = ud;
  char *how = NULL;
  assert_int_equal(http_request_query_get(r, "how", &how), 0);
  unsigned n = (unsigned)query_int(r, "n");
  int k, k2 = 0;
  if (strcmp(how, "reply") == 0) {
    http_server_test_fail_allocs(s, n);
    k = http_reply(r, 200, "text/plain", "body", 4);
  } else if (strcmp(how, "json") == 0) {
    json_t *j = json_pack("{s:i}", "a", 1);
    http_server_test_fail_allocs(s, n);
    k = http_reply_json(r, 200, j);
    json_decref(j);
  } else if (strcmp(how, "error") == 0) {
    http_server_test_fail_allocs(s, n);
    k = http_reply_error(r, 409, "conflict %d", 1);
  } else if (strcmp(how, "start") == 0) {
    http_server_test_fail_allocs(s, n);
    k = http_stream_start(r, 200, "text/plain"); /* dead stream: writes do nothing */
    assert_int_equal(http_stream_write(r, "x", 1), -EPIPE);
    k2 = http_stream_end(r);
  } else { /* "write": the stream starts, then a chunk cannot be queued */
    assert_int_equal(http_stream_start(r, 200, "text/plain"), 0);
    assert_int_equal(http_stream_write(r, "first", 5), 0);
    http_server_test_fail_allocs(s, n);
    k = http_stream_write(r, "second", 6);
    assert_int_equal(http_stream_write(r, "third", 5), -EPIPE);
    k2 = http_stream_end(r);
  }
  http_server_test_fail_allocs(s, 0);
  free(how);
  atomic_store(&g_fail_result, k);
  atomic_store(&g_fail_result2, k2);
}

/* Holds the request without a close callback and answers late (after the handler deadline of
 * 1 s in test_handler_deadline): the late answer finds a dead request and frees it. */
static atomic_int g_late_result = 1;
static void late_reply(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct http_request *r = arg;
  assert_string_equal(http_request_path(r), "/hold"); /* accessors still work */
  assert_int_equal(http_reply_header(r, "X-Late", "1"), -EPIPE);
  atomic_store(&g_late_result, http_reply(r, 200, "text/plain", "late", 4));
}

static void h_hold(struct http_request *r, void *ud) {
  struct timeval tv = {.tv_sec = 1, .tv_usec = 600 * 1000};
  assert_int_equal(event_base_once(ud, -1, EV_TIMEOUT, late_reply, r, &tv), 0);
}

static void h_stream(struct http_request *r, void *ud) {
  (void)ud;
  assert_int_equal(http_stream_start(r, 200, "text/plain"), 0);
  assert_int_equal(http_reply(r, 200, NULL, NULL, 0), -EINVAL); /* already answering */
  for (int i = 0; i < 100; i++) {
    char line[32];
    int n = snprintf(line, sizeof(line), "chunk-%d\n", i);
    assert_int_equal(http_stream_write(r, line, (size_t)n), 0);
  }
  assert_int_equal(http_stream_write(r, "", 0), 0);
  assert_int_equal(http_stream_end(r), 0);
}

static void h_async_close(void *ud) {
  (void)ud;
  atomic_fetch_add(&g_async_closed, 1);
}

static void h_async(struct http_request *r, void *ud) {
  (void)ud;
  http_request_on_close(r, h_async_close, r);
  atomic_fetch_add(&g_async_started, 1);
}

/* Answers 300 ms later, from the event loop. */
static void slow_reply(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  assert_int_equal(http_reply(arg, 200, "text/plain", "slow", 4), 0);
}

static void h_slow(struct http_request *r, void *ud) {
  struct timeval tv = {.tv_sec = 0, .tv_usec = 300 * 1000};
  assert_int_equal(event_base_once(ud, -1, EV_TIMEOUT, slow_reply, r, &tv), 0);
}

/* Backpressure: writes BIG_TOTAL bytes, pausing on -EAGAIN until drained. */
#define BIG_TOTAL ((size_t)8 * 1024 * 1024)
struct big {
  struct http_request *r;
  size_t sent;
};
static struct big g_big;

static void big_pump(void *ud) {
  struct big *b = ud;
  static char block[16384];
  memset(block, 'z', sizeof(block));
  while (b->sent < BIG_TOTAL) {
    int k = http_stream_write(b->r, block, sizeof(block));
    if (k == -EAGAIN) {
      atomic_fetch_add(&g_stream_eagain, 1);
      return; /* drain callback continues */
    }
    assert_int_equal(k, 0);
    b->sent += sizeof(block);
  }
  assert_int_equal(http_stream_end(b->r), 0);
  b->r = NULL;
}

static void big_closed(void *ud) {
  struct big *b = ud;
  b->r = NULL;
  atomic_fetch_add(&g_stream_closed, 1);
}

static void h_big(struct http_request *r, void *ud) {
  (void)ud;
  g_big = (struct big){.r = r};
  assert_int_equal(http_stream_start(r, 200, "application/octet-stream"), 0);
  http_stream_on_drain(r, big_pump, &g_big);
  http_stream_on_close(r, big_closed, &g_big);
  big_pump(&g_big);
}

static void h_cert(struct http_request *r, void *ud) {
  (void)ud;
  X509 *x = http_request_peer_cert(r);
  if (!x) {
    assert_int_equal(http_reply(r, 200, "text/plain", "none", 4), 0);
    return;
  }
  _cleanup_buf_ struct buf cn = BUF_INIT(256);
  assert_int_equal(x509_cert_subject_cn(x, &cn), 0);
  assert_int_equal(http_reply(r, 200, "text/plain", cn.data, cn.len), 0);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  event_base_loopbreak(arg);
}

static void *srv_thread(void *arg) {
  struct srv *f = arg;
  event_base_loop(f->base, EVLOOP_NO_EXIT_ON_EMPTY);
  return NULL;
}

static void srv_init(struct srv *f, const struct http_server_config *cfg, bool default_route) {
  memset(f, 0, sizeof(*f));
  f->base = event_base_new();
  assert_non_null(f->base);
  assert_int_equal(http_server_new(f->base, cfg, &f->s), 0);
  if (default_route)
    assert_int_equal(http_server_route(f->s, "/", h_text, "root"), 0);
  assert_int_equal(http_server_route(f->s, "/api/", h_text, "api"), 0);
  assert_int_equal(http_server_route(f->s, "/api/v2/", h_text, "v2"), 0);
  assert_int_equal(http_server_route(f->s, "/echo", h_echo, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/err", h_err, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/twice", h_twice, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/stream", h_stream, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/async", h_async, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/big", h_big, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/slow", h_slow, f->base), 0);
  assert_int_equal(http_server_route(f->s, "/cert", h_cert, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/badstatus", h_bad_status, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/badutf8", h_bad_utf8, NULL), 0);
  assert_int_equal(http_server_route(f->s, "/fail", h_fail, f->s), 0);
  assert_int_equal(http_server_route(f->s, "/hold", h_hold, f->base), 0);
  assert_int_equal(http_server_route(f->s, "nope", h_cert, NULL), -EINVAL);
  assert_int_equal(pipe(f->stop), 0);
  f->stop_ev = event_new(f->base, f->stop[0], EV_READ, stop_cb, f->base);
  event_add(f->stop_ev, NULL);
  atomic_store(&g_async_started, 0);
  atomic_store(&g_async_closed, 0);
  atomic_store(&g_stream_eagain, 0);
  atomic_store(&g_stream_closed, 0);
  atomic_store(&g_fail_result, 1);
  atomic_store(&g_fail_result2, 1);
  atomic_store(&g_late_result, 1);
  signal(SIGPIPE, SIG_IGN); /* the library leaves that to the process */
}

static void srv_run(struct srv *f) {
  assert_int_equal(pthread_create(&f->th, NULL, srv_thread, f), 0);
  f->running = true;
}

static void srv_start(struct srv *f, const struct http_server_config *cfg, bool default_route) {
  srv_init(f, cfg, default_route);
  assert_int_equal(http_server_listen_tcp(f->s, "127.0.0.1", 0, &f->port), 0);
  assert_true(f->port > 0);
  srv_run(f);
}

static void srv_stop(struct srv *f) {
  if (f->running) {
    assert_int_equal(write(f->stop[1], "x", 1), 1);
    pthread_join(f->th, NULL);
  }
  http_server_free(f->s);
  event_base_loop(f->base, EVLOOP_NONBLOCK); /* libevent's deferred frees */
  event_free(f->stop_ev);
  close(f->stop[0]);
  close(f->stop[1]);
  event_base_free(f->base);
}

/* ------------------------------------------------------------------ raw client */

struct cl {
  int fd;
  SSL *ssl;
  char buf[1 << 16];
  size_t len;
};

static void set_timeout(int fd, int ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int tcp_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  set_timeout(fd, 5000);
  return fd;
}

static void cl_open(struct cl *c, uint16_t port) {
  memset(c, 0, sizeof(*c));
  c->fd = tcp_connect(port);
}

/* TCP connection to 127.0.0.1:port from the local address src (any of 127/8 is local). */
static int tcp_connect_from(uint16_t port, const char *src) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in me = {.sin_family = AF_INET};
  assert_int_equal(inet_pton(AF_INET, src, &me.sin_addr), 1);
  assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  set_timeout(fd, 5000);
  return fd;
}

static void cl_open_from(struct cl *c, uint16_t port, const char *src) {
  memset(c, 0, sizeof(*c));
  c->fd = tcp_connect_from(port, src);
}

/* True if fd sees EOF or a reset within ms; bytes that arrive before are dropped. Works on the
 * TCP level, also for TLS connections (handshake records are dropped too). */
static bool fd_closed_within(int fd, int ms) {
  long long end = now_ms() + ms;
  char tmp[4096];
  for (;;) {
    long long left = end - now_ms();
    if (left <= 0)
      return false;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int k = poll(&pfd, 1, (int)left);
    if (k == 0)
      return false;
    assert_true(k == 1);
    ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      return true;
  }
}

static void cl_close(struct cl *c) {
  if (c->ssl) {
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

static void cl_send(struct cl *c, const void *p, size_t n) {
  const char *s = p;
  while (n) {
    ssize_t w = c->ssl ? SSL_write(c->ssl, s, (int)n) : send(c->fd, s, n, MSG_NOSIGNAL);
    assert_true(w > 0);
    s += w;
    n -= (size_t)w;
  }
}

static void cl_sends(struct cl *c, const char *s) {
  cl_send(c, s, strlen(s));
}

/* Reads more into the buffer: >0 bytes, 0 EOF, -1 error or timeout. */
static ssize_t cl_fill(struct cl *c) {
  if (c->len == sizeof(c->buf))
    return -1;
  ssize_t n;
  if (c->ssl) {
    n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
    if (n <= 0) {
      int e = SSL_get_error(c->ssl, (int)n);
      ERR_clear_error();
      return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
  } else {
    n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
  }
  if (n > 0)
    c->len += (size_t)n;
  return n;
}

static void cl_consume(struct cl *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* True if the peer closed (EOF or reset) within ms. */
static bool cl_closed_within(struct cl *c, int ms) {
  set_timeout(c->fd, ms);
  ssize_t n;
  while ((n = cl_fill(c)) > 0)
    c->len = 0;
  set_timeout(c->fd, 5000);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

struct resp {
  int status;
  char head[8192];
  struct buf body;
  bool chunked;
  bool has_cl;
};

static const char *resp_header(const struct resp *r, const char *name) {
  static char val[1024];
  size_t nl = strlen(name);
  const char *p = strstr(r->head, "\r\n");
  while (p && p[2]) {
    p += 2;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ')
        v++;
      const char *e = strstr(v, "\r\n");
      size_t l = e ? (size_t)(e - v) : strlen(v);
      if (l >= sizeof(val))
        l = sizeof(val) - 1;
      memcpy(val, v, l);
      val[l] = 0;
      return val;
    }
    p = strstr(p, "\r\n");
  }
  return NULL;
}

/* Reads one response. head_only: for HEAD requests. Returns 0, or -1 when the connection
 * ended before a status line. Skips 100 Continue when skip_100. */
static int cl_read_resp_ex(struct cl *c, struct resp *r, bool head_only, bool skip_100) {
  buf_free(&r->body);
  memset(r, 0, sizeof(*r));
  buf_init(&r->body, (size_t)64 * 1024 * 1024);
  for (;;) {
    char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (e) {
      size_t hl = (size_t)(e - c->buf) + 4;
      assert_true(hl < sizeof(r->head));
      memcpy(r->head, c->buf, hl);
      r->head[hl] = 0;
      cl_consume(c, hl);
      assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
      if (r->status == 100 && skip_100)
        continue;
      break;
    }
    if (cl_fill(c) <= 0)
      return -1;
  }
  if (head_only || r->status == 100 || r->status == 204 || r->status == 304)
    return 0;
  const char *cl = resp_header(r, "Content-Length");
  const char *te = resp_header(r, "Transfer-Encoding");
  if (cl) {
    r->has_cl = true;
    size_t n = strtoul(cl, NULL, 10);
    while (c->len < n && c->len < sizeof(c->buf))
      if (cl_fill(c) <= 0)
        break;
    while (n) {
      size_t take = MIN(n, c->len);
      assert_true(take > 0);
      assert_int_equal(buf_append(&r->body, c->buf, take), 0);
      cl_consume(c, take);
      n -= take;
      if (n && cl_fill(c) <= 0)
        fail_msg("short body");
    }
  } else if (te && strcasecmp(te, "chunked") == 0) {
    r->chunked = true;
    for (;;) {
      char *e;
      while (!(e = memmem(c->buf, c->len, "\r\n", 2)))
        if (cl_fill(c) <= 0)
          fail_msg("short chunked body");
      size_t sz = strtoul(c->buf, NULL, 16);
      cl_consume(c, (size_t)(e - c->buf) + 2);
      assert_true(sz + 2 <= sizeof(c->buf));
      while (c->len < sz + 2)
        if (cl_fill(c) <= 0)
          fail_msg("short chunk");
      assert_memory_equal(c->buf + sz, "\r\n", 2);
      assert_int_equal(buf_append(&r->body, c->buf, sz), 0);
      cl_consume(c, sz + 2);
      if (sz == 0)
        break;
    }
  } else {
    /* Close-delimited. */
    while (cl_fill(c) > 0)
      ;
    assert_int_equal(buf_append(&r->body, c->buf, c->len), 0);
    c->len = 0;
  }
  buf_terminate(&r->body);
  return 0;
}

static int cl_read_resp(struct cl *c, struct resp *r) {
  return cl_read_resp_ex(c, r, false, true);
}

static void resp_free(struct resp *r) {
  buf_free(&r->body);
}

/* GET path on an open keep-alive connection; the status, or -1 when no response came. */
static int cl_get(struct cl *c, const char *path) {
  char req[256];
  snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  cl_sends(c, req);
  struct resp r = {0};
  int k = cl_read_resp(c, &r);
  int st = r.status;
  resp_free(&r);
  return k < 0 ? -1 : st;
}

/* One request on a fresh connection; returns the status. */
static int simple_request(uint16_t port, const char *req, struct resp *r) {
  struct cl c;
  cl_open(&c, port);
  cl_sends(&c, req);
  int k = cl_read_resp(&c, r);
  cl_close(&c);
  return k < 0 ? -1 : r->status;
}

/* ------------------------------------------------------------------ tests */

static void test_routing(void **state) {
  (void)state;
  struct srv f;
  srv_start(&f, NULL, true);
  struct resp r = {0};
  assert_int_equal(simple_request(f.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  assert_string_equal((char *)r.body.data, "root");
  assert_int_equal(simple_request(f.port, "GET /other/x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  assert_string_equal((char *)r.body.data, "root");
  assert_int_equal(simple_request(f.port, "GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  assert_string_equal((char *)r.body.data, "api");
  assert_int_equal(simple_request(f.port, "GET /api/v2/y HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  assert_string_equal((char *)r.body.data, "v2");
  /* Routing is on the decoded, normalised path. */
  assert_int_equal(
      simple_request(f.port, "GET //api/./v%32/z HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  assert_string_equal((char *)r.body.data, "v2");
  /* Absolute-form target. */
  assert_int_equal(
      simple_request(f.port, "GET http://h:1/api/q?z HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  assert_string_equal((char *)r.body.data, "api");

  assert_int_equal(
      simple_request(f.port,
                     "POST /echo/sub?a=x+y%21&json HTTP/1.1\r\nHost: x\r\nX-Test:  v1 \r\n"
                     "Content-Length: 5\r\n\r\nhello",
                     &r),
      200);
  assert_string_equal(resp_header(&r, "Content-Type"), "application/json");
  assert_string_equal(resp_header(&r, "X-Reply"), "yes");
  assert_non_null(resp_header(&r, "Date"));
  json_t *j = json_loads((char *)r.body.data, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
  assert_string_equal(json_string_value(json_object_get(j, "path")), "/echo/sub");
  assert_string_equal(json_string_value(json_object_get(j, "query")), "a=x+y%21&json");
  assert_string_equal(json_string_value(json_object_get(j, "a")), "x y!");
  assert_true(json_is_true(json_object_get(j, "json")));
  assert_string_equal(json_string_value(json_object_get(j, "x")), "v1");
  assert_string_equal(json_string_value(json_object_get(j, "body")), "hello");
  assert_true(json_is_false(json_object_get(j, "tls")));
  json_decref(j);

  assert_int_equal(simple_request(f.port, "GET /err HTTP/1.1\r\nHost: x\r\n\r\n", &r), 418);
  assert_string_equal((char *)r.body.data, "{\"error\":\"teapot 7 \\\"q\\\"\"}");
  assert_int_equal(simple_request(f.port, "GET /twice HTTP/1.1\r\nHost: x\r\n\r\n", &r), 204);
  assert_null(resp_header(&r, "Content-Length"));
  assert_int_equal(simple_request(f.port, "GET /badstatus HTTP/1.1\r\nHost: x\r\n\r\n", &r), 500);
  assert_string_equal((char *)r.body.data, "{\"error\":\"internal error\"}");
  assert_string_equal(resp_header(&r, "Connection"), "close");
  /* Not UTF-8: the bad bytes become U+FFFD (was: -ENOMEM, and no answer at all). */
  assert_int_equal(simple_request(f.port, "GET /badutf8 HTTP/1.1\r\nHost: x\r\n\r\n", &r), 400);
  assert_string_equal((char *)r.body.data,
                      "{\"error\":\"no container we\xef\xbf\xbd" "b\xef\xbf\xbd\"}");
  resp_free(&r);
  srv_stop(&f);

  /* Without a "/" route: 404 as JSON, connection kept. */
  srv_start(&f, NULL, false);
  struct cl c;
  cl_open(&c, f.port);
  cl_sends(&c, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 404);
  assert_string_equal((char *)r.body.data, "{\"error\":\"not found\"}");
  cl_sends(&c, "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  cl_close(&c);
  resp_free(&r);
  srv_stop(&f);
}

static void test_keepalive(void **state) {
  (void)state;
  struct srv f;
  srv_start(&f, NULL, true);
  struct resp r = {0};
  struct cl c;
  cl_open(&c, f.port);
  /* Two requests, one connection; Content-Length on each. */
  for (int i = 0; i < 2; i++) {
    cl_sends(&c, "GET /api/ HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(cl_read_resp(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(r.has_cl);
    assert_string_equal(resp_header(&r, "Content-Length"), "3");
    assert_null(resp_header(&r, "Connection"));
    assert_string_equal((char *)r.body.data, "api");
  }
  /* Pipelined: three requests in one write, answered in order; leading empty lines ignored. */
  cl_sends(&c, "\r\nGET /api/ HTTP/1.1\r\nHost: x\r\n\r\n"
               "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
               "abcGET /api/v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_string_equal((char *)r.body.data, "api");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_non_null(strstr((char *)r.body.data, "\"body\":\"abc\""));
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_string_equal((char *)r.body.data, "v2");
  /* Connection: close is honoured. */
  cl_sends(&c, "GET /api/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_string_equal(resp_header(&r, "Connection"), "close");
  assert_true(cl_closed_within(&c, 2000));
  cl_close(&c);

  /* HTTP/1.0: closes by default, keeps alive when asked. */
  cl_open(&c, f.port);
  cl_sends(&c, "GET /api/ HTTP/1.0\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(resp_header(&r, "Connection"), "close");
  assert_true(cl_closed_within(&c, 2000));
  cl_close(&c);
  cl_open(&c, f.port);
  for (int i = 0; i < 2; i++) {
    cl_sends(&c, "GET /api/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(cl_read_resp(&c, &r), 0);
    assert_string_equal(resp_header(&r, "Connection"), "keep-alive");
  }
  cl_close(&c);

  /* HEAD: Content-Length of the body that GET would send, no body. */
  cl_open(&c, f.port);
  cl_sends(&c, "HEAD /api/ HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp_ex(&c, &r, true, true), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(resp_header(&r, "Content-Length"), "3");
  cl_sends(&c, "GET /api/v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_string_equal((char *)r.body.data, "v2"); /* no stray body bytes from HEAD */
  cl_close(&c);
  resp_free(&r);
  srv_stop(&f);
}

/* While a request is being answered, the server reads pipelined requests only up to its
 * high-water mark (max_header + 4 KiB), then leaves the rest in the socket; it reads again
 * once the answer is out and answers everything, in order. */
#define FLOOD_N 6000
static void *flood_sender(void *arg) {
  struct cl *c = arg;
  static const char one[] = "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n";
  char *all = malloc(FLOOD_N * (sizeof(one) - 1));
  for (size_t i = 0; i < FLOOD_N; i++)
    memcpy(all + i * (sizeof(one) - 1), one, sizeof(one) - 1);
  cl_send(c, all, FLOOD_N * (sizeof(one) - 1));
  free(all);
  return NULL;
}

static void test_pipeline_flood(void **state) {
  (void)state;
  struct srv f;
  struct http_server_config cfg = {.max_header = 8192}; /* high-water mark 12 KiB */
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  struct cl c;
  cl_open(&c, f.port);
  cl_sends(&c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, flood_sender, &c), 0); /* ~140 KiB */
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal((char *)r.body.data, "slow");
  for (int i = 0; i < FLOOD_N; i++) {
    assert_int_equal(cl_read_resp(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body.data, "api");
  }
  pthread_join(th, NULL);
  /* and the connection still works */
  cl_sends(&c, "GET /api/v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_string_equal((char *)r.body.data, "v2");
  cl_close(&c);
  resp_free(&r);
  srv_stop(&f);
}

static void test_request_bodies(void **state) {
  (void)state;
  struct http_server_config cfg = {.max_body = 1024};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  struct cl c;
  cl_open(&c, f.port);
  /* Chunked request body, with an extension and a trailer, then keep-alive. */
  cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer-X: 1\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr((char *)r.body.data, "\"body\":\"hello, world\""));
  /* Chunked body split across writes, even inside a CRLF; LF-only lines in the head. */
  cl_sends(&c, "POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: Chunked\n\n3\r\nab");
  usleep(50000);
  cl_sends(&c, "c\r");
  usleep(50000);
  cl_sends(&c, "\n0\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr((char *)r.body.data, "\"body\":\"abc\""));
  /* Exactly max_body is fine. */
  char *big = malloc(4096);
  memset(big, 'b', 4096);
  char hdr[128];
  snprintf(hdr, sizeof(hdr), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n");
  cl_sends(&c, hdr);
  cl_send(&c, big, 1024);
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr((char *)r.body.data, "\"len\":1024"));
  cl_close(&c);

  /* Content-Length over the cap: 413 and close; the server answers others. */
  cl_open(&c, f.port);
  cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  cl_send(&c, big, 2000);
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 413);
  assert_string_equal(resp_header(&r, "Connection"), "close");
  assert_string_equal((char *)r.body.data, "{\"error\":\"request body too large\"}");
  assert_true(cl_closed_within(&c, 3000));
  cl_close(&c);
  assert_int_equal(simple_request(f.port, "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);

  /* Chunked over the cap. */
  cl_open(&c, f.port);
  cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n");
  cl_send(&c, big, 1024);
  cl_sends(&c, "\r\n1\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 413);
  cl_close(&c);

  /* Expect: 100-continue: interim response, then the body. */
  cl_open(&c, f.port);
  cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
               "Expect: 100-continue\r\n\r\n");
  assert_int_equal(cl_read_resp_ex(&c, &r, false, false), 0);
  assert_int_equal(r.status, 100);
  cl_sends(&c, "data");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr((char *)r.body.data, "\"body\":\"data\""));
  /* Over the cap with Expect: 413 right away, no 100. */
  cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
               "Expect: 100-continue\r\n\r\n");
  assert_int_equal(cl_read_resp_ex(&c, &r, false, false), 0);
  assert_int_equal(r.status, 413);
  cl_close(&c);
  free(big);
  resp_free(&r);
  srv_stop(&f);
}

static void test_malformed(void **state) {
  (void)state;
  struct http_server_config cfg = {.max_header = 2048};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  static const struct {
    const char *req;
    int status;
  } cases[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"\x01\x02\x03 / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET / HTTP/1.1 extra\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / HTTP/1.x\r\n\r\n", 400},
      {"GET / FTP/1.1\r\n\r\n", 400},
      {"GET nopath HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /a/../b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /a%2f..%2fb HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /a%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nName : x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417},
      /* RFC 9112 §3.2: HTTP/1.1 needs a Host */
      {"GET / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", 400},
      /* chunked framing lines end in CRLF, never a bare LF */
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", 400},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct cl c;
    cl_open(&c, f.port);
    cl_sends(&c, cases[i].req);
    if (cl_read_resp(&c, &r) < 0)
      fail_msg("case %zu: no response", i);
    if (r.status != cases[i].status)
      fail_msg("case %zu: status %d, want %d", i, r.status, cases[i].status);
    assert_string_equal(resp_header(&r, "Content-Type"), "application/json");
    assert_true(r.has_cl);
    assert_true(cl_closed_within(&c, 3000));
    cl_close(&c);
  }
  /* HTTP/1.0 needs no Host. */
  assert_int_equal(simple_request(f.port, "GET / HTTP/1.0\r\n\r\n", &r), 200);
  /* Same-valued repeated Content-Length is fine. */
  assert_int_equal(simple_request(f.port,
                                  "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                  "Content-Length: 2, 2\r\n\r\nab",
                                  &r),
                   200);

  /* Header over the cap: 431 (with and without the end of the head in sight). */
  char big[4096];
  memset(big, 'a', sizeof(big));
  memcpy(big, "GET / HTTP/1.1\r\nHost: x\r\nX: ", 28);
  memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
  struct cl c;
  cl_open(&c, f.port);
  cl_send(&c, big, sizeof(big));
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 431);
  cl_close(&c);
  cl_open(&c, f.port);
  cl_send(&c, big, sizeof(big) - 4);
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 431);
  cl_close(&c);
  /* Too many header fields. */
  _cleanup_buf_ struct buf many = BUF_INIT(8192);
  buf_printf(&many, "GET / HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i <= HTTP_SERVER_MAX_HEADERS; i++)
    buf_printf(&many, "H%d: v\r\n", i);
  buf_printf(&many, "\r\n");
  struct http_server_config cfg2 = {.max_header = 8192};
  srv_stop(&f);
  srv_start(&f, &cfg2, true);
  cl_open(&c, f.port);
  cl_send(&c, many.data, many.len);
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 431);
  cl_close(&c);
  /* Path over URL_PATH_MAX: 414. */
  _cleanup_buf_ struct buf lp = BUF_INIT(16384);
  buf_printf(&lp, "GET /");
  for (int i = 0; i < URL_PATH_MAX; i++)
    buf_append_u8(&lp, 'p');
  buf_printf(&lp, " HTTP/1.1\r\nHost: x\r\n\r\n");
  cl_open(&c, f.port);
  cl_send(&c, lp.data, lp.len);
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 414);
  cl_close(&c);
  /* A client that sends garbage and closes does not hurt anyone. */
  cl_open(&c, f.port);
  cl_sends(&c, "GET / HT");
  cl_close(&c);
  assert_int_equal(simple_request(f.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  resp_free(&r);
  srv_stop(&f);
}

static void test_timeouts(void **state) {
  (void)state;
  struct http_server_config cfg = {.request_timeout_s = 2, .idle_timeout_s = 1};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  /* Idle connection closed after idle_timeout_s. */
  struct cl idle;
  cl_open(&idle, f.port);
  long long t0 = now_ms();
  assert_true(cl_closed_within(&idle, 4000));
  long long dt = now_ms() - t0;
  assert_true(dt >= 800 && dt < 3000);
  cl_close(&idle);

  /* Slow loris: one header byte every 100 ms; cut off with 408 within the request timeout
   * while another client is served normally. */
  struct cl slow;
  cl_open(&slow, f.port);
  t0 = now_ms();
  cl_sends(&slow, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  bool cut = false;
  bool served_other = false;
  for (int i = 0; i < 60; i++) {
    usleep(100000);
    if (send(slow.fd, "a", 1, MSG_NOSIGNAL) != 1) {
      cut = true;
      break;
    }
    struct pollfd pfd = {.fd = slow.fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) == 1) {
      cut = true;
      break;
    }
    if (i == 5) {
      assert_int_equal(simple_request(f.port, "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
      served_other = true;
    }
  }
  assert_true(cut);
  assert_true(served_other);
  dt = now_ms() - t0;
  assert_true(dt >= 1800 && dt < 3500);
  assert_int_equal(cl_read_resp(&slow, &r), 0);
  assert_int_equal(r.status, 408);
  cl_close(&slow);

  /* Slow body: the same deadline covers the body. */
  cl_open(&slow, f.port);
  t0 = now_ms();
  cl_sends(&slow, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab");
  assert_int_equal(cl_read_resp(&slow, &r), 0);
  assert_int_equal(r.status, 408);
  dt = now_ms() - t0;
  assert_true(dt >= 1800 && dt < 3500);
  cl_close(&slow);
  resp_free(&r);
  srv_stop(&f);
}

static void test_conn_cap(void **state) {
  (void)state;
  struct http_server_config cfg = {.max_conns = 3, .max_conns_per_source = 10};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  struct cl c[3], extra;
  for (int i = 0; i < 3; i++)
    cl_open(&c[i], f.port);
  /* Make sure the three were accepted, then give each a request in progress (head not
   * complete yet): none is idle, so none can be closed to make room. */
  for (int i = 0; i < 3; i++) {
    cl_sends(&c[i], "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read_resp(&c[i], &r), 0);
    assert_int_equal(r.status, 200);
    cl_sends(&c[i], "GET /api/v2/ HTTP/1.1\r\nHost: x\r\n");
  }
  cl_open(&extra, f.port);
  assert_int_equal(cl_read_resp(&extra, &r), 0);
  assert_int_equal(r.status, 503);
  assert_string_equal((char *)r.body.data, "{\"error\":\"too many connections\"}");
  cl_close(&extra);
  /* Existing connections still work; closing one makes room. */
  cl_sends(&c[0], "\r\n");
  assert_int_equal(cl_read_resp(&c[0], &r), 0);
  assert_int_equal(r.status, 200);
  cl_sends(&c[0], "GET /api/ HTTP/1.1\r\nHost: x\r\n"); /* busy again */
  cl_close(&c[1]);
  int status = 0;
  for (int tries = 0; tries < 50 && status != 200; tries++) {
    usleep(20000);
    status = simple_request(f.port, "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  }
  assert_int_equal(status, 200);
  /* Room was made by the close, not by closing a busy connection. */
  cl_sends(&c[0], "\r\n");
  assert_int_equal(cl_read_resp(&c[0], &r), 0);
  assert_int_equal(r.status, 200);
  cl_sends(&c[2], "\r\n");
  assert_int_equal(cl_read_resp(&c[2], &r), 0);
  assert_int_equal(r.status, 200);
  cl_close(&c[0]);
  cl_close(&c[2]);
  resp_free(&r);
  srv_stop(&f);
}

/* At max_conns, a new connection closes the one idle the longest (after a reply, or waiting for
 * its first byte) and is served. */
static void test_conn_evict_idle(void **state) {
  (void)state;
  struct http_server_config cfg = {.max_conns = 3, .max_conns_per_source = 10};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct cl c[3], d, e, silent, g;
  for (int i = 0; i < 3; i++) {
    cl_open(&c[i], f.port);
    assert_int_equal(cl_get(&c[i], "/api/"), 200);
  }
  assert_int_equal(cl_get(&c[1], "/api/"), 200); /* idle the longest now: c[0], then c[2] */
  cl_open(&d, f.port);
  assert_int_equal(cl_get(&d, "/api/"), 200);
  assert_true(fd_closed_within(c[0].fd, 2000));
  assert_false(fd_closed_within(c[2].fd, 100));
  assert_false(fd_closed_within(c[1].fd, 100));
  cl_open(&e, f.port);
  assert_int_equal(cl_get(&e, "/api/"), 200);
  assert_true(fd_closed_within(c[2].fd, 2000));
  assert_false(fd_closed_within(c[1].fd, 100));
  assert_false(fd_closed_within(d.fd, 100));
  assert_int_equal(cl_get(&c[1], "/"), 200); /* order now: d, e, c[1] */
  /* A connection waiting for its first byte is idle too: it is closed before busier ones once
   * it is the one idle the longest, and it makes room for the next. */
  cl_open(&silent, f.port); /* closes d */
  assert_true(fd_closed_within(d.fd, 2000));
  assert_int_equal(cl_get(&e, "/"), 200);
  assert_int_equal(cl_get(&c[1], "/"), 200); /* order: silent, e, c[1] */
  cl_open(&g, f.port);
  assert_int_equal(cl_get(&g, "/api/"), 200);
  assert_true(fd_closed_within(silent.fd, 2000));
  assert_int_equal(cl_get(&e, "/"), 200);
  assert_int_equal(cl_get(&c[1], "/"), 200);
  cl_close(&g);
  cl_close(&silent);
  cl_close(&e);
  cl_close(&d);
  for (int i = 0; i < 3; i++)
    cl_close(&c[i]);
  srv_stop(&f);
}

/* Connections with a request in progress are never closed for room: a request being read, one
 * in its (async) handler, a stream the client does not read. */
static void test_conn_no_evict_busy(void **state) {
  (void)state;
  struct http_server_config cfg = {.max_conns = 3, .max_conns_per_source = 10};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  struct cl a, b, h, x, y;
  cl_open(&a, f.port);
  cl_sends(&a, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
  cl_open(&b, f.port);
  cl_sends(&b, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); /* never read: the stream blocks */
  for (int i = 0; i < 200 && (atomic_load(&g_async_started) < 1 ||
                              atomic_load(&g_stream_eagain) < 1); i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_async_started), 1);
  assert_true(atomic_load(&g_stream_eagain) >= 1);
  cl_open(&h, f.port);
  cl_sends(&h, "GET /api/ HTTP/1.1\r\nHost: x\r\nX-Part: 1\r\n");
  usleep(50000); /* the partial head reached the server */
  cl_open(&x, f.port);
  assert_int_equal(cl_read_resp(&x, &r), 0);
  assert_int_equal(r.status, 503);
  assert_string_equal((char *)r.body.data, "{\"error\":\"too many connections\"}");
  cl_close(&x);
  assert_int_equal(atomic_load(&g_async_closed), 0);
  assert_int_equal(atomic_load(&g_stream_closed), 0);
  /* The partial request completes normally; then that connection is idle and gives way. */
  cl_sends(&h, "\r\n");
  assert_int_equal(cl_read_resp(&h, &r), 0);
  assert_int_equal(r.status, 200);
  cl_open(&y, f.port);
  assert_int_equal(cl_get(&y, "/api/"), 200);
  assert_true(fd_closed_within(h.fd, 2000));
  assert_int_equal(atomic_load(&g_async_closed), 0);
  assert_int_equal(atomic_load(&g_stream_closed), 0);
  /* The busy ones end when their clients go. */
  cl_close(&a);
  cl_close(&b);
  for (int i = 0; i < 200 && (atomic_load(&g_async_closed) < 1 ||
                              atomic_load(&g_stream_closed) < 1); i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_async_closed), 1);
  assert_int_equal(atomic_load(&g_stream_closed), 1);
  cl_close(&h);
  cl_close(&y);
  resp_free(&r);
  srv_stop(&f);
}

/* handshake_timeout_s: from accept to the first byte of the first request; then idle_timeout_s
 * between requests. */
static void test_first_byte_deadline(void **state) {
  (void)state;
  struct http_server_config cfg = {.handshake_timeout_s = 1, .idle_timeout_s = 4,
                                   .request_timeout_s = 10};
  struct srv f;
  srv_start(&f, &cfg, true);
  /* Silent client: closed after ~1 s, long before the idle timeout. */
  struct cl c;
  cl_open(&c, f.port);
  long long t0 = now_ms();
  assert_true(fd_closed_within(c.fd, 3500));
  long long dt = now_ms() - t0;
  assert_true(dt >= 800 && dt < 2500);
  cl_close(&c);
  /* Empty lines before a request are not its first byte. */
  cl_open(&c, f.port);
  t0 = now_ms();
  for (int i = 0; i < 4; i++) {
    cl_sends(&c, "\r\n");
    usleep(200000);
  }
  assert_true(fd_closed_within(c.fd, 3500));
  dt = now_ms() - t0;
  assert_true(dt >= 800 && dt < 2500);
  cl_close(&c);
  /* A request that starts in time may take longer (request_timeout_s governs it). */
  cl_open(&c, f.port);
  usleep(500000);
  cl_sends(&c, "GET /api/ HTTP/1.1\r\nHost: x\r\n");
  usleep(1000000);
  struct resp r = {0};
  cl_sends(&c, "\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  /* After a request, the idle timeout applies: still open past handshake_timeout_s. */
  usleep(2000000);
  assert_int_equal(cl_get(&c, "/api/"), 200);
  usleep(1500000);
  assert_int_equal(cl_get(&c, "/api/"), 200);
  cl_close(&c);
  resp_free(&r);
  srv_stop(&f);
}

static int unix_connect(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  assert_true(strlen(path) < sizeof(sa.sun_path));
  memcpy(sa.sun_path, path, strlen(path) + 1);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    close(fd);
    return -1;
  }
  set_timeout(fd, 5000);
  return fd;
}

static void test_unix(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char p1[512], p2[512], pf[512], plong[512];
  snprintf(p1, sizeof(p1), "%s/a.sock", dir);
  snprintf(p2, sizeof(p2), "%s/b.sock", dir);
  snprintf(pf, sizeof(pf), "%s/file", dir);
  memset(plong, 'x', sizeof(plong));
  snprintf(plong, sizeof(plong), "%s/%0200d", dir, 0);
  assert_int_equal(file_write_atomic(pf, "x", 1, 0600), 0);
  /* A stale socket file (nobody listening) is replaced. */
  {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(p2) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, p2, strlen(p2) + 1);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);
  }
  mode_t old = umask(077);
  struct srv f;
  srv_init(&f, NULL, true);
  assert_int_equal(http_server_listen_unix(f.s, p1, 0600), 0);
  assert_int_equal(http_server_listen_unix(f.s, p2, 0777), 0);
  assert_int_equal(http_server_listen_unix(f.s, pf, 0600), -EEXIST);
  assert_int_equal(http_server_listen_unix(f.s, plong, 0600), -ENAMETOOLONG);
  /* A live socket is not taken over. */
  assert_int_equal(http_server_listen_unix(f.s, p1, 0600), -EADDRINUSE);
  umask(old);
  struct stat st;
  assert_int_equal(stat(p1, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(stat(p2, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0777);
  srv_run(&f);
  const char *paths[] = {p1, p2};
  for (int i = 0; i < 2; i++) {
    struct cl c = {.fd = unix_connect(paths[i])};
    assert_true(c.fd >= 0);
    struct resp r = {0};
    cl_sends(&c, "GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_int_equal(cl_read_resp(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr((char *)r.body.data, "\"path\":\"/echo\""));
    resp_free(&r);
    cl_close(&c);
  }
  srv_stop(&f);
  /* Socket files are removed with the server. */
  assert_int_equal(stat(p1, &st), -1);
  assert_int_equal(stat(p2, &st), -1);
  tu_rm_rf(dir);
  free(dir);
}

static void test_stream(void **state) {
  (void)state;
  struct http_server_config cfg = {.stream_buffer = 64 * 1024};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  struct cl c;
  cl_open(&c, f.port);
  cl_sends(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  assert_true(r.chunked);
  assert_false(r.has_cl);
  _cleanup_buf_ struct buf want = BUF_INIT(4096);
  for (int i = 0; i < 100; i++)
    buf_printf(&want, "chunk-%d\n", i);
  assert_int_equal(r.body.len, want.len);
  assert_memory_equal(r.body.data, want.data, want.len);
  /* Keep-alive after a stream. */
  cl_sends(&c, "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_string_equal((char *)r.body.data, "api");
  cl_close(&c);

  /* HTTP/1.0: close-delimited stream. */
  cl_open(&c, f.port);
  cl_sends(&c, "GET /stream HTTP/1.0\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_false(r.chunked);
  assert_int_equal(r.body.len, want.len);
  assert_memory_equal(r.body.data, want.data, want.len);
  cl_close(&c);

  /* Backpressure: 8 MiB through a 64 KiB stream buffer to a slow reader. */
  cl_open(&c, f.port);
  cl_sends(&c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(300000); /* let the server fill the socket and hit its cap */
  assert_true(atomic_load(&g_stream_eagain) > 0);
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.body.len, BIG_TOTAL);
  assert_int_equal(atomic_load(&g_stream_closed), 0);
  cl_close(&c);

  /* Client leaves in the middle of a stream: close callback. */
  cl_open(&c, f.port);
  cl_sends(&c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(100000);
  assert_true(cl_fill(&c) > 0);
  cl_close(&c);
  for (int i = 0; i < 100 && atomic_load(&g_stream_closed) == 0; i++)
    usleep(20000);
  assert_int_equal(atomic_load(&g_stream_closed), 1);

  /* Async handler: close callback when the client disconnects before the answer. */
  cl_open(&c, f.port);
  cl_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 100 && atomic_load(&g_async_started) == 0; i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_async_started), 1);
  assert_int_equal(atomic_load(&g_async_closed), 0);
  cl_close(&c);
  for (int i = 0; i < 100 && atomic_load(&g_async_closed) == 0; i++)
    usleep(20000);
  assert_int_equal(atomic_load(&g_async_closed), 1);

  /* Pending async request when the server is freed: close callback too. */
  cl_open(&c, f.port);
  cl_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 100 && atomic_load(&g_async_started) == 1; i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_async_started), 2);
  srv_stop(&f);
  assert_int_equal(atomic_load(&g_async_closed), 2);
  cl_close(&c);
  resp_free(&r);
}

static bool dual_stack(void) {
  char v = '0';
  FILE *fp = fopen("/proc/sys/net/ipv6/bindv6only", "r");
  if (fp) {
    if (fread(&v, 1, 1, fp) != 1)
      v = '0';
    fclose(fp);
  }
  return v == '0';
}

/* max_conns_per_source: per IPv4 address (also when it arrives IPv4-mapped on a dual-stack
 * listener). A source at its cap makes room by closing its own connection idle the longest,
 * never another source's (not even one idle longer); with none of its own idle it is refused.
 * Either way it never holds more than its cap open. Unix sockets are exempt. */
static void test_conn_per_source(void **state) {
  (void)state;
  struct http_server_config cfg = {.max_conns = 3, .max_conns_per_source = 2};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  struct cl a[4], b;
  /* Another address first: its connection is the one idle the longest on the server. */
  cl_open_from(&b, f.port, "127.0.0.3");
  assert_int_equal(cl_get(&b, "/api/"), 200);
  cl_open_from(&a[0], f.port, "127.0.0.2");
  cl_open_from(&a[1], f.port, "127.0.0.2");
  assert_int_equal(cl_get(&a[1], "/api/"), 200);
  assert_int_equal(cl_get(&a[0], "/api/"), 200); /* 127.0.0.2 idle the longest: a[1] */
  /* Server full, 127.0.0.2 at its cap with both idle: a third from it is served and closes
   * a[1], its own oldest idle one; b, idle longer, is not touched. */
  cl_open_from(&a[2], f.port, "127.0.0.2");
  assert_int_equal(cl_get(&a[2], "/api/"), 200);
  assert_true(fd_closed_within(a[1].fd, 2000));
  assert_false(fd_closed_within(a[0].fd, 100));
  assert_false(fd_closed_within(b.fd, 100));
  assert_int_equal(cl_get(&b, "/"), 200);
  assert_int_equal(cl_get(&a[0], "/"), 200);
  cl_close(&a[1]);
  /* Both of 127.0.0.2's connections busy (a request head being read, a handler running): the
   * next one from it is refused, and nobody else is closed for it though b is idle and the
   * server is full. */
  cl_sends(&a[2], "GET /api/ HTTP/1.1\r\nHost: x\r\nX-Part: 1\r\n");
  cl_sends(&a[0], "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 200 && atomic_load(&g_async_started) < 1; i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_async_started), 1);
  usleep(50000); /* the partial head reached the server */
  cl_open_from(&a[3], f.port, "127.0.0.2");
  assert_int_equal(cl_read_resp(&a[3], &r), 0);
  assert_int_equal(r.status, 503);
  assert_string_equal((char *)r.body.data,
                      "{\"error\":\"too many connections from this address\"}");
  assert_true(fd_closed_within(a[3].fd, 2000));
  cl_close(&a[3]);
  assert_false(fd_closed_within(b.fd, 100));
  assert_int_equal(cl_get(&b, "/"), 200);
  assert_int_equal(atomic_load(&g_async_closed), 0);
  /* The partial request completes; then a[2] is idle and gives way to the next from its
   * source, while the handler's connection stays. */
  cl_sends(&a[2], "\r\n");
  assert_int_equal(cl_read_resp(&a[2], &r), 0);
  assert_int_equal(r.status, 200);
  cl_open_from(&a[3], f.port, "127.0.0.2");
  assert_int_equal(cl_get(&a[3], "/api/"), 200);
  assert_true(fd_closed_within(a[2].fd, 2000));
  assert_false(fd_closed_within(b.fd, 100));
  assert_int_equal(atomic_load(&g_async_closed), 0);
  cl_close(&a[2]);
  /* A closed connection gives its source a slot back: the next one closes nobody. The close
   * callback runs in the same loop step that releases the slot, before the next accept. */
  cl_close(&a[0]);
  for (int i = 0; i < 200 && atomic_load(&g_async_closed) < 1; i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_async_closed), 1);
  cl_open_from(&a[0], f.port, "127.0.0.2");
  assert_int_equal(cl_get(&a[0], "/api/"), 200);
  assert_false(fd_closed_within(a[3].fd, 100));
  assert_false(fd_closed_within(b.fd, 100));
  assert_int_equal(cl_get(&a[3], "/"), 200);
  assert_int_equal(cl_get(&b, "/"), 200);
  cl_close(&a[0]);
  cl_close(&a[3]);
  cl_close(&b);
  srv_stop(&f);

  /* Dual-stack listener ("::"), IPv4 clients arrive as ::ffff:a.b.c.d: still one source per
   * IPv4 address, not one for all of them. Unix sockets on the same server: exempt. */
  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof(path), "%s/s.sock", dir);
  cfg = (struct http_server_config){.max_conns = 100, .max_conns_per_source = 2};
  srv_init(&f, &cfg, true);
  bool ds = dual_stack();
  if (ds)
    assert_int_equal(http_server_listen_tcp(f.s, "::", 0, &f.port), 0);
  assert_int_equal(http_server_listen_unix(f.s, path, 0600), 0);
  srv_run(&f);
  if (ds) {
    struct cl m[3], n;
    for (int i = 0; i < 2; i++) {
      cl_open_from(&m[i], f.port, "127.0.0.2");
      assert_int_equal(cl_get(&m[i], "/api/"), 200);
    }
    /* Far from max_conns: m[0] is closed only because m[2] is the same source. */
    cl_open_from(&m[2], f.port, "127.0.0.2");
    assert_int_equal(cl_get(&m[2], "/api/"), 200);
    assert_true(fd_closed_within(m[0].fd, 2000));
    assert_false(fd_closed_within(m[1].fd, 100));
    cl_open_from(&n, f.port, "127.0.0.3");
    assert_int_equal(cl_get(&n, "/api/"), 200);
    assert_false(fd_closed_within(m[1].fd, 100));
    assert_false(fd_closed_within(m[2].fd, 100));
    for (int i = 0; i < 3; i++)
      cl_close(&m[i]);
    cl_close(&n);
  } else {
    print_message("bindv6only=1: dual-stack part skipped\n");
  }
  struct cl u[5];
  for (int i = 0; i < 5; i++) {
    memset(&u[i], 0, sizeof(u[i]));
    u[i].fd = unix_connect(path);
    assert_true(u[i].fd >= 0);
  }
  for (int i = 0; i < 5; i++)
    assert_int_equal(cl_get(&u[i], "/api/"), 200);
  for (int i = 0; i < 5; i++)
    cl_close(&u[i]);
  resp_free(&r);
  srv_stop(&f);
  tu_rm_rf(dir);
  free(dir);
}

/* ------------------------------------------------------------------ TLS */

struct pki {
  char *dir;
  char ca[512], ca_key[512], srv_cert[512], srv_key[512], cli_cert[512], cli_key[512];
  char other_cert[512], other_key[512];
};

static void write_cert_key(X509 *x, EVP_PKEY *k, const char *cp, const char *kp) {
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  assert_int_equal(x509_cert_to_pem(x, &b), 0);
  assert_int_equal(file_write_atomic(cp, b.data, b.len, 0644), 0);
  b.len = 0;
  assert_int_equal(key_to_pkcs8_pem(k, &b), 0);
  assert_int_equal(file_write_atomic(kp, b.data, b.len, 0600), 0);
}

static void make_pki(struct pki *p) {
  p->dir = tu_mkdtemp();
#define P(f, n) snprintf(p->f, sizeof(p->f), "%s/" n, p->dir)
  P(ca, "ca.pem");
  P(ca_key, "ca.key");
  P(srv_cert, "srv.pem");
  P(srv_key, "srv.key");
  P(cli_cert, "cli.pem");
  P(cli_key, "cli.key");
  P(other_cert, "other.pem");
  P(other_key, "other.key");
#undef P
  EVP_PKEY *cak, *sk, *ck, *ok;
  X509 *ca, *sc, *cc, *oc;
  assert_int_equal(key_p256_generate(&cak), 0);
  assert_int_equal(key_p256_generate(&sk), 0);
  assert_int_equal(key_p256_generate(&ck), 0);
  assert_int_equal(key_p256_generate(&ok), 0);
  int64_t now = time(NULL);
  struct x509_params pca = {.subject_cn = "Test CA", .is_ca = true, .path_len = -1,
                            .key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN,
                            .not_before = now - 3600, .not_after = now + 86400, .skid_akid = true};
  assert_int_equal(x509_cert_build(&pca, cak, NULL, NULL, &ca), 0);
  const char *sans[] = {"localhost"};
  struct x509_params ps = {.subject_cn = "localhost", .dns_sans = sans, .n_dns_sans = 1,
                           .key_usage = X509_KU_DIGITAL_SIGNATURE,
                           .ext_key_usage = X509_EKU_SERVER_AUTH, .not_before = now - 3600,
                           .not_after = now + 86400, .skid_akid = true};
  assert_int_equal(x509_cert_build(&ps, sk, ca, cak, &sc), 0);
  struct x509_params pc = {.subject_cn = "test-client", .key_usage = X509_KU_DIGITAL_SIGNATURE,
                           .ext_key_usage = X509_EKU_CLIENT_AUTH, .not_before = now - 3600,
                           .not_after = now + 86400, .skid_akid = true};
  assert_int_equal(x509_cert_build(&pc, ck, ca, cak, &cc), 0);
  /* Self-signed client cert from no trusted CA. */
  struct x509_params po = pc;
  po.subject_cn = "intruder";
  assert_int_equal(x509_cert_build(&po, ok, NULL, NULL, &oc), 0);
  write_cert_key(ca, cak, p->ca, p->ca_key);
  write_cert_key(sc, sk, p->srv_cert, p->srv_key);
  write_cert_key(cc, ck, p->cli_cert, p->cli_key);
  write_cert_key(oc, ok, p->other_cert, p->other_key);
  X509_free(ca);
  X509_free(sc);
  X509_free(cc);
  X509_free(oc);
  EVP_PKEY_free(cak);
  EVP_PKEY_free(sk);
  EVP_PKEY_free(ck);
  EVP_PKEY_free(ok);
}

static void free_pki(struct pki *p) {
  tu_rm_rf(p->dir);
  free(p->dir);
}

/* TLS client from the local address src (NULL: 127.0.0.1); returns 0 when the handshake
 * completed. */
static int tls_open_from(struct cl *c, SSL_CTX *cctx, uint16_t port, const char *src) {
  if (src)
    cl_open_from(c, port, src);
  else
    cl_open(c, port);
  c->ssl = SSL_new(cctx);
  assert_non_null(c->ssl);
  SSL_set_fd(c->ssl, c->fd);
  SSL_set_tlsext_host_name(c->ssl, "localhost");
  SSL_set1_host(c->ssl, "localhost");
  int k = SSL_connect(c->ssl);
  ERR_clear_error();
  return k == 1 ? 0 : -1;
}

static int tls_open(struct cl *c, SSL_CTX *cctx, uint16_t port) {
  return tls_open_from(c, cctx, port, NULL);
}

static SSL_CTX *client_ctx(const struct pki *p, const char *cert, const char *key, int max_ver) {
  SSL_CTX *c = SSL_CTX_new(TLS_client_method());
  assert_non_null(c);
  assert_int_equal(SSL_CTX_load_verify_locations(c, p->ca, NULL), 1);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
  if (max_ver)
    SSL_CTX_set_max_proto_version(c, max_ver);
  if (cert) {
    assert_int_equal(SSL_CTX_use_certificate_file(c, cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM), 1);
  }
  return c;
}

/* GET /cert over TLS: the body, or NULL when the exchange failed. */
static char *tls_get_cert(SSL_CTX *cctx, uint16_t port) {
  struct cl c;
  char *out = NULL;
  if (tls_open(&c, cctx, port) == 0) {
    struct resp r = {0};
    if (SSL_write(c.ssl, "GET /cert HTTP/1.1\r\nHost: x\r\n\r\n", 31) == 31 &&
        cl_read_resp(&c, &r) == 0 && r.status == 200)
      out = strdup((char *)r.body.data);
    ERR_clear_error();
    resp_free(&r);
  }
  cl_close(&c);
  return out;
}

static void test_tls(void **state) {
  (void)state;
  struct pki p;
  make_pki(&p);
  SSL_CTX *plain_ctx = NULL, *mtls_ctx = NULL, *opt_ctx = NULL;
  struct http_tls_files tf = {.cert_file = p.srv_cert, .key_file = p.srv_key};
  assert_int_equal(http_tls_ctx_new(&tf, &plain_ctx), 0);
  tf.client_ca_file = p.ca;
  assert_int_equal(http_tls_ctx_new(&tf, &mtls_ctx), 0);
  tf.client_cert_optional = true;
  assert_int_equal(http_tls_ctx_new(&tf, &opt_ctx), 0);
  /* Bad inputs. */
  SSL_CTX *bad = NULL;
  struct http_tls_files wrong = {.cert_file = p.srv_cert, .key_file = p.cli_key};
  assert_int_equal(http_tls_ctx_new(&wrong, &bad), -EBADMSG);
  wrong = (struct http_tls_files){.cert_file = p.srv_key, .key_file = p.srv_key};
  assert_int_equal(http_tls_ctx_new(&wrong, &bad), -EBADMSG);
  wrong = (struct http_tls_files){.cert_file = "/nonexistent", .key_file = p.srv_key};
  assert_int_equal(http_tls_ctx_new(&wrong, &bad), -ENOENT);
  assert_null(bad);

  struct srv f;
  srv_init(&f, NULL, true);
  uint16_t port_plain, port_mtls, port_opt;
  assert_int_equal(http_server_listen_tls(f.s, "127.0.0.1", 0, plain_ctx, &port_plain), 0);
  assert_int_equal(http_server_listen_tls(f.s, "127.0.0.1", 0, mtls_ctx, &port_mtls), 0);
  assert_int_equal(http_server_listen_tls(f.s, "127.0.0.1", 0, opt_ctx, &port_opt), 0);
  /* The server holds its own references. */
  SSL_CTX_free(plain_ctx);
  SSL_CTX_free(mtls_ctx);
  SSL_CTX_free(opt_ctx);
  srv_run(&f);

  SSL_CTX *anon = client_ctx(&p, NULL, NULL, 0);
  SSL_CTX *withcert = client_ctx(&p, p.cli_cert, p.cli_key, 0);
  SSL_CTX *withcert12 = client_ctx(&p, p.cli_cert, p.cli_key, TLS1_2_VERSION);
  SSL_CTX *intruder = client_ctx(&p, p.other_cert, p.other_key, 0);
  SSL_CTX *old = client_ctx(&p, NULL, NULL, TLS1_1_VERSION);
  char *s;

  /* Plain TLS: works, no peer certificate even if the client has one. */
  s = tls_get_cert(anon, port_plain);
  assert_non_null(s);
  assert_string_equal(s, "none");
  free(s);
  s = tls_get_cert(withcert, port_plain);
  assert_string_equal(s, "none");
  free(s);
  /* TLS < 1.2 refused. */
  assert_null(tls_get_cert(old, port_plain));

  /* mTLS: the handler sees the verified client cert (TLS 1.3 and 1.2). */
  s = tls_get_cert(withcert, port_mtls);
  assert_non_null(s);
  assert_string_equal(s, "test-client");
  free(s);
  s = tls_get_cert(withcert12, port_mtls);
  assert_non_null(s);
  assert_string_equal(s, "test-client");
  free(s);
  /* No client cert, or one from an unknown issuer: no exchange. */
  assert_null(tls_get_cert(anon, port_mtls));
  assert_null(tls_get_cert(intruder, port_mtls));
  /* TLS 1.2 without a cert: the handshake itself fails. */
  SSL_CTX *anon12 = client_ctx(&p, NULL, NULL, TLS1_2_VERSION);
  struct cl c;
  assert_int_equal(tls_open(&c, anon12, port_mtls), -1);
  cl_close(&c);

  /* Optional client certs: with and without. */
  s = tls_get_cert(withcert, port_opt);
  assert_string_equal(s, "test-client");
  free(s);
  s = tls_get_cert(anon, port_opt);
  assert_string_equal(s, "none");
  free(s);
  assert_null(tls_get_cert(intruder, port_opt));

  /* Keep-alive, chunked stream and a body over TLS. */
  assert_int_equal(tls_open(&c, withcert, port_mtls), 0);
  struct resp r = {0};
  const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz";
  cl_sends(&c, req);
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_non_null(strstr((char *)r.body.data, "\"body\":\"xyz\""));
  assert_non_null(strstr((char *)r.body.data, "\"tls\":true"));
  cl_sends(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_true(r.chunked);
  assert_true(strncmp((char *)r.body.data, "chunk-0\nchunk-1\n", 16) == 0);
  resp_free(&r);
  cl_close(&c);

  srv_stop(&f);
  SSL_CTX_free(anon);
  SSL_CTX_free(anon12);
  SSL_CTX_free(withcert);
  SSL_CTX_free(withcert12);
  SSL_CTX_free(intruder);
  SSL_CTX_free(old);
  free_pki(&p);
}

/* A TCP connection that starts a TLS handshake and stalls: a record header announcing a
 * ClientHello and the first bytes of it. */
static int tls_stall_open(uint16_t port, const char *src) {
  int fd = tcp_connect_from(port, src);
  static const unsigned char part[] = {0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xfc,
                                       0x03, 0x03};
  assert_int_equal(send(fd, part, sizeof(part), MSG_NOSIGNAL), (ssize_t)sizeof(part));
  return fd;
}

/* The first-byte deadline on TLS: a stalled handshake, and a finished handshake without a
 * request, are both closed after handshake_timeout_s; stalled handshakes are idle and make room
 * for new clients, also from their own source at its share; a TLS connection from a source
 * whose share is all busy is closed at once. */
static void test_tls_handshake_deadline(void **state) {
  (void)state;
  struct pki p;
  make_pki(&p);
  SSL_CTX *ctx = NULL;
  struct http_tls_files tf = {.cert_file = p.srv_cert, .key_file = p.srv_key};
  assert_int_equal(http_tls_ctx_new(&tf, &ctx), 0);
  SSL_CTX *anon = client_ctx(&p, NULL, NULL, 0);
  struct http_server_config cfg = {.handshake_timeout_s = 1, .idle_timeout_s = 4};
  struct srv f;
  srv_init(&f, &cfg, true);
  uint16_t port;
  assert_int_equal(http_server_listen_tls(f.s, "127.0.0.1", 0, ctx, &port), 0);
  srv_run(&f);

  /* Stalled mid-handshake. */
  int fd = tls_stall_open(port, "127.0.0.1");
  long long t0 = now_ms();
  assert_true(fd_closed_within(fd, 3500));
  long long dt = now_ms() - t0;
  assert_true(dt >= 800 && dt < 2500);
  close(fd);
  /* Handshake done, no request. */
  struct cl c;
  assert_int_equal(tls_open(&c, anon, port), 0);
  t0 = now_ms();
  assert_true(fd_closed_within(c.fd, 3500));
  dt = now_ms() - t0;
  assert_true(dt >= 700 && dt < 2500);
  cl_close(&c);
  /* With a request in time, the idle timeout applies afterwards. */
  assert_int_equal(tls_open(&c, anon, port), 0);
  assert_int_equal(cl_get(&c, "/api/"), 200);
  usleep(2000000);
  assert_int_equal(cl_get(&c, "/api/"), 200);
  cl_close(&c);
  srv_stop(&f);

  /* Room and shares on TLS: two stalled handshakes fill the server. */
  cfg = (struct http_server_config){.handshake_timeout_s = 10, .max_conns = 2,
                                    .max_conns_per_source = 2};
  srv_init(&f, &cfg, true);
  assert_int_equal(http_server_listen_tls(f.s, "127.0.0.1", 0, ctx, &port), 0);
  srv_run(&f);
  int st1 = tls_stall_open(port, "127.0.0.2");
  usleep(50000);
  int st2 = tls_stall_open(port, "127.0.0.2");
  usleep(50000);
  /* A third from that address: its handshake stalled the longest is closed at once (no
   * reply), the other stays. */
  int st3 = tls_stall_open(port, "127.0.0.2");
  t0 = now_ms();
  assert_true(fd_closed_within(st1, 2000));
  assert_true(now_ms() - t0 < 1000);
  assert_false(fd_closed_within(st2, 100));
  assert_false(fd_closed_within(st3, 100));
  close(st1);
  /* A client from elsewhere: the handshake stalled the longest makes room (long before its
   * deadline), the other stays. */
  t0 = now_ms();
  assert_int_equal(tls_open(&c, anon, port), 0);
  assert_int_equal(cl_get(&c, "/api/"), 200);
  assert_true(now_ms() - t0 < 1000);
  assert_true(fd_closed_within(st2, 1000));
  assert_false(fd_closed_within(st3, 100));
  /* 127.0.0.2's share all busy (handlers running; room made by closing st3, then c): a third
   * from it is closed at once, no reply. */
  struct cl b1, b2;
  assert_int_equal(tls_open_from(&b1, anon, port, "127.0.0.2"), 0);
  cl_sends(&b1, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(fd_closed_within(st3, 1000));
  assert_int_equal(tls_open_from(&b2, anon, port, "127.0.0.2"), 0);
  cl_sends(&b2, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 200 && atomic_load(&g_async_started) < 2; i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_async_started), 2);
  assert_true(fd_closed_within(c.fd, 1000));
  int st4 = tls_stall_open(port, "127.0.0.2");
  t0 = now_ms();
  assert_true(fd_closed_within(st4, 2000));
  assert_true(now_ms() - t0 < 1000);
  assert_int_equal(atomic_load(&g_async_closed), 0);
  close(st4);
  cl_close(&b1);
  cl_close(&b2);
  cl_close(&c);
  close(st2);
  close(st3);
  srv_stop(&f);
  SSL_CTX_free(ctx);
  SSL_CTX_free(anon);
  free_pki(&p);
}

static void test_parse_helpers(void **state) {
  (void)state;
  uint64_t v;
  assert_int_equal(http_content_length_parse("0", &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(http_content_length_parse("42, 42 ,42", &v), 0);
  assert_int_equal(v, 42);
  assert_int_equal(http_content_length_parse("42, 43", &v), -EBADMSG);
  assert_int_equal(http_content_length_parse("", &v), -EBADMSG);
  assert_int_equal(http_content_length_parse("+1", &v), -EBADMSG);
  assert_int_equal(http_content_length_parse("1,", &v), -EBADMSG);
  assert_int_equal(http_content_length_parse("18446744073709551616", &v), -EBADMSG);
  assert_int_equal(http_chunk_size_parse("1aF", 3, &v), 0);
  assert_int_equal(v, 0x1af);
  assert_int_equal(http_chunk_size_parse("10 ;name=val", 12, &v), 0);
  assert_int_equal(v, 16);
  assert_int_equal(http_chunk_size_parse("", 0, &v), -EBADMSG);
  assert_int_equal(http_chunk_size_parse("x", 1, &v), -EBADMSG);
  assert_int_equal(http_chunk_size_parse("1 2", 3, &v), -EBADMSG);
  assert_int_equal(http_chunk_size_parse("1;\x01", 3, &v), -EBADMSG);
  assert_int_equal(http_chunk_size_parse("fffffffffffffffff", 17, &v), -EBADMSG);
  assert_true(http_list_has_token("keep-alive, Close", "close"));
  assert_true(http_list_has_token(" close ", "close"));
  assert_false(http_list_has_token("closed, xclose", "close"));
  assert_false(http_list_has_token("", "close"));
  assert_int_equal(http_head_find_end("GET / HTTP/1.1\r\n\r\nX", 19, 0), 18);
  assert_int_equal(http_head_find_end("GET / HTTP/1.1\n\nX", 17, 0), 16);
  assert_int_equal(http_head_find_end("GET / HTTP/1.1\r\nA: b\r\n", 22, 0), 0);
  /* A marker split across two searches is still found. */
  assert_int_equal(http_head_find_end("GET / HTTP/1.1\r\n\r\n", 18, 16), 18);
  char head[] = "POST /x?y HTTP/1.0\r\nA:b\r\nC: \t d e \t\r\na: 2\r\n\r\n";
  struct http_head h;
  assert_int_equal(http_head_parse(head, strlen(head), &h), 0);
  assert_string_equal(h.method, "POST");
  assert_string_equal(h.target, "/x?y");
  assert_int_equal(h.minor, 0);
  assert_int_equal(h.n_fields, 3);
  assert_string_equal(http_head_get(&h, "c"), "d e");
  assert_string_equal(http_head_get(&h, "A"), "b");
  assert_int_equal(http_head_count(&h, "a"), 2);
  assert_null(http_head_get(&h, "missing"));
  char part[] = "GET / HTTP/1.1\r\nA: b\r\n";
  assert_int_equal(http_head_parse(part, strlen(part), &h), -EAGAIN);
  char nul[] = "GET / HTTP/1.1\r\nA: \0b\r\n\r\n";
  assert_int_equal(http_head_parse(nul, sizeof(nul) - 1, &h), -EBADMSG);
}

static void test_api_errors(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  struct http_server *s = NULL;
  assert_int_equal(http_server_new(NULL, NULL, &s), -EINVAL);
  assert_int_equal(http_server_new(base, NULL, &s), 0);
  uint16_t port;
  assert_int_equal(http_server_listen_tcp(s, "not-an-ip", 0, &port), -EINVAL);
  assert_int_equal(http_server_listen_tls(s, "127.0.0.1", 0, NULL, &port), -EINVAL);
  assert_int_equal(http_server_listen_tcp(s, "::1", 0, &port), 0);
  uint16_t port2;
  assert_int_equal(http_server_listen_tcp(s, "127.0.0.1", 0, &port2), 0);
  /* Same port again: in use. */
  assert_int_equal(http_server_listen_tcp(s, "127.0.0.1", port2, NULL), -EADDRINUSE);
  assert_int_equal(http_server_route(s, "/x", NULL, NULL), -EINVAL);
  assert_ptr_equal(http_server_get_base(s), base);
  assert_int_equal(http_server_n_connections(s), 0);
  assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
  assert_string_equal(http_status_reason(299), "Unknown");
  assert_int_equal(http_server_add_connection(s, -1, NULL), -EINVAL);
  /* Adopted socketpair connection, driven by hand. */
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  assert_int_equal(http_server_route(s, "/", h_text, "adopted"), 0);
  assert_int_equal(http_server_add_connection(s, sp[0], NULL), 0);
  assert_int_equal(http_server_n_connections(s), 1);
  const char *req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  assert_int_equal(write(sp[1], req, strlen(req)), (ssize_t)strlen(req));
  char out[1024];
  size_t got = 0;
  for (int i = 0; i < 100 && http_server_n_connections(s) > 0; i++) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    ssize_t n = recv(sp[1], out + got, sizeof(out) - 1 - got, MSG_DONTWAIT);
    if (n > 0)
      got += (size_t)n;
    if (n == 0)
      shutdown(sp[1], SHUT_WR);
    usleep(1000);
  }
  out[got] = 0;
  assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(out, "\r\n\r\nadopted"));
  assert_int_equal(http_server_n_connections(s), 0);
  close(sp[1]);
  http_server_free(s);
  http_server_free(NULL);
  event_base_loop(base, EVLOOP_NONBLOCK);
  event_base_free(base);
}

/* Waits until the server holds n connections; false after ms. */
static bool n_conns_within(struct srv *f, unsigned n, int ms) {
  for (int i = 0; i < ms / 10; i++) {
    if (http_server_n_connections(f->s) == n)
      return true;
    usleep(10000);
  }
  return http_server_n_connections(f->s) == n;
}

/* One /fail request; returns the status (-1: the connection ended without an answer). The
 * connection must end either way, and its slot be freed. */
static int fail_request(struct srv *f, const char *how, int n, struct resp *r) {
  char req[256];
  snprintf(req, sizeof(req), "GET /fail?how=%s&n=%d HTTP/1.1\r\nHost: x\r\n\r\n", how, n);
  struct cl c;
  cl_open(&c, f->port);
  cl_sends(&c, req);
  int k = cl_read_resp(&c, r);
  assert_true(cl_closed_within(&c, 3000));
  cl_close(&c);
  assert_true(n_conns_within(f, 0, 3000));
  return k < 0 ? -1 : r->status;
}

/* A reply that cannot be sent never strands the connection: the server answers 500 (or
 * closes), frees the slot, and the handler has nothing to clean up. */
static void test_reply_failures(void **state) {
  (void)state;
  struct srv f;
  srv_start(&f, NULL, true);
  struct resp r = {0};
  static const char *const hows[] = {"reply", "json", "error"};
  for (size_t i = 0; i < ARRAY_SIZE(hows); i++) {
    /* The first allocation fails: the fixed 500 goes out. */
    assert_int_equal(fail_request(&f, hows[i], 1, &r), 500);
    assert_string_equal((char *)r.body.data, "{\"error\":\"internal error\"}");
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_int_equal(atomic_load(&g_fail_result), -ENOMEM);
    /* Everything fails, the 500 too: closed without an answer. */
    assert_int_equal(fail_request(&f, hows[i], 100, &r), -1);
    assert_int_equal(atomic_load(&g_fail_result), -ENOMEM);
  }
  /* http_stream_start fails: 500; the dead stream takes writes (-EPIPE) and its end. */
  assert_int_equal(fail_request(&f, "start", 1, &r), 500);
  assert_int_equal(atomic_load(&g_fail_result), -ENOMEM);
  assert_int_equal(atomic_load(&g_fail_result2), -EPIPE);
  /* A chunk cannot be queued mid-stream: cut off (no last chunk), closed. */
  struct cl c;
  cl_open(&c, f.port);
  cl_sends(&c, "GET /fail?how=write&n=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  char all[4096];
  size_t got = 0;
  ssize_t k;
  while ((k = cl_fill(&c)) > 0) {
    size_t take = MIN(c.len, sizeof(all) - 1 - got);
    memcpy(all + got, c.buf, take);
    got += take;
    c.len = 0;
  }
  all[got] = 0;
  assert_int_equal(k, 0); /* EOF */
  assert_non_null(strstr(all, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(all, "\r\n5\r\nfirst\r\n"));
  assert_null(strstr(all, "second"));
  assert_null(strstr(all, "\r\n0\r\n\r\n"));
  cl_close(&c);
  assert_true(n_conns_within(&f, 0, 3000));
  assert_int_equal(atomic_load(&g_fail_result), -ENOMEM);
  assert_int_equal(atomic_load(&g_fail_result2), -EPIPE);
  /* The server is fine afterwards. */
  assert_int_equal(simple_request(f.port, "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  resp_free(&r);
  srv_stop(&f);
}

/* A request its handler holds past handler_timeout_s gets a 503 and its connection closes;
 * with a close callback the handler hears of it, without one its late answer is harmless. */
static void test_handler_deadline(void **state) {
  (void)state;
  struct http_server_config cfg = {.handler_timeout_s = 1};
  struct srv f;
  srv_start(&f, &cfg, true);
  struct resp r = {0};
  struct cl c;
  cl_open(&c, f.port);
  long long t0 = now_ms();
  cl_sends(&c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  long long dt = now_ms() - t0;
  assert_int_equal(r.status, 503);
  assert_string_equal(resp_header(&r, "Connection"), "close");
  assert_true(dt >= 900 && dt < 3000);
  assert_int_equal(atomic_load(&g_async_started), 1);
  assert_int_equal(atomic_load(&g_async_closed), 1);
  assert_true(cl_closed_within(&c, 3000));
  cl_close(&c);
  assert_true(n_conns_within(&f, 0, 3000));

  /* No close callback: 503 at 1 s, the handler's reply at 1.6 s finds the request dead. */
  cl_open(&c, f.port);
  cl_sends(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 503);
  assert_true(cl_closed_within(&c, 3000));
  cl_close(&c);
  assert_true(n_conns_within(&f, 0, 3000));
  for (int i = 0; i < 200 && atomic_load(&g_late_result) == 1; i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_late_result), -EPIPE);

  /* Answers within the deadline and streams are not cut. */
  assert_int_equal(simple_request(f.port, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  cl_open(&c, f.port);
  cl_sends(&c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(1500 * 1000); /* the stream blocks on us past the handler deadline */
  assert_int_equal(cl_read_resp(&c, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body.len, BIG_TOTAL);
  cl_close(&c);

  /* The client leaves before the deadline: the request is dead at once, the late answer
   * frees it. */
  cl_open(&c, f.port);
  atomic_store(&g_late_result, 1);
  cl_sends(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  cl_close(&c); /* gone before the deadline: the request is dead at once */
  for (int i = 0; i < 300 && atomic_load(&g_late_result) == 1; i++)
    usleep(10000);
  assert_int_equal(atomic_load(&g_late_result), -EPIPE);
  resp_free(&r);
  srv_stop(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_helpers), cmocka_unit_test(test_api_errors),
      cmocka_unit_test(test_routing),
      cmocka_unit_test(test_keepalive),  cmocka_unit_test(test_request_bodies),
      cmocka_unit_test(test_pipeline_flood),
      cmocka_unit_test(test_malformed),  cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_conn_cap),   cmocka_unit_test(test_conn_evict_idle),
      cmocka_unit_test(test_conn_no_evict_busy), cmocka_unit_test(test_first_byte_deadline),
      cmocka_unit_test(test_conn_per_source), cmocka_unit_test(test_unix),
      cmocka_unit_test(test_stream),     cmocka_unit_test(test_tls),
      cmocka_unit_test(test_tls_handshake_deadline),
      cmocka_unit_test(test_reply_failures), cmocka_unit_test(test_handler_deadline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
