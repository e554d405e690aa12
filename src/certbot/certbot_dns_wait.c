/* The propagation check: see certbot_dns_wait.h. */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/buf.h"
#include "base/macro.h"
#include "base/str.h"
#include "certbot_dns_wait.h"

#define WAIT_MAX_SERVERS 16
#define WAIT_FIRST_PAUSE_MS 250u
#define WAIT_QUERY_TIMEOUT_MS 2000u
#define WAIT_NAME_MAX 253
#define WAIT_VALUE_MAX 4096
#define DNS_CLASS_IN 1
#define DNS_TYPE_TXT 16

int certbot_dns_wait_txt_match(const unsigned char *msg, size_t len, const char *value) {
  if (!msg || !value || len > INT32_MAX)
    return -EINVAL;
  struct ares_txt_ext *txt = NULL;
  int st = ares_parse_txt_reply_ext(msg, (int)len, &txt);
  if (st == ARES_ENODATA)
    return 0;
  if (st != ARES_SUCCESS)
    return st == ARES_ENOMEM ? -ENOMEM : -EBADMSG;
  int r = 0;
  struct buf cur = BUF_INIT(65536);
  bool have = false;
  for (struct ares_txt_ext *t = txt;; t = t->next) {
    /* A record ends where the next one starts or the list ends. */
    if (have && (!t || t->record_start)) {
      if (buf_terminate(&cur) < 0) {
        r = -ENOMEM;
        break;
      }
      if (cur.len == strlen(value) && memcmp(cur.data, value, cur.len) == 0) {
        r = 1;
        break;
      }
      buf_reset(&cur);
      have = false;
    }
    if (!t)
      break;
    have = true;
    if (t->length && buf_append(&cur, t->txt, t->length) < 0) {
      r = -EBADMSG;
      break;
    }
  }
  buf_free(&cur);
  ares_free_data(txt);
  return r;
}

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status;

static void ares_global_init(void) {
  ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

struct server {
  const char *given;
  char csv[INET6_ADDRSTRLEN + 16]; /* c-ares' "ip:port" or "[ip]:port" */
  bool done;
  char last[160]; /* what it answered last */
};

/* "host[:port]" or "[v6][:port]" to c-ares' form, resolving a name once. */
static int server_parse(const char *s, struct server *ret, char *err, size_t errlen) {
  char host[WAIT_NAME_MAX + 1];
  const char *port = "53";
  const char *colon;
  size_t hl;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || (end[1] && end[1] != ':'))
      return str_err(err, errlen, -EINVAL, "bad name server \"%.80s\"", s);
    hl = (size_t)(end - s - 1);
    memcpy(host, s + 1, MIN(hl, sizeof(host) - 1));
    if (end[1])
      port = end + 2;
  } else {
    colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) /* a bare IPv6 address */
      colon = NULL;
    hl = colon ? (size_t)(colon - s) : strlen(s);
    memcpy(host, s, MIN(hl, sizeof(host) - 1));
    if (colon)
      port = colon + 1;
  }
  uint16_t pn;
  if (hl == 0 || hl >= sizeof(host) || str_to_u16(port, &pn) < 0 || pn == 0)
    return str_err(err, errlen, -EINVAL, "bad name server \"%.80s\"", s);
  host[hl] = '\0';
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
  struct addrinfo *ai = NULL;
  if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
    return str_err(err, errlen, -ENOENT, "name server \"%.80s\" does not resolve", s);
  char ip[INET6_ADDRSTRLEN] = "";
  if (ai->ai_family == AF_INET)
    inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof(ip));
  else if (ai->ai_family == AF_INET6)
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ip, sizeof(ip));
  bool v6 = ai->ai_family == AF_INET6;
  freeaddrinfo(ai);
  if (!ip[0])
    return str_err(err, errlen, -ENOENT, "name server \"%.80s\" has no address", s);
  snprintf(ret->csv, sizeof(ret->csv), v6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)pn);
  ret->given = s;
  return 0;
}

struct query {
  const char *value;
  bool finished;
  int result; /* 1 match, 0 no match, <0 error */
  char why[160];
};

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
  (void)timeouts;
  struct query *q = arg;
  q->finished = true;
  if (status == ARES_SUCCESS) {
    q->result = certbot_dns_wait_txt_match(abuf, alen > 0 ? (size_t)alen : 0, q->value);
    snprintf(q->why, sizeof(q->why), "%s",
             q->result == 1   ? "the value"
             : q->result == 0 ? "TXT records without the value"
                              : "a malformed answer");
  } else if (status == ARES_ENODATA || status == ARES_ENOTFOUND) {
    q->result = 0;
    snprintf(q->why, sizeof(q->why), "no TXT record (%s)", ares_strerror(status));
  } else {
    q->result = -EIO;
    snprintf(q->why, sizeof(q->why), "%s", ares_strerror(status));
  }
}

/* One question to one server, at most timeout_ms. 1 match, 0 not (yet), <0 failure; why says
 * what happened. */
static int query_one(struct server *srv, const char *name, const char *value,
                     unsigned timeout_ms) {
  ares_channel ch;
  struct ares_options ao = {.timeout = (int)timeout_ms, .tries = 1};
  int st = ares_init_options(&ch, &ao, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (st != ARES_SUCCESS) {
    snprintf(srv->last, sizeof(srv->last), "c-ares: %s", ares_strerror(st));
    return -EIO;
  }
  st = ares_set_servers_ports_csv(ch, srv->csv);
  if (st != ARES_SUCCESS) {
    snprintf(srv->last, sizeof(srv->last), "c-ares: %s", ares_strerror(st));
    ares_destroy(ch);
    return -EIO;
  }
  struct query q = {.value = value};
  ares_query(ch, name, DNS_CLASS_IN, DNS_TYPE_TXT, query_cb, &q);
  int64_t deadline = now_ms() + timeout_ms + 200;
  while (!q.finished && now_ms() < deadline) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    /* c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit: read bits here */
    unsigned bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
    struct pollfd pfd[ARES_GETSOCK_MAXNUM];
    nfds_t n = 0;
    for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
      short ev = (short)((((bits >> i) & 1u) ? POLLIN : 0) |
                         (((bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u) ? POLLOUT : 0));
      if (ev)
        pfd[n++] = (struct pollfd){.fd = socks[i], .events = ev};
    }
    struct timeval tv, maxtv = {.tv_sec = 0, .tv_usec = 100000};
    struct timeval *t = ares_timeout(ch, &maxtv, &tv);
    int wait = t ? (int)(t->tv_sec * 1000 + t->tv_usec / 1000) : 100;
    int pr = poll(pfd, n, wait < 1 ? 1 : wait);
    if (pr < 0 && errno != EINTR)
      break;
    if (pr <= 0) {
      ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      continue;
    }
    for (nfds_t i = 0; i < n && !q.finished; i++)
      if (pfd[i].revents)
        ares_process_fd(ch, (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd
                                                                           : ARES_SOCKET_BAD,
                        (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
  }
  bool answered = q.finished;
  ares_destroy(ch); /* runs query_cb with ARES_EDESTRUCTION if still pending */
  if (!answered) {
    snprintf(srv->last, sizeof(srv->last), "no answer");
    return -ETIMEDOUT;
  }
  snprintf(srv->last, sizeof(srv->last), "%s", q.why);
  return q.result;
}

int certbot_dns_wait_txt(char *const *servers, const char *name, const char *value,
                         unsigned max_wait_ms, char *err, size_t errlen) {
  size_t ns = servers ? strv_length(servers) : 0;
  if (ns == 0 || ns > WAIT_MAX_SERVERS)
    return str_err(err, errlen, -EINVAL, "propagation check: 1 to %d name servers needed",
                   WAIT_MAX_SERVERS);
  size_t nl = name ? strlen(name) : 0;
  if (nl == 0 || nl > WAIT_NAME_MAX + 1 || !str_is_printable_ascii(name) || strchr(name, ' '))
    return str_err(err, errlen, -EINVAL, "propagation check: bad name");
  if (!value || strlen(value) > WAIT_VALUE_MAX)
    return str_err(err, errlen, -EINVAL, "propagation check: bad value");
  (void)pthread_once(&ares_once, ares_global_init);
  if (ares_init_status != ARES_SUCCESS)
    return str_err(err, errlen, -EIO, "propagation check: c-ares: %s",
                   ares_strerror(ares_init_status));
  struct server srv[WAIT_MAX_SERVERS] = {0};
  for (size_t i = 0; i < ns; i++) {
    int r = server_parse(servers[i], &srv[i], err, errlen);
    if (r < 0)
      return r;
    snprintf(srv[i].last, sizeof(srv[i].last), "not asked");
  }
  int64_t start = now_ms(), deadline = start + max_wait_ms;
  unsigned pause = WAIT_FIRST_PAUSE_MS;
  for (;;) {
    size_t missing = 0;
    for (size_t i = 0; i < ns; i++) {
      if (srv[i].done)
        continue;
      int64_t left = deadline - now_ms();
      unsigned t = (unsigned)MAX((int64_t)100, MIN(left, (int64_t)WAIT_QUERY_TIMEOUT_MS));
      if (query_one(&srv[i], name, value, t) == 1)
        srv[i].done = true;
      else
        missing++;
    }
    if (!missing)
      return 0;
    int64_t left = deadline - now_ms();
    if (left <= 0)
      break;
    pause_ms(MIN((int64_t)pause, left));
    pause = MIN(pause * 2, CERTBOT_DNS_WAIT_MAX_PAUSE_MS);
  }
  for (size_t i = 0; i < ns; i++)
    if (!srv[i].done)
      return str_err(err, errlen, -ETIMEDOUT,
                     "propagation check: after %lld ms %s still does not serve TXT %s = \"%.64s\""
                     " (it answered: %s)",
                     (long long)(now_ms() - start), srv[i].given, name, value, srv[i].last);
  return 0;
}
