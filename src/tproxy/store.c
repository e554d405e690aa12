/* SQLite-backed registration store of tproxy. Every statement is a constant prepared once at open
 * with bound parameters. Durability: WAL with synchronous=FULL, so a committed registration
 * survives power loss (an address the server forgot could be handed to a second CVM while the
 * first still uses it); registrations are rare, so the extra fsync per commit costs little. */
#include "tproxy_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"

#define STORE_APPLICATION_ID 0x64737470 /* "dstp" */

static const char schema_v1[] =
    "CREATE TABLE registrations ("
    " app_id TEXT NOT NULL CHECK (length(app_id) BETWEEN 1 AND 128),"
    " instance_id TEXT NOT NULL CHECK (length(instance_id) BETWEEN 1 AND 128),"
    " public_key TEXT NOT NULL UNIQUE CHECK (length(public_key) = 44),"
    " ip INTEGER NOT NULL UNIQUE CHECK (ip BETWEEN 0 AND 4294967295),"
    " created INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " last_handshake INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (app_id, instance_id)"
    ") STRICT;"
    "PRAGMA application_id = 1685288048;" /* STORE_APPLICATION_ID */
    "PRAGMA user_version = 1;";

#define REG_COLS "app_id, instance_id, public_key, ip, created, last_seen, last_handshake"

enum {
  S_BEGIN,
  S_COMMIT,
  S_ROLLBACK,
  S_GET,
  S_KEY_OWNER,
  S_USED,
  S_INSERT,
  S_UPDATE,
  S_TOUCH,
  S_EXPIRE,
  S_LIST,
  S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_GET] = "SELECT " REG_COLS " FROM registrations WHERE app_id = ?1 AND instance_id = ?2",
    [S_KEY_OWNER] = "SELECT app_id, instance_id FROM registrations WHERE public_key = ?1",
    [S_USED] = "SELECT ip FROM registrations WHERE ip BETWEEN ?1 AND ?2 ORDER BY ip",
    [S_INSERT] = "INSERT INTO registrations (" REG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0)",
    [S_UPDATE] = "UPDATE registrations SET public_key = ?3, ip = ?4, last_seen = ?5,"
                 " last_handshake = ?6 WHERE app_id = ?1 AND instance_id = ?2",
    [S_TOUCH] = "UPDATE registrations SET last_handshake = max(last_handshake, ?2)"
                " WHERE public_key = ?1",
    [S_EXPIRE] = "DELETE FROM registrations WHERE max(last_handshake, last_seen) < ?1"
                 " RETURNING " REG_COLS,
    [S_LIST] = "SELECT " REG_COLS " FROM registrations ORDER BY app_id, instance_id",
};

struct tproxy_store {
  sqlite3 *db;
  sqlite3_stmt *st[S_COUNT];
};

/* Maps an SQLite result code to a negative errno; sqlite's message goes to debug level. */
static int sql_err(sqlite3 *db, int rc, const char *what) {
  int r;
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    r = -EBUSY;
    break;
  case SQLITE_NOMEM:
    r = -ENOMEM;
    break;
  case SQLITE_CONSTRAINT:
    r = -EEXIST;
    break;
  case SQLITE_READONLY:
  case SQLITE_PERM:
  case SQLITE_AUTH:
    r = -EACCES;
    break;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
  case SQLITE_FORMAT:
    r = -EBADMSG;
    break;
  case SQLITE_FULL:
    r = -ENOSPC;
    break;
  case SQLITE_TOOBIG:
    r = -E2BIG;
    break;
  case SQLITE_MISMATCH:
  case SQLITE_RANGE:
  case SQLITE_MISUSE:
    r = -EINVAL;
    break;
  case SQLITE_CANTOPEN: {
    int e = db ? sqlite3_system_errno(db) : 0;
    r = e > 0 ? -e : -ENOENT;
    break;
  }
  default:
    r = -EIO;
  }
  log_debug("store: %s: %s (sqlite %d)", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
  return r;
}

static bool id_valid(const char *s) {
  size_t n;
  if (!s)
    return false;
  n = strnlen(s, STORE_ID_MAX + 1);
  if (n == 0 || n > STORE_ID_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
      return false;
  return true;
}

static int b64_index(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

bool store_pubkey_valid(const char *k) {
  if (!k || strnlen(k, STORE_PUBKEY_LEN + 1) != STORE_PUBKEY_LEN)
    return false;
  for (size_t i = 0; i < 43; i++)
    if (b64_index(k[i]) < 0)
      return false;
  /* 43 characters carry 258 bits for 256: the last two must be zero (canonical encoding). */
  return (b64_index(k[42]) & 3) == 0 && k[43] == '=';
}

static void stmt_done(sqlite3_stmt *s) {
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
}

static int bind_text(sqlite3_stmt *s, int i, const char *v) {
  return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int exec_simple(struct tproxy_store *st, int which) {
  sqlite3_stmt *s = st->st[which];
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE)
    return sql_err(st->db, rc, stmt_sql[which]);
  return 0;
}

static int tx_begin(struct tproxy_store *st) {
  return exec_simple(st, S_BEGIN);
}

static int tx_commit(struct tproxy_store *st) {
  return exec_simple(st, S_COMMIT);
}

static void tx_rollback(struct tproxy_store *st) {
  if (!sqlite3_get_autocommit(st->db))
    (void)exec_simple(st, S_ROLLBACK);
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col) {
  const unsigned char *t = sqlite3_column_text(s, col);
  snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void row_to_reg(sqlite3_stmt *s, struct tproxy_reg *r) {
  *r = (struct tproxy_reg){0};
  copy_text(r->app_id, sizeof(r->app_id), s, 0);
  copy_text(r->instance_id, sizeof(r->instance_id), s, 1);
  copy_text(r->public_key, sizeof(r->public_key), s, 2);
  r->ip = (uint32_t)sqlite3_column_int64(s, 3);
  r->created = sqlite3_column_int64(s, 4);
  r->last_seen = sqlite3_column_int64(s, 5);
  r->last_handshake = sqlite3_column_int64(s, 6);
}

/* Runs a constant pragma that yields one integer. */
static int pragma_int(sqlite3 *db, const char *sql, int64_t *ret) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (rc != SQLITE_OK)
    return sql_err(db, rc, sql);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *ret = sqlite3_column_int64(s, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_CORRUPT;
  }
  sqlite3_finalize(s);
  return rc == SQLITE_OK ? 0 : sql_err(db, rc, sql);
}

/* Runs a constant pragma that yields one text value and compares it. */
static int pragma_expect(sqlite3 *db, const char *sql, const char *want) {
  sqlite3_stmt *s = NULL;
  int r = 0, rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (rc != SQLITE_OK)
    return sql_err(db, rc, sql);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(s, 0);
    if (!t || strcasecmp((const char *)t, want) != 0) {
      log_debug("store: %s gave '%s', wanted '%s'", sql, t ? (const char *)t : "", want);
      r = -EBADMSG;
    }
  } else {
    r = sql_err(db, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, sql);
  }
  sqlite3_finalize(s);
  return r;
}

static int exec_const(sqlite3 *db, const char *sql) {
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : sql_err(db, rc, sql);
}

/* Creates the schema in a new database or checks an existing one, under a write lock so two
 * processes creating the same file do not race. */
static int schema_setup(sqlite3 *db) {
  int64_t ver = 0, appid = 0, ntables = 0;
  int r;

  r = exec_const(db, "BEGIN IMMEDIATE");
  if (r < 0)
    return r;
  r = pragma_int(db, "PRAGMA user_version", &ver);
  if (r < 0)
    goto fail;
  r = pragma_int(db, "PRAGMA application_id", &appid);
  if (r < 0)
    goto fail;
  if (ver == 0) {
    r = pragma_int(db, "SELECT count(*) FROM sqlite_schema", &ntables);
    if (r < 0)
      goto fail;
    if (ntables != 0 || appid != 0) {
      log_debug("store: database has foreign tables and no schema version");
      r = -EBADMSG;
      goto fail;
    }
    r = exec_const(db, schema_v1);
    if (r < 0)
      goto fail;
  } else {
    if (appid != STORE_APPLICATION_ID) {
      log_debug("store: application_id %lld is not tproxy's", (long long)appid);
      r = -EBADMSG;
      goto fail;
    }
    if (ver > STORE_SCHEMA_VERSION) {
      log_debug("store: schema version %lld is newer than %d", (long long)ver,
                STORE_SCHEMA_VERSION);
      r = -ENOTSUP;
      goto fail;
    }
  }
  return exec_const(db, "COMMIT");
fail:
  (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return r;
}

void store_close(struct tproxy_store *st) {
  if (!st)
    return;
  for (size_t i = 0; i < S_COUNT; i++)
    sqlite3_finalize(st->st[i]);
  sqlite3_close_v2(st->db);
  free(st);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct tproxy_store *, store_close);

int store_open(const char *path, struct tproxy_store **ret) {
  _cleanup_(store_closep) struct tproxy_store *st = NULL;
  int fd, rc, r;

  if (!path || !*path || !ret)
    return -EINVAL;
  /* Create the file ourselves so it gets mode 0600 (sqlite gives -wal/-shm the same mode). */
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return log_debug_errno(-errno, "store: open %s", path);
  close(fd);

  st = calloc(1, sizeof(*st));
  if (!st)
    return -ENOMEM;
  rc = sqlite3_open_v2(path, &st->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
                           SQLITE_OPEN_EXRESCODE,
                       NULL);
  if (rc != SQLITE_OK)
    return sql_err(st->db, rc, "open");
  sqlite3_extended_result_codes(st->db, 1);
  sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
  sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
  sqlite3_db_config(st->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
  sqlite3_db_config(st->db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);

  /* The first statement reads the header: garbage files fail here with SQLITE_NOTADB. */
  r = pragma_expect(st->db, "PRAGMA journal_mode = WAL", "wal");
  if (r < 0)
    return r;
  r = exec_const(st->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
  if (r < 0)
    return r;
  r = schema_setup(st->db);
  if (r < 0)
    return r;
  r = pragma_expect(st->db, "PRAGMA quick_check", "ok");
  if (r < 0)
    return r;

  for (size_t i = 0; i < S_COUNT; i++) {
    rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->st[i], NULL);
    if (rc != SQLITE_OK)
      return sql_err(st->db, rc, stmt_sql[i]);
  }
  *ret = TAKE_PTR(st);
  return 0;
}

/* Lowest address of the pool not used by any row. Inside the caller's transaction. */
static int alloc_ip(struct tproxy_store *st, const struct addrpool *pool, uint32_t *ret) {
  sqlite3_stmt *s = st->st[S_USED];
  uint32_t cand;
  int rc, r;

  r = addrpool_next(pool, false, 0, &cand);
  if (r < 0)
    return r;
  sqlite3_bind_int64(s, 1, pool->first);
  sqlite3_bind_int64(s, 2, pool->last);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    uint32_t ip = (uint32_t)sqlite3_column_int64(s, 0);
    if (ip < cand)
      continue;
    if (ip > cand)
      break;
    r = addrpool_next(pool, true, cand, &cand);
    if (r < 0)
      break;
  }
  stmt_done(s);
  if (r < 0)
    return r;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sql_err(st->db, rc, "allocate address");
  *ret = cand;
  return 0;
}

/* -EEXIST when public_key belongs to a row other than (app_id, instance_id). */
static int check_key_owner(struct tproxy_store *st, const char *app_id, const char *instance_id,
                           const char *public_key) {
  sqlite3_stmt *s = st->st[S_KEY_OWNER];
  int r = 0, rc;

  bind_text(s, 1, public_key);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const char *a = (const char *)sqlite3_column_text(s, 0);
    const char *i = (const char *)sqlite3_column_text(s, 1);
    if (!a || !i || strcmp(a, app_id) != 0 || strcmp(i, instance_id) != 0) {
      log_debug("store: public key already registered by %s/%s", a ? a : "", i ? i : "");
      r = -EEXIST;
    }
  } else if (rc != SQLITE_DONE) {
    r = sql_err(st->db, rc, "key owner");
  }
  stmt_done(s);
  return r;
}

static int register_locked(struct tproxy_store *st, const char *app_id, const char *instance_id,
                           const char *public_key, const struct addrpool *pool, int64_t now,
                           struct tproxy_reg *out) {
  sqlite3_stmt *s = st->st[S_GET];
  struct tproxy_reg cur;
  bool exists = false;
  int rc, r, result;

  bind_text(s, 1, app_id);
  bind_text(s, 2, instance_id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    row_to_reg(s, &cur);
    exists = true;
  }
  stmt_done(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sql_err(st->db, rc, "lookup");

  r = check_key_owner(st, app_id, instance_id, public_key);
  if (r < 0)
    return r;

  if (!exists) {
    cur = (struct tproxy_reg){.created = now, .last_seen = now};
    snprintf(cur.app_id, sizeof(cur.app_id), "%s", app_id);
    snprintf(cur.instance_id, sizeof(cur.instance_id), "%s", instance_id);
    snprintf(cur.public_key, sizeof(cur.public_key), "%s", public_key);
    r = alloc_ip(st, pool, &cur.ip);
    if (r < 0)
      return r;
    s = st->st[S_INSERT];
    result = STORE_REG_NEW;
  } else {
    result = STORE_REG_UNCHANGED;
    if (strcmp(cur.public_key, public_key) != 0) {
      /* A new key is a new peer: it has not completed a handshake yet. */
      snprintf(cur.public_key, sizeof(cur.public_key), "%s", public_key);
      cur.last_handshake = 0;
      result = STORE_REG_REPLACED;
    }
    if (!addrpool_contains(pool, cur.ip)) {
      /* The configured range changed since this row was written. */
      r = alloc_ip(st, pool, &cur.ip);
      if (r < 0)
        return r;
      result = STORE_REG_REPLACED;
    }
    cur.last_seen = now;
    s = st->st[S_UPDATE];
    sqlite3_bind_int64(s, 6, cur.last_handshake);
  }
  bind_text(s, 1, cur.app_id);
  bind_text(s, 2, cur.instance_id);
  bind_text(s, 3, cur.public_key);
  sqlite3_bind_int64(s, 4, cur.ip);
  sqlite3_bind_int64(s, 5, now);
  rc = sqlite3_step(s);
  stmt_done(s);
  if (rc != SQLITE_DONE)
    return sql_err(st->db, rc, exists ? "update" : "insert");
  if (out)
    *out = cur;
  return result;
}

int store_register(struct tproxy_store *st, const char *app_id, const char *instance_id,
                   const char *public_key, const struct addrpool *pool, int64_t now,
                   struct tproxy_reg *ret) {
  int r, result;

  if (!st || !pool || !id_valid(app_id) || !id_valid(instance_id) ||
      !store_pubkey_valid(public_key) || now < 0)
    return -EINVAL;
  r = tx_begin(st);
  if (r < 0)
    return r;
  result = register_locked(st, app_id, instance_id, public_key, pool, now, ret);
  if (result < 0) {
    tx_rollback(st);
    return result;
  }
  r = tx_commit(st);
  if (r < 0) {
    tx_rollback(st);
    return r;
  }
  return result;
}

int store_touch_handshake(struct tproxy_store *st, const char *public_key, int64_t t) {
  sqlite3_stmt *s;
  int rc;

  if (!st || !store_pubkey_valid(public_key) || t < 0)
    return -EINVAL;
  s = st->st[S_TOUCH];
  bind_text(s, 1, public_key);
  sqlite3_bind_int64(s, 2, t);
  rc = sqlite3_step(s);
  stmt_done(s);
  if (rc != SQLITE_DONE)
    return sql_err(st->db, rc, "touch handshake");
  return sqlite3_changes(st->db) > 0 ? 0 : -ENOENT;
}

/* Collects the rows a statement yields into a malloc'd array. */
static int collect_rows(struct tproxy_store *st, sqlite3_stmt *s, struct tproxy_reg **ret,
                        size_t *ret_n) {
  _cleanup_free_ struct tproxy_reg *v = NULL;
  size_t n = 0, cap = 0;
  int rc;

  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16, bytes;
      struct tproxy_reg *nv;
      if (!size_mul(ncap, sizeof(*v), &bytes))
        return -ENOMEM;
      nv = realloc(v, bytes);
      if (!nv)
        return -ENOMEM;
      v = nv;
      cap = ncap;
    }
    row_to_reg(s, &v[n++]);
  }
  if (rc != SQLITE_DONE)
    return sql_err(st->db, rc, "read rows");
  *ret = n ? TAKE_PTR(v) : NULL;
  *ret_n = n;
  return 0;
}

int store_expire(struct tproxy_store *st, int64_t now, int64_t max_age, store_expire_fn cb,
                 void *userdata) {
  _cleanup_free_ struct tproxy_reg *gone = NULL;
  size_t n = 0;
  int64_t cutoff;
  int r;

  if (!st || max_age < 0 || __builtin_sub_overflow(now, max_age, &cutoff))
    return -EINVAL;
  r = tx_begin(st);
  if (r < 0)
    return r;
  sqlite3_bind_int64(st->st[S_EXPIRE], 1, cutoff);
  r = collect_rows(st, st->st[S_EXPIRE], &gone, &n);
  stmt_done(st->st[S_EXPIRE]);
  if (r < 0) {
    tx_rollback(st);
    return r;
  }
  r = tx_commit(st);
  if (r < 0) {
    tx_rollback(st);
    return r;
  }
  for (size_t i = 0; cb && i < n; i++)
    cb(&gone[i], userdata);
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

int store_list(struct tproxy_store *st, struct tproxy_reg **ret, size_t *ret_n) {
  int r;
  if (!st || !ret || !ret_n)
    return -EINVAL;
  r = collect_rows(st, st->st[S_LIST], ret, ret_n);
  stmt_done(st->st[S_LIST]);
  return r;
}

int store_get(struct tproxy_store *st, const char *app_id, const char *instance_id,
              struct tproxy_reg *ret) {
  sqlite3_stmt *s;
  int rc;
  if (!st || !id_valid(app_id) || !id_valid(instance_id))
    return -EINVAL;
  s = st->st[S_GET];
  bind_text(s, 1, app_id);
  bind_text(s, 2, instance_id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW && ret)
    row_to_reg(s, ret);
  stmt_done(s);
  if (rc == SQLITE_ROW)
    return 0;
  if (rc == SQLITE_DONE)
    return -ENOENT;
  return sql_err(st->db, rc, "get");
}
