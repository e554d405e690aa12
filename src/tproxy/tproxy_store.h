/* Persistent WireGuard client registrations of tproxy (SQLite, WAL).
 *
 * One row per (app_id, instance_id) with its WireGuard public key and client address. Addresses
 * come from an addrpool, lowest free first; a re-registration keeps its address; rows whose peer
 * has not completed a handshake for max_age seconds (counted from registration when there never
 * was one) are expired and their addresses return to the pool.
 *
 * A store handle is not thread-safe: use it from one thread (the event loop). Several processes
 * may open the same file; registrations are serialised by IMMEDIATE transactions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tproxy_addrpool.h"

#define STORE_ID_MAX 128    /* app_id / instance_id: 1..128 bytes of printable ASCII (0x21..0x7e) */
#define STORE_PUBKEY_LEN 44 /* standard base64 of a 32-byte WireGuard key, with one '=' */
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_SCHEMA_VERSION 1

struct tproxy_store;

struct tproxy_reg {
  char app_id[STORE_ID_MAX + 1];
  char instance_id[STORE_ID_MAX + 1];
  char public_key[STORE_PUBKEY_LEN + 1];
  uint32_t ip; /* host byte order */
  int64_t created;
  int64_t last_seen;      /* last RegisterCvm */
  int64_t last_handshake; /* 0 = never */
};

/* What store_register() did (non-negative return values). */
enum {
  STORE_REG_UNCHANGED = 0, /* same (app, instance, key): existing address, last_seen touched */
  STORE_REG_NEW = 1,       /* new row with the lowest free address */
  STORE_REG_REPLACED = 2,  /* key changed (same address) or the old address left the pool */
};

/* Opens or creates the database (file mode 0600, symlinks refused). -EBADMSG when the file is not
 * a tproxy store (garbage, corrupt, other application's database), -ENOTSUP for a newer schema. */
int store_open(const char *path, struct tproxy_store **ret);
void store_close(struct tproxy_store *st);

/* True when public_key is canonical standard base64 of exactly 32 bytes. */
bool store_pubkey_valid(const char *public_key);

/* Registers (app_id, instance_id, public_key) in one IMMEDIATE transaction. Returns STORE_REG_*
 * and fills ret (may be NULL). -EINVAL bad ids/key, -ENOSPC pool exhausted (nothing written),
 * -EEXIST the key belongs to another (app, instance), -EBUSY lock timeout, -EIO. */
int store_register(struct tproxy_store *st, const char *app_id, const char *instance_id,
                   const char *public_key, const struct addrpool *pool, int64_t now,
                   struct tproxy_reg *ret);

/* Records a WireGuard handshake seen at time t for the peer with public_key (never moves the
 * time backwards). -ENOENT when no row has that key. */
int store_touch_handshake(struct tproxy_store *st, const char *public_key, int64_t t);

/* Called once per removed row, after the removal is committed. */
typedef void (*store_expire_fn)(const struct tproxy_reg *reg, void *userdata);

/* Deletes rows whose last handshake (or registration, if later) is older than now - max_age.
 * Returns the number of rows removed (>= 0); cb may be NULL. */
int store_expire(struct tproxy_store *st, int64_t now, int64_t max_age, store_expire_fn cb,
                 void *userdata);

/* All rows ordered by app_id, instance_id. *ret is malloc'd (free()), NULL when empty. */
int store_list(struct tproxy_store *st, struct tproxy_reg **ret, size_t *ret_n);

/* Row of (app_id, instance_id); -ENOENT if none. */
int store_get(struct tproxy_store *st, const char *app_id, const char *instance_id,
              struct tproxy_reg *ret);
