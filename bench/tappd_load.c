/* HTTP/1.1 keep-alive load generator over a unix socket, for bench/tappd.
 *
 *   tappd_load -U SOCK -c CONNS -d SECONDS [-w WARMUP] [-m METHOD] [-p PATH] [-H 'Name: v']...
 *              [-b BODY] [-e SUBSTRING] [-s]
 *
 * One thread, one epoll loop, CONNS connections, each with one request in flight (send, read
 * the whole response, send the next). -s polls instead of sleeping in epoll_wait: at
 * concurrency 1 a sleeping client measures how fast this (virtual) CPU wakes up more than how
 * fast the server answers. Counts the responses that started after the warm-up and
 * finished before the deadline; prints one line
 *   rps=R p50_ms=X p99_ms=Y n=N errors=E cpu=C
 * where cpu is this process's CPU time over the wall time in percent (near 100 means the
 * generator itself is the limit). Any status other than 200, a dropped connection or a first
 * body without SUBSTRING counts as an error; exit status 1 when there were errors. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define MAX_HEADERS 16
#define RBUF_MAX (16u << 20)

struct conn {
  int fd;
  char *rbuf;
  size_t rlen, rcap;
  size_t wpos;       /* bytes of the request written */
  uint64_t t_start;  /* ns, when the request was first written */
  bool busy;
  bool want_out;     /* EPOLLOUT registered: a request is partly written */
};

static const char *sock_path;
static int ep = -1;
static char *req;
static size_t req_len;
static const char *expect;
static bool first_checked;

static uint64_t *lat;
static size_t n_lat, cap_lat;
static uint64_t n_errors;
static uint64_t t_measure, t_end;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "tappd_load: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int conn_open(struct conn *c) {
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen(sock_path) >= sizeof(sa.sun_path)) {
    fprintf(stderr, "tappd_load: socket path too long\n");
    exit(2);
  }
  strcpy(sa.sun_path, sock_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
    close(fd);
    return -errno;
  }
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
  /* EPOLLOUT only while a request waits for room: registered all the time, every read the
   * server does would wake this process for nothing (and charge the server for the wakeup). */
  struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = c };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  c->fd = fd;
  c->rlen = 0;
  c->wpos = 0;
  c->busy = false;
  c->want_out = false;
  return 0;
}

static void conn_close(struct conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

static void record(uint64_t start, uint64_t end) {
  if (start < t_measure || end > t_end) return;
  if (n_lat == cap_lat) {
    cap_lat = cap_lat ? cap_lat * 2 : 65536;
    lat = realloc(lat, cap_lat * sizeof(*lat));
    if (!lat) die("realloc");
  }
  lat[n_lat++] = end - start;
}

static void conn_want_out(struct conn *c, bool on) {
  if (c->want_out == on) return;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLET | (on ? EPOLLOUT : 0), .data.ptr = c };
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
  c->want_out = on;
}

/* Writes what is left of the request. 0 = done or would block, -1 = connection broken. */
static int conn_write(struct conn *c) {
  if (!c->busy) {
    c->busy = true;
    c->wpos = 0;
    c->t_start = now_ns();
  }
  while (c->wpos < req_len) {
    ssize_t n = send(c->fd, req + c->wpos, req_len - c->wpos, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn_want_out(c, true);
        return 0;
      }
      if (errno == EINTR) continue;
      return -1;
    }
    c->wpos += (size_t) n;
  }
  conn_want_out(c, false);
  return 0;
}

/* Length of a complete chunked body starting at p, 0 if incomplete, -1 if malformed. */
static long chunked_len(const char *p, size_t len) {
  size_t i = 0;
  for (;;) {
    const char *eol = memmem(p + i, len - i, "\r\n", 2);
    if (!eol) return 0;
    char *endp;
    unsigned long sz = strtoul(p + i, &endp, 16);
    if (endp == p + i) return -1;
    i = (size_t) (eol - p) + 2;
    if (sz == 0) {
      /* trailers until an empty line */
      for (;;) {
        const char *e2 = memmem(p + i, len - i, "\r\n", 2);
        if (!e2) return 0;
        bool empty = e2 == p + i;
        i = (size_t) (e2 - p) + 2;
        if (empty) return (long) i;
      }
    }
    if (len - i < sz + 2) return 0;
    i += sz + 2;
  }
}

/* Parses a response in c->rbuf. Returns its total length, 0 if incomplete, -1 if malformed.
 * *ret_status, *ret_close, *ret_body_off, *ret_body_len describe it. */
static long parse_response(struct conn *c, int *ret_status, bool *ret_close, size_t *ret_body_off,
                           size_t *ret_body_len) {
  const char *b = c->rbuf;
  const char *hend = memmem(b, c->rlen, "\r\n\r\n", 4);
  if (!hend) return c->rlen > (64u << 10) ? -1 : 0;
  size_t hlen = (size_t) (hend - b) + 4;
  if (c->rlen < 12 || memcmp(b, "HTTP/1.", 7) != 0) return -1;
  int status = atoi(b + 9);
  long clen = -1;
  bool chunked = false, close_conn = b[7] == '0';
  for (const char *l = memchr(b, '\n', hlen) + 1; l < hend;) {
    const char *eol = memchr(l, '\n', (size_t) (hend + 2 - l));
    if (!eol) break;
    if (!strncasecmp(l, "content-length:", 15))
      clen = strtol(l + 15, NULL, 10);
    else if (!strncasecmp(l, "transfer-encoding:", 18) && memmem(l, (size_t) (eol - l), "chunked", 7))
      chunked = true;
    else if (!strncasecmp(l, "connection:", 11) && memmem(l, (size_t) (eol - l), "close", 5))
      close_conn = true;
    l = eol + 1;
  }
  size_t total;
  if (chunked) {
    long n = chunked_len(b + hlen, c->rlen - hlen);
    if (n <= 0) return n;
    total = hlen + (size_t) n;
  } else if (clen >= 0) {
    if (c->rlen < hlen + (size_t) clen) return 0;
    total = hlen + (size_t) clen;
  } else {
    return -1; /* a keep-alive reply needs a length */
  }
  *ret_status = status;
  *ret_close = close_conn;
  *ret_body_off = hlen;
  *ret_body_len = total - hlen;
  return (long) total;
}

static void count_error(const char *why, const struct conn *c) {
  if (n_errors < 3) {
    fprintf(stderr, "tappd_load: %s", why);
    if (c && c->rlen) fprintf(stderr, ": %.*s", (int) (c->rlen < 600 ? c->rlen : 600), c->rbuf);
    fputc('\n', stderr);
  }
  n_errors++;
}

/* Reads and handles every complete response. Returns -1 when the connection must be reopened. */
static int conn_read(struct conn *c) {
  bool eof = false;
  for (;;) {
    if (c->rcap - c->rlen < 4096) {
      if (c->rcap >= RBUF_MAX) return -1;
      c->rcap = c->rcap ? c->rcap * 2 : 16384;
      c->rbuf = realloc(c->rbuf, c->rcap);
      if (!c->rbuf) die("realloc");
    }
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen - 1, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      if (c->busy) count_error("connection error", NULL);
      return -1;
    }
    if (n == 0) {
      eof = true;
      break;
    }
    c->rlen += (size_t) n;
  }
  c->rbuf[c->rlen] = 0;
  for (;;) {
    int status = 0;
    bool close_conn = false;
    size_t boff = 0, blen = 0;
    long total = parse_response(c, &status, &close_conn, &boff, &blen);
    if (total == 0) {
      if (!eof) return 0;
      if (c->busy) count_error("connection closed mid-request", c);
      return -1;
    }
    if (total < 0) {
      count_error("malformed response", c);
      return -1;
    }
    uint64_t t = now_ns();
    if (!c->busy) {
      count_error("response without a request", c);
      return -1;
    }
    if (status != 200) {
      count_error("status is not 200", c);
    } else {
      if (expect && !first_checked) {
        first_checked = true;
        if (!memmem(c->rbuf + boff, blen, expect, strlen(expect))) count_error("body lacks the expected text", c);
      }
      record(c->t_start, t);
    }
    c->busy = false;
    memmove(c->rbuf, c->rbuf + total, c->rlen - (size_t) total);
    c->rlen -= (size_t) total;
    if (close_conn || eof) return -1;
    if (t >= t_end) return 0;
    if (conn_write(c) < 0) return -1;
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

static void usage(void) {
  fprintf(stderr, "usage: tappd_load -U SOCK -c CONNS -d SECONDS [-w WARMUP] [-m METHOD] [-p PATH]\n"
                  "                  [-H 'Name: value']... [-b BODY] [-e SUBSTRING] [-s]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *method = "GET", *path = "/", *body = NULL;
  const char *headers[MAX_HEADERS];
  size_t n_headers = 0;
  int conns = 1;
  double secs = 3, warm = 0.5;
  int opt;
  bool spin = false;
  while ((opt = getopt(argc, argv, "U:c:d:w:m:p:H:b:e:s")) != -1) {
    switch (opt) {
    case 'U': sock_path = optarg; break;
    case 'c': conns = atoi(optarg); break;
    case 'd': secs = atof(optarg); break;
    case 'w': warm = atof(optarg); break;
    case 'm': method = optarg; break;
    case 'p': path = optarg; break;
    case 'H':
      if (n_headers == MAX_HEADERS) usage();
      headers[n_headers++] = optarg;
      break;
    case 'b': body = optarg; break;
    case 'e': expect = optarg; break;
    case 's': spin = true; break;
    default: usage();
    }
  }
  if (!sock_path || conns < 1 || conns > MAX_CONNS || secs <= 0 || warm < 0) usage();

  size_t cap = strlen(method) + strlen(path) + 256 + (body ? strlen(body) : 0);
  for (size_t i = 0; i < n_headers; i++) cap += strlen(headers[i]) + 2;
  req = malloc(cap);
  if (!req) die("malloc");
  int w = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: localhost\r\n", method, path);
  for (size_t i = 0; i < n_headers; i++) w += snprintf(req + w, cap - (size_t) w, "%s\r\n", headers[i]);
  if (body) w += snprintf(req + w, cap - (size_t) w, "Content-Length: %zu\r\n", strlen(body));
  w += snprintf(req + w, cap - (size_t) w, "\r\n%s", body ? body : "");
  req_len = (size_t) w;

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct conn *cs = calloc((size_t) conns, sizeof(*cs));
  if (!cs) die("calloc");

  uint64_t t0 = now_ns();
  t_measure = t0 + (uint64_t) (warm * 1e9);
  t_end = t_measure + (uint64_t) (secs * 1e9);
  struct rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);

  for (int i = 0; i < conns; i++) {
    cs[i].fd = -1;
    int r = conn_open(&cs[i]);
    if (r < 0) {
      errno = -r;
      die(sock_path);
    }
    if (conn_write(&cs[i]) < 0) die("send");
  }

  struct epoll_event evs[256];
  for (;;) {
    uint64_t t = now_ns();
    if (t >= t_end) break;
    int timeout_ms = spin ? 0 : (int) ((t_end - t) / 1000000u) + 1;
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      int r = 0;
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) r = conn_read(c);
      if (r == 0 && (evs[i].events & EPOLLOUT) && c->busy && c->wpos < req_len) r = conn_write(c);
      if (r < 0) {
        conn_close(c);
        if (now_ns() < t_end) {
          if (conn_open(c) < 0) {
            count_error("reconnect failed", NULL);
            continue;
          }
          if (conn_write(c) < 0) count_error("send failed", NULL);
        }
      }
    }
  }
  struct rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (double) (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
               (double) (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  double wall = (double) (now_ns() - t0) / 1e9;

  if (n_lat) qsort(lat, n_lat, sizeof(*lat), cmp_u64);
  double p50 = n_lat ? (double) lat[(n_lat - 1) / 2] / 1e6 : 0;
  double p99 = n_lat ? (double) lat[(size_t) ((double) (n_lat - 1) * 0.99)] / 1e6 : 0;
  if (n_lat == 0) count_error("no response completed", NULL);
  printf("rps=%.1f p50_ms=%.3f p99_ms=%.3f n=%zu errors=%llu cpu=%.0f\n", (double) n_lat / secs, p50, p99, n_lat,
         (unsigned long long) n_errors, 100.0 * cpu / wall);

  for (int i = 0; i < conns; i++) {
    conn_close(&cs[i]);
    free(cs[i].rbuf);
  }
  free(cs);
  free(lat);
  free(req);
  close(ep);
  return n_errors ? 1 : 0;
}
