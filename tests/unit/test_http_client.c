#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "base/str.h"
#include "net/http_client.h"
#include "testutil.h"

/* ---- a small HTTP/1.1 server in a thread (TCP, unix socket, TLS, mTLS) ---------------- */

struct tsrv {
  int lfd;
  uint16_t port;
  char unix_path[108];
  SSL_CTX *ssl;
  int stop[2];
  pthread_t th;
  atomic_int n_requests;
};

struct tconn {
  int fd;
  SSL *ssl;
};

static ssize_t c_read(struct tconn *c, void *p, size_t n) {
  if (c->ssl) {
    int r = SSL_read(c->ssl, p, (int)n);
    return r > 0 ? r : -1;
  }
  return read(c->fd, p, n);
}

static void c_write(struct tconn *c, const void *p, size_t n) {
  const char *q = p;
  while (n > 0) {
    ssize_t w = c->ssl ? SSL_write(c->ssl, q, (int)n) : send(c->fd, q, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    q += w;
    n -= (size_t)w;
  }
}

static void c_printf(struct tconn *c, const char *fmt, ...) _printf_(2, 3);
static void c_printf(struct tconn *c, const char *fmt, ...) {
  char tmp[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n > 0)
    c_write(c, tmp, (size_t)MIN((size_t)n, sizeof(tmp) - 1));
}

static const char *req_header(const char *head, const char *name, char *out, size_t outlen) {
  size_t nl = strlen(name);
  for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ')
        v++;
      const char *e = strstr(v, "\r\n");
      size_t l = e ? (size_t)(e - v) : strlen(v);
      l = MIN(l, outlen - 1);
      memcpy(out, v, l);
      out[l] = '\0';
      return out;
    }
  }
  return NULL;
}

static void serve_conn(struct tsrv *s, struct tconn *c) {
  char head[16384];
  size_t hl = 0;
  char *end = NULL;
  while (hl < sizeof(head) - 1) {
    ssize_t n = c_read(c, head + hl, sizeof(head) - 1 - hl);
    if (n <= 0)
      return;
    hl += (size_t)n;
    head[hl] = '\0';
    if ((end = strstr(head, "\r\n\r\n")))
      break;
  }
  if (!end)
    return;
  atomic_fetch_add(&s->n_requests, 1);
  char method[16] = "", path[512] = "", tmp[256];
  if (sscanf(head, "%15s %511s", method, path) != 2)
    return;
  size_t clen = 0;
  if (req_header(head, "Content-Length", tmp, sizeof(tmp)))
    clen = strtoul(tmp, NULL, 10);
  size_t have = hl - (size_t)(end + 4 - head);
  struct buf body = BUF_INIT(1 << 20);
  buf_append(&body, end + 4, MIN(have, clen));
  while (body.len < clen) {
    char b[4096];
    ssize_t n = c_read(c, b, MIN(sizeof(b), clen - body.len));
    if (n <= 0)
      break;
    buf_append(&body, b, (size_t)n);
  }

  if (strcmp(path, "/hello") == 0) {
    c_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: abc \r\nX-Multi: one\r\n"
                "X-Multi: two\r\nConnection: close\r\n\r\nhello");
  } else if (strncmp(path, "/status/", 8) == 0) {
    int st = atoi(path + 8);
    if (st == 204 || st == 304)
      c_printf(c, "HTTP/1.1 %d X\r\nConnection: close\r\n\r\n", st);
    else
      c_printf(c, "HTTP/1.1 %d X\r\nContent-Length: 1\r\nConnection: close\r\n\r\ns", st);
  } else if (strncmp(path, "/big/", 5) == 0 || strncmp(path, "/bigclose/", 10) == 0) {
    bool close_delim = path[4] == 'c';
    size_t n = strtoul(strrchr(path, '/') + 1, NULL, 10);
    if (close_delim)
      c_printf(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    else
      c_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
    char chunk[8192];
    memset(chunk, 'a', sizeof(chunk));
    while (n > 0) {
      size_t k = MIN(n, sizeof(chunk));
      c_write(c, chunk, k);
      n -= k;
    }
  } else if (strcmp(path, "/echo") == 0) {
    char ct[256], custom[256];
    const char *ctv = req_header(head, "Content-Type", ct, sizeof(ct));
    const char *cv = req_header(head, "X-Custom", custom, sizeof(custom));
    c_printf(c,
             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nX-Method: %s\r\nX-Content-Type: %s\r\n"
             "X-Got-Header: %s\r\nConnection: close\r\n\r\n",
             body.len, method, ctv ? ctv : "none", cv ? cv : "none");
    c_write(c, body.data, body.len);
  } else if (strncmp(path, "/manyheaders/", 13) == 0) {
    int n = atoi(path + 13);
    c_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (int i = 0; i < n; i++)
      c_printf(c, "X-H%d: %080d\r\n", i, i);
    c_printf(c, "\r\n");
  } else if (strcmp(path, "/redirect") == 0) {
    c_printf(c, "HTTP/1.1 302 Found\r\nLocation: /hello\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n");
  } else if (strcmp(path, "/redirect-ftp") == 0) {
    c_printf(c, "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n");
  } else if (strcmp(path, "/badheader") == 0) {
    c_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nno colon here\r\n\r\n");
  } else if (strcmp(path, "/hang") == 0) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    poll(&p, 1, 10000); /* until the client gives up and closes */
  } else if (strcmp(path, "/whoami") == 0) {
    char cn[256] = "none";
    if (c->ssl) {
      X509 *peer = SSL_get1_peer_certificate(c->ssl);
      if (peer) {
        struct buf b = BUF_INIT(256);
        if (x509_cert_subject_cn(peer, &b) == 0 && buf_terminate(&b) == 0)
          snprintf(cn, sizeof(cn), "%s", (char *)b.data);
        buf_free(&b);
        X509_free(peer);
      }
    }
    c_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
             strlen(cn), cn);
  } else {
    c_printf(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  }
  buf_free(&body);
}

static void *srv_main(void *ud) {
  struct tsrv *s = ud;
  for (int iter = 0; iter < 100000; iter++) {
    struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->stop[0], .events = POLLIN}};
    if (poll(p, 2, 1000) < 0)
      break;
    if (p[1].revents)
      break;
    if (!(p[0].revents & POLLIN))
      continue;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct tconn c = {.fd = fd};
    if (s->ssl) {
      c.ssl = SSL_new(s->ssl);
      SSL_set_fd(c.ssl, fd);
      if (SSL_accept(c.ssl) != 1) {
        ERR_clear_error();
        SSL_free(c.ssl);
        close(fd);
        continue;
      }
    }
    serve_conn(s, &c);
    if (c.ssl) {
      SSL_shutdown(c.ssl);
      SSL_free(c.ssl);
    }
    ERR_clear_error();
    close(fd);
  }
  return NULL;
}

static int listen_tcp(uint16_t *ret_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(fd, 16), 0);
  socklen_t al = sizeof(a);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
  *ret_port = ntohs(a.sin_port);
  return fd;
}

static struct tsrv *srv_start(const char *unix_path, SSL_CTX *ssl) {
  struct tsrv *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  if (unix_path) {
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", unix_path);
    snprintf(s->unix_path, sizeof(s->unix_path), "%s", unix_path);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
  } else {
    s->lfd = listen_tcp(&s->port);
  }
  s->ssl = ssl;
  assert_int_equal(pipe(s->stop), 0);
  assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
  return s;
}

static void srv_stop(struct tsrv *s) {
  assert_int_equal(write(s->stop[1], "x", 1), 1);
  pthread_join(s->th, NULL);
  close(s->stop[0]);
  close(s->stop[1]);
  close(s->lfd);
  if (s->unix_path[0])
    unlink(s->unix_path);
  SSL_CTX_free(s->ssl);
  free(s);
}

static struct tsrv *g_srv;
static char g_url[128];

static const char *url(const char *path) {
  static char u[256];
  snprintf(u, sizeof(u), "%s%s", g_url, path);
  return u;
}

static int setup_plain(void **state) {
  (void)state;
  g_srv = srv_start(NULL, NULL);
  snprintf(g_url, sizeof(g_url), "http://127.0.0.1:%u", g_srv->port);
  return 0;
}

static int teardown_plain(void **state) {
  (void)state;
  srv_stop(g_srv);
  g_srv = NULL;
  return 0;
}

static long ms_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ---- plain HTTP -------------------------------------------------------------------------- */

static void test_get_headers(void **state) {
  (void)state;
  struct http_response r = {0};
  assert_int_equal(http_get(url("/hello"), NULL, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body.len, 5);
  assert_memory_equal(r.body.data, "hello", 5);
  assert_string_equal(http_response_header(&r, "x-test"), "abc");
  assert_string_equal(http_response_header(&r, "X-TEST"), "abc");
  assert_string_equal(http_response_header(&r, "x-multi"), "one");
  assert_string_equal(http_response_header(&r, "content-length"), "5");
  assert_null(http_response_header(&r, "x-absent"));
  assert_null(http_response_header(&r, "x-tes"));
  http_response_free(&r);
  http_response_free(&r); /* idempotent */
  http_response_free(NULL);
}

static void test_status_codes(void **state) {
  (void)state;
  static const int codes[] = {201, 204, 301, 400, 404, 500, 503};
  for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
    char p[32];
    snprintf(p, sizeof(p), "/status/%d", codes[i]);
    struct http_response r = {0};
    assert_int_equal(http_get(url(p), NULL, &r), 0);
    assert_int_equal(r.status, codes[i]);
    assert_int_equal(r.body.len, codes[i] == 204 ? 0 : 1);
    http_response_free(&r);
  }
  struct http_response r = {0};
  assert_int_equal(http_get(url("/nothing-here"), NULL, &r), 0);
  assert_int_equal(r.status, 404);
  http_response_free(&r);
}

static void test_post_body(void **state) {
  (void)state;
  static const uint8_t bin[] = {'a', 0, 'b', 0xff, '\r', '\n', 'c'};
  const char *hdrs[] = {"X-Custom: v1", NULL};
  struct http_client_opts o = {.headers = hdrs};
  struct http_response r = {0};
  assert_int_equal(
      http_post(url("/echo"), "application/octet-stream", bin, sizeof(bin), &o, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body.len, sizeof(bin));
  assert_memory_equal(r.body.data, bin, sizeof(bin));
  assert_string_equal(http_response_header(&r, "X-Method"), "POST");
  assert_string_equal(http_response_header(&r, "X-Content-Type"), "application/octet-stream");
  assert_string_equal(http_response_header(&r, "X-Got-Header"), "v1");
  http_response_free(&r);

  /* No content type given: none sent (curl would otherwise invent one). Empty body. */
  assert_int_equal(http_post(url("/echo"), NULL, NULL, 0, NULL, &r), 0);
  assert_string_equal(http_response_header(&r, "X-Content-Type"), "none");
  assert_string_equal(http_response_header(&r, "X-Method"), "POST");
  assert_string_equal(http_response_header(&r, "X-Got-Header"), "none");
  assert_int_equal(r.body.len, 0);
  http_response_free(&r);

  /* Other methods. */
  assert_int_equal(http_request("PUT", url("/echo"), "text/plain", "xyz", 3, NULL, &r), 0);
  assert_string_equal(http_response_header(&r, "X-Method"), "PUT");
  assert_memory_equal(r.body.data, "xyz", 3);
  http_response_free(&r);
  assert_int_equal(http_request("DELETE", url("/echo"), NULL, NULL, 0, NULL, &r), 0);
  assert_string_equal(http_response_header(&r, "X-Method"), "DELETE");
  http_response_free(&r);
  /* A large body (1 MiB - 1) goes through without "Expect: 100-continue" stalls. */
  size_t big = (1 << 20) - 1;
  uint8_t *p = malloc(big);
  assert_non_null(p);
  memset(p, 'z', big);
  assert_int_equal(http_post(url("/echo"), "application/octet-stream", p, big, NULL, &r), 0);
  assert_int_equal(r.body.len, big);
  assert_memory_equal(r.body.data, p, big);
  http_response_free(&r);
  free(p);
}

static void test_body_cap(void **state) {
  (void)state;
  struct http_client_opts o = {.max_body = 1000};
  struct http_response r = {0};
  assert_int_equal(http_get(url("/big/1000"), &o, &r), 0);
  assert_int_equal(r.body.len, 1000);
  http_response_free(&r);
  /* Announced by Content-Length and over the cap. */
  assert_int_equal(http_get(url("/big/1001"), &o, &r), -ENOBUFS);
  assert_int_equal(r.body.len, 0);
  assert_null(r.body.data);
  /* Close-delimited, no length: caught while receiving, not truncated. */
  assert_int_equal(http_get(url("/bigclose/1000"), &o, &r), 0);
  assert_int_equal(r.body.len, 1000);
  http_response_free(&r);
  assert_int_equal(http_get(url("/bigclose/50000"), &o, &r), -ENOBUFS);
  assert_null(r.body.data);
  /* Default cap 16 MiB. */
  char p[64];
  snprintf(p, sizeof(p), "/big/%zu", HTTP_CLIENT_DEFAULT_MAX_BODY + 1);
  assert_int_equal(http_get(url(p), NULL, &r), -ENOBUFS);
  snprintf(p, sizeof(p), "/bigclose/%zu", HTTP_CLIENT_DEFAULT_MAX_BODY + 1);
  assert_int_equal(http_get(url(p), NULL, &r), -ENOBUFS);
  snprintf(p, sizeof(p), "/bigclose/%zu", (size_t)3 << 20);
  assert_int_equal(http_get(url(p), NULL, &r), 0);
  assert_int_equal(r.body.len, (size_t)3 << 20);
  http_response_free(&r);
}

static void test_header_cap(void **state) {
  (void)state;
  struct http_client_opts o = {.max_header_bytes = 4096};
  struct http_response r = {0};
  assert_int_equal(http_get(url("/manyheaders/10"), &o, &r), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(http_response_header(&r, "x-h9"));
  http_response_free(&r);
  assert_int_equal(http_get(url("/manyheaders/60"), &o, &r), -ENOBUFS);
  /* Default cap (64 KiB) and the header count cap. */
  assert_int_equal(http_get(url("/manyheaders/100"), NULL, &r), 0);
  http_response_free(&r);
  assert_int_equal(http_get(url("/manyheaders/300"), NULL, &r), -ENOBUFS);
  assert_int_equal(http_get(url("/manyheaders/1000"), NULL, &r), -ENOBUFS);
  /* A header line without a colon is malformed. */
  assert_int_equal(http_get(url("/badheader"), NULL, &r), -EBADMSG);
}

static void test_timeout(void **state) {
  (void)state;
  struct http_client_opts o = {.timeout_ms = 400};
  struct http_response r = {0};
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(http_get(url("/hang"), &o, &r), -ETIMEDOUT);
  long el = ms_since(&t0);
  assert_true(el >= 350);
  assert_true(el < 3000);
  /* A server that accepts TCP but never speaks TLS: the handshake times out too. */
  uint16_t port;
  int fd = listen_tcp(&port);
  char u[64];
  snprintf(u, sizeof(u), "https://127.0.0.1:%u/", port);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(http_get(u, &o, &r), -ETIMEDOUT);
  assert_true(ms_since(&t0) < 3000);
  /* connect_timeout bounded by the total. */
  o.connect_timeout_ms = 100000;
  snprintf(u, sizeof(u), "http://127.0.0.1:%u/", port);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(http_get(u, &o, &r), -ETIMEDOUT);
  assert_true(ms_since(&t0) < 3000);
  close(fd);
}

static void test_refused_and_bad_args(void **state) {
  (void)state;
  uint16_t port;
  int fd = listen_tcp(&port);
  close(fd);
  char u[64];
  snprintf(u, sizeof(u), "http://127.0.0.1:%u/", port);
  struct http_response r = {0};
  assert_int_equal(http_get(u, NULL, &r), -ECONNREFUSED);

  assert_int_equal(http_get("ftp://127.0.0.1/x", NULL, &r), -EINVAL);
  assert_int_equal(http_get("file:///etc/passwd", NULL, &r), -EINVAL);
  assert_int_equal(http_get("gopher://127.0.0.1/", NULL, &r), -EINVAL);
  assert_int_equal(http_get("127.0.0.1/x", NULL, &r), -EINVAL);
  assert_int_equal(http_get("http://127.0.0.1/a b", NULL, &r), -EINVAL);
  assert_int_equal(http_get("http://127.0.0.1/a\r\nX: y", NULL, &r), -EINVAL);
  assert_int_equal(http_get(NULL, NULL, &r), -EINVAL);
  assert_int_equal(http_request("get", url("/hello"), NULL, NULL, 0, NULL, &r), -EINVAL);
  assert_int_equal(http_request("G\r\nET", url("/hello"), NULL, NULL, 0, NULL, &r), -EINVAL);
  assert_int_equal(http_request("POST", url("/echo"), NULL, NULL, 5, NULL, &r), -EINVAL);
  assert_int_equal(http_post(url("/echo"), "text/plain\r\nX-Evil: 1", "a", 1, NULL, &r), -EINVAL);
  const char *bad1[] = {"X-A: ok\r\nX-Evil: 1", NULL};
  const char *bad2[] = {"NoColon", NULL};
  const char *bad3[] = {"Bad Name: v", NULL};
  struct http_client_opts o = {.headers = bad1};
  assert_int_equal(http_get(url("/hello"), &o, &r), -EINVAL);
  o.headers = bad2;
  assert_int_equal(http_get(url("/hello"), &o, &r), -EINVAL);
  o.headers = bad3;
  assert_int_equal(http_get(url("/hello"), &o, &r), -EINVAL);
  struct http_client_opts o2 = {.ca_file = "/nonexistent/ca.pem"};
  assert_int_equal(http_get(url("/hello"), &o2, &r), -ENOENT);
  struct http_client_opts o3 = {.client_cert_file = "/etc/hostname"};
  assert_int_equal(http_get(url("/hello"), &o3, &r), -EINVAL); /* cert without key */
  struct http_client_opts o4 = {.timeout_ms = -1};
  assert_int_equal(http_get(url("/hello"), &o4, &r), -EINVAL);
  assert_null(r.body.data);
  assert_int_equal(r.n_headers, 0);
}

static void test_redirects(void **state) {
  (void)state;
  struct http_response r = {0};
  assert_int_equal(http_get(url("/redirect"), NULL, &r), 0);
  assert_int_equal(r.status, 302);
  assert_string_equal(http_response_header(&r, "location"), "/hello");
  http_response_free(&r);
  struct http_client_opts o = {.follow_redirects = true};
  assert_int_equal(http_get(url("/redirect"), &o, &r), 0);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body.data, "hello", 5);
  assert_null(http_response_header(&r, "location")); /* headers of the final response only */
  assert_string_equal(http_response_header(&r, "x-test"), "abc");
  http_response_free(&r);
  /* Redirects to other protocols are refused even when following. */
  assert_true(http_get(url("/redirect-ftp"), &o, &r) < 0);
  assert_null(r.body.data);
}

/* ud is the URL, built once by the caller: url() returns a static buffer that threads must not
 * share. */
static void *thread_get(void *ud) {
  const char *u = ud;
  intptr_t fails = 0;
  for (int i = 0; i < 5; i++) {
    struct http_response r = {0};
    if (http_get(u, NULL, &r) != 0 || r.status != 200 || r.body.len != 5)
      fails++;
    http_response_free(&r);
  }
  return (void *)fails;
}

static void test_threads(void **state) {
  (void)state;
  pthread_t th[4];
  int before = atomic_load(&g_srv->n_requests);
  _cleanup_free_ char *u = strdup(url("/hello"));
  assert_non_null(u);
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, thread_get, u), 0);
  for (int i = 0; i < 4; i++) {
    void *res;
    pthread_join(th[i], &res);
    assert_int_equal((intptr_t)res, 0);
  }
  assert_int_equal(atomic_load(&g_srv->n_requests) - before, 20);
}

static void test_url_codec(void **state) {
  (void)state;
  char *s = NULL;
  /* Decoding is str_pct_decode (test_str.c); the round trip here. */
  assert_int_equal(http_url_encode("a b/c+d~e.f_g-h\n", &s), 0);
  assert_string_equal(s, "a%20b%2Fc%2Bd~e.f_g-h%0A");
  char *back = NULL;
  assert_int_equal(str_pct_decode(s, strlen(s), 0, &back, NULL), 0);
  assert_string_equal(back, "a b/c+d~e.f_g-h\n");
  free(back);
  free(s);
}

/* ---- unix socket ------------------------------------------------------------------------- */

static void test_unix_socket(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char path[256];
  snprintf(path, sizeof(path), "%s/s.sock", dir);
  struct tsrv *s = srv_start(path, NULL);
  struct http_client_opts o = {.unix_socket = path};
  struct http_response r = {0};
  assert_int_equal(http_get("http://localhost/hello", &o, &r), 0);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body.data, "hello", 5);
  http_response_free(&r);
  assert_int_equal(http_post("http://localhost/echo", "application/json", "{}", 2, &o, &r), 0);
  assert_memory_equal(r.body.data, "{}", 2);
  assert_string_equal(http_response_header(&r, "x-content-type"), "application/json");
  http_response_free(&r);
  assert_int_equal(atomic_load(&s->n_requests), 2);
  srv_stop(s);
  /* Nobody listening any more. */
  assert_true(http_get("http://localhost/hello", &o, &r) < 0);
  o.unix_socket = "/nonexistent/dir/sock";
  assert_true(http_get("http://localhost/hello", &o, &r) < 0);
  tu_rm_rf(dir);
  free(dir);
}

/* ---- TLS and mTLS ------------------------------------------------------------------------ */

struct pki {
  char *dir;
  char ca[256], other_ca[256], client_cert[256], client_key[256], rogue_cert[256], rogue_key[256];
  EVP_PKEY *ca_key, *srv_key;
  X509 *ca_cert, *srv_cert;
};

static void write_pem_cert(X509 *c, const char *path) {
  struct buf b = BUF_INIT(1 << 16);
  assert_int_equal(x509_cert_to_pem(c, &b), 0);
  assert_int_equal(file_write_atomic(path, b.data, b.len, 0644), 0);
  buf_free(&b);
}

static void write_pem_key(EVP_PKEY *k, const char *path) {
  struct buf b = BUF_INIT(1 << 16);
  assert_int_equal(key_to_pkcs8_pem(k, &b), 0);
  assert_int_equal(file_write_atomic(path, b.data, b.len, 0600), 0);
  buf_free(&b);
}

static X509 *make_ca(const char *cn, EVP_PKEY **ret_key) {
  assert_int_equal(key_p256_generate(ret_key), 0);
  struct x509_params p = {.subject_cn = cn, .is_ca = true, .path_len = -1,
                          .key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN,
                          .not_before = time(NULL) - 3600, .not_after = time(NULL) + 86400,
                          .skid_akid = true};
  X509 *c = NULL;
  assert_int_equal(x509_cert_build(&p, *ret_key, NULL, NULL, &c), 0);
  return c;
}

static X509 *make_leaf(const char *cn, unsigned eku, X509 *ca, EVP_PKEY *ca_key,
                       EVP_PKEY **ret_key) {
  assert_int_equal(key_p256_generate(ret_key), 0);
  const char *sans[] = {"localhost"};
  struct x509_params p = {.subject_cn = cn, .dns_sans = sans, .n_dns_sans = 1, .path_len = -1,
                          .key_usage = X509_KU_DIGITAL_SIGNATURE, .ext_key_usage = eku,
                          .not_before = time(NULL) - 3600, .not_after = time(NULL) + 86400,
                          .skid_akid = true};
  X509 *c = NULL;
  assert_int_equal(x509_cert_build(&p, *ret_key, ca, ca_key, &c), 0);
  return c;
}

static struct pki g_pki;

static int setup_pki(void **state) {
  (void)state;
  struct pki *k = &g_pki;
  k->dir = tu_mkdtemp();
  k->ca_cert = make_ca("Test CA", &k->ca_key);
  k->srv_cert = make_leaf("localhost", X509_EKU_SERVER_AUTH, k->ca_cert, k->ca_key, &k->srv_key);
  snprintf(k->ca, sizeof(k->ca), "%s/ca.pem", k->dir);
  write_pem_cert(k->ca_cert, k->ca);

  EVP_PKEY *ck = NULL, *ok = NULL, *rk = NULL;
  X509 *cc = make_leaf("client-one", X509_EKU_CLIENT_AUTH, k->ca_cert, k->ca_key, &ck);
  snprintf(k->client_cert, sizeof(k->client_cert), "%s/client.pem", k->dir);
  snprintf(k->client_key, sizeof(k->client_key), "%s/client.key", k->dir);
  write_pem_cert(cc, k->client_cert);
  write_pem_key(ck, k->client_key);

  X509 *oca = make_ca("Other CA", &ok);
  snprintf(k->other_ca, sizeof(k->other_ca), "%s/other_ca.pem", k->dir);
  write_pem_cert(oca, k->other_ca);
  X509 *rc = make_leaf("rogue", X509_EKU_CLIENT_AUTH, oca, ok, &rk);
  snprintf(k->rogue_cert, sizeof(k->rogue_cert), "%s/rogue.pem", k->dir);
  snprintf(k->rogue_key, sizeof(k->rogue_key), "%s/rogue.key", k->dir);
  write_pem_cert(rc, k->rogue_cert);
  write_pem_key(rk, k->rogue_key);
  X509_free(cc);
  X509_free(oca);
  X509_free(rc);
  EVP_PKEY_free(ck);
  EVP_PKEY_free(ok);
  EVP_PKEY_free(rk);
  return 0;
}

static int teardown_pki(void **state) {
  (void)state;
  X509_free(g_pki.ca_cert);
  X509_free(g_pki.srv_cert);
  EVP_PKEY_free(g_pki.ca_key);
  EVP_PKEY_free(g_pki.srv_key);
  tu_rm_rf(g_pki.dir);
  free(g_pki.dir);
  return 0;
}

static SSL_CTX *server_ctx(bool require_client_cert) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  assert_non_null(ctx);
  assert_int_equal(SSL_CTX_use_certificate(ctx, g_pki.srv_cert), 1);
  assert_int_equal(SSL_CTX_use_PrivateKey(ctx, g_pki.srv_key), 1);
  if (require_client_cert) {
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    assert_int_equal(X509_STORE_add_cert(st, g_pki.ca_cert), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  return ctx;
}

static void test_https(void **state) {
  (void)state;
  struct tsrv *s = srv_start(NULL, server_ctx(false));
  char u[128];
  snprintf(u, sizeof(u), "https://localhost:%u/hello", s->port);
  struct http_client_opts o = {.ca_file = g_pki.ca, .timeout_ms = 5000};
  struct http_response r = {0};
  assert_int_equal(http_get(u, &o, &r), 0);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body.data, "hello", 5);
  http_response_free(&r);
  /* The server is not in the system CAs, nor under another CA. */
  struct http_client_opts sys = {.timeout_ms = 5000};
  assert_int_equal(http_get(u, &sys, &r), -EPROTO);
  struct http_client_opts other = {.ca_file = g_pki.other_ca, .timeout_ms = 5000};
  assert_int_equal(http_get(u, &other, &r), -EPROTO);
  /* Host name mismatch: the cert is for "localhost", not 127.0.0.1. */
  char u2[128];
  snprintf(u2, sizeof(u2), "https://127.0.0.1:%u/hello", s->port);
  assert_int_equal(http_get(u2, &o, &r), -EPROTO);
  /* Explicitly insecure. */
  struct http_client_opts ins = {.insecure_skip_verify = true, .timeout_ms = 5000};
  assert_int_equal(http_get(u2, &ins, &r), 0);
  assert_int_equal(r.status, 200);
  http_response_free(&r);
  /* Plain HTTP to a TLS port fails cleanly. */
  snprintf(u2, sizeof(u2), "http://localhost:%u/hello", s->port);
  assert_true(http_get(u2, &o, &r) < 0);
  srv_stop(s);
}

static void test_mtls(void **state) {
  (void)state;
  struct tsrv *s = srv_start(NULL, server_ctx(true));
  char u[128];
  snprintf(u, sizeof(u), "https://localhost:%u/whoami", s->port);
  struct http_client_opts o = {.ca_file = g_pki.ca,
                               .client_cert_file = g_pki.client_cert,
                               .client_key_file = g_pki.client_key,
                               .timeout_ms = 5000};
  struct http_response r = {0};
  assert_int_equal(http_get(u, &o, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body.len, strlen("client-one"));
  assert_memory_equal(r.body.data, "client-one", r.body.len);
  http_response_free(&r);
  /* No client certificate: refused. */
  struct http_client_opts no = {.ca_file = g_pki.ca, .timeout_ms = 5000};
  assert_true(http_get(u, &no, &r) < 0);
  assert_null(r.body.data);
  /* A client certificate from another CA: refused. */
  struct http_client_opts rogue = {.ca_file = g_pki.ca,
                                   .client_cert_file = g_pki.rogue_cert,
                                   .client_key_file = g_pki.rogue_key,
                                   .timeout_ms = 5000};
  assert_true(http_get(u, &rogue, &r) < 0);
  /* Key that does not match the certificate. */
  struct http_client_opts mism = {.ca_file = g_pki.ca,
                                  .client_cert_file = g_pki.client_cert,
                                  .client_key_file = g_pki.rogue_key,
                                  .timeout_ms = 5000};
  assert_int_equal(http_get(u, &mism, &r), -EPROTO);
  /* Missing key file. */
  struct http_client_opts nokey = {.ca_file = g_pki.ca,
                                   .client_cert_file = g_pki.client_cert,
                                   .client_key_file = "/nonexistent.key",
                                   .timeout_ms = 5000};
  assert_int_equal(http_get(u, &nokey, &r), -ENOENT);
  assert_int_equal(atomic_load(&s->n_requests), 1);
  srv_stop(s);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* the TLS test server writes to clients that went away */
  const struct CMUnitTest plain[] = {
      cmocka_unit_test(test_get_headers),      cmocka_unit_test(test_status_codes),
      cmocka_unit_test(test_post_body),        cmocka_unit_test(test_body_cap),
      cmocka_unit_test(test_header_cap),       cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_refused_and_bad_args), cmocka_unit_test(test_redirects),
      cmocka_unit_test(test_threads),          cmocka_unit_test(test_url_codec),
      cmocka_unit_test(test_unix_socket),
  };
  const struct CMUnitTest tls[] = {
      cmocka_unit_test(test_https),
      cmocka_unit_test(test_mtls),
  };
  int fails = cmocka_run_group_tests_name("http_client", plain, setup_plain, teardown_plain);
  fails += cmocka_run_group_tests_name("http_client_tls", tls, setup_pki, teardown_pki);
  return fails;
}
