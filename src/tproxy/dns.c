/* TXT lookups for custom domains: c-ares on libevent, a shared TTL cache, our answer parser. */
#include "dns.h"

#include <ares.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

#define NAME_MAX_LEN 255 /* dotted text of a name, without the final dot */
#define CNAME_MAX 8
#define POINTERS_MAX 64
#define RR_MAX 64 /* answer records looked at */
#define T_TXT_ 16
#define T_CNAME_ 5
#define C_IN_ 1

/* ---------------------------------------------------------------- answer parser */

struct msg {
  const uint8_t *p;
  size_t len;
};

/* Reads the name at *off into out (lowercase, dotted, no final dot; "" for the root) and moves
 * *off past it. */
static int name_read(const struct msg *m, size_t *off, char out[NAME_MAX_LEN + 1]) {
  size_t pos = *off, end = 0, n = 0;
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
    if (l & 0xC0) /* 0x40, 0x80: extended / reserved label types */
      return -EBADMSG;
    pos++;
    if (l == 0)
      break;
    if (pos + l > m->len || n + (n ? 1 : 0) + l > NAME_MAX_LEN)
      return -EBADMSG;
    if (n)
      out[n++] = '.';
    for (size_t i = 0; i < l; i++)
      out[n++] = (char)tolower(m->p[pos + i]);
    pos += l;
  }
  out[n] = 0;
  *off = jumped ? end : pos;
  return 0;
}

static uint16_t rd16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* qname as the parser compares it: lowercase, no final dot. */
static int name_norm(const char *in, char out[NAME_MAX_LEN + 1]) {
  size_t n = strlen(in);
  if (n && in[n - 1] == '.')
    n--;
  if (n > NAME_MAX_LEN)
    return -ENAMETOOLONG;
  for (size_t i = 0; i < n; i++)
    out[i] = (char)tolower((unsigned char)in[i]);
  out[n] = 0;
  return 0;
}

struct rr {
  char name[NAME_MAX_LEN + 1];
  uint16_t type;
  uint32_t ttl;
  size_t rdata, rdlen; /* offsets into the message */
};

int tproxy_dns_parse_txt_answer(const uint8_t *msg, size_t len, const char *qname, char *out,
                                size_t outlen, uint32_t *ret_ttl) {
  if (!msg || !qname || !out || outlen == 0)
    return -EINVAL;
  struct msg m = {msg, len};
  char want[NAME_MAX_LEN + 1], name[NAME_MAX_LEN + 1];
  if (name_norm(qname, want) < 0)
    return -EINVAL;
  if (len < 12)
    return -EBADMSG;
  uint16_t flags = rd16(msg + 2);
  if (!(flags & 0x8000) || ((flags >> 11) & 0xF) != 0)
    return -EBADMSG;
  unsigned rcode = flags & 0xF;
  uint16_t qd = rd16(msg + 4), an = rd16(msg + 6);
  if (rcode == 3)
    return -ENOENT;
  if (rcode != 0)
    return -EIO;
  if (qd != 1)
    return -EBADMSG;
  size_t off = 12;
  int r = name_read(&m, &off, name);
  if (r < 0)
    return r;
  if (off + 4 > len || strcmp(name, want) != 0 || rd16(msg + off) != T_TXT_ ||
      rd16(msg + off + 2) != C_IN_)
    return -EBADMSG;
  off += 4;
  struct rr rrs[RR_MAX];
  size_t n = 0;
  for (uint16_t i = 0; i < an; i++) {
    struct rr x;
    if ((r = name_read(&m, &off, x.name)) < 0)
      return r;
    if (off + 10 > len)
      return -EBADMSG;
    x.type = rd16(msg + off);
    uint16_t cls = rd16(msg + off + 2);
    x.ttl = rd32(msg + off + 4);
    if (x.ttl > 0x7FFFFFFF) /* RFC 2181 §8: treat as zero */
      x.ttl = 0;
    x.rdlen = rd16(msg + off + 8);
    x.rdata = off + 10;
    if (x.rdata + x.rdlen > len)
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
        size_t p = rrs[i].rdata, e = p + rrs[i].rdlen, w = 0;
        if (rrs[i].rdlen == 0)
          return -EBADMSG;
        while (p < e) {
          size_t sl = msg[p++];
          if (p + sl > e)
            return -EBADMSG;
          if (w + sl >= outlen)
            return -EMSGSIZE;
          memcpy(out + w, msg + p, sl);
          w += sl;
          p += sl;
        }
        out[w] = 0;
        *ret_ttl = rrs[i].ttl < ttl ? rrs[i].ttl : ttl;
        return (int)w;
      }
      if (!cname)
        cname = &rrs[i];
    }
    if (!cname)
      return -ENOENT;
    size_t p = cname->rdata;
    if ((r = name_read(&m, &p, name)) < 0 || p != cname->rdata + cname->rdlen)
      return -EBADMSG;
    if (cname->ttl < ttl)
      ttl = cname->ttl;
    memcpy(want, name, sizeof(want));
  }
  return -EBADMSG; /* CNAME chain too long (or a loop) */
}

/* ---------------------------------------------------------------- cache */

struct centry {
  struct centry *hnext;       /* hash chain */
  struct centry *prev, *next; /* LRU list, most recent first */
  char name[NAME_MAX_LEN + 1];
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
  uint64_t h = 1469598103934665603ull;
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

int tproxy_dns_cache_get(struct tproxy_dns_cache *c, const char *name, struct tproxy_route *ret,
                         int *ret_status) {
  char key[NAME_MAX_LEN + 1];
  if (!c || !name || name_norm(name, key) < 0)
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
    e->prev->next = e->next; /* to the front */
    e->next->prev = e->prev;
    e->next = c->lru.next;
    e->prev = &c->lru;
    c->lru.next->prev = e;
    c->lru.next = e;
    found = 1;
  }
  pthread_mutex_unlock(&c->mu);
  return found;
}

int tproxy_dns_cache_put(struct tproxy_dns_cache *c, const char *name,
                         const struct tproxy_route *route, int status, uint32_t ttl) {
  char key[NAME_MAX_LEN + 1];
  if (!c || !name || (status == 0 && !route))
    return -EINVAL;
  int r = name_norm(name, key);
  if (r < 0)
    return r;
  pthread_mutex_lock(&c->mu);
  struct centry **slot = cache_slot(c, key);
  if (*slot)
    cache_unlink(c, slot);
  r = 0;
  if (ttl > 0) {
    while (c->n >= c->max) { /* drop the least recently used */
      struct centry *old = c->lru.prev;
      struct centry **s = cache_slot(c, old->name);
      cache_unlink(c, s);
    }
    struct centry *e = calloc(1, sizeof(*e));
    if (!e) {
      r = -ENOMEM;
    } else {
      memcpy(e->name, key, sizeof(key));
      if (status == 0)
        e->route = *route;
      e->status = status;
      e->expires = c->now() + ttl;
      slot = cache_slot(c, key);
      *slot = e;
      e->next = c->lru.next;
      e->prev = &c->lru;
      c->lru.next->prev = e;
      c->lru.next = e;
      c->n++;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return r;
}

/* ---------------------------------------------------------------- resolver */

struct pending;

struct tproxy_dns_query {
  struct pending *p;
  struct tproxy_dns_query *prev, *next;
  tproxy_dns_cb cb;
  void *arg;
};

struct pending {
  struct tproxy_dns *d;
  struct pending *prev, *next;
  char sni[NAME_MAX_LEN + 1];
  bool legacy_tried;
  int status;
  struct tproxy_route route;
  uint32_t ttl;
  struct event *done;
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

static void timer_arm(struct tproxy_dns *d) {
  struct timeval max = {5, 0}, tv;
  struct timeval *t = ares_timeout(d->ch, &max, &tv);
  (void)evtimer_add(d->timer, t);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg) {
  struct tproxy_dns *d = arg;
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
      event_free(s->ev);
      free(s);
    }
    return;
  }
  if (s && s->what == what)
    return;
  if (!s) {
    if (!(s = calloc(1, sizeof(*s))))
      goto fail;
    s->fd = fd;
    s->next = d->socks;
    d->socks = s;
  } else {
    event_free(s->ev);
    s->ev = NULL;
  }
  s->what = what;
  if (!(s->ev = event_new(d->base, fd, (short)(what | EV_PERSIST), sock_cb, d)) ||
      event_add(s->ev, NULL) < 0)
    goto fail;
  return;
fail:
  /* Without an event the query on this socket ends by its timeout. */
  log_warn("dns: out of memory watching a resolver socket");
}

static void pending_free(struct pending *p) {
  struct tproxy_dns *d = p->d;
  while (p->waiters.next != &p->waiters) {
    struct tproxy_dns_query *q = p->waiters.next;
    p->waiters.next = q->next;
    free(q);
  }
  p->prev->next = p->next;
  p->next->prev = p->prev;
  d->n_pending--;
  if (p->done)
    event_free(p->done);
  free(p);
}

static int pending_send(struct pending *p);

static int ares_status_errno(int st) {
  switch (st) {
  case ARES_ENOTFOUND:
  case ARES_ENODATA:
    return -ENOENT;
  case ARES_ETIMEOUT:
    return -ETIMEDOUT;
  case ARES_ENOMEM:
    return -ENOMEM;
  case ARES_EBADRESP:
  case ARES_EFORMERR:
    return -EBADMSG;
  default:
    return -EIO;
  }
}

static void query_cb(void *arg, int st, int timeouts, unsigned char *abuf, int alen) {
  (void)timeouts;
  struct pending *p = arg;
  struct tproxy_dns *d = p->d;
  if (d->destroying || st == ARES_EDESTRUCTION || st == ARES_ECANCELLED)
    return;
  char name[NAME_MAX_LEN + 1], txt[TPROXY_DNS_TXT_MAX + 1];
  int r;
  uint32_t ttl = 0;
  if (tproxy_route_txt_name(p->sni, p->legacy_tried, name, sizeof(name)) < 0) {
    r = -EINVAL;
  } else if (abuf && alen > 0 &&
             (st == ARES_SUCCESS || st == ARES_ENOTFOUND || st == ARES_ENODATA)) {
    r = tproxy_dns_parse_txt_answer(abuf, (size_t)alen, name, txt, sizeof(txt), &ttl);
    if (r == -EMSGSIZE)
      r = -EBADMSG;
  } else {
    r = st == ARES_SUCCESS ? -EBADMSG : ares_status_errno(st);
  }
  if (r == -ENOENT && d->o.legacy && !p->legacy_tried) {
    p->legacy_tried = true;
    if (pending_send(p) == 0)
      return;
  }
  if (r >= 0) {
    r = tproxy_route_parse_txt(txt, (size_t)r, &p->route);
    if (r == 0) {
      ttl = ttl < d->o.min_ttl ? d->o.min_ttl : ttl > d->o.max_ttl ? d->o.max_ttl : ttl;
    } else {
      r = -EBADMSG;
    }
  }
  if (r < 0)
    ttl = (r == -ENOENT || r == -EBADMSG) ? d->o.neg_ttl : 0;
  if (r == -EBADMSG)
    log_warn("dns: %s: malformed TXT answer or value", name);
  p->status = r;
  p->ttl = ttl;
  event_active(p->done, EV_TIMEOUT, 0); /* the callbacks run from the loop */
}

static int pending_send(struct pending *p) {
  char name[NAME_MAX_LEN + 1];
  int r = tproxy_route_txt_name(p->sni, p->legacy_tried, name, sizeof(name));
  if (r < 0)
    return r;
  ares_query(p->d->ch, name, C_IN_, T_TXT_, query_cb, p);
  timer_arm(p->d);
  return 0;
}

static void done_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct pending *p = arg;
  struct tproxy_dns *d = p->d;
  (void)tproxy_dns_cache_put(d->cache, p->sni, &p->route, p->status, p->ttl);
  while (p->waiters.next != &p->waiters) {
    struct tproxy_dns_query *q = p->waiters.next;
    p->waiters.next = q->next;
    q->next->prev = &p->waiters;
    tproxy_dns_cb cb = q->cb;
    void *a = q->arg;
    free(q);
    cb(p->status, &p->route, a); /* may resolve or cancel other queries */
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
  if (!base || !cache || !o || !ret)
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
  d->o.servers = NULL;
  d->pendings.prev = d->pendings.next = &d->pendings;
  struct ares_options ao = {
      .timeout = o->timeout_ms > 0 ? o->timeout_ms : 3000,
      .tries = o->tries > 0 ? o->tries : 2,
      .sock_state_cb = sock_state_cb,
      .sock_state_cb_data = d,
  };
  int r = ares_init_options(&d->ch, &ao, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                             ARES_OPT_SOCK_STATE_CB);
  if (r != ARES_SUCCESS) {
    free(d);
    return r == ARES_ENOMEM ? -ENOMEM : -EIO;
  }
  d->have_ch = true;
  r = 0;
  if (o->servers && *o->servers && ares_set_servers_ports_csv(d->ch, o->servers) != ARES_SUCCESS)
    r = -EINVAL;
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
    ares_destroy(d->ch); /* query_cb ignores ARES_EDESTRUCTION; sock_state_cb closes events */
  while (d->pendings.next != &d->pendings)
    pending_free(d->pendings.next);
  while (d->socks) {
    struct sockev *s = d->socks;
    d->socks = s->next;
    event_free(s->ev);
    free(s);
  }
  if (d->timer)
    event_free(d->timer);
  free(d);
}

int tproxy_dns_resolve(struct tproxy_dns *d, const char *sni, tproxy_dns_cb cb, void *arg,
                       struct tproxy_route *ret_route, int *ret_status,
                       struct tproxy_dns_query **ret_q) {
  if (!d || !sni || !cb || !ret_route || !ret_status || !ret_q)
    return -EINVAL;
  *ret_q = NULL;
  char key[NAME_MAX_LEN + 1], probe[NAME_MAX_LEN + 2];
  int r = name_norm(sni, key);
  if (r < 0)
    return r;
  if (!key[0] || (r = tproxy_route_txt_name(key, true, probe, sizeof(probe))) < 0 ||
      (r = tproxy_route_txt_name(key, false, probe, sizeof(probe))) < 0)
    return r < 0 ? r : -EINVAL;
  if (tproxy_dns_cache_get(d->cache, key, ret_route, ret_status))
    return 1;
  struct pending *p = d->pendings.next;
  while (p != &d->pendings && strcmp(p->sni, key) != 0)
    p = p->next;
  struct tproxy_dns_query *q = calloc(1, sizeof(*q));
  if (!q)
    return -ENOMEM;
  q->cb = cb;
  q->arg = arg;
  if (p == &d->pendings) {
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
    d->n_pending++;
    if (!(p->done = event_new(d->base, -1, 0, done_cb, p))) {
      pending_free(p);
      free(q);
      return -ENOMEM;
    }
    /* The waiter first: ares_query may answer at once (the answer waits for done_cb). */
    q->p = p;
    q->next = &p->waiters;
    q->prev = p->waiters.prev;
    p->waiters.prev->next = q;
    p->waiters.prev = q;
    if ((r = pending_send(p)) < 0) {
      pending_free(p); /* frees q */
      return r;
    }
  } else {
    q->p = p;
    q->next = &p->waiters;
    q->prev = p->waiters.prev;
    p->waiters.prev->next = q;
    p->waiters.prev = q;
  }
  *ret_q = q;
  return 0;
}

void tproxy_dns_cancel(struct tproxy_dns_query *q) {
  if (!q)
    return;
  q->prev->next = q->next;
  q->next->prev = q->prev;
  free(q);
}
