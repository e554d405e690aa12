/* HTTP/1.1 server: listeners, connection state machine, request bodies, replies and streams.
 * See http_server.h for the behaviour; the head parser is in http_parse.c. */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/str.h"
#include "net/http_parse.h"
#include "net/source_limit.h"
#include "net/url.h"

/* After an error reply or "Connection: close": read and drop what the client still sends for a
 * while, so closing does not reset the connection before it read our reply. */
#define LINGER_S 2
#define LINGER_MAX_BYTES ((size_t)1024 * 1024)
/* A chunk-size line longer than this is malformed. */
#define CHUNK_LINE_MAX 1024
/* Extra response header bytes per reply. */
#define REPLY_HEADERS_MAX ((size_t)16 * 1024)
/* Retry accepting after an accept error (EMFILE...). */
#define ACCEPT_RETRY_MS 500

struct route {
  char *prefix;
  size_t len;
  http_handler_fn fn;
  void *ud;
};

struct listener {
  struct http_server *srv;
  struct evconnlistener *lev;
  struct event *retry;
  SSL_CTX *ctx;
  char *unix_path;
  dev_t dev;
  ino_t ino;
  struct listener *next;
};

/* CS_IDLE and CS_LINGER connections are "idle": closed first when max_conns is reached, or
 * when their source is at max_conns_per_source. */
enum conn_state {
  CS_IDLE,    /* waiting for the first byte of a request */
  CS_HEAD,    /* reading the request line and header fields */
  CS_BODY,    /* reading the body */
  CS_HANDLER, /* the request is the handler's */
  CS_WRITING, /* reply queued; waiting until it is sent */
  CS_LINGER,  /* closing: our side shut down, dropping input */
};

enum chunk_state { CK_SIZE, CK_DATA, CK_DATA_END, CK_TRAILER };

enum req_state { RQ_OPEN, RQ_STREAM };

struct http_conn {
  struct http_server *srv;
  struct http_conn *prev, *next;
  struct http_conn *idle_prev, *idle_next; /* server's idle list, while in_idle */
  /* Its source's idle list, while in_idle and source != NULL: circular, the source entry's data
   * is the head (idle the longest). */
  struct http_conn *src_idle_prev, *src_idle_next;
  bool in_idle;
  struct source_entry *source; /* per-source count held (NULL: not counted) */
  struct bufferevent *bev;
  int fd;
  SSL_CTX *ctx;
  struct event *timer;
  enum conn_state state;
  size_t scan;
  bool peer_eof;
  bool write_armed;     /* plain sockets: the bufferevent's write event is enabled */
  struct event *rev;    /* plain sockets: our own read event (the bufferevent only writes) */
  bool read_paused;     /* plain sockets: input at the high-water mark, rev not pending */
  bool write_failed;    /* plain sockets: our own send failed; output dropped, closing */
  bool resp_keep_alive; /* for the reply being written */
  struct http_request *req;
  /* body */
  bool chunked;
  uint64_t body_left;
  enum chunk_state ck;
  size_t trailer_bytes;
  size_t linger_bytes;
  bool peer_checked;
  X509 *peer;
  char remote[64];
};

struct http_server {
  struct event_base *base;
  struct http_server_config cfg;
  struct route *routes;
  size_t n_routes;
  struct listener *listeners;
  struct http_conn *conns;
  unsigned n_conns;
  /* Idle connections (see enum conn_state), the one idle the longest first. */
  struct http_conn *idle_head, *idle_tail;
  struct source_limit *sources;
  bool freeing;
  unsigned fail_allocs; /* tests: reply allocations still to fail (http_server_test_fail_allocs) */
  /* Peer-triggered refusals and evictions since the last (debug) log line, one line per
   * second at most. */
  struct log_ratelimit limits_log;
  unsigned n_refused_source, n_refused_full, n_evicted, n_evicted_source;
  /* libevent "common timeouts" (O(1) queues instead of the heap) for the durations every
   * connection re-arms on every request */
  const struct timeval *tv_idle, *tv_request, *tv_linger, *tv_handshake, *tv_handler;
  time_t date_time; /* when date was formatted */
  size_t date_len;
  char date[64];
};

/* A request is "live" while its connection waits for the answer (conn set, conn->req == it),
 * or "dead" (conn NULL): the connection side is over (answered by the server, failed, or gone)
 * but the handler has not made its final call yet; that call frees it (http_server.h). */
struct http_request {
  struct http_conn *conn;
  bool dead;
  bool tls;
  X509 *peer;       /* reference of its own: valid while the request is, dead or not */
  char remote[64];
  char *head;
  struct http_head h;
  char *path;
  const char *query;
  struct url_query q;
  struct buf body;
  struct buf extra;
  bool is_head;
  bool keep_alive;
  enum req_state state;
  bool stream_chunked;
  bool stream_blocked;
  bool closing;
  void (*close_cb)(void *);
  void *close_ud;
  void (*drain_cb)(void *);
  void *drain_ud;
};

#define BODY_503_FULL "{\"error\":\"too many connections\"}"
#define BODY_503_SOURCE "{\"error\":\"too many connections from this address\"}"
_Static_assert(sizeof(BODY_503_FULL) - 1 == 32, "Content-Length of reply_503_full");
_Static_assert(sizeof(BODY_503_SOURCE) - 1 == 50, "Content-Length of reply_503_source");
#define HEAD_503(len)                                                                              \
  "HTTP/1.1 503 Service Unavailable\r\n"                                                          \
  "Content-Type: application/json\r\n"                                                            \
  "Content-Length: " #len "\r\n"                                                                  \
  "Connection: close\r\n"                                                                         \
  "\r\n"
static const char reply_503_full[] = HEAD_503(32) BODY_503_FULL;
static const char reply_503_source[] = HEAD_503(50) BODY_503_SOURCE;

/* When an answer cannot be sent as asked: fixed bytes, nothing to allocate but the copy. */
#define BODY_500 "{\"error\":\"internal error\"}"
_Static_assert(sizeof(BODY_500) - 1 == 26, "Content-Length of reply_500");
static const char reply_500[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 26\r\n"
                                "Connection: close\r\n"
                                "\r\n" BODY_500;

const char *http_status_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

/* ---------------------------------------------------------------- requests */

static void request_free(struct http_request *r) {
  if (!r)
    return;
  X509_free(r->peer);
  free(r->head);
  free(r->path);
  url_query_free(&r->q);
  buf_free(&r->body);
  buf_free(&r->extra);
  free(r);
}

/* Tests: true while allocations on the reply paths are set to fail. */
static bool srv_fault(struct http_server *s) {
  if (!s->fail_allocs)
    return false;
  s->fail_allocs--;
  return true;
}

/* r leaves its connection for good: dead from now on (see struct http_request). */
static void req_detach(struct http_request *r) {
  if (r->conn && r->conn->req == r)
    r->conn->req = NULL;
  r->conn = NULL;
  r->dead = true;
  r->close_cb = NULL;
  r->drain_cb = NULL;
}

const char *http_request_method(const struct http_request *r) {
  return r->h.method;
}
const char *http_request_path(const struct http_request *r) {
  return r->path;
}
const char *http_request_query(const struct http_request *r) {
  return r->query;
}
const struct url_query *http_request_query_params(const struct http_request *r) {
  return &r->q;
}

int http_request_query_get(const struct http_request *r, const char *name, char **ret_value) {
  if (!r || !name || !ret_value)
    return -EINVAL;
  const char *v;
  int k = url_query_get(&r->q, name, &v);
  if (k < 0)
    return k;
  char *c = strdup(v);
  if (!c)
    return -ENOMEM;
  *ret_value = c;
  return 0;
}

bool http_request_query_has(const struct http_request *r, const char *name) {
  return url_query_find(&r->q, name) != NULL;
}

const char *http_request_header(const struct http_request *r, const char *name) {
  return http_head_get(&r->h, name);
}

struct slice http_request_body(const struct http_request *r) {
  if (!r->body.data)
    return SLICE("", 0);
  return buf_slice(&r->body);
}

X509 *http_request_peer_cert(const struct http_request *r) {
  return r->peer;
}
bool http_request_is_tls(const struct http_request *r) {
  return r->tls;
}
const char *http_request_remote(const struct http_request *r) {
  return r->remote;
}
int http_request_version_minor(const struct http_request *r) {
  return r->h.minor;
}

/* ---------------------------------------------------------------- connections */

static void conn_process(struct http_conn *c);
static void conn_on_eof(struct http_conn *c);

static void conn_arm(struct http_conn *c, const struct timeval *tv) {
  evtimer_add(c->timer, tv);
}

static bool conn_state_is_idle(enum conn_state st) {
  return st == CS_IDLE || st == CS_LINGER;
}

/* The per-source idle list (same order as the server's): O(1) append and unlink, the head
 * kept as the source entry's data so that a source at its cap finds its oldest idle one. */
static void conn_source_idle_append(struct http_conn *c) {
  if (!c->source)
    return;
  struct http_conn *head = source_entry_get_data(c->source);
  if (!head) {
    c->src_idle_prev = c->src_idle_next = c;
    source_entry_set_data(c->source, c);
    return;
  }
  struct http_conn *tail = head->src_idle_prev;
  c->src_idle_prev = tail;
  c->src_idle_next = head;
  tail->src_idle_next = c;
  head->src_idle_prev = c;
}

static void conn_source_idle_unlink(struct http_conn *c) {
  if (!c->source)
    return;
  if (c->src_idle_next == c) {
    source_entry_set_data(c->source, NULL);
  } else {
    c->src_idle_prev->src_idle_next = c->src_idle_next;
    c->src_idle_next->src_idle_prev = c->src_idle_prev;
    if (source_entry_get_data(c->source) == c)
      source_entry_set_data(c->source, c->src_idle_next);
  }
  c->src_idle_prev = c->src_idle_next = NULL;
}

static void conn_idle_unlink(struct http_conn *c) {
  if (!c->in_idle)
    return;
  struct http_server *s = c->srv;
  conn_source_idle_unlink(c);
  if (c->idle_prev)
    c->idle_prev->idle_next = c->idle_next;
  else
    s->idle_head = c->idle_next;
  if (c->idle_next)
    c->idle_next->idle_prev = c->idle_prev;
  else
    s->idle_tail = c->idle_prev;
  c->idle_prev = c->idle_next = NULL;
  c->in_idle = false;
}

/* Every state change goes through here: it keeps the idle list in the order the connections
 * became idle (the head is the one idle the longest). */
static void conn_set_state(struct http_conn *c, enum conn_state st) {
  if (!conn_state_is_idle(st)) {
    conn_idle_unlink(c);
  } else if (!c->in_idle || st != c->state) {
    struct http_server *s = c->srv;
    conn_idle_unlink(c);
    c->idle_prev = s->idle_tail;
    if (s->idle_tail)
      s->idle_tail->idle_next = c;
    else
      s->idle_head = c;
    s->idle_tail = c;
    conn_source_idle_append(c);
    c->in_idle = true;
  }
  c->state = st;
}

/* Plain sockets: a queued reply is written right away and, when the socket took all of it (the
 * usual case), the bufferevent's write event is never armed: two epoll_ctl calls less per
 * request. Whatever the socket does not take is left to the write event, enabled until the
 * output drained (it also reports write errors). TLS bufferevents keep their write event on. */
static void conn_kick_write(struct http_conn *c) {
  if (c->ctx || c->write_armed)
    return;
  struct evbuffer *out = bufferevent_get_output(c->bev);
  if (evbuffer_get_length(out) == 0)
    return;
  /* Our own sendmsg with MSG_NOSIGNAL: a peer that went away is an error here, not SIGPIPE.
   * (The bufferevent's writev, for what is left, can still raise it: processes ignore SIGPIPE,
   * see http_server.h.) */
  struct evbuffer_iovec v[8];
  struct iovec iov[8];
  int nv = evbuffer_peek(out, -1, NULL, v, 8);
  nv = MIN(nv, 8);
  for (int i = 0; i < nv; i++)
    iov[i] = (struct iovec){.iov_base = v[i].iov_base, .iov_len = v[i].iov_len};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)MAX(nv, 0)};
  ssize_t n;
  do
    n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  /* The bufferevent keeps the front of its output frozen (only it drains it); thaw it for
   * this drain as its own write callback does. */
  evbuffer_unfreeze(out, 1);
  if (n > 0) {
    evbuffer_drain(out, (size_t)n);
  } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    log_debug("http %s: send: %s", c->remote, strerror(errno));
    c->write_failed = true; /* nothing more can be sent: drop it, close after this reply */
    c->resp_keep_alive = false;
    evbuffer_drain(out, evbuffer_get_length(out));
  }
  evbuffer_freeze(out, 1);
  if (evbuffer_get_length(out) > 0) {
    c->write_armed = true;
    bufferevent_enable(c->bev, EV_WRITE);
  }
}

/* Plain sockets: reading again after a pause at the high-water mark. */
static void conn_resume_read(struct http_conn *c) {
  if (c->rev && c->read_paused && !c->peer_eof) {
    c->read_paused = false;
    event_add(c->rev, NULL);
  }
}

static void conn_unarm_write(struct http_conn *c) {
  if (c->ctx || !c->write_armed)
    return;
  c->write_armed = false;
  bufferevent_disable(c->bev, EV_WRITE);
}

/* The request leaves its connection, which will not carry the handler's answer (it is closing,
 * or the server answered itself). A request with its handler gets its close callback and is
 * freed, or, without a callback, stays allocated and dead until the handler's final call frees
 * it; a request no handler has seen yet is freed. */
static void conn_drop_request(struct http_conn *c) {
  struct http_request *r = TAKE_PTR(c->req);
  if (!r)
    return;
  if (c->state != CS_HANDLER) {
    request_free(r);
    return;
  }
  void (*cb)(void *) = r->close_cb;
  req_detach(r);
  if (cb) {
    r->closing = true; /* http_* calls from inside cb: -EPIPE, nothing done */
    cb(r->close_ud);
    request_free(r);
  }
}

static void conn_free(struct http_conn *c) {
  struct http_server *s = c->srv;
  conn_drop_request(c);
  if (c->timer)
    event_free(c->timer);
  if (c->rev)
    event_free(c->rev);
  if (c->bev)
    bufferevent_free(c->bev); /* closes the fd (and frees the SSL) */
  X509_free(c->peer);
  SSL_CTX_free(c->ctx);
  conn_idle_unlink(c);
  source_limit_release(s->sources, c->source);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->n_conns--;
  free(c);
}

/* Our side of the reply is complete and the connection is not kept: shut down writing and drop
 * input for a little while (plain sockets), or close (TLS). */
static void conn_start_close(struct http_conn *c) {
  if (c->ctx || c->peer_eof) {
    conn_free(c);
    return;
  }
  shutdown(c->fd, SHUT_WR);
  conn_set_state(c, CS_LINGER);
  struct evbuffer *in = bufferevent_get_input(c->bev);
  evbuffer_drain(in, evbuffer_get_length(in));
  if (c->rev)
    conn_resume_read(c);
  else
    bufferevent_enable(c->bev, EV_READ);
  conn_arm(c, c->srv->tv_linger);
}

static void conn_after_response(struct http_conn *c) {
  conn_unarm_write(c);
  conn_resume_read(c);
  if (!c->resp_keep_alive) {
    conn_start_close(c);
    return;
  }
  conn_set_state(c, CS_IDLE);
  conn_arm(c, c->srv->tv_idle);
  conn_process(c);
}

/* Hands the connection back to the server after the request's answer was queued. */
static void conn_finish_request(struct http_conn *c) {
  struct http_request *r = TAKE_PTR(c->req);
  request_free(r);
  conn_set_state(c, CS_WRITING);
  conn_kick_write(c);
  if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
    if (c->resp_keep_alive && !c->peer_eof && !c->write_armed &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
      /* All sent and nothing more to read: idle now (what the loop would do next). */
      conn_set_state(c, CS_IDLE);
      conn_arm(c, c->srv->tv_idle);
      conn_resume_read(c);
      return;
    }
    /* Nothing left to send: continue from the loop, not from inside the caller. */
    struct timeval tv = {0, 0};
    evtimer_add(c->timer, &tv);
  } else {
    evtimer_del(c->timer);
  }
}

/* "Date: <IMF-fixdate>\r\n" for now, formatted once per second per server. */
static const char *date_line(struct http_server *s, size_t *ret_len) {
  time_t now = time(NULL);
  if (now != s->date_time || !s->date_len) {
    struct tm tm;
    size_t n = 0;
    if (gmtime_r(&now, &tm))
      n = strftime(s->date, sizeof(s->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    s->date_len = n;
    s->date_time = now;
  }
  *ret_len = s->date_len;
  return s->date;
}

static bool status_has_body(int status) {
  return status >= 200 && status != 204 && status != 304;
}

static bool header_value_ok(const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
      return false;
  return true;
}

static char *put_str(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}
#define PUT_LIT(p, lit) put_str(p, lit, sizeof(lit) - 1)

static char *put_ull(char *p, unsigned long long v) {
  char tmp[24], *e = tmp + sizeof(tmp), *q = e;
  do {
    *--q = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return put_str(p, q, (size_t)(e - q));
}

/* Writes the status line and headers (one evbuffer_add, composed in place). length < 0: no
 * Content-Length. */
static int write_head(struct http_conn *c, int status, const char *ctype, const struct buf *extra,
                      long long length, bool chunked, bool keep_alive, int minor) {
  if (srv_fault(c->srv))
    return -ENOMEM;
  struct evbuffer *out = bufferevent_get_output(c->bev);
  const char *reason = http_status_reason(status);
  size_t date_len, ctype_len = ctype ? strlen(ctype) : 0, extra_len = extra ? extra->len : 0;
  const char *date = date_line(c->srv, &date_len);
  /* fixed parts: status line, names, numbers, Connection, the end: well under 256 */
  size_t need = 256 + strlen(reason) + date_len + ctype_len + extra_len;
  char stack[1024];
  char *h = need <= sizeof(stack) ? stack : malloc(need);
  if (!h)
    return -ENOMEM;
  char *p = PUT_LIT(h, "HTTP/1.1 ");
  p = put_ull(p, (unsigned)status);
  *p++ = ' ';
  p = put_str(p, reason, strlen(reason));
  p = PUT_LIT(p, "\r\n");
  p = put_str(p, date, date_len);
  if (extra_len)
    p = put_str(p, (const char *)extra->data, extra_len);
  if (ctype) {
    p = PUT_LIT(p, "Content-Type: ");
    p = put_str(p, ctype, ctype_len);
    p = PUT_LIT(p, "\r\n");
  }
  if (length >= 0) {
    p = PUT_LIT(p, "Content-Length: ");
    p = put_ull(p, (unsigned long long)length);
    p = PUT_LIT(p, "\r\n");
  }
  if (chunked)
    p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
  if (!keep_alive)
    p = PUT_LIT(p, "Connection: close\r\n");
  else if (minor == 0)
    p = PUT_LIT(p, "Connection: keep-alive\r\n");
  p = PUT_LIT(p, "\r\n");
  int r = evbuffer_add(out, h, (size_t)(p - h)) < 0 ? -ENOMEM : 0;
  if (h != stack)
    free(h);
  return r;
}

/* An error reply produced by the server (no request on c any more): JSON body, then close. */
static void conn_reply_error(struct http_conn *c, int status, const char *msg, int minor,
                             bool is_head) {
  evtimer_del(c->timer);
  char body[256];
  json_t *j = json_pack("{s:s}", "error", msg);
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  int n = snprintf(body, sizeof(body), "%s", s ? s : "{\"error\":\"error\"}");
  free(s);
  if (n < 0 || (size_t)n >= sizeof(body))
    n = snprintf(body, sizeof(body), "{\"error\":\"error\"}");
  log_debug("http %s: %d %s", c->remote, status, msg);
  c->resp_keep_alive = false;
  if (write_head(c, status, "application/json", NULL, n, false, false, minor) == 0 && !is_head)
    evbuffer_add(bufferevent_get_output(c->bev), body, (size_t)n);
  conn_set_state(c, CS_WRITING);
  conn_finish_request(c);
}

/* Error produced by the server before a handler got the request. */
static void conn_fail(struct http_conn *c, int status, const char *msg) {
  struct http_request *r = TAKE_PTR(c->req);
  int minor = r && r->h.method ? r->h.minor : 1;
  bool is_head = r && r->is_head;
  request_free(r);
  conn_reply_error(c, status, msg, minor, is_head);
}

/* The handler held its request past handler_timeout_s without answering: 503 and close. The
 * request is dropped (close callback, or kept dead for the handler's late answer). Streams
 * have answered: they are not timed. */
static void conn_handler_expired(struct http_conn *c) {
  struct http_request *r = c->req;
  if (!r || r->state != RQ_OPEN)
    return;
  int minor = r->h.minor;
  bool is_head = r->is_head;
  conn_drop_request(c);
  conn_reply_error(c, 503, "the request was not answered in time", minor, is_head);
}

static void conn_check_peer(struct http_conn *c) {
  if (c->peer_checked || !c->ctx)
    return;
  c->peer_checked = true;
  SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
  if (!ssl)
    return;
  X509 *x = SSL_get1_peer_certificate(ssl);
  if (x && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) &&
      SSL_get_verify_result(ssl) == X509_V_OK)
    c->peer = x;
  else
    X509_free(x);
}

static const struct route *route_find(const struct http_server *s, const char *path) {
  const struct route *best = NULL;
  for (size_t i = 0; i < s->n_routes; i++) {
    const struct route *rt = &s->routes[i];
    if (strncmp(path, rt->prefix, rt->len) == 0 && (!best || rt->len > best->len))
      best = rt;
  }
  return best;
}

static void conn_dispatch(struct http_conn *c) {
  struct http_request *r = c->req;
  conn_set_state(c, CS_HANDLER);
  conn_arm(c, c->srv->tv_handler); /* the handler deadline; an answer re-arms the timer */
  conn_check_peer(c);
  /* What the request needs of its connection, copied: a dead request outlives it. */
  if (c->peer && X509_up_ref(c->peer))
    r->peer = c->peer;
  r->tls = c->ctx != NULL;
  memcpy(r->remote, c->remote, sizeof(r->remote));
  const struct route *rt = route_find(c->srv, r->path);
  if (!rt) {
    (void)http_reply_error(r, 404, "not found");
    return;
  }
  rt->fn(r, rt->ud);
  /* r may be gone now. */
}

/* Splits the request-target into path and query; absolute-form is reduced to its path. */
static int request_target(struct http_request *r, int *ret_status) {
  char *t = r->h.target;
  if (t[0] != '/') {
    char *rest = NULL;
    if (strncasecmp(t, "http://", 7) == 0)
      rest = t + 7;
    else if (strncasecmp(t, "https://", 8) == 0)
      rest = t + 8;
    if (!rest) {
      *ret_status = 400;
      return -EBADMSG;
    }
    char *slash = strchr(rest, '/');
    char *q = strchr(rest, '?');
    if (!slash || (q && q < slash)) {
      /* "http://host" or "http://host?x": path "/" */
      r->query = q ? q + 1 : NULL;
      r->path = strdup("/");
      if (!r->path) {
        *ret_status = 500;
        return -ENOMEM;
      }
      goto query;
    }
    t = slash;
  }
  char *q = strchr(t, '?');
  if (q) {
    *q = '\0';
    r->query = q + 1;
  }
  int k = url_path_normalize(t, strlen(t), &r->path);
  if (k < 0) {
    *ret_status = k == -ENOBUFS ? 414 : k == -ENOMEM ? 500 : 400;
    return k;
  }
query:
  if (r->query) {
    k = url_query_parse(r->query, strlen(r->query), &r->q);
    if (k < 0) {
      *ret_status = k == -ENOMEM ? 500 : 400;
      return k;
    }
  }
  return 0;
}

/* The head is in the first `end` bytes of the input. Returns 0 or an HTTP status to fail with. */
static int conn_take_head(struct http_conn *c, size_t end, const char **ret_msg) {
  struct http_server *s = c->srv;
  struct evbuffer *in = bufferevent_get_input(c->bev);
  struct http_request *r = calloc(1, sizeof(*r));
  if (!r)
    return *ret_msg = "out of memory", 500;
  r->conn = c;
  c->req = r;
  buf_init(&r->body, s->cfg.max_body);
  buf_init(&r->extra, REPLY_HEADERS_MAX);
  r->head = malloc(end + 1);
  if (!r->head)
    return *ret_msg = "out of memory", 500;
  evbuffer_remove(in, r->head, end);
  r->head[end] = '\0';
  int k = http_head_parse(r->head, end, &r->h);
  if (k == -E2BIG)
    return *ret_msg = "too many header fields", 431;
  if (k == -EPROTONOSUPPORT)
    return *ret_msg = "HTTP version not supported", 505;
  if (k < 0) {
    r->h.method = NULL;
    return *ret_msg = "malformed request", 400;
  }
  r->is_head = strcmp(r->h.method, "HEAD") == 0;
  int status = 400;
  if (request_target(r, &status) < 0)
    return *ret_msg = status == 414 ? "request target too long" : "bad request target", status;
  /* The fields this layer acts on, in one pass (names compared only when the length fits). */
  size_t n_host = 0, n_te = 0, n_cl = 0;
  const char *te = NULL, *expect = NULL;
  bool close = false, ka = false, cl_bad = false;
  uint64_t cl = 0;
  for (size_t i = 0; i < r->h.n_fields; i++) {
    const char *name = r->h.fields[i].name, *value = r->h.fields[i].value;
    switch (strlen(name)) {
    case 4:
      n_host += strcasecmp(name, "Host") == 0;
      break;
    case 6:
      if (!expect && strcasecmp(name, "Expect") == 0)
        expect = value;
      break;
    case 10:
      if (strcasecmp(name, "Connection") == 0) {
        close |= http_list_has_token(value, "close");
        ka |= http_list_has_token(value, "keep-alive");
      }
      break;
    case 14:
      if (strcasecmp(name, "Content-Length") == 0) {
        uint64_t v;
        if (http_content_length_parse(value, &v) < 0 || (n_cl && v != cl))
          cl_bad = true;
        else
          cl = v;
        n_cl++;
      }
      break;
    case 17:
      if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (!te)
          te = value;
        n_te++;
      }
      break;
    }
  }
  if (n_host > 1)
    return *ret_msg = "duplicate Host", 400;
  if (n_host == 0 && r->h.minor >= 1)
    return *ret_msg = "missing Host", 400; /* RFC 9112 §3.2 */

  /* Connection persistence. */
  r->keep_alive = r->h.minor >= 1 ? !close : (ka && !close);

  /* Body framing. */
  c->chunked = false;
  c->body_left = 0;
  if (n_te) {
    if (n_cl || r->h.minor == 0)
      return *ret_msg = "ambiguous message framing", 400;
    if (n_te > 1 || strcasecmp(te, "chunked") != 0)
      return *ret_msg = "unsupported transfer coding", 501;
    c->chunked = true;
    c->ck = CK_SIZE;
    c->trailer_bytes = 0;
  } else if (n_cl) {
    if (cl_bad)
      return *ret_msg = "bad Content-Length", 400;
    if (cl > s->cfg.max_body)
      return *ret_msg = "request body too large", 413;
    c->body_left = cl;
  }

  bool cont = false;
  if (expect) {
    if (strcasecmp(expect, "100-continue") != 0)
      return *ret_msg = "unsupported expectation", 417;
    cont = r->h.minor >= 1;
  }
  if (cont && (c->chunked || c->body_left) && evbuffer_get_length(in) == 0) {
    bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    conn_kick_write(c);
  }
  return 0;
}

/* Moves up to max body bytes from the input into the request body. */
static int body_move(struct http_conn *c, uint64_t max, size_t *ret_moved) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  struct buf *b = &c->req->body;
  size_t n = evbuffer_get_length(in);
  if (n > max)
    n = (size_t)max;
  *ret_moved = n;
  if (n == 0)
    return 0;
  int k = buf_reserve(b, n);
  if (k < 0)
    return k;
  evbuffer_remove(in, b->data + b->len, n);
  b->len += n;
  return 0;
}

/* The next line of a chunked body, which must end in CRLF (RFC 9112 §7.1; a bare LF is where
 * parsers disagree, so it is refused): 1 with the line, CRLF cut, in *ret (allocated), 0 when
 * no complete line is there yet, -EBADMSG for a bare LF. */
static int input_crlf_line(struct evbuffer *in, char **ret, size_t *ret_len) {
  size_t n;
  char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
  if (!line)
    return 0;
  if (n == 0 || line[n - 1] != '\r') {
    free(line);
    return -EBADMSG;
  }
  line[--n] = '\0';
  *ret = line;
  *ret_len = n;
  return 1;
}

/* Returns 1 when the body is complete, 0 when more input is needed, or an HTTP status >= 400. */
static int conn_read_body(struct http_conn *c, const char **ret_msg) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  size_t moved;
  if (!c->chunked) {
    if (body_move(c, c->body_left, &moved) < 0)
      return *ret_msg = "request body too large", 413;
    c->body_left -= moved;
    return c->body_left == 0;
  }
  for (;;) {
    switch (c->ck) {
    case CK_SIZE: {
      size_t ll = 0;
      char *line = NULL;
      int k = input_crlf_line(in, &line, &ll);
      if (k < 0)
        return *ret_msg = "malformed chunk", 400;
      if (k == 0) {
        if (evbuffer_get_length(in) > CHUNK_LINE_MAX)
          return *ret_msg = "malformed chunk", 400;
        return 0;
      }
      uint64_t n;
      k = ll > CHUNK_LINE_MAX ? -EBADMSG : http_chunk_size_parse(line, ll, &n);
      free(line);
      if (k < 0)
        return *ret_msg = "malformed chunk", 400;
      if (n == 0) {
        c->ck = CK_TRAILER;
        break;
      }
      if (n > c->srv->cfg.max_body - c->req->body.len)
        return *ret_msg = "request body too large", 413;
      c->body_left = n;
      c->ck = CK_DATA;
      break;
    }
    case CK_DATA:
      if (body_move(c, c->body_left, &moved) < 0)
        return *ret_msg = "request body too large", 413;
      c->body_left -= moved;
      if (c->body_left)
        return 0;
      c->ck = CK_DATA_END;
      break;
    case CK_DATA_END: {
      unsigned char e[2];
      ev_ssize_t n = evbuffer_copyout(in, e, 2);
      if (n < 1)
        return 0;
      if (e[0] != '\r' || (n == 2 && e[1] != '\n'))
        return *ret_msg = "malformed chunk", 400;
      if (n < 2)
        return 0;
      evbuffer_drain(in, 2);
      c->ck = CK_SIZE;
      break;
    }
    case CK_TRAILER: {
      size_t ll = 0;
      char *line = NULL;
      int k = input_crlf_line(in, &line, &ll);
      if (k < 0)
        return *ret_msg = "malformed chunk trailer", 400;
      if (k == 0) {
        if (c->trailer_bytes + evbuffer_get_length(in) > c->srv->cfg.max_header)
          return *ret_msg = "trailer too large", 431;
        return 0;
      }
      free(line);
      if (ll == 0)
        return 1;
      c->trailer_bytes += ll + 2;
      if (c->trailer_bytes > c->srv->cfg.max_header)
        return *ret_msg = "trailer too large", 431;
      break;
    }
    }
  }
}

/* Advances the connection with the input it has. May free c (only as its last action). */
static void conn_process(struct http_conn *c) {
  struct http_server *s = c->srv;
  struct evbuffer *in = bufferevent_get_input(c->bev);
  const char *msg = NULL;
  int st;
  for (;;) {
    switch (c->state) {
    case CS_IDLE: {
      /* Empty lines before a request are ignored. */
      unsigned char p[64];
      ev_ssize_t n;
      while ((n = evbuffer_copyout(in, p, sizeof(p))) > 0) {
        ev_ssize_t i = 0;
        while (i < n && (p[i] == '\r' || p[i] == '\n'))
          i++;
        evbuffer_drain(in, (size_t)i);
        if (i < n)
          break;
      }
      if (evbuffer_get_length(in) == 0) {
        if (c->peer_eof)
          conn_free(c);
        return;
      }
      conn_set_state(c, CS_HEAD);
      c->scan = 0;
      conn_arm(c, s->tv_request);
      break;
    }
    case CS_HEAD: {
      size_t len = evbuffer_get_length(in);
      size_t take = MIN(len, s->cfg.max_header + 1);
      const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
      if (!p) {
        conn_fail(c, 500, "out of memory");
        return;
      }
      size_t end = http_head_find_end(p, take, c->scan);
      if (end == 0 && len <= s->cfg.max_header) {
        c->scan = take;
        if (c->peer_eof)
          conn_free(c);
        return;
      }
      if (end == 0 || end > s->cfg.max_header) {
        conn_fail(c, 431, "request header too large");
        return;
      }
      st = conn_take_head(c, end, &msg);
      if (st) {
        conn_fail(c, st, msg);
        return;
      }
      if (c->chunked || c->body_left) {
        conn_set_state(c, CS_BODY);
        break;
      }
      conn_dispatch(c);
      return;
    }
    case CS_BODY:
      st = conn_read_body(c, &msg);
      if (st > 1) {
        conn_fail(c, st, msg);
        return;
      }
      if (st == 0) {
        if (c->peer_eof)
          conn_free(c);
        return;
      }
      if (buf_terminate(&c->req->body) < 0) {
        conn_fail(c, 413, "request body too large");
        return;
      }
      conn_dispatch(c);
      return;
    case CS_HANDLER:
    case CS_WRITING:
      return;
    case CS_LINGER: {
      size_t n = evbuffer_get_length(in);
      evbuffer_drain(in, n);
      c->linger_bytes += n;
      if (c->linger_bytes > LINGER_MAX_BYTES || c->peer_eof)
        conn_free(c);
      return;
    }
    }
  }
}

static void conn_read_cb(struct bufferevent *bev, void *arg) {
  (void)bev;
  conn_process(arg);
}

static void conn_write_cb(struct bufferevent *bev, void *arg) {
  struct http_conn *c = arg;
  if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
    return;
  if (c->state == CS_WRITING) {
    evtimer_del(c->timer);
    conn_after_response(c);
  } else if (c->state == CS_HANDLER && c->req && c->req->stream_blocked) {
    struct http_request *r = c->req;
    r->stream_blocked = false;
    if (r->drain_cb)
      r->drain_cb(r->drain_ud);
  }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  struct http_conn *c = arg;
  if (what & BEV_EVENT_CONNECTED)
    return;
  if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    log_debug("http %s: connection %s", c->remote,
              (what & BEV_EVENT_TIMEOUT) ? "write timeout" : "error");
    conn_free(c);
    return;
  }
  if (what & BEV_EVENT_EOF)
    conn_on_eof(c);
}

/* The peer closed its side: finish what is buffered, answer what is asked, then close. */
static void conn_on_eof(struct http_conn *c) {
  c->peer_eof = true;
  switch (c->state) {
  case CS_WRITING:
    return; /* finish the reply; then close */
  case CS_HANDLER:
    conn_free(c); /* client went away: close callback */
    return;
  default:
    conn_process(c); /* completes what is buffered, or closes */
    return;
  }
}

/* Plain sockets read here rather than through the bufferevent: one read per readiness into
 * space reserved in the input buffer, without the FIONREAD ioctl and the deferred callback the
 * bufferevent adds to every read. Reading pauses while the input holds the high-water mark
 * (max_header + 4 KiB) and resumes when the connection goes back to reading requests. */
#define READ_CHUNK 16384
static void conn_on_read(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  struct http_conn *c = arg;
  struct evbuffer *in = bufferevent_get_input(c->bev);
  if (evbuffer_get_length(in) >= c->srv->cfg.max_header + 4096) {
    c->read_paused = true;
    event_del(c->rev);
    return;
  }
  struct evbuffer_iovec v[2];
  evbuffer_unfreeze(in, 0); /* the bufferevent keeps the end frozen: only it appends */
  int nv = evbuffer_reserve_space(in, READ_CHUNK, v, 2);
  ssize_t n = -1;
  int err = ENOMEM;
  if (nv > 0) {
    struct iovec iov[2];
    for (int i = 0; i < nv; i++)
      iov[i] = (struct iovec){.iov_base = v[i].iov_base, .iov_len = v[i].iov_len};
    do
      n = readv(fd, iov, nv);
    while (n < 0 && errno == EINTR);
    err = errno;
    size_t left = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < nv; i++) {
      size_t k = MIN(left, v[i].iov_len);
      v[i].iov_len = k;
      left -= k;
    }
    evbuffer_commit_space(in, v, n > 0 ? nv : 0);
  }
  evbuffer_freeze(in, 0);
  if (n > 0) {
    conn_process(c);
    return;
  }
  if (n == 0) {
    event_del(c->rev);
    conn_on_eof(c);
    return;
  }
  if (err == EAGAIN || err == EWOULDBLOCK)
    return;
  log_debug("http %s: read: %s", c->remote, strerror(err));
  conn_free(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct http_conn *c = arg;
  switch (c->state) {
  case CS_HEAD:
  case CS_BODY:
    conn_fail(c, 408, "request timeout");
    return;
  case CS_WRITING:
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
      conn_after_response(c);
    return;
  case CS_HANDLER:
    conn_handler_expired(c);
    return;
  case CS_IDLE:
  case CS_LINGER:
    conn_free(c);
    return;
  }
}

static void format_remote(const struct sockaddr *sa, char *out, size_t n) {
  char ip[INET6_ADDRSTRLEN];
  if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
  } else if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
    snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
  } else if (sa && sa->sa_family == AF_UNIX) {
    snprintf(out, n, "unix");
  } else {
    snprintf(out, n, "?");
  }
}

enum limit_event {
  LIMIT_REFUSED_SOURCE,
  LIMIT_REFUSED_FULL,
  LIMIT_EVICTED,
  LIMIT_EVICTED_SOURCE,
};

/* Counts a refusal or an eviction (peer-triggered): one debug line per second at most, with the
 * counts since the previous line. */
static void server_note_limit(struct http_server *s, enum limit_event ev,
                              const struct sockaddr *sa) {
  switch (ev) {
  case LIMIT_REFUSED_SOURCE: s->n_refused_source++; break;
  case LIMIT_REFUSED_FULL: s->n_refused_full++; break;
  case LIMIT_EVICTED: s->n_evicted++; break;
  case LIMIT_EVICTED_SOURCE: s->n_evicted_source++; break;
  }
  if (!log_ratelimit_ok(&s->limits_log, 1000, NULL))
    return;
  if (log_level_get() >= LOG_LVL_DEBUG) {
    char remote[64];
    format_remote(sa, remote, sizeof(remote));
    log_debug("http: connection limits: %u refused and %u idle closed over "
              "max_conns_per_source, %u refused and %u idle closed over max_conns (last: %s; "
              "%u open)",
              s->n_refused_source, s->n_evicted_source, s->n_refused_full, s->n_evicted, remote,
              s->n_conns);
  }
  s->n_refused_source = s->n_refused_full = s->n_evicted = s->n_evicted_source = 0;
}

/* Closes a connection that was not admitted, with a 503 on plain sockets. */
static void conn_refuse(int fd, SSL_CTX *ctx, const char *reply, size_t len) {
  if (!ctx)
    (void)!send(fd, reply, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  close(fd);
}

/* The limits of http_server.h: per source first, making room by closing that source's own
 * connection idle the longest (so a source at its share cannot push anyone else out, nor keep
 * the others behind its address out with idle connections), then max_conns, making room by
 * closing the connection idle the longest. On success *ret_source holds the per-source count
 * to release. Closes fd on refusal. */
static int conn_admit(struct http_server *s, int fd, SSL_CTX *ctx, const struct sockaddr *sa,
                      socklen_t salen, struct source_entry **ret_source) {
  struct source_entry *src = NULL;
  int k = source_limit_acquire(s->sources, sa, salen, &src);
  if (k == -EBUSY) {
    struct http_conn *oldest = source_entry_get_data(source_limit_find(s->sources, sa, salen));
    if (!oldest) {
      conn_refuse(fd, ctx, reply_503_source, sizeof(reply_503_source) - 1);
      server_note_limit(s, LIMIT_REFUSED_SOURCE, sa);
      return -EBUSY;
    }
    conn_free(oldest); /* idle: no request, no callback to run */
    server_note_limit(s, LIMIT_EVICTED_SOURCE, sa);
    /* The source is one below its cap now (with a cap of 1: its entry is gone). */
    k = source_limit_acquire(s->sources, sa, salen, &src);
  }
  if (k < 0) {
    close(fd);
    return k;
  }
  if (s->n_conns >= s->cfg.max_conns) {
    if (!s->idle_head) {
      source_limit_release(s->sources, src);
      conn_refuse(fd, ctx, reply_503_full, sizeof(reply_503_full) - 1);
      server_note_limit(s, LIMIT_REFUSED_FULL, sa);
      return -EBUSY;
    }
    conn_free(s->idle_head); /* idle: no request, no callback to run */
    server_note_limit(s, LIMIT_EVICTED, sa);
  }
  *ret_source = src;
  return 0;
}

static int conn_new(struct http_server *s, int fd, SSL_CTX *ctx, const struct sockaddr *sa,
                    socklen_t salen) {
  struct sockaddr_storage ss;
  if (!sa) {
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
      sa = (struct sockaddr *)&ss;
      salen = sl;
    }
  }
  struct source_entry *src = NULL;
  int k = conn_admit(s, fd, ctx, sa, salen, &src);
  if (k < 0)
    return k;
  evutil_make_socket_nonblocking(fd);
  evutil_make_socket_closeonexec(fd);
  if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  struct http_conn *c = calloc(1, sizeof(*c));
  if (!c) {
    source_limit_release(s->sources, src);
    close(fd);
    return -ENOMEM;
  }
  c->srv = s;
  c->fd = fd;
  c->source = src;
  format_remote(sa, c->remote, sizeof(c->remote));
  int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
  if (ctx) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
      source_limit_release(s->sources, src);
      close(fd);
      free(c);
      return -ENOMEM;
    }
    /* On failure libevent frees ssl (CLOSE_ON_FREE) but not the fd. */
    c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
    if (c->bev) {
      bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
      SSL_CTX_up_ref(ctx);
      c->ctx = ctx;
    }
  } else {
    c->bev = bufferevent_socket_new(s->base, fd, opts);
  }
  c->timer = evtimer_new(s->base, conn_timer_cb, c);
  if (!ctx)
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
  if (!c->bev || !c->timer || (!ctx && !c->rev)) {
    if (c->rev)
      event_free(c->rev);
    if (c->timer)
      event_free(c->timer);
    if (c->bev)
      bufferevent_free(c->bev);
    else
      close(fd);
    SSL_CTX_free(c->ctx);
    source_limit_release(s->sources, src);
    free(c);
    return -ENOMEM;
  }
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
  bufferevent_setwatermark(c->bev, EV_READ, 0, s->cfg.max_header + 4096);
  struct timeval wt = {.tv_sec = s->cfg.write_timeout_s, .tv_usec = 0};
  bufferevent_set_timeouts(c->bev, NULL, &wt);
  conn_set_state(c, CS_IDLE);
  conn_arm(c, s->tv_handshake); /* TLS handshake and first byte; then tv_request */
  if (ctx) {
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
  } else {
    bufferevent_disable(c->bev, EV_READ | EV_WRITE); /* EV_WRITE is on in new bufferevents */
    if (event_add(c->rev, NULL) < 0) {
      conn_free(c);
      return -ENOMEM;
    }
  }
  return 0;
}

int http_server_add_connection(struct http_server *s, int fd, SSL_CTX *ctx) {
  if (!s || fd < 0) {
    if (fd >= 0)
      close(fd);
    return -EINVAL;
  }
  return conn_new(s, fd, ctx, NULL, 0);
}

/* ---------------------------------------------------------------- replies */

void http_server_test_fail_allocs(struct http_server *s, unsigned n) {
  if (s)
    s->fail_allocs = n;
}

/* The answer the handler asked for cannot be sent: a fixed 500 when nothing of it was queued
 * yet (send_500), and the connection closes after what is queued. r leaves the connection:
 * freed, or, when keep, kept dead for the handler's final call (a stream it still ends). */
static void req_fail(struct http_request *r, bool send_500, bool keep) {
  struct http_conn *c = r->conn;
  c->resp_keep_alive = false;
  if (send_500 && !srv_fault(c->srv)) {
    size_t n = sizeof(reply_500) - 1 - (r->is_head ? sizeof(BODY_500) - 1 : 0);
    (void)evbuffer_add(bufferevent_get_output(c->bev), reply_500, n);
  }
  if (keep)
    req_detach(r);
  conn_finish_request(c); /* frees r unless detached */
}

/* For calls that do not finish a request (headers, stream writes): 0 when r is live and in
 * state want; -EPIPE when dead or inside its close callback; -EINVAL otherwise. */
static int req_check(const struct http_request *r, enum req_state want) {
  if (!r)
    return -EINVAL;
  if (r->closing)
    return -EPIPE;
  if (r->state != want)
    return -EINVAL;
  if (r->dead)
    return -EPIPE;
  return 0;
}

/* Entry of http_reply*: 1 when r is live and not answered yet; otherwise what to return, r
 * freed first when this is a dead request's final call. A stream is refused (-EINVAL) and
 * stays the caller's: streams end with http_stream_end. */
static int req_enter_reply(struct http_request *r) {
  int k = req_check(r, RQ_OPEN);
  if (k == -EPIPE && !r->closing) {
    request_free(r);
    return k;
  }
  return k < 0 ? k : 1;
}

int http_reply_header(struct http_request *r, const char *name, const char *value) {
  int k = req_check(r, RQ_OPEN);
  if (k < 0)
    return k;
  if (!name || !value || !*name)
    return -EINVAL;
  for (const char *p = name; *p; p++)
    if (!http_is_tchar((unsigned char)*p))
      return -EINVAL;
  if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0 ||
      strcasecmp(name, "Connection") == 0 || !header_value_ok(value))
    return -EINVAL;
  return buf_printf(&r->extra, "%s: %s\r\n", name, value);
}

int http_reply(struct http_request *r, int status, const char *content_type, const void *body,
               size_t len) {
  int k = req_enter_reply(r);
  if (k <= 0)
    return k;
  struct http_conn *c = r->conn;
  if (status < 200 || status > 599 || (len && !body) ||
      (content_type && !header_value_ok(content_type))) {
    req_fail(r, true, false);
    return -EINVAL;
  }
  bool has_body = status_has_body(status);
  bool ka = r->keep_alive && !c->peer_eof && !c->write_failed && !c->srv->freeing;
  k = write_head(c, status, content_type, &r->extra, has_body ? (long long)len : -1, false, ka,
                 r->h.minor);
  if (k < 0) {
    req_fail(r, true, false);
    return k;
  }
  if (has_body && !r->is_head && len &&
      (srv_fault(c->srv) || evbuffer_add(bufferevent_get_output(c->bev), body, len) < 0)) {
    ka = false; /* the head is queued: close after it (the client sees a short body) */
    k = -ENOMEM;
  }
  c->resp_keep_alive = ka;
  conn_finish_request(c);
  return k;
}

int http_reply_json(struct http_request *r, int status, const json_t *j) {
  int k = req_enter_reply(r);
  if (k <= 0)
    return k;
  char *s = j && !srv_fault(r->conn->srv) ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  if (!s) {
    req_fail(r, true, false);
    return j ? -ENOMEM : -EINVAL;
  }
  k = http_reply(r, status, "application/json", s, strlen(s));
  free(s);
  return k;
}

int http_reply_error(struct http_request *r, int status, const char *fmt, ...) {
  int k = req_enter_reply(r);
  if (k <= 0)
    return k;
  char *msg = NULL;
  int n = -1;
  if (fmt && !srv_fault(r->conn->srv)) {
    va_list ap;
    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
  }
  if (n < 0) {
    req_fail(r, true, false);
    return fmt ? -ENOMEM : -EINVAL;
  }
  /* Messages quote what peers sent; JSON strings must be UTF-8. */
  char *text = NULL;
  size_t tlen = 0;
  k = str_utf8_sanitize(msg, (size_t)n, &text, &tlen);
  free(msg);
  json_t *j = k < 0 ? NULL : json_object();
  if (!j || json_object_set_new(j, "error", json_stringn(text, tlen)) < 0) {
    free(text);
    json_decref(j);
    req_fail(r, true, false);
    return -ENOMEM;
  }
  free(text);
  k = http_reply_json(r, status, j);
  json_decref(j);
  return k;
}

int http_stream_start(struct http_request *r, int status, const char *ctype) {
  int k = req_check(r, RQ_OPEN);
  if (k == -EINVAL || r->closing)
    return k;
  r->state = RQ_STREAM; /* from here on a stream, whatever happens below */
  if (k < 0)
    return k; /* dead: http_stream_end frees it */
  struct http_conn *c = r->conn;
  evtimer_del(c->timer); /* answered: a stream has no handler deadline */
  if (status < 200 || status > 599 || !status_has_body(status) ||
      (ctype && !header_value_ok(ctype))) {
    req_fail(r, true, true);
    return -EINVAL;
  }
  r->stream_chunked = r->h.minor >= 1;
  bool ka = r->stream_chunked && r->keep_alive && !c->peer_eof && !c->write_failed &&
            !c->srv->freeing;
  k = write_head(c, status, ctype, &r->extra, -1, r->stream_chunked, ka, r->h.minor);
  if (k < 0) {
    req_fail(r, true, true);
    return k;
  }
  c->resp_keep_alive = ka;
  /* A stream is written by the write event as its chunks come (plain sockets too). */
  if (!c->ctx && !c->write_armed) {
    c->write_armed = true;
    bufferevent_enable(c->bev, EV_WRITE);
  }
  return 0;
}

int http_stream_write(struct http_request *r, const void *p, size_t n) {
  int k = req_check(r, RQ_STREAM);
  if (k < 0)
    return k;
  if (n && !p)
    return -EINVAL;
  if (n == 0 || r->is_head)
    return 0;
  struct evbuffer *out = bufferevent_get_output(r->conn->bev);
  if (evbuffer_get_length(out) > r->conn->srv->cfg.stream_buffer) {
    r->stream_blocked = true;
    return -EAGAIN;
  }
  if (srv_fault(r->conn->srv) ||
      (r->stream_chunked ? evbuffer_add_printf(out, "%zx\r\n", n) < 0 ||
                               evbuffer_add(out, p, n) < 0 || evbuffer_add(out, "\r\n", 2) < 0
                         : evbuffer_add(out, p, n) < 0)) {
    req_fail(r, false, true); /* cut off: the client sees no end of the stream */
    return -ENOMEM;
  }
  return 0;
}

int http_stream_end(struct http_request *r) {
  if (!r)
    return -EINVAL;
  if (r->closing)
    return -EPIPE;
  if (r->dead) {
    request_free(r);
    return -EPIPE;
  }
  if (r->state != RQ_STREAM) {
    req_fail(r, true, false);
    return -EINVAL;
  }
  struct http_conn *c = r->conn;
  int k = 0;
  if (r->stream_chunked && !r->is_head &&
      (srv_fault(c->srv) || evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5) < 0)) {
    c->resp_keep_alive = false;
    k = -ENOMEM;
  }
  conn_finish_request(c);
  return k;
}

void http_stream_on_drain(struct http_request *r, void (*cb)(void *ud), void *ud) {
  if (!r || r->dead)
    return;
  r->drain_cb = cb;
  r->drain_ud = ud;
}

void http_request_on_close(struct http_request *r, void (*cb)(void *ud), void *ud) {
  if (!r || r->dead)
    return;
  r->close_cb = cb;
  r->close_ud = ud;
}

void http_stream_on_close(struct http_request *r, void (*cb)(void *ud), void *ud) {
  http_request_on_close(r, cb, ud);
}

/* ---------------------------------------------------------------- listeners */

static void listener_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                               int socklen, void *arg) {
  (void)lev;
  struct listener *l = arg;
  (void)conn_new(l->srv, fd, l->ctx, sa, (socklen_t)socklen);
}

static void listener_retry_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct listener *l = arg;
  evconnlistener_enable(l->lev);
}

static void listener_error_cb(struct evconnlistener *lev, void *arg) {
  struct listener *l = arg;
  int e = EVUTIL_SOCKET_ERROR();
  log_debug("http: accept failed: %s", evutil_socket_error_to_string(e));
  /* EMFILE and friends: the listening socket stays readable; pause instead of spinning. */
  evconnlistener_disable(lev);
  struct timeval tv = {.tv_sec = 0, .tv_usec = ACCEPT_RETRY_MS * 1000};
  evtimer_add(l->retry, &tv);
}

static void listener_free(struct listener *l) {
  if (!l)
    return;
  if (l->lev)
    evconnlistener_free(l->lev);
  if (l->retry)
    event_free(l->retry);
  if (l->unix_path) {
    struct stat st;
    if (lstat(l->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
        st.st_ino == l->ino)
      unlink(l->unix_path);
    free(l->unix_path);
  }
  SSL_CTX_free(l->ctx);
  free(l);
}

/* Takes a bound, listening fd (closed on error). */
static int listener_add(struct http_server *s, int fd, SSL_CTX *ctx, struct listener **ret) {
  struct listener *l = calloc(1, sizeof(*l));
  if (!l) {
    close(fd);
    return -ENOMEM;
  }
  l->srv = s;
  l->lev = evconnlistener_new(s->base, listener_accept_cb, l,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
  if (!l->lev) {
    close(fd);
    free(l);
    return -ENOMEM;
  }
  l->retry = evtimer_new(s->base, listener_retry_cb, l);
  if (!l->retry) {
    listener_free(l);
    return -ENOMEM;
  }
  evconnlistener_set_error_cb(l->lev, listener_error_cb);
  if (ctx) {
    SSL_CTX_up_ref(ctx);
    l->ctx = ctx;
  }
  l->next = s->listeners;
  s->listeners = l;
  if (ret)
    *ret = l;
  return 0;
}

static int listen_inet(struct http_server *s, const char *addr, uint16_t port, SSL_CTX *ctx,
                       uint16_t *ret_port) {
  if (!s)
    return -EINVAL;
  char ps[8];
  snprintf(ps, sizeof(ps), "%u", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  if (getaddrinfo(addr ? addr : "127.0.0.1", ps, &hints, &ai) != 0 || !ai)
    return -EINVAL;
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = -errno;
    freeaddrinfo(ai);
    return e;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
    int e = -errno;
    freeaddrinfo(ai);
    close(fd);
    return e;
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  uint16_t bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  int k = listener_add(s, fd, ctx, NULL);
  if (k < 0)
    return k;
  if (ret_port)
    *ret_port = bound;
  return 0;
}

int http_server_listen_tcp(struct http_server *s, const char *addr, uint16_t port,
                           uint16_t *ret_port) {
  return listen_inet(s, addr, port, NULL, ret_port);
}

int http_server_listen_tls(struct http_server *s, const char *addr, uint16_t port, SSL_CTX *ctx,
                           uint16_t *ret_port) {
  if (!ctx)
    return -EINVAL;
  return listen_inet(s, addr, port, ctx, ret_port);
}

int http_server_listen_unix(struct http_server *s, const char *path, mode_t mode) {
  if (!s || !path || !*path || (mode & ~(mode_t)07777))
    return -EINVAL;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t pl = strlen(path);
  if (pl >= sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  memcpy(sa.sun_path, path, pl + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int k;
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      k = -EEXIST;
      goto fail;
    }
    /* Refuse to take over a socket someone is still serving. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
      int live = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
      close(probe);
      if (live) {
        k = -EADDRINUSE;
        goto fail;
      }
    }
    if (unlink(path) < 0 && errno != ENOENT) {
      k = -errno;
      goto fail;
    }
  } else if (errno != ENOENT) {
    k = -errno;
    goto fail;
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    k = -errno;
    goto fail;
  }
  /* Mode set explicitly, before anyone can connect (no listen yet). */
  if (chmod(path, mode) < 0 || lstat(path, &st) < 0 || listen(fd, 511) < 0) {
    k = -errno;
    unlink(path);
    goto fail;
  }
  struct listener *l = NULL;
  k = listener_add(s, fd, NULL, &l);
  if (k < 0) {
    unlink(path);
    return k;
  }
  l->dev = st.st_dev;
  l->ino = st.st_ino;
  l->unix_path = strdup(path);
  if (!l->unix_path) {
    unlink(path);
    return -ENOMEM; /* the listener stays until http_server_free */
  }
  return 0;
fail:
  close(fd);
  return k;
}

/* ---------------------------------------------------------------- server */

int http_server_new(struct event_base *base, const struct http_server_config *cfg,
                    struct http_server **ret) {
  if (!base || !ret)
    return -EINVAL;
  struct http_server *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->base = base;
  if (cfg)
    s->cfg = *cfg;
  if (!s->cfg.max_body)
    s->cfg.max_body = HTTP_SERVER_DEFAULT_MAX_BODY;
  if (!s->cfg.max_header)
    s->cfg.max_header = HTTP_SERVER_DEFAULT_MAX_HEADER;
  if (!s->cfg.idle_timeout_s)
    s->cfg.idle_timeout_s = HTTP_SERVER_DEFAULT_IDLE_TIMEOUT_S;
  if (!s->cfg.request_timeout_s)
    s->cfg.request_timeout_s = HTTP_SERVER_DEFAULT_REQUEST_TIMEOUT_S;
  if (!s->cfg.max_conns)
    s->cfg.max_conns = HTTP_SERVER_DEFAULT_MAX_CONNS;
  if (!s->cfg.write_timeout_s)
    s->cfg.write_timeout_s = HTTP_SERVER_DEFAULT_WRITE_TIMEOUT_S;
  if (!s->cfg.stream_buffer)
    s->cfg.stream_buffer = HTTP_SERVER_DEFAULT_STREAM_BUFFER;
  if (!s->cfg.handshake_timeout_s)
    s->cfg.handshake_timeout_s = HTTP_SERVER_DEFAULT_HANDSHAKE_TIMEOUT_S;
  if (!s->cfg.handler_timeout_s)
    s->cfg.handler_timeout_s = HTTP_SERVER_DEFAULT_HANDLER_TIMEOUT_S;
  s->cfg.handshake_timeout_s = MIN(s->cfg.handshake_timeout_s, s->cfg.idle_timeout_s);
  if (!s->cfg.max_conns_per_source) {
    unsigned share = MAX(s->cfg.max_conns / HTTP_SERVER_DEFAULT_SOURCE_SHARE,
                         HTTP_SERVER_DEFAULT_MIN_PER_SOURCE);
    s->cfg.max_conns_per_source = MIN(share, s->cfg.max_conns);
  }
  struct timeval idle = {.tv_sec = s->cfg.idle_timeout_s}, req = {.tv_sec = s->cfg.request_timeout_s},
                 linger = {.tv_sec = LINGER_S}, hs = {.tv_sec = s->cfg.handshake_timeout_s},
                 handler = {.tv_sec = s->cfg.handler_timeout_s};
  s->tv_idle = event_base_init_common_timeout(base, &idle);
  s->tv_request = event_base_init_common_timeout(base, &req);
  s->tv_linger = event_base_init_common_timeout(base, &linger);
  s->tv_handshake = event_base_init_common_timeout(base, &hs);
  s->tv_handler = event_base_init_common_timeout(base, &handler);
  int k = source_limit_new(s->cfg.max_conns_per_source, &s->sources);
  if (!s->tv_idle || !s->tv_request || !s->tv_linger || !s->tv_handshake || !s->tv_handler ||
      k < 0) {
    source_limit_free(s->sources);
    free(s);
    return -ENOMEM;
  }
  *ret = s;
  return 0;
}

void http_server_free(struct http_server *s) {
  if (!s)
    return;
  s->freeing = true;
  while (s->listeners) {
    struct listener *l = s->listeners;
    s->listeners = l->next;
    listener_free(l);
  }
  while (s->conns)
    conn_free(s->conns);
  source_limit_free(s->sources);
  for (size_t i = 0; i < s->n_routes; i++)
    free(s->routes[i].prefix);
  free(s->routes);
  free(s);
}

int http_server_route(struct http_server *s, const char *path_prefix, http_handler_fn fn,
                      void *ud) {
  if (!s || !path_prefix || path_prefix[0] != '/' || !fn)
    return -EINVAL;
  for (size_t i = 0; i < s->n_routes; i++)
    if (strcmp(s->routes[i].prefix, path_prefix) == 0) {
      s->routes[i].fn = fn;
      s->routes[i].ud = ud;
      return 0;
    }
  struct route *nr = realloc(s->routes, (s->n_routes + 1) * sizeof(*nr));
  if (!nr)
    return -ENOMEM;
  s->routes = nr;
  char *p = strdup(path_prefix);
  if (!p)
    return -ENOMEM;
  s->routes[s->n_routes++] = (struct route){.prefix = p, .len = strlen(p), .fn = fn, .ud = ud};
  return 0;
}

struct event_base *http_server_get_base(const struct http_server *s) {
  return s->base;
}

unsigned http_server_n_connections(const struct http_server *s) {
  return s->n_conns;
}
