/* In-memory + on-disk cache of fetched DCAP collateral (see dcap_cache.h). */
#include "collateral/dcap_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/dcap_collateral.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"

struct cache_entry {
  char key[DCAP_CACHE_KEY_MAX];
  int64_t expiry;
  struct dcap_collateral col;
};

struct dcap_cache {
  pthread_mutex_t lock;
  char *dir;
  struct cache_entry *e[DCAP_CACHE_MAX_ENTRIES];
  size_t n;
};

static bool key_ok(const char *key) {
  if (!key || !*key || strlen(key) >= DCAP_CACHE_KEY_MAX)
    return false;
  for (const char *p = key; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
      return false;
  return true;
}

int dcap_cache_new(const char *dir, struct dcap_cache **ret) {
  if (!ret || (dir && !*dir))
    return -EINVAL;
  struct dcap_cache *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  if (dir && !(c->dir = strdup(dir))) {
    free(c);
    return -ENOMEM;
  }
  pthread_mutex_init(&c->lock, NULL);
  *ret = c;
  return 0;
}

static void entry_free(struct cache_entry *e) {
  if (!e)
    return;
  dcap_collateral_free(&e->col);
  free(e);
}

void dcap_cache_free(struct dcap_cache *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++)
    entry_free(c->e[i]);
  pthread_mutex_destroy(&c->lock);
  free(c->dir);
  free(c);
}

const char *dcap_cache_dir(const struct dcap_cache *c) {
  return c ? c->dir : NULL;
}

static char *entry_path(const struct dcap_cache *c, const char *key) {
  char *p = NULL;
  if (asprintf(&p, "%s/%s.json", c->dir, key) < 0)
    return NULL;
  return p;
}

static void mem_remove_at(struct dcap_cache *c, size_t i) {
  entry_free(c->e[i]);
  c->e[i] = c->e[--c->n];
  c->e[c->n] = NULL;
}

static ssize_t mem_find(const struct dcap_cache *c, const char *key) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->e[i]->key, key) == 0)
      return (ssize_t)i;
  return -1;
}

/* Takes ownership of e. */
static void mem_insert(struct dcap_cache *c, struct cache_entry *e) {
  ssize_t i = mem_find(c, e->key);
  if (i >= 0) {
    entry_free(c->e[i]);
    c->e[i] = e;
    return;
  }
  if (c->n == DCAP_CACHE_MAX_ENTRIES) {
    /* Evict the entry that expires first. */
    size_t victim = 0;
    for (size_t k = 1; k < c->n; k++)
      if (c->e[k]->expiry < c->e[victim]->expiry)
        victim = k;
    mem_remove_at(c, victim);
  }
  c->e[c->n++] = e;
}

static int entry_new(const char *key, const struct dcap_collateral *col, int64_t expiry,
                     struct cache_entry **ret) {
  struct cache_entry *e = calloc(1, sizeof(*e));
  if (!e)
    return -ENOMEM;
  snprintf(e->key, sizeof(e->key), "%s", key);
  e->expiry = expiry;
  int r = dcap_collateral_copy(col, &e->col);
  if (r < 0) {
    free(e);
    return r;
  }
  *ret = e;
  return 0;
}

/* Loads and checks the disk file of key. -ENOENT when absent, -EBADMSG when corrupt. */
static int disk_load(const struct dcap_cache *c, const char *key, struct dcap_collateral *ret) {
  _cleanup_free_ char *path = entry_path(c, key);
  if (!path)
    return -ENOMEM;
  _cleanup_buf_ struct buf text = BUF_INIT(DCAP_CACHE_MAX_FILE);
  int r = file_read_all(path, DCAP_CACHE_MAX_FILE, &text);
  if (r == -EFBIG || r == -ENOBUFS)
    return -EBADMSG;
  if (r < 0)
    return r == -ENOENT ? -ENOENT : -EBADMSG;
  _cleanup_json_ json_t *j = NULL;
  if (json_parse_buf((const char *)text.data, text.len, DCAP_CACHE_MAX_FILE, &j) < 0)
    return -EBADMSG;
  const char *k = NULL;
  json_t *coll = NULL;
  if (json_get_str(j, "key", &k) < 0 || strcmp(k, key) != 0 ||
      json_get_object(j, "collateral", &coll) < 0)
    return -EBADMSG;
  _cleanup_free_ char *ctext = json_dump_compact(coll);
  if (!ctext)
    return -ENOMEM;
  r = dcap_collateral_from_qvl_json(ctext, strlen(ctext), ret);
  if (r == -ENOMEM)
    return r;
  return r < 0 ? -EBADMSG : 0;
}

static int disk_store(const struct dcap_cache *c, const char *key,
                      const struct dcap_collateral *col) {
  _cleanup_free_ char *path = entry_path(c, key);
  if (!path)
    return -ENOMEM;
  int r = mkdir_p(c->dir, 0700);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf out = BUF_INIT(DCAP_CACHE_MAX_FILE);
  if ((r = buf_printf(&out, "{\"key\":\"%s\",\"collateral\":", key)) < 0 ||
      (r = dcap_collateral_to_qvl_json(col, &out)) < 0 || (r = buf_append_str(&out, "}\n")) < 0)
    return r;
  return file_write_atomic(path, out.data, out.len, 0600);
}

static void disk_remove(const struct dcap_cache *c, const char *key) {
  _cleanup_free_ char *path = entry_path(c, key);
  if (path && unlink(path) < 0 && errno != ENOENT)
    log_debug("dcap cache: removing %s: %m", path);
}

int dcap_cache_get(struct dcap_cache *c, const char *key, int64_t now,
                   struct dcap_collateral *ret) {
  if (!c || !ret || !key_ok(key))
    return -EINVAL;
  int r = -ENOENT;
  pthread_mutex_lock(&c->lock);
  ssize_t i = mem_find(c, key);
  if (i >= 0) {
    if (now < c->e[i]->expiry) {
      r = dcap_collateral_copy(&c->e[i]->col, ret);
      goto out;
    }
    mem_remove_at(c, (size_t)i); /* stale */
    if (c->dir)
      disk_remove(c, key);
    r = -ENOENT;
    goto out;
  }
  if (!c->dir)
    goto out;

  struct dcap_collateral col = {0};
  r = disk_load(c, key, &col);
  if (r < 0) {
    if (r == -EBADMSG)
      log_debug("dcap cache: ignoring corrupt entry %s", key);
    r = r == -ENOMEM ? r : -ENOENT;
    goto out;
  }
  int64_t expiry;
  if (dcap_collateral_next_update(&col, &expiry) < 0 || now >= expiry) {
    dcap_collateral_free(&col);
    r = -ENOENT; /* corrupt or stale: never served */
    goto out;
  }
  struct cache_entry *e = NULL;
  r = entry_new(key, &col, expiry, &e);
  if (r >= 0) {
    mem_insert(c, e);
    *ret = col;
    col = (struct dcap_collateral){0};
  }
  dcap_collateral_free(&col);
out:
  pthread_mutex_unlock(&c->lock);
  return r;
}

int dcap_cache_put(struct dcap_cache *c, const char *key, const struct dcap_collateral *col,
                   int64_t now) {
  if (!c || !col || !key_ok(key))
    return -EINVAL;
  int64_t expiry;
  if (dcap_collateral_next_update(col, &expiry) < 0)
    return -EBADMSG;
  if (now >= expiry)
    return -ESTALE;
  struct cache_entry *e = NULL;
  int r = entry_new(key, col, expiry, &e);
  if (r < 0)
    return r;
  pthread_mutex_lock(&c->lock);
  mem_insert(c, e);
  if (c->dir) {
    r = disk_store(c, key, col);
    if (r < 0)
      log_debug("dcap cache: writing %s/%s.json: %d", c->dir, key, r);
  }
  pthread_mutex_unlock(&c->lock);
  return r;
}

void dcap_cache_remove(struct dcap_cache *c, const char *key) {
  if (!c || !key_ok(key))
    return;
  pthread_mutex_lock(&c->lock);
  ssize_t i = mem_find(c, key);
  if (i >= 0)
    mem_remove_at(c, (size_t)i);
  if (c->dir)
    disk_remove(c, key);
  pthread_mutex_unlock(&c->lock);
}
