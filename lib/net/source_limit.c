/* Per-source connection counts: a chained hash table of sources (IPv4 address, IPv6 /64),
 * each with the number of connections it holds. See source_limit.h. */
#include "net/source_limit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS_MIN ((size_t)64)
#define BUCKETS_MAX ((size_t)1 << 20)

struct source_key {
  uint64_t v;     /* IPv4 address, or the first 64 bits of an IPv6 address (host order) */
  uint8_t family; /* 4 or 6 */
};

struct source_entry {
  struct source_entry *next;
  struct source_key key;
  unsigned count;
  void *data; /* the caller's */
};

struct source_limit {
  struct source_entry **buckets;
  size_t n_buckets; /* a power of two */
  size_t n_entries;
  unsigned max_per_source;
  uint64_t seed[2];
};

static uint64_t be64_load(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* 0, or -EAFNOSUPPORT for peers that are not counted. */
static int source_key_from(const struct sockaddr *sa, socklen_t len, struct source_key *ret) {
  if (!sa || len < (socklen_t)sizeof(sa_family_t))
    return -EAFNOSUPPORT;
  if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    *ret = (struct source_key){.v = ntohl(a->sin_addr.s_addr), .family = 4};
    return 0;
  }
  if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    const uint8_t *b = a->sin6_addr.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      uint32_t v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
      *ret = (struct source_key){.v = v4, .family = 4};
    } else {
      *ret = (struct source_key){.v = be64_load(b), .family = 6};
    }
    return 0;
  }
  return -EAFNOSUPPORT;
}

/* Keyed mixing (multiply / xor-shift rounds around the two seed words): without the seed a
 * peer cannot tell which addresses share a chain. */
static size_t source_hash(const struct source_limit *l, const struct source_key *k) {
  uint64_t x = k->v ^ l->seed[0];
  x ^= (uint64_t)k->family << 58;
  x *= UINT64_C(0x9e3779b97f4a7c15);
  x ^= x >> 29;
  x += l->seed[1];
  x *= UINT64_C(0xd6e8feb86659fd93);
  x ^= x >> 32;
  return (size_t)x & (l->n_buckets - 1);
}

static bool source_key_eq(const struct source_key *a, const struct source_key *b) {
  return a->v == b->v && a->family == b->family;
}

static struct source_entry *source_find(const struct source_limit *l,
                                        const struct source_key *k) {
  for (struct source_entry *e = l->buckets[source_hash(l, k)]; e; e = e->next)
    if (source_key_eq(&e->key, k))
      return e;
  return NULL;
}

/* Doubles the bucket array; on allocation failure the table stays as it is (longer chains,
 * still correct). */
static void source_limit_grow(struct source_limit *l) {
  if (l->n_buckets >= BUCKETS_MAX)
    return;
  size_t nb = l->n_buckets * 2;
  struct source_entry **b = calloc(nb, sizeof(*b));
  if (!b)
    return;
  struct source_entry **old = l->buckets;
  size_t old_n = l->n_buckets;
  l->buckets = b;
  l->n_buckets = nb;
  for (size_t i = 0; i < old_n; i++) {
    struct source_entry *e = old[i];
    while (e) {
      struct source_entry *next = e->next;
      size_t h = source_hash(l, &e->key);
      e->next = b[h];
      b[h] = e;
      e = next;
    }
  }
  free(old);
}

int source_limit_new(unsigned max_per_source, struct source_limit **ret) {
  if (!ret || max_per_source == 0)
    return -EINVAL;
  struct source_limit *l = calloc(1, sizeof(*l));
  if (!l)
    return -ENOMEM;
  l->buckets = calloc(BUCKETS_MIN, sizeof(*l->buckets));
  if (!l->buckets) {
    free(l);
    return -ENOMEM;
  }
  l->n_buckets = BUCKETS_MIN;
  l->max_per_source = max_per_source;
  if (RAND_bytes((unsigned char *)l->seed, sizeof(l->seed)) != 1) {
    /* Only the spread over chains depends on the seed, not correctness. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    l->seed[0] = (uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)l;
    l->seed[1] = ~l->seed[0] * UINT64_C(0x9e3779b97f4a7c15);
  }
  *ret = l;
  return 0;
}

void source_limit_free(struct source_limit *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n_buckets; i++) {
    struct source_entry *e = l->buckets[i];
    while (e) {
      struct source_entry *next = e->next;
      free(e);
      e = next;
    }
  }
  free(l->buckets);
  free(l);
}

int source_limit_acquire(struct source_limit *l, const struct sockaddr *sa, socklen_t len,
                         struct source_entry **ret_entry) {
  if (!l || !ret_entry)
    return -EINVAL;
  struct source_key k;
  if (source_key_from(sa, len, &k) < 0) {
    *ret_entry = NULL;
    return 0;
  }
  struct source_entry *e = source_find(l, &k);
  if (e) {
    if (e->count >= l->max_per_source)
      return -EBUSY;
    e->count++;
    *ret_entry = e;
    return 0;
  }
  e = calloc(1, sizeof(*e));
  if (!e)
    return -ENOMEM;
  e->key = k;
  e->count = 1;
  if (l->n_entries >= l->n_buckets)
    source_limit_grow(l);
  size_t h = source_hash(l, &k);
  e->next = l->buckets[h];
  l->buckets[h] = e;
  l->n_entries++;
  *ret_entry = e;
  return 0;
}

void source_limit_release(struct source_limit *l, struct source_entry *e) {
  if (!l || !e)
    return;
  if (e->count > 1) {
    e->count--;
    return;
  }
  struct source_entry **pp = &l->buckets[source_hash(l, &e->key)];
  while (*pp && *pp != e)
    pp = &(*pp)->next;
  if (*pp) {
    *pp = e->next;
    l->n_entries--;
  }
  free(e);
}

struct source_entry *source_limit_find(const struct source_limit *l, const struct sockaddr *sa,
                                       socklen_t len) {
  struct source_key k;
  if (!l || source_key_from(sa, len, &k) < 0)
    return NULL;
  return source_find(l, &k);
}

void *source_entry_get_data(const struct source_entry *e) {
  return e ? e->data : NULL;
}

void source_entry_set_data(struct source_entry *e, void *data) {
  if (e)
    e->data = data;
}

unsigned source_limit_count(const struct source_limit *l, const struct sockaddr *sa,
                            socklen_t len) {
  struct source_key k;
  if (!l || source_key_from(sa, len, &k) < 0)
    return 0;
  const struct source_entry *e = source_find(l, &k);
  return e ? e->count : 0;
}

size_t source_limit_n_sources(const struct source_limit *l) {
  return l ? l->n_entries : 0;
}
