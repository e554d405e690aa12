/* HTTPS load generator with a client certificate (mutual TLS), for bench/kms.
 *
 *   kms_load -P PORT --cert PEM --key PEM [-a ADDR] [-c CONNS] [-d SECONDS] [-w WARMUP] [-k]
 *            [-p PATH] [-b BODY] [-e SUBSTRING]
 *
 * CONNS threads, each with one blocking TLS connection and one request in flight
 * (HTTP/1.1 POST PATH with a JSON BODY). Without -k every request runs on a new TCP + TLS
 * connection (full handshake: no session tickets or resumption, so the client certificate is
 * sent and checked every time; the request says "Connection: close"); with -k the connection
 * is kept alive and reused. Counts the requests that started after the warm-up and finished
 * before the deadline and prints one line
 *   rps=R p50_ms=X p99_ms=Y n=N errors=E cpu=C handshake_ms=H
 * where a new-connection latency includes connect and handshake, handshake_ms is the mean
 * client-observed handshake time, and cpu is this process's CPU time over the wall time in
 * percent. Any status other than 200, a failed handshake, a dropped connection or a first body
 * without SUBSTRING is an error (exit status 1). Every socket operation times out after 10 s,
 * so a stuck server cannot hold the run past the deadline by more than that. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define RBUF_MAX (4u << 20)
#define IO_TIMEOUT_S 10

static struct sockaddr_in addr;
static SSL_CTX *ctx;
static char *req;
static size_t req_len;
static const char *expect;
static bool keep_alive;
static uint64_t t_measure, t_end;
static atomic_bool first_checked;
static atomic_ullong n_errors, n_handshakes, handshake_ns;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

struct worker {
  pthread_t tid;
  uint64_t *lat;
  size_t n_lat, cap_lat;
  char *rbuf;
  size_t rlen, rcap;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "kms_load: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void die_ssl(const char *what) {
  fprintf(stderr, "kms_load: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(2);
}

static void count_error(const char *why, const char *data, size_t len) {
  unsigned long long n = atomic_fetch_add(&n_errors, 1);
  if (n < 3) {
    pthread_mutex_lock(&err_lock);
    fprintf(stderr, "kms_load: %s", why);
    if (data && len)
      fprintf(stderr, ": %.*s", (int)(len < 600 ? len : 600), data);
    unsigned long e = ERR_peek_last_error();
    if (e) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof(buf));
      fprintf(stderr, " (%s)", buf);
    }
    fputc('\n', stderr);
    pthread_mutex_unlock(&err_lock);
  }
  ERR_clear_error();
}

static void record(struct worker *w, uint64_t start, uint64_t end) {
  if (start < t_measure || end > t_end)
    return;
  if (w->n_lat == w->cap_lat) {
    w->cap_lat = w->cap_lat ? w->cap_lat * 2 : 16384;
    w->lat = realloc(w->lat, w->cap_lat * sizeof(*w->lat));
    if (!w->lat)
      die("realloc");
  }
  w->lat[w->n_lat++] = end - start;
}

struct tls_conn {
  int fd;
  SSL *ssl;
};

static void conn_close(struct tls_conn *c, bool clean) {
  if (c->ssl) {
    if (clean)
      SSL_shutdown(c->ssl); /* close_notify, without waiting for the peer's */
    SSL_free(c->ssl);
  }
  if (c->fd >= 0)
    close(c->fd);
  c->ssl = NULL;
  c->fd = -1;
}

static int conn_open(struct tls_conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    die("socket");
  struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
  int one = 1;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
    count_error("connect failed", strerror(errno), strlen(strerror(errno)));
    conn_close(c, false);
    return -1;
  }
  c->ssl = SSL_new(ctx);
  if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
    die_ssl("SSL_new");
  uint64_t t0 = now_ns();
  if (SSL_connect(c->ssl) != 1) {
    count_error("TLS handshake failed", NULL, 0);
    conn_close(c, false);
    return -1;
  }
  atomic_fetch_add(&handshake_ns, now_ns() - t0);
  atomic_fetch_add(&n_handshakes, 1);
  return 0;
}

/* Length of a complete chunked body at p, 0 if incomplete, -1 if malformed. */
static long chunked_len(const char *p, size_t len) {
  size_t i = 0;
  for (;;) {
    const char *eol = memmem(p + i, len - i, "\r\n", 2);
    if (!eol)
      return 0;
    char *endp;
    unsigned long sz = strtoul(p + i, &endp, 16);
    if (endp == p + i || sz > RBUF_MAX)
      return -1;
    i = (size_t)(eol - p) + 2;
    if (sz == 0) {
      for (;;) {
        const char *e2 = memmem(p + i, len - i, "\r\n", 2);
        if (!e2)
          return 0;
        bool empty = e2 == p + i;
        i = (size_t)(e2 - p) + 2;
        if (empty)
          return (long)i;
      }
    }
    if (len - i < sz + 2)
      return 0;
    i += sz + 2;
  }
}

/* A complete response in w->rbuf: its length, 0 if incomplete, -1 if malformed. */
static long parse_response(struct worker *w, int *ret_status, bool *ret_close, size_t *ret_boff,
                           size_t *ret_blen) {
  const char *b = w->rbuf;
  const char *hend = memmem(b, w->rlen, "\r\n\r\n", 4);
  if (!hend)
    return w->rlen > (64u << 10) ? -1 : 0;
  size_t hlen = (size_t)(hend - b) + 4;
  if (w->rlen < 12 || memcmp(b, "HTTP/1.", 7) != 0)
    return -1;
  long clen = -1;
  bool chunked = false, close_conn = b[7] == '0';
  for (const char *l = (const char *)memchr(b, '\n', hlen) + 1; l < hend;) {
    const char *eol = memchr(l, '\n', (size_t)(hend + 2 - l));
    if (!eol)
      break;
    if (!strncasecmp(l, "content-length:", 15))
      clen = strtol(l + 15, NULL, 10);
    else if (!strncasecmp(l, "transfer-encoding:", 18) && memmem(l, (size_t)(eol - l), "chunked", 7))
      chunked = true;
    else if (!strncasecmp(l, "connection:", 11) && memmem(l, (size_t)(eol - l), "close", 5))
      close_conn = true;
    l = eol + 1;
  }
  size_t total;
  if (chunked) {
    long n = chunked_len(b + hlen, w->rlen - hlen);
    if (n <= 0)
      return n;
    total = hlen + (size_t)n;
  } else if (clen >= 0) {
    if (w->rlen < hlen + (size_t)clen)
      return 0;
    total = hlen + (size_t)clen;
  } else {
    return -1;
  }
  *ret_status = atoi(b + 9);
  *ret_close = close_conn;
  *ret_boff = hlen;
  *ret_blen = total - hlen;
  return (long)total;
}

/* One request and its response on c. 0 = done, connection reusable; 1 = done, connection must
 * be closed; -1 = failed (error counted). */
static int do_request(struct worker *w, struct tls_conn *c, uint64_t t_start) {
  size_t off = 0;
  while (off < req_len) {
    int n = SSL_write(c->ssl, req + off, (int)(req_len - off));
    if (n <= 0) {
      count_error("write failed", NULL, 0);
      return -1;
    }
    off += (size_t)n;
  }
  w->rlen = 0;
  for (;;) {
    int status = 0;
    bool close_conn = false;
    size_t boff = 0, blen = 0;
    long total = w->rlen ? parse_response(w, &status, &close_conn, &boff, &blen) : 0;
    if (total < 0) {
      count_error("malformed response", w->rbuf, w->rlen);
      return -1;
    }
    if (total > 0) {
      if ((size_t)total != w->rlen) {
        count_error("data after the response", w->rbuf, w->rlen);
        return -1;
      }
      if (status != 200) {
        count_error("status is not 200", w->rbuf, w->rlen);
        return 1;
      }
      if (expect && !atomic_exchange(&first_checked, true) &&
          !memmem(w->rbuf + boff, blen, expect, strlen(expect)))
        count_error("body lacks the expected text", w->rbuf, w->rlen);
      record(w, t_start, now_ns());
      return close_conn ? 1 : 0;
    }
    if (w->rcap - w->rlen < 4096) {
      if (w->rcap >= RBUF_MAX) {
        count_error("response too large", NULL, 0);
        return -1;
      }
      w->rcap = w->rcap ? w->rcap * 2 : 16384;
      w->rbuf = realloc(w->rbuf, w->rcap);
      if (!w->rbuf)
        die("realloc");
    }
    int n = SSL_read(c->ssl, w->rbuf + w->rlen, (int)(w->rcap - w->rlen - 1));
    if (n <= 0) {
      count_error("connection closed mid-response", w->rbuf, w->rlen);
      return -1;
    }
    w->rlen += (size_t)n;
  }
}

static void *worker_run(void *arg) {
  struct worker *w = arg;
  struct tls_conn c = {.fd = -1};
  while (now_ns() < t_end) {
    uint64_t t0 = now_ns();
    if (!c.ssl && conn_open(&c) < 0) {
      usleep(1000);
      continue;
    }
    int r = do_request(w, &c, keep_alive ? now_ns() : t0);
    if (r != 0 || !keep_alive)
      conn_close(&c, r >= 0);
  }
  conn_close(&c, true);
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void usage(void) {
  fprintf(stderr, "usage: kms_load -P PORT --cert PEM --key PEM [-a ADDR] [-c CONNS] [-d SECONDS]\n"
                  "                [-w WARMUP] [-k] [-p PATH] [-b BODY] [-e SUBSTRING]\n");
  exit(2);
}

int main(int argc, char **argv) {
  enum { OPT_CERT = 0x100, OPT_KEY };
  static const struct option opts[] = {
      {"cert", required_argument, NULL, OPT_CERT},
      {"key", required_argument, NULL, OPT_KEY},
      {},
  };
  const char *host = "127.0.0.1", *path = "/prpc/KMS.GetAppKey?json", *body = "{}";
  const char *cert = NULL, *key = NULL;
  int conns = 1, port = 0, opt;
  double secs = 3, warm = 0.5;
  while ((opt = getopt_long(argc, argv, "a:P:c:d:w:kp:b:e:", opts, NULL)) != -1) {
    switch (opt) {
    case 'a': host = optarg; break;
    case 'P': port = atoi(optarg); break;
    case 'c': conns = atoi(optarg); break;
    case 'd': secs = atof(optarg); break;
    case 'w': warm = atof(optarg); break;
    case 'k': keep_alive = true; break;
    case 'p': path = optarg; break;
    case 'b': body = optarg; break;
    case 'e': expect = optarg; break;
    case OPT_CERT: cert = optarg; break;
    case OPT_KEY: key = optarg; break;
    default: usage();
    }
  }
  if (port <= 0 || port > 65535 || !cert || !key || conns < 1 || conns > MAX_CONNS || secs <= 0 ||
      secs > 600 || warm < 0 || warm > 60)
    usage();
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
    usage();

  ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
    die_ssl("SSL_CTX_new");
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
    die_ssl("loading the client certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1)
    die_ssl("loading the client key");
  /* The server is not authenticated here (its chain is not what is measured); every
   * handshake is a full one. */
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

  size_t cap = strlen(path) + strlen(host) + strlen(body) + 256;
  req = malloc(cap);
  if (!req)
    die("malloc");
  int n = snprintf(req, cap,
                   "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n%s\r\n%s",
                   path, host, port, strlen(body), keep_alive ? "" : "Connection: close\r\n", body);
  if (n < 0 || (size_t)n >= cap)
    usage();
  req_len = (size_t)n;

  struct worker *ws = calloc((size_t)conns, sizeof(*ws));
  if (!ws)
    die("calloc");
  uint64_t t0 = now_ns();
  t_measure = t0 + (uint64_t)(warm * 1e9);
  t_end = t_measure + (uint64_t)(secs * 1e9);
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  for (int i = 0; i < conns; i++) {
    errno = pthread_create(&ws[i].tid, NULL, worker_run, &ws[i]);
    if (errno)
      die("pthread_create");
  }
  size_t total = 0;
  for (int i = 0; i < conns; i++) {
    pthread_join(ws[i].tid, NULL);
    total += ws[i].n_lat;
  }
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                        ru0.ru_stime.tv_sec) +
               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                        ru0.ru_stime.tv_usec) / 1e6;
  double wall = (double)(now_ns() - t0) / 1e9;

  uint64_t *lat = malloc((total ? total : 1) * sizeof(*lat));
  if (!lat)
    die("malloc");
  size_t k = 0;
  for (int i = 0; i < conns; i++) {
    if (ws[i].n_lat)
      memcpy(lat + k, ws[i].lat, ws[i].n_lat * sizeof(*lat));
    k += ws[i].n_lat;
    free(ws[i].lat);
    free(ws[i].rbuf);
  }
  if (total)
    qsort(lat, total, sizeof(*lat), cmp_u64);
  double p50 = total ? (double)lat[(total - 1) / 2] / 1e6 : 0;
  double p99 = total ? (double)lat[(size_t)((double)(total - 1) * 0.99)] / 1e6 : 0;
  if (total == 0)
    count_error("no request completed", NULL, 0);
  unsigned long long hs = atomic_load(&n_handshakes);
  printf("rps=%.1f p50_ms=%.3f p99_ms=%.3f n=%zu errors=%llu cpu=%.0f handshake_ms=%.3f\n",
         (double)total / secs, p50, p99, total, (unsigned long long)atomic_load(&n_errors),
         100.0 * cpu / wall, hs ? (double)atomic_load(&handshake_ns) / (double)hs / 1e6 : 0.0);
  free(lat);
  free(ws);
  free(req);
  SSL_CTX_free(ctx);
  return atomic_load(&n_errors) ? 1 : 0;
}
