/* Cache of fetched DCAP collateral: in memory and, optionally, in a directory on disk.
 *
 * An entry is valid until its expiry = the earliest nextUpdate among TCB info, QE identity,
 * PCK CRL and root CA CRL (computed from the content, never trusted from a file). Lookups
 * with now >= expiry miss (stale entries are dropped, never returned).
 *
 * Disk layout: one file per key, "<dir>/<key>.json" (key like "tdx-00806f050000-platform"),
 * mode 0600, written with file_write_atomic; the directory is created 0700. Files larger than
 * DCAP_CACHE_MAX_FILE, unparsable, stale, or with a different key inside are ignored (and replaced on
 * the next store). Thread-safe: one mutex per cache. */
#pragma once

#include <stdint.h>

#define DCAP_CACHE_MAX_FILE ((size_t)4 * 1024 * 1024)
#define DCAP_CACHE_MAX_ENTRIES 64
#define DCAP_CACHE_KEY_MAX 64

struct dcap_cache;
struct dcap_collateral;

/* dir may be NULL (memory only). The directory is created on the first store. */
int dcap_cache_new(const char *dir, struct dcap_cache **ret);
void dcap_cache_free(struct dcap_cache *c);
const char *dcap_cache_dir(const struct dcap_cache *c); /* NULL when memory only */

/* Keys: [a-z0-9-], at most DCAP_CACHE_KEY_MAX-1 chars. */
/* Copies a valid entry into ret. -ENOENT absent or stale, -EINVAL bad key. */
int dcap_cache_get(struct dcap_cache *c, const char *key, int64_t now, struct dcap_collateral *ret);
/* Stores a copy (memory + disk). -ESTALE when the collateral has already expired at now
 * (nothing stored), -EBADMSG when no expiry can be computed from it. A disk write failure is
 * returned after the memory entry is stored. */
int dcap_cache_put(struct dcap_cache *c, const char *key, const struct dcap_collateral *col,
                   int64_t now);
/* Drops an entry from memory and disk. */
void dcap_cache_remove(struct dcap_cache *c, const char *key);

/* Validity of an entry = dcap_collateral_next_update() (attest/dcap_collateral.h).
 * File content: {"key":"<key>","collateral":<dcap_collateral_to_qvl_json()>}. */
