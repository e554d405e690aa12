/* Per-app connection counts: a hash of app ids over striped locks. */
#include "tproxy_appconns.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tproxy_route.h"

#define STRIPES 64 /* locks (and bucket chains): workers rarely wait on each other */

struct entry {
  struct entry *next;
  unsigned n;
  char app_id[TPROXY_APP_ID_MAX + 1];
};

struct stripe {
  pthread_mutex_t lock;
  struct entry *head;
};

struct tproxy_appconns {
  unsigned limit;
  struct stripe s[STRIPES];
};

int tproxy_appconns_new(unsigned limit, struct tproxy_appconns **ret) {
  struct tproxy_appconns *a = calloc(1, sizeof(*a));
  if (!a)
    return -ENOMEM;
  a->limit = limit;
  for (size_t i = 0; i < STRIPES; i++)
    pthread_mutex_init(&a->s[i].lock, NULL);
  *ret = a;
  return 0;
}

void tproxy_appconns_free(struct tproxy_appconns *a) {
  if (!a)
    return;
  for (size_t i = 0; i < STRIPES; i++) {
    for (struct entry *e = a->s[i].head, *next; e; e = next) {
      next = e->next;
      free(e);
    }
    pthread_mutex_destroy(&a->s[i].lock);
  }
  free(a);
}

unsigned tproxy_appconns_limit(const struct tproxy_appconns *a) {
  return a->limit;
}

/* FNV-1a; the id length is checked by the caller. */
static struct stripe *stripe_of(struct tproxy_appconns *a, const char *id, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (uint8_t)id[i]) * 16777619u;
  return &a->s[h % STRIPES];
}

static struct entry **entry_find(struct stripe *s, const char *id) {
  struct entry **p = &s->head;
  while (*p && strcmp((*p)->app_id, id) != 0)
    p = &(*p)->next;
  return p;
}

static int id_len(const char *id, size_t *ret) {
  size_t n = id ? strnlen(id, TPROXY_APP_ID_MAX + 1) : 0;
  if (n == 0 || n > TPROXY_APP_ID_MAX)
    return -EINVAL;
  *ret = n;
  return 0;
}

int tproxy_appconns_acquire(struct tproxy_appconns *a, const char *app_id) {
  size_t len;
  int r = id_len(app_id, &len);
  if (r < 0)
    return r;
  struct stripe *s = stripe_of(a, app_id, len);
  pthread_mutex_lock(&s->lock);
  struct entry **p = entry_find(s, app_id);
  if ((*p ? (*p)->n : 0) >= a->limit) {
    r = -EBUSY;
    goto out;
  }
  if (!*p) {
    struct entry *e = calloc(1, sizeof(*e));
    if (!e) {
      r = -ENOMEM;
      goto out;
    }
    memcpy(e->app_id, app_id, len + 1);
    *p = e;
  }
  (*p)->n++;
out:
  pthread_mutex_unlock(&s->lock);
  return r;
}

void tproxy_appconns_release(struct tproxy_appconns *a, const char *app_id) {
  size_t len;
  if (id_len(app_id, &len) < 0)
    return;
  struct stripe *s = stripe_of(a, app_id, len);
  pthread_mutex_lock(&s->lock);
  struct entry **p = entry_find(s, app_id);
  if (*p && --(*p)->n == 0) {
    struct entry *e = *p;
    *p = e->next;
    free(e);
  }
  pthread_mutex_unlock(&s->lock);
}

unsigned tproxy_appconns_count(struct tproxy_appconns *a, const char *app_id) {
  size_t len;
  if (id_len(app_id, &len) < 0)
    return 0;
  struct stripe *s = stripe_of(a, app_id, len);
  pthread_mutex_lock(&s->lock);
  struct entry **p = entry_find(s, app_id);
  unsigned n = *p ? (*p)->n : 0;
  pthread_mutex_unlock(&s->lock);
  return n;
}
