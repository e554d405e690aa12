/* TLS ingress proxy: accept, peek the ClientHello, route, connect, relay. */
#include "tproxy_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "tproxy_addrpool.h"
#include "tproxy_appconns.h"
#include "tproxy_certs.h"
#include "tproxy_dns.h"
#include "tproxy_fdlimit.h"
#include "tproxy_hosts.h"
#include "net/tls_hello.h"
#include "tproxy_route.h"

#define MAX_CANDIDATES 8     /* instances tried per connection */
#define ACCEPT_BATCH 64      /* accepts per listener event */
#define STEAL_BATCH 4        /* accepts per event on another worker's listener */
#define PUMP_ROUNDS 32       /* transfer rounds per event before yielding to others */
#define RELAY_BUF 16384      /* terminated: one TLS record of plaintext per direction */
#define PIPE_WANT (256 << 10) /* passthrough: pipe capacity asked for (F_SETPIPE_SZ); at most
                              * 2 x this per connection can sit in pipes */
#define PIPE_MIN 65536       /* the default capacity, always there */
#define TICK_MS 250          /* timeout sweep */

/* TLS alert descriptions sent before a session exists. */
#define ALERT_HANDSHAKE_FAILURE 40
#define ALERT_DECODE_ERROR 50
#define ALERT_INTERNAL_ERROR 80
#define ALERT_UNRECOGNIZED_NAME 112

enum counter {
  K_ACCEPTED,
  K_REJECTED_FULL,
  K_REJECTED_APP_FULL,
  K_REJECTED_PENDING_FULL,
  K_NO_FDS,
  K_ACCEPT_PAUSED,
  K_BAD_HELLO,
  K_NO_SNI,
  K_BAD_SNI,
  K_UNKNOWN_APP,
  K_DNS_FAILED,
  K_BACKEND_FAILED,
  K_HELLO_TIMEOUT,
  K_CONNECT_TIMEOUT,
  K_HANDSHAKE_FAILED,
  K_IDLE_TIMEOUT,
  K_PASSTHROUGH,
  K_TERMINATED,
  K_H2,
  K_BYTES_IN,
  K_BYTES_OUT,
  _K_MAX,
};

enum cstate { C_HELLO, C_DNS, C_CONNECT, C_HANDSHAKE, C_RELAY };

struct dir {
  int pipe[2];  /* passthrough */
  size_t inpipe, cap;
  uint8_t *buf; /* terminated */
  size_t off, len;
  bool eof;     /* the source ended */
  bool shut;    /* the end was passed on */
};

struct worker;

struct conn {
  struct worker *w;
  struct conn *prev, *next;
  int cfd, bfd;
  struct event *cev, *bev;
  enum cstate st;
  uint64_t deadline; /* monotonic ms: end of the current phase (relay: idle limit) */
  struct tproxy_route route;
  char sni[TLS_HELLO_SNI_MAX + 1];
  uint32_t cand[MAX_CANDIDATES];
  size_t n_cand, i_cand;
  int b_err; /* why the last backend connect failed (errno), for the warning */
  SSL *ssl;
  struct tproxy_dns_query *dq;
  bool c_rd, c_wr, b_rd, b_wr;
  bool pending;     /* counted in px->pending: waits for the rest of its hello, or DNS */
  bool app_counted; /* counted in px->apps for route.app_id */
  struct dir up, down; /* up: client → backend */
};

struct worker {
  struct tproxy_proxy *px;
  pthread_t th;
  bool started;
  struct event_base *base;
  int lfd;
  struct event *lev, *tick;
  struct event *resume; /* accepting again after a pause */
  bool paused;
  struct event **steal; /* the other workers' listeners, n_workers - 1 */
  size_t n_steal;
  struct tproxy_dns *dns;
  struct conn head; /* list sentinel */
  int pipes[TPROXY_PIPE_POOL_MAX][2];
  size_t n_pipes;
  uint8_t peek[TLS_HELLO_MAX_INPUT];
  _Atomic uint64_t k[_K_MAX];
};

struct tproxy_proxy {
  struct tproxy_proxy_opts o;
  char *listen_addr, *base_domain, *dns_servers;
  uint16_t port;
  unsigned n_workers;
  struct worker *w;
  atomic_uint active;
  atomic_uint pending;  /* connections waiting for the rest of a hello, or DNS */
  unsigned max_pending; /* max_conns / 8, at least 1 */
  struct tproxy_appconns *apps;
  /* One warning per condition per LOG_RATELIMIT_MS, shared by the workers. */
  struct log_ratelimit rl_accept, rl_full, rl_app_full, rl_pending_full, rl_fds, rl_backend;
};

static bool errno_is_resource(int e) {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void count(struct worker *w, enum counter k, uint64_t n) {
  atomic_fetch_add_explicit(&w->k[k], n, memory_order_relaxed);
}

/* ---------------------------------------------------------------- pipes */

static int pipe_get(struct worker *w, int ret[2]) {
  if (w->n_pipes) {
    w->n_pipes--;
    ret[0] = w->pipes[w->n_pipes][0];
    ret[1] = w->pipes[w->n_pipes][1];
    return 0;
  }
  if (pipe2(ret, O_NONBLOCK | O_CLOEXEC) < 0)
    return -errno;
  /* A bigger pipe keeps more bytes in flight per wakeup (best effort: capped by
   * /proc/sys/fs/pipe-max-size and the user's pipe quota). */
  (void)fcntl(ret[1], F_SETPIPE_SZ, PIPE_WANT);
  return 0;
}

static size_t pipe_cap(int fd) {
  int n = fcntl(fd, F_GETPIPE_SZ);
  return n >= PIPE_MIN ? (size_t)n : PIPE_MIN;
}

static void pipe_put(struct worker *w, int p[2], bool clean) {
  if (p[0] < 0)
    return;
  if (clean && w->n_pipes < MIN(w->px->o.pipe_pool, (unsigned)TPROXY_PIPE_POOL_MAX)) {
    w->pipes[w->n_pipes][0] = p[0];
    w->pipes[w->n_pipes][1] = p[1];
    w->n_pipes++;
  } else {
    close(p[0]);
    close(p[1]);
  }
  p[0] = p[1] = -1;
}

/* ---------------------------------------------------------------- connection lifetime */

static void conn_close(struct conn *c) {
  struct worker *w = c->w;
  if (c->dq)
    tproxy_dns_cancel(c->dq);
  if (c->cev)
    event_free(c->cev);
  if (c->bev)
    event_free(c->bev);
  if (c->ssl)
    SSL_free(c->ssl); /* no close_notify on errors: SSL_shutdown ran where the session ended */
  if (c->cfd >= 0)
    close(c->cfd);
  if (c->bfd >= 0)
    close(c->bfd);
  pipe_put(w, c->up.pipe, c->up.inpipe == 0);
  pipe_put(w, c->down.pipe, c->down.inpipe == 0);
  free(c->up.buf);
  free(c->down.buf);
  if (c->pending)
    atomic_fetch_sub_explicit(&w->px->pending, 1, memory_order_relaxed);
  if (c->app_counted)
    tproxy_appconns_release(w->px->apps, c->route.app_id);
  c->prev->next = c->next;
  c->next->prev = c->prev;
  atomic_fetch_sub_explicit(&w->px->active, 1, memory_order_relaxed);
  free(c);
}

/* A fatal alert record (TLS 1.2 framing, which every client version accepts before the
 * handshake), best effort, then close. */
static void conn_alert_close(struct conn *c, uint8_t desc) {
  const uint8_t rec[7] = {21, 3, 3, 0, 2, 2, desc};
  (void)!send(c->cfd, rec, sizeof(rec), MSG_NOSIGNAL | MSG_DONTWAIT);
  conn_close(c);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg);
static void backend_cb(evutil_socket_t fd, short what, void *arg);
static void conn_connect_next(struct conn *c);
static void conn_pump(struct conn *c);

/* ---------------------------------------------------------------- routing */

static void conn_route_ready(struct conn *c) {
  struct worker *w = c->w;
  struct tproxy_proxy *px = w->px;
  if (c->pending) {
    c->pending = false;
    atomic_fetch_sub_explicit(&px->pending, 1, memory_order_relaxed);
  }
  struct tproxy_hosts *h = tproxy_table_acquire(px->o.table);
  c->n_cand = tproxy_hosts_pick(h, c->route.app_id, now_ms(), c->cand, MAX_CANDIDATES);
  tproxy_hosts_release(h);
  c->i_cand = 0;
  if (c->n_cand == 0) {
    count(w, K_UNKNOWN_APP, 1);
    log_debug("proxy: %s: app %s is not registered", c->sni, c->route.app_id);
    conn_alert_close(c, ALERT_UNRECOGNIZED_NAME);
    return;
  }
  int r = tproxy_appconns_acquire(px->apps, c->route.app_id);
  if (r < 0) {
    if (r == -EBUSY) {
      count(w, K_REJECTED_APP_FULL, 1);
      log_warn_ratelimited(&px->rl_app_full,
                           "proxy: app %s holds %u connections, its share of max_conns: "
                           "refusing more",
                           c->route.app_id, tproxy_appconns_limit(px->apps));
    }
    conn_alert_close(c, ALERT_INTERNAL_ERROR);
    return;
  }
  c->app_counted = true;
  c->st = C_CONNECT;
  conn_connect_next(c);
}

static void dns_cb(int status, const struct tproxy_route *route, void *arg) {
  struct conn *c = arg;
  c->dq = NULL;
  if (status < 0) {
    count(c->w, status == -ENOENT ? K_UNKNOWN_APP : K_DNS_FAILED, 1);
    log_debug("proxy: %s: TXT lookup: %s", c->sni, strerror(-status));
    conn_alert_close(c, ALERT_UNRECOGNIZED_NAME);
    return;
  }
  c->route = *route;
  conn_route_ready(c);
}

/* c has to wait, for the rest of its ClientHello or for a TXT lookup: it counts among the
 * connections that may hold at most max_pending slots (slow or silent clients, names that
 * resolve slowly must not take the slots of connections that are ready). False: too many
 * wait already, c was closed. */
static bool conn_pending_mark(struct conn *c) {
  struct tproxy_proxy *px = c->w->px;
  if (c->pending)
    return true;
  unsigned n = atomic_fetch_add_explicit(&px->pending, 1, memory_order_relaxed);
  if (n >= px->max_pending) {
    atomic_fetch_sub_explicit(&px->pending, 1, memory_order_relaxed);
    count(c->w, K_REJECTED_PENDING_FULL, 1);
    log_warn_ratelimited(&px->rl_pending_full,
                         "proxy: %u connections wait for the rest of their ClientHello or for "
                         "DNS: refusing more",
                         n);
    conn_alert_close(c, ALERT_INTERNAL_ERROR);
    return false;
  }
  c->pending = true;
  return true;
}

static void conn_route(struct conn *c) {
  struct worker *w = c->w;
  int r = tproxy_route_parse(c->sni, w->px->base_domain, &c->route);
  if (r < 0) {
    count(w, K_BAD_SNI, 1);
    conn_alert_close(c, ALERT_UNRECOGNIZED_NAME);
    return;
  }
  if (!c->route.custom) {
    conn_route_ready(c);
    return;
  }
  if (!w->dns) {
    count(w, K_UNKNOWN_APP, 1);
    conn_alert_close(c, ALERT_UNRECOGNIZED_NAME);
    return;
  }
  struct tproxy_route rt;
  int status = 0;
  c->st = C_DNS;
  c->deadline = now_ms() + w->px->o.dns_timeout_ms * 4 + 1000;
  r = tproxy_dns_resolve(w->dns, c->sni, dns_cb, c, &rt, &status, &c->dq);
  if (r == 1) {
    dns_cb(status, &rt, c);
  } else if (r < 0) {
    c->dq = NULL;
    count(w, K_DNS_FAILED, 1);
    conn_alert_close(c, ALERT_INTERNAL_ERROR);
  } else {
    (void)conn_pending_mark(c);
  }
}

/* ---------------------------------------------------------------- ClientHello */

/* True when c waits for the rest of its ClientHello (c is alive); false when c moved on or was
 * closed. */
static bool conn_hello(struct conn *c) {
  struct worker *w = c->w;
  ssize_t n = recv(c->cfd, w->peek, sizeof(w->peek), MSG_PEEK);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR)
      return true;
    conn_close(c);
    return false;
  }
  if (n == 0) { /* closed before a complete hello */
    count(w, K_BAD_HELLO, 1);
    conn_close(c);
    return false;
  }
  struct tls_hello h;
  int r = tls_hello_parse(w->peek, (size_t)n, &h);
  if (r == -EAGAIN) {
    if ((size_t)n < sizeof(w->peek))
      return true;
    count(w, K_BAD_HELLO, 1);
    conn_alert_close(c, ALERT_DECODE_ERROR);
    return false;
  }
  if (r < 0) {
    count(w, K_BAD_HELLO, 1);
    conn_alert_close(c, ALERT_DECODE_ERROR);
    return false;
  }
  if (!h.sni[0]) {
    count(w, K_NO_SNI, 1);
    conn_alert_close(c, ALERT_HANDSHAKE_FAILURE);
    return false;
  }
  memcpy(c->sni, h.sni, sizeof(c->sni));
  conn_route(c);
  return false;
}

/* ---------------------------------------------------------------- backend connect */

static void conn_connect_next(struct conn *c) {
  struct worker *w = c->w;
  if (c->bev) {
    event_free(c->bev);
    c->bev = NULL;
  }
  if (c->bfd >= 0) {
    close(c->bfd);
    c->bfd = -1;
  }
  while (c->i_cand < c->n_cand) {
    uint32_t ip = c->cand[c->i_cand++];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      int e = errno;
      if (!errno_is_resource(e)) {
        c->b_err = e;
        break;
      }
      count(w, K_NO_FDS, 1);
      log_warn_errno_ratelimited(&w->px->rl_fds, -e, "proxy: connecting to a backend");
      conn_alert_close(c, ALERT_INTERNAL_ERROR);
      return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->route.port),
                             .sin_addr.s_addr = htonl(ip)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
      c->b_err = errno;
      close(fd);
      struct tproxy_hosts *h = tproxy_table_acquire(w->px->o.table);
      tproxy_hosts_mark(h, c->route.app_id, ip, false, now_ms());
      tproxy_hosts_release(h);
      continue;
    }
    c->bfd = fd;
    c->bev = event_new(w->base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, backend_cb, c);
    if (!c->bev || event_add(c->bev, NULL) < 0) {
      c->b_err = ENOMEM;
      break;
    }
    c->b_rd = c->b_wr = false;
    c->deadline = now_ms() + w->px->o.connect_timeout_ms;
    return;
  }
  count(w, K_BACKEND_FAILED, 1);
  /* Warned (rate-limited): a backend that cannot be reached is what an operator looks for when
   * clients get an alert, and a client cannot make this more frequent than its connections. */
  char ip[IPV4_STR_MAX] = "-";
  if (c->i_cand > 0)
    ipv4_format(c->cand[c->i_cand - 1], ip);
  if (c->n_cand == 0)
    log_warn_ratelimited(&w->px->rl_backend, "proxy: %s: app %s has no instance to connect to",
                         c->sni, c->route.app_id);
  else
    log_warn_ratelimited(&w->px->rl_backend,
                         "proxy: %s: no instance of app %s accepted a connection on port %u "
                         "(last tried %s: %s)",
                         c->sni, c->route.app_id, c->route.port, ip,
                         c->b_err ? strerror(c->b_err) : "unknown error");
  conn_alert_close(c, ALERT_INTERNAL_ERROR);
}

static void conn_handshake(struct conn *c);

static void conn_relay_start(struct conn *c) {
  struct worker *w = c->w;
  c->st = C_RELAY;
  c->deadline = now_ms() + (uint64_t)w->px->o.idle_timeout_s * 1000;
  if (c->ssl) {
    c->up.buf = malloc(RELAY_BUF);
    c->down.buf = malloc(RELAY_BUF);
    if (!c->up.buf || !c->down.buf) {
      conn_close(c);
      return;
    }
    count(w, c->route.mode == ROUTE_H2 ? K_H2 : K_TERMINATED, 1);
  } else {
    int r;
    if ((r = pipe_get(w, c->up.pipe)) < 0 || (r = pipe_get(w, c->down.pipe)) < 0) {
      count(w, K_NO_FDS, 1);
      log_warn_errno_ratelimited(&w->px->rl_fds, r, "proxy: making splice pipes");
      conn_close(c);
      return;
    }
    c->up.cap = pipe_cap(c->up.pipe[1]);
    c->down.cap = pipe_cap(c->down.pipe[1]);
    count(w, K_PASSTHROUGH, 1);
  }
  c->c_rd = c->c_wr = c->b_rd = c->b_wr = true; /* try at once; EAGAIN clears them */
  conn_pump(c);
}

static void conn_connected(struct conn *c) {
  struct worker *w = c->w;
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    err = errno;
  if (err == EINPROGRESS || err == EALREADY)
    return;
  struct tproxy_hosts *h = tproxy_table_acquire(w->px->o.table);
  tproxy_hosts_mark(h, c->route.app_id, c->cand[c->i_cand - 1], err == 0, now_ms());
  tproxy_hosts_release(h);
  if (err) {
    c->b_err = err;
    conn_connect_next(c);
    return;
  }
  if (c->route.mode == ROUTE_PASSTHROUGH) {
    conn_relay_start(c);
    return;
  }
  c->ssl = tproxy_certs_ssl_new(w->px->o.certs, c->route.mode == ROUTE_H2);
  if (!c->ssl || !SSL_set_fd(c->ssl, c->cfd)) {
    conn_alert_close(c, ALERT_INTERNAL_ERROR);
    return;
  }
  SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                           SSL_MODE_RELEASE_BUFFERS);
  SSL_set_accept_state(c->ssl);
  c->st = C_HANDSHAKE;
  c->deadline = now_ms() + w->px->o.handshake_timeout_ms;
  conn_handshake(c);
}

/* ---------------------------------------------------------------- TLS handshake */

static void conn_handshake(struct conn *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    conn_relay_start(c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return;
  count(c->w, K_HANDSHAKE_FAILED, 1);
  if (log_level_get() >= LOG_LVL_DEBUG) {
    char msg[256];
    ERR_error_string_n(ERR_peek_last_error(), msg, sizeof(msg));
    log_debug("proxy: %s: TLS handshake failed: %s", c->sni, msg);
  }
  ERR_clear_error();
  conn_close(c); /* OpenSSL has sent its alert */
}

/* ---------------------------------------------------------------- relay */

/* Returns -1 on a fatal error, else whether anything moved. */
static int splice_dir(struct conn *c, struct dir *d, int src, bool *src_rd, int dst, bool *dst_wr,
                      enum counter k) {
  int moved = 0;
  if (!d->eof && d->inpipe < d->cap && *src_rd) {
    ssize_t n = splice(src, NULL, d->pipe[1], NULL, d->cap - d->inpipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->inpipe += (size_t)n;
      moved = 1;
    } else if (n == 0) {
      d->eof = true;
      moved = 1;
    } else if (errno == EAGAIN) {
      *src_rd = false;
    } else if (errno != EINTR) {
      return -1;
    }
  }
  if (d->inpipe > 0 && *dst_wr) {
    ssize_t n = splice(d->pipe[0], NULL, dst, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->inpipe -= (size_t)n;
      count(c->w, k, (uint64_t)n);
      moved = 1;
      /* The pipe may have been full in slots before it was full in bytes: read again. */
      *src_rd = true;
    } else if (n < 0 && errno == EAGAIN) {
      *dst_wr = false;
    } else if (n < 0 && errno != EINTR) {
      return -1;
    }
  }
  if (d->eof && d->inpipe == 0 && !d->shut) {
    (void)shutdown(dst, SHUT_WR);
    d->shut = true;
    moved = 1;
  }
  return moved;
}

/* client (TLS) → backend */
static int tls_up(struct conn *c) {
  struct dir *d = &c->up;
  int moved = 0;
  if (d->len == 0 && !d->eof) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, d->buf, RELAY_BUF);
    if (n > 0) {
      d->off = 0;
      d->len = (size_t)n;
      moved = 1;
    } else {
      int e = SSL_get_error(c->ssl, n);
      if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
        d->eof = true;
        moved = 1;
      } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return -1;
      }
    }
  }
  if (d->len > 0 && c->b_wr) {
    ssize_t n = send(c->bfd, d->buf + d->off, d->len, MSG_NOSIGNAL);
    if (n > 0) {
      d->off += (size_t)n;
      d->len -= (size_t)n;
      count(c->w, K_BYTES_IN, (uint64_t)n);
      moved = 1;
    } else if (n < 0 && errno == EAGAIN) {
      c->b_wr = false;
    } else if (n < 0 && errno != EINTR) {
      return -1;
    }
  }
  if (d->eof && d->len == 0 && !d->shut) {
    (void)shutdown(c->bfd, SHUT_WR);
    d->shut = true;
    moved = 1;
  }
  return moved;
}

/* backend → client (TLS) */
static int tls_down(struct conn *c) {
  struct dir *d = &c->down;
  int moved = 0;
  if (d->len == 0 && !d->eof && c->b_rd) {
    ssize_t n = recv(c->bfd, d->buf, RELAY_BUF, 0);
    if (n > 0) {
      d->off = 0;
      d->len = (size_t)n;
      moved = 1;
    } else if (n == 0) {
      d->eof = true;
      moved = 1;
    } else if (errno == EAGAIN) {
      c->b_rd = false;
    } else if (errno != EINTR) {
      return -1;
    }
  }
  if (d->len > 0) {
    ERR_clear_error();
    int n = SSL_write(c->ssl, d->buf + d->off, (int)d->len);
    if (n > 0) {
      d->off += (size_t)n;
      d->len -= (size_t)n;
      count(c->w, K_BYTES_OUT, (uint64_t)n);
      moved = 1;
    } else {
      int e = SSL_get_error(c->ssl, n);
      if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        return -1;
      }
    }
  }
  if (d->eof && d->len == 0 && !d->shut) {
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl); /* close_notify */
    ERR_clear_error();
    (void)shutdown(c->cfd, SHUT_WR);
    d->shut = true;
    moved = 1;
  }
  return moved;
}

static void conn_pump(struct conn *c) {
  bool any = false;
  for (int round = 0; round < PUMP_ROUNDS; round++) {
    int a, b;
    if (c->ssl) {
      a = tls_up(c);
      b = a < 0 ? -1 : tls_down(c);
    } else {
      a = splice_dir(c, &c->up, c->cfd, &c->c_rd, c->bfd, &c->b_wr, K_BYTES_IN);
      b = a < 0 ? -1 : splice_dir(c, &c->down, c->bfd, &c->b_rd, c->cfd, &c->c_wr, K_BYTES_OUT);
    }
    if (a < 0 || b < 0) {
      conn_close(c);
      return;
    }
    if (c->up.shut && c->down.shut) {
      conn_close(c);
      return;
    }
    if (!a && !b) {
      if (any)
        c->deadline = now_ms() + (uint64_t)c->w->px->o.idle_timeout_s * 1000;
      return;
    }
    any = true;
  }
  /* Still busy: let the other connections of this worker run, then continue. */
  c->deadline = now_ms() + (uint64_t)c->w->px->o.idle_timeout_s * 1000;
  event_active(c->cev, EV_TIMEOUT, 0);
}

/* ---------------------------------------------------------------- events */

static void conn_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  struct conn *c = arg;
  if (what & EV_READ)
    c->c_rd = true;
  if (what & EV_WRITE)
    c->c_wr = true;
  switch (c->st) {
  case C_HELLO:
    if (what & EV_READ)
      (void)conn_hello(c);
    break;
  case C_HANDSHAKE:
    conn_handshake(c);
    break;
  case C_RELAY:
    if (c->ssl) /* SSL_read/SSL_write retry on either edge */
      c->c_rd = c->c_wr = true;
    conn_pump(c);
    break;
  default:
    break;
  }
}

static void backend_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  struct conn *c = arg;
  if (what & EV_READ)
    c->b_rd = true;
  if (what & EV_WRITE)
    c->b_wr = true;
  if (c->st == C_CONNECT)
    conn_connected(c);
  else if (c->st == C_RELAY)
    conn_pump(c);
}

/* Network errors of the connection being accepted: try the next one (accept(2)). */
static bool accept_error_transient(int e) {
  switch (e) {
  case EINTR: case ECONNABORTED: case EPROTO: case EPERM: case ENETDOWN: case ENOPROTOOPT:
  case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
    return true;
  default:
    return false;
  }
}

static void worker_accept_set(struct worker *w, bool on) {
  struct timeval tv = {0, TPROXY_ACCEPT_PAUSE_MS * 1000};
  w->paused = !on;
  if (on)
    (void)event_add(w->lev, NULL);
  else
    (void)event_del(w->lev);
  for (size_t i = 0; i < w->n_steal; i++) {
    if (on)
      (void)event_add(w->steal[i], NULL);
    else
      (void)event_del(w->steal[i]);
  }
  if (!on)
    (void)event_add(w->resume, &tv);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  worker_accept_set(arg, true);
}

/* accept() failed for want of descriptors or memory: the listener stays readable, so waiting
 * for it again would wake this worker at once, forever. Stop watching the listeners for a
 * moment instead; connections wait in the backlog meanwhile. */
static void worker_accept_pause(struct worker *w, int err) {
  struct tproxy_proxy *px = w->px;
  count(w, K_ACCEPT_PAUSED, 1);
  log_warn_errno_ratelimited(&px->rl_accept, -err,
                             "proxy: accepting connections (%u open, max_conns %u); pausing "
                             "for %u ms",
                             atomic_load_explicit(&px->active, memory_order_relaxed),
                             px->o.max_conns, TPROXY_ACCEPT_PAUSE_MS);
  if (!w->paused)
    worker_accept_set(w, false);
}

/* Takes a slot (px->active); false when all are taken. */
static bool conn_admit(struct worker *w) {
  struct tproxy_proxy *px = w->px;
  unsigned n = atomic_fetch_add_explicit(&px->active, 1, memory_order_relaxed);
  if (n < px->o.max_conns)
    return true;
  atomic_fetch_sub_explicit(&px->active, 1, memory_order_relaxed);
  count(w, K_REJECTED_FULL, 1);
  log_warn_ratelimited(&px->rl_full, "proxy: %u connections open (max_conns): refusing new ones",
                       n);
  return false;
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  struct worker *w = arg;
  struct tproxy_proxy *px = w->px;
  int batch = lfd == w->lfd ? ACCEPT_BATCH : STEAL_BATCH;
  for (int i = 0; i < batch && !w->paused; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK)
        return;
      if (accept_error_transient(e)) {
        log_debug("proxy: accept: %s", strerror(e));
        continue;
      }
      worker_accept_pause(w, e);
      return;
    }
    count(w, K_ACCEPTED, 1);
    if (!conn_admit(w)) {
      close(fd);
      continue;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
      atomic_fetch_sub_explicit(&px->active, 1, memory_order_relaxed);
      close(fd);
      continue;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->w = w;
    c->cfd = fd;
    c->bfd = -1;
    c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
    c->st = C_HELLO;
    c->deadline = now_ms() + px->o.handshake_timeout_ms;
    c->next = w->head.next;
    c->prev = &w->head;
    w->head.next->prev = c;
    w->head.next = c;
    c->cev = event_new(w->base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, conn_cb, c);
    if (!c->cev || event_add(c->cev, NULL) < 0) {
      conn_close(c);
      continue;
    }
    if (conn_hello(c))
      (void)conn_pending_mark(c);
  }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct worker *w = arg;
  uint64_t now = now_ms();
  struct conn *c = w->head.next, *next;
  for (; c != &w->head; c = next) {
    next = c->next;
    if (now < c->deadline)
      continue;
    switch (c->st) {
    case C_HELLO:
      count(w, K_HELLO_TIMEOUT, 1);
      conn_close(c);
      break;
    case C_DNS:
      count(w, K_DNS_FAILED, 1);
      conn_alert_close(c, ALERT_INTERNAL_ERROR);
      break;
    case C_CONNECT: {
      count(w, K_CONNECT_TIMEOUT, 1);
      c->b_err = ETIMEDOUT;
      struct tproxy_hosts *h = tproxy_table_acquire(w->px->o.table);
      tproxy_hosts_mark(h, c->route.app_id, c->cand[c->i_cand - 1], false, now);
      tproxy_hosts_release(h);
      conn_connect_next(c);
      break;
    }
    case C_HANDSHAKE:
      count(w, K_HANDSHAKE_FAILED, 1);
      conn_close(c);
      break;
    case C_RELAY:
      count(w, K_IDLE_TIMEOUT, 1);
      conn_close(c);
      break;
    }
  }
}

/* ---------------------------------------------------------------- workers */

static void *worker_main(void *arg) {
  struct worker *w = arg;
  (void)event_base_dispatch(w->base);
  /* Stopping: close what is still open. */
  while (w->head.next != &w->head)
    conn_close(w->head.next);
  return NULL;
}

static int listen_socket(const char *addr, uint16_t port, int *ret_fd, uint16_t *ret_port) {
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    sl = sizeof(*s4);
  } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    sl = sizeof(*s6);
  } else {
    return -EINVAL;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  /* Wake the worker when the ClientHello is there, not at the bare handshake: one epoll round
   * less per connection. A silent client is accepted after about a second and then meets the
   * hello timeout as usual. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
      bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  if (ret_port) {
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
      int e = -errno;
      close(fd);
      return e;
    }
    *ret_port = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
  }
  *ret_fd = fd;
  return 0;
}

static int worker_init(struct tproxy_proxy *px, struct worker *w, char *err, size_t errlen) {
  w->px = px;
  w->lfd = -1;
  w->head.next = w->head.prev = &w->head;
  /* A locking base (evthread_use_pthreads ran): tproxy_proxy_stop breaks the loop from the
   * main thread. */
  if (!(w->base = event_base_new()))
    return -ENOMEM;
  int r = listen_socket(px->listen_addr, px->port, &w->lfd, px->port ? NULL : &px->port);
  if (r < 0) {
    snprintf(err, errlen, "proxy: listening on %s:%u: %s", px->listen_addr, px->port,
             strerror(-r));
    return r;
  }
  w->lev = event_new(w->base, w->lfd, EV_READ | EV_PERSIST, accept_cb, w);
  w->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
  w->resume = evtimer_new(w->base, resume_cb, w);
  struct timeval tv = {0, TICK_MS * 1000};
  if (!w->lev || !w->tick || !w->resume || event_add(w->lev, NULL) < 0 ||
      event_add(w->tick, &tv) < 0)
    return -ENOMEM;
  if (px->o.dns_cache) {
    struct tproxy_dns_opts d = {
        .servers = str_isempty(px->dns_servers) ? NULL : px->dns_servers,
        .timeout_ms = (int)px->o.dns_timeout_ms,
        .tries = 2,
        .min_ttl = px->o.dns_min_ttl,
        .max_ttl = px->o.dns_max_ttl,
        .neg_ttl = px->o.dns_neg_ttl,
        .legacy = px->o.dns_legacy,
    };
    r = tproxy_dns_new(w->base, px->o.dns_cache, &d, &w->dns);
    if (r < 0) {
      snprintf(err, errlen, "proxy: DNS resolver: %s", strerror(-r));
      return r;
    }
  }
  return 0;
}

static void worker_free(struct worker *w) {
  if (w->dns)
    tproxy_dns_free(w->dns);
  if (w->lev)
    event_free(w->lev);
  for (size_t i = 0; i < w->n_steal; i++)
    event_free(w->steal[i]);
  free(w->steal);
  if (w->tick)
    event_free(w->tick);
  if (w->resume)
    event_free(w->resume);
  if (w->lfd >= 0)
    close(w->lfd);
  while (w->n_pipes) {
    w->n_pipes--;
    close(w->pipes[w->n_pipes][0]);
    close(w->pipes[w->n_pipes][1]);
  }
  if (w->base)
    event_base_free(w->base);
}

int tproxy_proxy_start(const struct tproxy_proxy_opts *o, struct tproxy_proxy **ret, char *err,
                       size_t errlen) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  (void)pthread_once(&once, (void (*)(void))evthread_use_pthreads);
  struct tproxy_proxy *px = calloc(1, sizeof(*px));
  int r = -ENOMEM;
  if (!px)
    return -ENOMEM;
  px->o = *o;
  px->listen_addr = strdup(o->listen_addr);
  px->base_domain = strdup(o->base_domain);
  px->dns_servers = strdup(o->dns_servers ? o->dns_servers : "");
  px->port = o->listen_port;
  px->n_workers = tproxy_proxy_workers_resolve(o->workers);
  px->o.max_conns = MAX(o->max_conns, 1u);
  px->max_pending = MAX(px->o.max_conns / 8, 1u);
  unsigned per_app = o->max_conns_per_app ? MIN(o->max_conns_per_app, px->o.max_conns)
                                          : px->o.max_conns - px->o.max_conns / 4;
  px->o.max_conns_per_app = per_app;
  px->w = calloc(px->n_workers, sizeof(*px->w));
  if (!px->listen_addr || !px->base_domain || !px->dns_servers || !px->w ||
      tproxy_appconns_new(per_app, &px->apps) < 0)
    goto fail;
  for (unsigned i = 0; i < px->n_workers; i++)
    px->w[i].lfd = -1;
  for (unsigned i = 0; i < px->n_workers; i++)
    if ((r = worker_init(px, &px->w[i], err, errlen)) < 0)
      goto fail;
  /* The kernel spreads connections over the SO_REUSEPORT listeners by a hash, which leaves
   * one worker busier than another; each worker also watches the others' listeners and takes
   * a few connections when it is free, so the load evens out. */
  for (unsigned i = 0; px->n_workers > 1 && i < px->n_workers; i++) {
    struct worker *w = &px->w[i];
    if (!(w->steal = calloc(px->n_workers - 1, sizeof(*w->steal)))) {
      r = -ENOMEM;
      goto fail;
    }
    for (unsigned j = 0; j < px->n_workers; j++) {
      if (j == i)
        continue;
      struct event *e = event_new(w->base, px->w[j].lfd, EV_READ | EV_PERSIST, accept_cb, w);
      if (!e || event_add(e, NULL) < 0) {
        if (e)
          event_free(e);
        r = -ENOMEM;
        goto fail;
      }
      w->steal[w->n_steal++] = e;
    }
  }
  for (unsigned i = 0; i < px->n_workers; i++) {
    if ((r = -pthread_create(&px->w[i].th, NULL, worker_main, &px->w[i])) < 0) {
      snprintf(err, errlen, "proxy: starting worker threads: %s", strerror(-r));
      goto fail;
    }
    px->w[i].started = true;
  }
  *ret = px;
  return 0;
fail:
  tproxy_proxy_stop(px);
  return r;
}

unsigned tproxy_proxy_workers_resolve(unsigned configured) {
  if (configured)
    return configured;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)MIN(n, 64) : 1;
}

uint16_t tproxy_proxy_port(const struct tproxy_proxy *p) {
  return p->port;
}

unsigned tproxy_proxy_workers(const struct tproxy_proxy *p) {
  return p->n_workers;
}

void tproxy_proxy_stop(struct tproxy_proxy *p) {
  if (!p)
    return;
  for (unsigned i = 0; p->w && i < p->n_workers; i++)
    if (p->w[i].started)
      (void)event_base_loopbreak(p->w[i].base);
  for (unsigned i = 0; p->w && i < p->n_workers; i++)
    if (p->w[i].started)
      (void)pthread_join(p->w[i].th, NULL);
  for (unsigned i = 0; p->w && i < p->n_workers; i++)
    worker_free(&p->w[i]);
  free(p->w);
  tproxy_appconns_free(p->apps);
  free(p->listen_addr);
  free(p->base_domain);
  free(p->dns_servers);
  free(p);
}

void tproxy_proxy_stats(const struct tproxy_proxy *p, struct tproxy_proxy_stats *ret) {
  uint64_t k[_K_MAX] = {0};
  for (unsigned i = 0; i < p->n_workers; i++)
    for (int j = 0; j < _K_MAX; j++)
      k[j] += atomic_load_explicit(&p->w[i].k[j], memory_order_relaxed);
  *ret = (struct tproxy_proxy_stats){
      .accepted = k[K_ACCEPTED],
      .active = atomic_load_explicit(&((struct tproxy_proxy *)p)->active, memory_order_relaxed),
      .max_conns = p->o.max_conns,
      .max_conns_per_app = p->o.max_conns_per_app,
      .max_pending = p->max_pending,
      .rejected_full = k[K_REJECTED_FULL],
      .rejected_app_full = k[K_REJECTED_APP_FULL],
      .rejected_pending_full = k[K_REJECTED_PENDING_FULL],
      .no_fds = k[K_NO_FDS],
      .accept_paused = k[K_ACCEPT_PAUSED],
      .bad_hello = k[K_BAD_HELLO],
      .no_sni = k[K_NO_SNI],
      .bad_sni = k[K_BAD_SNI],
      .unknown_app = k[K_UNKNOWN_APP],
      .dns_failed = k[K_DNS_FAILED],
      .backend_failed = k[K_BACKEND_FAILED],
      .hello_timeout = k[K_HELLO_TIMEOUT],
      .connect_timeout = k[K_CONNECT_TIMEOUT],
      .handshake_failed = k[K_HANDSHAKE_FAILED],
      .idle_timeout = k[K_IDLE_TIMEOUT],
      .passthrough = k[K_PASSTHROUGH],
      .terminated = k[K_TERMINATED],
      .h2 = k[K_H2],
      .bytes_in = k[K_BYTES_IN],
      .bytes_out = k[K_BYTES_OUT],
  };
}

int tproxy_proxy_metrics(const struct tproxy_proxy *p, struct buf *out) {
  struct tproxy_proxy_stats s;
  tproxy_proxy_stats(p, &s);
  int r = buf_printf(out,
                     "# TYPE tproxy_connections_accepted_total counter\n"
                     "tproxy_connections_accepted_total %llu\n"
                     "# TYPE tproxy_connections_active gauge\n"
                     "tproxy_connections_active %llu\n"
                     "# TYPE tproxy_connections_max gauge\n"
                     "tproxy_connections_max %llu\n"
                     "# TYPE tproxy_connections_max_per_app gauge\n"
                     "tproxy_connections_max_per_app %llu\n"
                     "# TYPE tproxy_accept_paused_total counter\n"
                     "tproxy_accept_paused_total %llu\n"
                     "# TYPE tproxy_connections_total counter\n"
                     "tproxy_connections_total{kind=\"passthrough\"} %llu\n"
                     "tproxy_connections_total{kind=\"terminated\"} %llu\n"
                     "tproxy_connections_total{kind=\"h2\"} %llu\n",
                     (unsigned long long)s.accepted, (unsigned long long)s.active,
                     (unsigned long long)s.max_conns, (unsigned long long)s.max_conns_per_app,
                     (unsigned long long)s.accept_paused, (unsigned long long)s.passthrough,
                     (unsigned long long)s.terminated, (unsigned long long)s.h2);
  if (r < 0)
    return r;
  struct {
    const char *reason;
    uint64_t v;
  } f[] = {
      {"full", s.rejected_full},        {"app_full", s.rejected_app_full},
      {"pending_full", s.rejected_pending_full}, {"no_fds", s.no_fds},
      {"bad_hello", s.bad_hello},
      {"no_sni", s.no_sni},             {"bad_sni", s.bad_sni},
      {"unknown_app", s.unknown_app},   {"dns_failed", s.dns_failed},
      {"backend_failed", s.backend_failed}, {"hello_timeout", s.hello_timeout},
      {"connect_timeout", s.connect_timeout}, {"handshake_failed", s.handshake_failed},
      {"idle_timeout", s.idle_timeout},
  };
  if ((r = buf_append_str(out, "# TYPE tproxy_connections_closed_total counter\n")) < 0)
    return r;
  for (size_t i = 0; i < ARRAY_SIZE(f); i++)
    if ((r = buf_printf(out, "tproxy_connections_closed_total{reason=\"%s\"} %llu\n", f[i].reason,
                        (unsigned long long)f[i].v)) < 0)
      return r;
  return buf_printf(out,
                    "# TYPE tproxy_bytes_total counter\n"
                    "tproxy_bytes_total{direction=\"in\"} %llu\n"
                    "tproxy_bytes_total{direction=\"out\"} %llu\n",
                    (unsigned long long)s.bytes_in, (unsigned long long)s.bytes_out);
}
