/* TXT lookups for custom domains: c-ares on libevent, a shared TTL cache, our answer parser. */
#include "tproxy_dns.h"

#include <ares.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "net/tls_hello.h"

#define NAME_WIRE_MAX 255 /* RFC 1035 §2.3.4, length octets and the root included */
#define NAME_TEXT_MAX 253 /* the same name dotted, without the final dot */
#define CNAME_MAX 8
#define POINTERS_MAX 64
#define RR_MAX 64 /* TXT and CNAME answer records looked at */
#define T_CNAME_ 5
#define T_TXT_ 16
#define C_IN_ 1
#define RCODE_NXDOMAIN 3

/* ---------------------------------------------------------------- answer parser */

struct msg {
  const uint8_t *p;
  size_t len;
};

static char ascii_lower(uint8_t c) {
  return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

static uint16_t rd16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads the (possibly compressed) name at *off into out: lowercase, dotted, no final dot, ""
 * for the root. Moves *off past the name's bytes at *off. */
static int name_read(const struct msg *m, size_t *off, char out[NAME_TEXT_MAX + 1]) {
  size_t pos = *off, end = 0, n = 0, wire = 1;
  bool jumped = false;
  int pointers = 0;
  for (;;) {
    if (pos >= m->len)
      return -EBADMSG;
    uint8_t l = m->p[pos];
    if ((l & 0xC0) == 0xC0) {
      if (pos + 1 >= m->len || ++pointers > POINTERS_MAX)
        return -EBADMSG;
      size_t to = ((size_t)(l & 0x3F) << 8) | m->p[pos + 1];
      if (to >= m->len)
        return -EBADMSG;
      if (!jumped)
        end = pos + 2;
      jumped = true;
      pos = to;
      continue;
    }
    if (l & 0xC0) /* 0x40, 0x80: extended and reserved label types */
      return -EBADMSG;
    pos++;
    if (l == 0)
      break;
    wire += 1 + (size_t)l;
    if (l > m->len - pos || wire > NAME_WIRE_MAX)
      return -EBADMSG;
    if (n)
      out[n++] = '.';
    for (size_t i = 0; i < l; i++) {
      uint8_t c = m->p[pos + i];
      if (c == '.' || c == 0) /* would not survive the dotted form */
        return -EBADMSG;
      out[n++] = ascii_lower(c);
    }
    pos += l;
  }
  out[n] = 0;
  *off = jumped ? end : pos;
  return 0;
}

/* qname as the parser compares it: lowercase, no final dot. */
static int name_norm(const char *in, char out[NAME_TEXT_MAX + 1]) {
  size_t n = strlen(in);
  if (n && in[n - 1] == '.')
    n--;
  if (n > NAME_TEXT_MAX)
    return -ENAMETOOLONG;
  for (size_t i = 0; i < n; i++)
    out[i] = ascii_lower((uint8_t)in[i]);
  out[n] = 0;
  return 0;
}

struct rr {
  char name[NAME_TEXT_MAX + 1];
  uint16_t type;
  uint32_t ttl;
  size_t rdata, rdlen; /* offset into the message, length */
};

/* The character-strings of a TXT RDATA, concatenated. */
static int txt_copy(const struct msg *m, const struct rr *x, char *out, size_t outlen) {
  size_t p = x->rdata, e = x->rdata + x->rdlen, w = 0;
  if (x->rdlen == 0)
    return -EBADMSG; /* at least one character-string */
  while (p < e) {
    size_t sl = m->p[p++];
    if (sl > e - p)
      return -EBADMSG;
    if (sl >= outlen - w)
      return -EMSGSIZE;
    memcpy(out + w, m->p + p, sl);
    w += sl;
    p += sl;
  }
  out[w] = 0;
  return (int)w;
}

int tproxy_dns_parse_txt_answer(const uint8_t *msg, size_t len, const char *qname, char *out,
                                size_t outlen, uint32_t *ret_ttl) {
  struct msg m = {msg, len};
  char want[NAME_TEXT_MAX + 1], name[NAME_TEXT_MAX + 1];
  int r;

  if (ret_ttl)
    *ret_ttl = 0;
  if (!msg || !qname || !out || outlen == 0 || outlen > INT32_MAX)
    return -EINVAL;
  if (name_norm(qname, want) < 0 || !want[0])
    return -EINVAL;
  if (len < 12)
    return -EBADMSG;
  uint16_t flags = rd16(msg + 2);
  if (!(flags & 0x8000) || ((flags >> 11) & 0xF) != 0) /* QR, opcode QUERY */
    return -EBADMSG;
  unsigned rcode = flags & 0xF;
  uint16_t qd = rd16(msg + 4), an = rd16(msg + 6);
  if (qd > 1 || (qd == 0 && rcode == 0))
    return -EBADMSG;
  size_t off = 12;
  if (qd == 1) {
    if ((r = name_read(&m, &off, name)) < 0)
      return r;
    if (4 > len - off || strcmp(name, want) != 0 || rd16(msg + off) != T_TXT_ ||
        rd16(msg + off + 2) != C_IN_)
      return -EBADMSG;
    off += 4;
  }
  if (rcode == RCODE_NXDOMAIN)
    return -ENOENT;
  if (rcode != 0)
    return -EIO;

  /* The answer section: every record checked, TXT and CNAME of class IN kept. */
  struct rr rrs[RR_MAX];
  size_t n = 0;
  for (unsigned i = 0; i < an; i++) {
    struct rr x;
    if ((r = name_read(&m, &off, x.name)) < 0)
      return r;
    if (10 > len - off)
      return -EBADMSG;
    x.type = rd16(msg + off);
    uint16_t cls = rd16(msg + off + 2);
    x.ttl = rd32(msg + off + 4);
    if (x.ttl > INT32_MAX) /* RFC 2181 §8: as if zero */
      x.ttl = 0;
    x.rdlen = rd16(msg + off + 8);
    x.rdata = off + 10;
    if (x.rdlen > len - x.rdata)
      return -EBADMSG;
    off = x.rdata + x.rdlen;
    if (cls == C_IN_ && (x.type == T_TXT_ || x.type == T_CNAME_) && n < RR_MAX)
      rrs[n++] = x;
  }

  uint32_t ttl = UINT32_MAX;
  for (int hop = 0; hop <= CNAME_MAX; hop++) {
    const struct rr *cname = NULL;
    for (size_t i = 0; i < n; i++) {
      if (strcmp(rrs[i].name, want) != 0)
        continue;
      if (rrs[i].type == T_TXT_) {
        if ((r = txt_copy(&m, &rrs[i], out, outlen)) < 0)
          return r;
        if (ret_ttl)
          *ret_ttl = rrs[i].ttl < ttl ? rrs[i].ttl : ttl;
        return r;
      }
      if (!cname)
        cname = &rrs[i];
    }
    if (!cname)
      return -ENOENT; /* NODATA */
    size_t p = cname->rdata;
    if ((r = name_read(&m, &p, name)) < 0 || p != cname->rdata + cname->rdlen)
      return -EBADMSG;
    if (cname->ttl < ttl)
      ttl = cname->ttl;
    memcpy(want, name, sizeof(want));
  }
  return -EBADMSG; /* a CNAME chain too long, or a loop */
}

/* ---------------------------------------------------------------- cache */

struct centry {
  struct centry *hnext;       /* hash chain */
  struct centry *prev, *next; /* LRU list, most recent first */
  char name[NAME_TEXT_MAX + 1];
  struct tproxy_route route;
  int status;
  int64_t expires;
};

struct tproxy_dns_cache {
  pthread_mutex_t mu;
  size_t max, n, nbuckets;
  struct centry **buckets;
  struct centry lru; /* sentinel */
  int64_t (*now)(void);
};

static int64_t mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec;
}

static size_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return (size_t)h;
}

int tproxy_dns_cache_new(size_t max_entries, struct tproxy_dns_cache **ret) {
  if (!ret || max_entries == 0)
    return -EINVAL;
  struct tproxy_dns_cache *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  c->max = max_entries;
  c->nbuckets = 16;
  while (c->nbuckets < max_entries && c->nbuckets < (1u << 20))
    c->nbuckets <<= 1;
  if (!(c->buckets = calloc(c->nbuckets, sizeof(*c->buckets)))) {
    free(c);
    return -ENOMEM;
  }
  c->lru.prev = c->lru.next = &c->lru;
  c->now = mono_now;
  pthread_mutex_init(&c->mu, NULL);
  *ret = c;
  return 0;
}

void tproxy_dns_cache_free(struct tproxy_dns_cache *c) {
  if (!c)
    return;
  for (struct centry *e = c->lru.next, *nx; e != &c->lru; e = nx) {
    nx = e->next;
    free(e);
  }
  free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

void tproxy_dns_cache_set_clock(struct tproxy_dns_cache *c, int64_t (*now)(void)) {
  if (c)
    c->now = now ? now : mono_now;
}

static struct centry **cache_slot(struct tproxy_dns_cache *c, const char *name) {
  struct centry **p = &c->buckets[hash_name(name) & (c->nbuckets - 1)];
  while (*p && strcmp((*p)->name, name) != 0)
    p = &(*p)->hnext;
  return p;
}

static void cache_unlink(struct tproxy_dns_cache *c, struct centry **slot) {
  struct centry *e = *slot;
  *slot = e->hnext;
  e->prev->next = e->next;
  e->next->prev = e->prev;
  c->n--;
  free(e);
}

static void lru_push_front(struct tproxy_dns_cache *c, struct centry *e) {
  e->next = c->lru.next;
  e->prev = &c->lru;
  c->lru.next->prev = e;
  c->lru.next = e;
}

int tproxy_dns_cache_get(struct tproxy_dns_cache *c, const char *name, struct tproxy_route *ret,
                         int *ret_status) {
  char key[NAME_TEXT_MAX + 1];
  if (!c || !name || !ret || !ret_status || name_norm(name, key) < 0)
    return 0;
  int found = 0;
  pthread_mutex_lock(&c->mu);
  struct centry **slot = cache_slot(c, key);
  struct centry *e = *slot;
  if (e && e->expires <= c->now()) {
    cache_unlink(c, slot);
  } else if (e) {
    *ret = e->route;
    *ret_status = e->status;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    lru_push_front(c, e);
    found = 1;
  }
  pthread_mutex_unlock(&c->mu);
  return found;
}

int tproxy_dns_cache_put(struct tproxy_dns_cache *c, const char *name,
                         const struct tproxy_route *route, int status, uint32_t ttl) {
  char key[NAME_TEXT_MAX + 1];
  if (!c || !name || status > 0 || (status == 0 && !route))
    return -EINVAL;
  int r = name_norm(name, key);
  if (r < 0)
    return r;
  struct centry *e = NULL;
  if (ttl > 0 && !(e = calloc(1, sizeof(*e))))
    return -ENOMEM;
  if (e) {
    memcpy(e->name, key, sizeof(key));
    if (status == 0)
      e->route = *route;
    e->status = status;
  }
  pthread_mutex_lock(&c->mu);
  struct centry **slot = cache_slot(c, key);
  if (*slot)
    cache_unlink(c, slot);
  if (e) {
    while (c->n >= c->max) /* drop the least recently used */
      cache_unlink(c, cache_slot(c, c->lru.prev->name));
    e->expires = c->now() + ttl;
    e->hnext = NULL;
    *cache_slot(c, key) = e;
    lru_push_front(c, e);
    c->n++;
  }
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* ---------------------------------------------------------------- resolver */

struct pending;

struct tproxy_dns_query {
  struct pending *p;
  struct tproxy_dns_query *prev, *next;
  tproxy_dns_cb cb;
  void *arg;
};

/* One name being looked up, and everyone waiting for it. */
struct pending {
  struct tproxy_dns *d;
  struct pending *prev, *next; /* in d->pendings while a new lookup may join */
  bool linked;
  char sni[NAME_TEXT_MAX + 1];
  bool legacy_tried;
  int status;
  struct tproxy_route route;
  uint32_t ttl;
  struct event *done;              /* made active by the last c-ares callback */
  struct tproxy_dns_query waiters; /* sentinel */
};

struct sockev {
  struct sockev *next;
  ares_socket_t fd;
  struct event *ev;
  short what;
};

struct tproxy_dns {
  struct event_base *base;
  struct tproxy_dns_cache *cache;
  struct tproxy_dns_opts o;
  ares_channel ch;
  bool have_ch;
  bool destroying;
  struct event *timer;
  struct sockev *socks;
  struct pending pendings; /* sentinel */
  size_t n_pending;
};

/* The next c-ares timeout; no timer while nothing is asked. */
static void timer_arm(struct tproxy_dns *d) {
  struct timeval tv;
  struct timeval *t = ares_timeout(d->ch, NULL, &tv);
  if (t)
    (void)evtimer_add(d->timer, t);
  else
    (void)evtimer_del(d->timer);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg) {
  struct tproxy_dns *d = arg;
  /* May close this socket (sock_state_cb frees our event): nothing of it is touched after. */
  ares_process_fd(d->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                  (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
  timer_arm(d);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct tproxy_dns *d = arg;
  ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  timer_arm(d);
}

static void sockev_free(struct sockev *s) {
  if (s->ev)
    event_free(s->ev);
  free(s);
}

/* c-ares opens, watches and closes its sockets: one persistent event each. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable) {
  struct tproxy_dns *d = data;
  struct sockev **pp = &d->socks;
  while (*pp && (*pp)->fd != fd)
    pp = &(*pp)->next;
  struct sockev *s = *pp;
  short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
  if (!what) {
    if (s) {
      *pp = s->next;
      sockev_free(s);
    }
    return;
  }
  if (s && s->what == what && s->ev)
    return;
  if (!s) {
    if (!(s = calloc(1, sizeof(*s))))
      goto fail;
    s->fd = fd;
    s->next = d->socks;
    d->socks = s;
  } else if (s->ev) {
    event_free(s->ev);
    s->ev = NULL;
  }
  s->what = what;
  if (!(s->ev = event_new(d->base, fd, (short)(what | EV_PERSIST), sock_cb, d)))
    goto fail;
  if (event_add(s->ev, NULL) < 0) {
    event_free(s->ev);
    s->ev = NULL;
    goto fail;
  }
  return;
fail:
  /* A query on this socket then ends by its timeout. */
  log_warn("dns: cannot watch a resolver socket (out of memory)");
}

static void pending_unlink(struct pending *p) {
  if (!p->linked)
    return;
  p->prev->next = p->next;
  p->next->prev = p->prev;
  p->linked = false;
  p->d->n_pending--;
}

static void pending_free(struct pending *p) {
  while (p->waiters.next != &p->waiters) {
    struct tproxy_dns_query *q = p->waiters.next;
    p->waiters.next = q->next;
    free(q);
  }
  pending_unlink(p);
  if (p->done)
    event_free(p->done);
  free(p);
}

static int status_from_ares(int st) {
  switch (st) {
  case ARES_ENOTFOUND:
  case ARES_ENODATA:
    return -ENOENT;
  case ARES_ETIMEOUT:
    return -ETIMEDOUT;
  case ARES_EBADRESP:
  case ARES_EFORMERR:
    return -EBADMSG;
  default: /* ESERVFAIL, EREFUSED, ECONNREFUSED, ENOMEM, ... */
    return -EIO;
  }
}

static int pending_send(struct pending *p);

/* The answer to one TXT question of p. */
static void query_cb(void *arg, int st, int timeouts, unsigned char *abuf, int alen) {
  (void)timeouts;
  struct pending *p = arg;
  struct tproxy_dns *d = p->d;
  if (d->destroying || st == ARES_EDESTRUCTION || st == ARES_ECANCELLED)
    return; /* tproxy_dns_free frees p */
  char name[NAME_TEXT_MAX + 2], txt[TPROXY_DNS_TXT_MAX + 1];
  uint32_t ttl = 0;
  int r;
  if (tproxy_route_txt_name(p->sni, p->legacy_tried, name, sizeof(name)) < 0) {
    r = -EINVAL; /* checked by tproxy_dns_resolve */
  } else if (abuf && alen > 0 &&
             (st == ARES_SUCCESS || st == ARES_ENOTFOUND || st == ARES_ENODATA)) {
    r = tproxy_dns_parse_txt_answer(abuf, (size_t)alen, name, txt, sizeof(txt), &ttl);
    if (r == -EMSGSIZE || r == -EINVAL)
      r = -EBADMSG;
  } else {
    r = st == ARES_SUCCESS ? -EBADMSG : status_from_ares(st);
  }
  if (r == -ENOENT && d->o.legacy && !p->legacy_tried) {
    p->legacy_tried = true;
    if (pending_send(p) == 0)
      return;
  }
  if (r >= 0) {
    if (tproxy_route_parse_txt(txt, (size_t)r, &p->route) == 0) {
      r = 0;
      ttl = ttl < d->o.min_ttl ? d->o.min_ttl : ttl > d->o.max_ttl ? d->o.max_ttl : ttl;
    } else {
      r = -EBADMSG;
    }
  }
  if (r < 0) {
    memset(&p->route, 0, sizeof(p->route));
    ttl = (r == -ENOENT || r == -EBADMSG) ? d->o.neg_ttl : 0;
  }
  p->status = r;
  p->ttl = ttl;
  event_active(p->done, EV_TIMEOUT, 0); /* the waiters are called from the loop */
}

static int pending_send(struct pending *p) {
  char name[NAME_TEXT_MAX + 2];
  int r = tproxy_route_txt_name(p->sni, p->legacy_tried, name, sizeof(name));
  if (r < 0)
    return r;
  /* May call query_cb at once (e.g. no server): that only activates p->done. */
  ares_query(p->d->ch, name, C_IN_, T_TXT_, query_cb, p);
  timer_arm(p->d);
  return 0;
}

static void done_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct pending *p = arg;
  /* A lookup started by a callback below is a new one (a hit when this result is cached). */
  pending_unlink(p);
  (void)tproxy_dns_cache_put(p->d->cache, p->sni, &p->route, p->status, p->ttl);
  while (p->waiters.next != &p->waiters) {
    struct tproxy_dns_query *q = p->waiters.next;
    p->waiters.next = q->next;
    q->next->prev = &p->waiters;
    tproxy_dns_cb cb = q->cb;
    void *a = q->arg;
    free(q);
    cb(p->status, &p->route, a); /* may cancel the waiters still queued */
  }
  pending_free(p);
}

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status;

static void ares_global_init(void) {
  ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

int tproxy_dns_new(struct event_base *base, struct tproxy_dns_cache *cache,
                   const struct tproxy_dns_opts *o, struct tproxy_dns **ret) {
  if (!base || !cache || !o || !ret || o->min_ttl > o->max_ttl)
    return -EINVAL;
  (void)pthread_once(&ares_once, ares_global_init);
  if (ares_init_status != ARES_SUCCESS)
    return -EIO;
  struct tproxy_dns *d = calloc(1, sizeof(*d));
  if (!d)
    return -ENOMEM;
  d->base = base;
  d->cache = cache;
  d->o = *o;
  d->o.servers = NULL; /* not kept */
  d->pendings.prev = d->pendings.next = &d->pendings;
  struct ares_options ao = {
      .timeout = o->timeout_ms > 0 ? o->timeout_ms : 3000,
      .tries = o->tries > 0 ? o->tries : 2,
      .sock_state_cb = sock_state_cb,
      .sock_state_cb_data = d,
  };
  int r = ares_init_options(&d->ch, &ao,
                            ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
  if (r != ARES_SUCCESS) {
    free(d);
    return r == ARES_ENOMEM ? -ENOMEM : -EIO;
  }
  d->have_ch = true;
  r = 0;
  if (o->servers && *o->servers) {
    int st = ares_set_servers_ports_csv(d->ch, o->servers);
    if (st != ARES_SUCCESS)
      r = st == ARES_ENOMEM ? -ENOMEM : -EINVAL;
  }
  if (r == 0 && !(d->timer = evtimer_new(base, timer_cb, d)))
    r = -ENOMEM;
  if (r < 0) {
    tproxy_dns_free(d);
    return r;
  }
  *ret = d;
  return 0;
}

void tproxy_dns_free(struct tproxy_dns *d) {
  if (!d)
    return;
  d->destroying = true;
  if (d->have_ch)
    ares_destroy(d->ch); /* query_cb ignores ARES_EDESTRUCTION; sock_state_cb drops events */
  while (d->pendings.next != &d->pendings)
    pending_free(d->pendings.next);
  while (d->socks) {
    struct sockev *s = d->socks;
    d->socks = s->next;
    sockev_free(s);
  }
  if (d->timer)
    event_free(d->timer);
  free(d);
}

static void waiter_append(struct pending *p, struct tproxy_dns_query *q) {
  q->p = p;
  q->next = &p->waiters;
  q->prev = p->waiters.prev;
  p->waiters.prev->next = q;
  p->waiters.prev = q;
}

int tproxy_dns_resolve(struct tproxy_dns *d, const char *sni, tproxy_dns_cb cb, void *arg,
                       struct tproxy_route *ret_route, int *ret_status,
                       struct tproxy_dns_query **ret_q) {
  char key[NAME_TEXT_MAX + 1], probe[NAME_TEXT_MAX + 2];
  int r;

  if (!d || !sni || !cb || !ret_route || !ret_status || !ret_q)
    return -EINVAL;
  *ret_q = NULL;
  if ((r = name_norm(sni, key)) < 0)
    return r;
  if (!tls_hello_hostname_valid(key, strlen(key)))
    return -EINVAL;
  /* Both TXT names must fit (the legacy prefix is the shorter one). */
  if ((r = tproxy_route_txt_name(key, false, probe, sizeof(probe))) < 0)
    return r;
  if (tproxy_dns_cache_get(d->cache, key, ret_route, ret_status))
    return 1;

  struct tproxy_dns_query *q = calloc(1, sizeof(*q));
  if (!q)
    return -ENOMEM;
  q->cb = cb;
  q->arg = arg;
  struct pending *p = d->pendings.next;
  while (p != &d->pendings && strcmp(p->sni, key) != 0)
    p = p->next;
  if (p != &d->pendings) {
    waiter_append(p, q);
    *ret_q = q;
    return 0;
  }

  if (d->n_pending >= TPROXY_DNS_PENDING_MAX) {
    free(q);
    return -EBUSY;
  }
  if (!(p = calloc(1, sizeof(*p)))) {
    free(q);
    return -ENOMEM;
  }
  p->d = d;
  memcpy(p->sni, key, sizeof(key));
  p->waiters.next = p->waiters.prev = &p->waiters;
  p->next = d->pendings.next;
  p->prev = &d->pendings;
  d->pendings.next->prev = p;
  d->pendings.next = p;
  p->linked = true;
  d->n_pending++;
  waiter_append(p, q); /* before asking: the answer may come at once (it waits for done_cb) */
  if (!(p->done = event_new(d->base, -1, 0, done_cb, p))) {
    pending_free(p); /* and q */
    return -ENOMEM;
  }
  if ((r = pending_send(p)) < 0) {
    pending_free(p);
    return r;
  }
  *ret_q = q;
  return 0;
}

void tproxy_dns_cancel(struct tproxy_dns_query *q) {
  if (!q)
    return;
  /* The lookup itself goes on: its answer still fills the cache. */
  q->prev->next = q->next;
  q->next->prev = q->prev;
  free(q);
}
