/* Routing snapshot shared by the proxy workers. */
#include "tproxy_hosts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct entry {
  struct tproxy_host h;
  _Atomic uint64_t down_until; /* monotonic ms; 0 = up */
};

struct tproxy_hosts {
  atomic_uint refs;
  size_t n;
  atomic_uint rotor;
  struct entry v[];
};

static int entry_cmp(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  int c = strcmp(x->h.app_id, y->h.app_id);
  if (c)
    return c;
  return x->h.ip < y->h.ip ? -1 : x->h.ip > y->h.ip;
}

static struct tproxy_hosts *hosts_new(const struct tproxy_host *hosts, size_t n) {
  struct tproxy_hosts *s = calloc(1, sizeof(*s) + n * sizeof(struct entry));
  if (!s)
    return NULL;
  atomic_init(&s->refs, 1);
  atomic_init(&s->rotor, 0);
  s->n = n;
  for (size_t i = 0; i < n; i++) {
    s->v[i].h = hosts[i];
    atomic_init(&s->v[i].down_until, 0);
  }
  if (n > 1)
    qsort(s->v, n, sizeof(s->v[0]), entry_cmp);
  return s;
}

int tproxy_table_init(struct tproxy_table *t) {
  int r = pthread_mutex_init(&t->lock, NULL);
  if (r)
    return -r;
  t->cur = hosts_new(NULL, 0);
  if (!t->cur) {
    pthread_mutex_destroy(&t->lock);
    return -ENOMEM;
  }
  return 0;
}

void tproxy_table_destroy(struct tproxy_table *t) {
  tproxy_hosts_release(t->cur);
  t->cur = NULL;
  pthread_mutex_destroy(&t->lock);
}

int tproxy_table_publish(struct tproxy_table *t, const struct tproxy_host *hosts, size_t n) {
  struct tproxy_hosts *s = hosts_new(hosts, n);
  if (!s)
    return -ENOMEM;
  pthread_mutex_lock(&t->lock);
  struct tproxy_hosts *old = t->cur;
  /* Keep the down marks of instances that are still there. */
  for (size_t i = 0, j = 0; old && i < s->n && j < old->n;) {
    int c = entry_cmp(&s->v[i], &old->v[j]);
    if (c == 0) {
      atomic_store(&s->v[i].down_until, atomic_load(&old->v[j].down_until));
      i++, j++;
    } else if (c < 0)
      i++;
    else
      j++;
  }
  t->cur = s;
  pthread_mutex_unlock(&t->lock);
  tproxy_hosts_release(old);
  return 0;
}

struct tproxy_hosts *tproxy_table_acquire(struct tproxy_table *t) {
  pthread_mutex_lock(&t->lock);
  struct tproxy_hosts *s = t->cur;
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&t->lock);
  return s;
}

void tproxy_hosts_release(struct tproxy_hosts *h) {
  if (h && atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1)
    free(h);
}

size_t tproxy_hosts_count(const struct tproxy_hosts *h) {
  return h->n;
}

/* First entry of app_id (binary search), or n. */
static size_t find_first(const struct tproxy_hosts *h, const char *app_id, size_t *ret_count) {
  size_t lo = 0, hi = h->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(h->v[mid].h.app_id, app_id) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t end = lo;
  while (end < h->n && strcmp(h->v[end].h.app_id, app_id) == 0)
    end++;
  *ret_count = end - lo;
  return lo;
}

size_t tproxy_hosts_pick(struct tproxy_hosts *h, const char *app_id, uint64_t now_ms,
                         uint32_t *ret, size_t max) {
  size_t count;
  size_t first = find_first(h, app_id, &count);
  if (count == 0 || max == 0)
    return 0;
  unsigned start = atomic_fetch_add_explicit(&h->rotor, 1, memory_order_relaxed) % count;
  size_t n = 0;
  /* Up instances first, from the rotating start, then the ones marked down. */
  for (int pass = 0; pass < 2; pass++)
    for (size_t k = 0; k < count && n < max; k++) {
      const struct entry *e = &h->v[first + (start + k) % count];
      bool down = atomic_load_explicit(&e->down_until, memory_order_relaxed) > now_ms;
      if (down == (pass == 1))
        ret[n++] = e->h.ip;
    }
  return n;
}

void tproxy_hosts_mark(struct tproxy_hosts *h, const char *app_id, uint32_t ip, bool up,
                       uint64_t now_ms) {
  size_t count;
  size_t first = find_first(h, app_id, &count);
  for (size_t k = 0; k < count; k++) {
    struct entry *e = &h->v[first + k];
    if (e->h.ip != ip)
      continue;
    uint64_t v = up ? 0 : now_ms + HOSTS_DOWN_MS;
    if (atomic_load_explicit(&e->down_until, memory_order_relaxed) != v)
      atomic_store_explicit(&e->down_until, v, memory_order_relaxed);
  }
}
