#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tproxy_addrpool.h"
#include "base/base64.h"
#include "base/buf.h"
#include "base/macro.h"
#include "tproxy_store.h"
#include "testutil.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

struct fixture {
  char *dir;
  char path[512];
  struct addrpool pool;
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  if (!f)
    return -1;
  f->dir = tu_mkdtemp();
  snprintf(f->path, sizeof(f->path), "%s/tproxy.db", f->dir);
  if (addrpool_init(&f->pool, "10.0.0.0/24", "10.0.0.1") < 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* A valid WireGuard public key (base64 of 32 bytes) derived from n. */
static void mkkey(unsigned n, char out[STORE_PUBKEY_LEN + 1]) {
  uint8_t raw[32];
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  for (size_t i = 0; i < sizeof(raw); i++)
    raw[i] = (uint8_t)(n * 31 + i * 7 + (n >> 8));
  raw[0] = (uint8_t)n;
  raw[1] = (uint8_t)(n >> 8);
  assert_int_equal(base64_encode_buf(raw, sizeof(raw), &b), 0);
  assert_int_equal(b.len, STORE_PUBKEY_LEN);
  memcpy(out, b.data, STORE_PUBKEY_LEN);
  out[STORE_PUBKEY_LEN] = '\0';
}

static struct tproxy_store *open_store(const struct fixture *f) {
  struct tproxy_store *st = NULL;
  assert_int_equal(store_open(f->path, &st), 0);
  assert_non_null(st);
  return st;
}

static size_t count_rows(struct tproxy_store *st) {
  struct tproxy_reg *v = NULL;
  size_t n = 99;
  assert_int_equal(store_list(st, &v, &n), 0);
  free(v);
  return n;
}

static void test_validation(void **state) {
  struct fixture *f = *state;
  struct tproxy_store *st = open_store(f);
  char k[STORE_PUBKEY_LEN + 1], bad[STORE_PUBKEY_LEN + 1], longid[STORE_ID_MAX + 2];
  mkkey(1, k);
  assert_true(store_pubkey_valid(k));
  assert_true(store_pubkey_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
  assert_false(store_pubkey_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")); /* non-canonical */
  assert_false(store_pubkey_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  assert_false(store_pubkey_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  assert_false(store_pubkey_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));
  assert_false(store_pubkey_valid("AAAAAAAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAA="));
  assert_false(store_pubkey_valid(""));
  assert_false(store_pubkey_valid(NULL));
  memcpy(bad, k, sizeof(bad));
  bad[5] = ' ';
  assert_int_equal(store_register(st, "app", "i0", bad, &f->pool, 1, NULL), -EINVAL);
  assert_int_equal(store_register(st, "", "i0", k, &f->pool, 1, NULL), -EINVAL);
  assert_int_equal(store_register(st, "app", "", k, &f->pool, 1, NULL), -EINVAL);
  assert_int_equal(store_register(st, "a p", "i0", k, &f->pool, 1, NULL), -EINVAL);
  assert_int_equal(store_register(st, "app", "i\n", k, &f->pool, 1, NULL), -EINVAL);
  memset(longid, 'x', STORE_ID_MAX + 1);
  longid[STORE_ID_MAX + 1] = '\0';
  assert_int_equal(store_register(st, longid, "i0", k, &f->pool, 1, NULL), -EINVAL);
  longid[STORE_ID_MAX] = '\0'; /* exactly the maximum is fine */
  assert_int_equal(store_register(st, longid, "i0", k, &f->pool, 1, NULL), STORE_REG_NEW);
  assert_int_equal(store_register(st, "app", "i0", k, NULL, 1, NULL), -EINVAL);
  assert_int_equal(store_touch_handshake(st, bad, 5), -EINVAL);
  assert_int_equal(count_rows(st), 1);
  store_close(st);
  store_close(NULL);
}

static void test_ascending_and_same(void **state) {
  struct fixture *f = *state;
  struct tproxy_store *st = open_store(f);
  char k0[STORE_PUBKEY_LEN + 1], k1[STORE_PUBKEY_LEN + 1];
  struct tproxy_reg r, g;
  mkkey(0, k0);
  mkkey(1, k1);
  /* as upstream's snapshot: .1 is the server, allocation ascending */
  assert_int_equal(store_register(st, "test-id-0", "inst", k0, &f->pool, 100, &r), STORE_REG_NEW);
  assert_int_equal(r.ip, IP(10, 0, 0, 2));
  assert_int_equal(r.created, 100);
  assert_int_equal(store_register(st, "test-id-1", "inst", k1, &f->pool, 100, &r), STORE_REG_NEW);
  assert_int_equal(r.ip, IP(10, 0, 0, 3));
  /* same registration again: same address, nothing leaked, last_seen touched */
  assert_int_equal(store_register(st, "test-id-0", "inst", k0, &f->pool, 200, &r),
                   STORE_REG_UNCHANGED);
  assert_int_equal(r.ip, IP(10, 0, 0, 2));
  assert_int_equal(r.created, 100);
  assert_int_equal(r.last_seen, 200);
  assert_int_equal(store_get(st, "test-id-0", "inst", &g), 0);
  assert_int_equal(g.last_seen, 200);
  assert_string_equal(g.public_key, k0);
  assert_int_equal(count_rows(st), 2);
  /* the next new one still gets .4: the re-registration did not consume an address */
  char k2[STORE_PUBKEY_LEN + 1];
  mkkey(2, k2);
  assert_int_equal(store_register(st, "test-id-2", "inst", k2, &f->pool, 300, &r), STORE_REG_NEW);
  assert_int_equal(r.ip, IP(10, 0, 0, 4));
  assert_int_equal(store_get(st, "nope", "inst", &g), -ENOENT);
  store_close(st);
}

static void test_key_change(void **state) {
  struct fixture *f = *state;
  struct tproxy_store *st = open_store(f);
  char k0[STORE_PUBKEY_LEN + 1], k1[STORE_PUBKEY_LEN + 1], k2[STORE_PUBKEY_LEN + 1];
  struct tproxy_reg r;
  mkkey(10, k0);
  mkkey(11, k1);
  mkkey(12, k2);
  assert_int_equal(store_register(st, "app", "i0", k0, &f->pool, 100, &r), STORE_REG_NEW);
  assert_int_equal(store_touch_handshake(st, k0, 150), 0);
  assert_int_equal(store_register(st, "app", "i0", k1, &f->pool, 200, &r), STORE_REG_REPLACED);
  assert_int_equal(r.ip, IP(10, 0, 0, 2));
  assert_string_equal(r.public_key, k1);
  assert_int_equal(r.last_handshake, 0);
  assert_int_equal(count_rows(st), 1);
  /* the old key is gone */
  assert_int_equal(store_touch_handshake(st, k0, 250), -ENOENT);
  assert_int_equal(store_touch_handshake(st, k1, 250), 0);
  /* a key owned by another registration is refused, nothing changes */
  assert_int_equal(store_register(st, "other", "i0", k1, &f->pool, 300, &r), -EEXIST);
  assert_int_equal(store_register(st, "app", "i1", k1, &f->pool, 300, &r), -EEXIST);
  assert_int_equal(count_rows(st), 1);
  /* the freed old key may be used by someone else */
  assert_int_equal(store_register(st, "other", "i0", k0, &f->pool, 300, &r), STORE_REG_NEW);
  assert_int_equal(r.ip, IP(10, 0, 0, 3));
  /* handshake time never goes backwards */
  assert_int_equal(store_touch_handshake(st, k1, 100), 0);
  assert_int_equal(store_get(st, "app", "i0", &r), 0);
  assert_int_equal(r.last_handshake, 250);
  (void)k2;
  store_close(st);
}

static void test_instances(void **state) {
  struct fixture *f = *state;
  struct tproxy_store *st = open_store(f);
  char k0[STORE_PUBKEY_LEN + 1], k1[STORE_PUBKEY_LEN + 1];
  struct tproxy_reg r0, r1, *v = NULL;
  size_t n = 0;
  mkkey(20, k0);
  mkkey(21, k1);
  assert_int_equal(store_register(st, "app", "inst-b", k0, &f->pool, 1, &r0), STORE_REG_NEW);
  assert_int_equal(store_register(st, "app", "inst-a", k1, &f->pool, 1, &r1), STORE_REG_NEW);
  assert_int_not_equal(r0.ip, r1.ip);
  assert_int_equal(r0.ip, IP(10, 0, 0, 2));
  assert_int_equal(r1.ip, IP(10, 0, 0, 3));
  assert_int_equal(store_list(st, &v, &n), 0);
  assert_int_equal(n, 2);
  /* ordered by app_id, instance_id */
  assert_string_equal(v[0].instance_id, "inst-a");
  assert_string_equal(v[1].instance_id, "inst-b");
  assert_int_equal(v[0].ip, IP(10, 0, 0, 3));
  free(v);
  store_close(st);
}

static void test_exhaustion(void **state) {
  struct fixture *f = *state;
  struct tproxy_store *st = open_store(f);
  struct addrpool small;
  char k[STORE_PUBKEY_LEN + 1], id[16];
  struct tproxy_reg r;
  /* /29 with the server at .1: .2 .. .6 */
  assert_int_equal(addrpool_init(&small, "10.0.0.0/29", "10.0.0.1"), 0);
  for (unsigned i = 0; i < 5; i++) {
    mkkey(100 + i, k);
    snprintf(id, sizeof(id), "app%u", i);
    assert_int_equal(store_register(st, id, "i", k, &small, 10, &r), STORE_REG_NEW);
    assert_int_equal(r.ip, IP(10, 0, 0, 2 + i));
  }
  mkkey(200, k);
  memset(&r, 0xaa, sizeof(r));
  assert_int_equal(store_register(st, "late", "i", k, &small, 10, &r), -ENOSPC);
  assert_int_equal(count_rows(st), 5);
  assert_int_equal(store_get(st, "late", "i", NULL), -ENOENT);
  /* existing ones still re-register while full */
  mkkey(102, k);
  assert_int_equal(store_register(st, "app2", "i", k, &small, 20, &r), STORE_REG_UNCHANGED);
  assert_int_equal(r.ip, IP(10, 0, 0, 4));
  store_close(st);
}

struct expired {
  char ids[8][STORE_ID_MAX + 1];
  uint32_t ips[8];
  size_t n;
};

static void on_expire(const struct tproxy_reg *reg, void *ud) {
  struct expired *e = ud;
  assert_true(e->n < 8);
  memcpy(e->ids[e->n], reg->app_id, sizeof(reg->app_id));
  e->ips[e->n++] = reg->ip;
}

static void test_expiry(void **state) {
  struct fixture *f = *state;
  struct tproxy_store *st = open_store(f);
  char ka[STORE_PUBKEY_LEN + 1], kb[STORE_PUBKEY_LEN + 1], kc[STORE_PUBKEY_LEN + 1],
      kd[STORE_PUBKEY_LEN + 1];
  struct tproxy_reg r;
  struct expired e = {0};
  mkkey(30, ka);
  mkkey(31, kb);
  mkkey(32, kc);
  mkkey(33, kd);
  assert_int_equal(store_register(st, "a", "i", ka, &f->pool, 100, &r), STORE_REG_NEW); /* .2 */
  assert_int_equal(store_register(st, "b", "i", kb, &f->pool, 100, &r), STORE_REG_NEW); /* .3 */
  assert_int_equal(store_register(st, "c", "i", kc, &f->pool, 100, &r), STORE_REG_NEW); /* .4 */
  assert_int_equal(store_touch_handshake(st, kb, 500), 0);
  /* nothing older than 1000-1000 = 0 */
  assert_int_equal(store_expire(st, 1000, 1000, on_expire, &e), 0);
  assert_int_equal(e.n, 0);
  /* cutoff 400: a and c (registered at 100, no handshake) go, b (handshake 500) stays */
  assert_int_equal(store_expire(st, 1000, 600, on_expire, &e), 2);
  assert_int_equal(e.n, 2);
  assert_true((strcmp(e.ids[0], "a") == 0 && strcmp(e.ids[1], "c") == 0) ||
              (strcmp(e.ids[0], "c") == 0 && strcmp(e.ids[1], "a") == 0));
  assert_int_equal(e.ips[0] + e.ips[1], IP(10, 0, 0, 2) + IP(10, 0, 0, 4));
  assert_int_equal(count_rows(st), 1);
  assert_int_equal(store_touch_handshake(st, ka, 1001), -ENOENT);
  /* the lowest address is reused */
  assert_int_equal(store_register(st, "d", "i", kd, &f->pool, 1000, &r), STORE_REG_NEW);
  assert_int_equal(r.ip, IP(10, 0, 0, 2));
  /* a re-registration counts as seen: a registered again at 1100 survives cutoff 1050 */
  assert_int_equal(store_register(st, "a", "i", ka, &f->pool, 1100, &r), STORE_REG_NEW);
  assert_int_equal(r.ip, IP(10, 0, 0, 4));
  assert_int_equal(store_expire(st, 1650, 600, NULL, NULL), 2); /* d (1000), b (500) */
  assert_int_equal(store_get(st, "d", "i", NULL), -ENOENT);
  assert_int_equal(store_get(st, "a", "i", NULL), 0);
  assert_int_equal(store_get(st, "b", "i", NULL), -ENOENT); /* b: 500 < 1050 */
  assert_int_equal(store_expire(st, 0, -1, NULL, NULL), -EINVAL);
  assert_int_equal(store_expire(st, INT64_MIN, 1, NULL, NULL), -EINVAL);
  store_close(st);
}

static void test_persistence_and_wal(void **state) {
  struct fixture *f = *state;
  struct tproxy_store *st = open_store(f), *st2;
  char k0[STORE_PUBKEY_LEN + 1], k1[STORE_PUBKEY_LEN + 1], wal[600];
  struct tproxy_reg r;
  struct stat sb;
  mkkey(40, k0);
  mkkey(41, k1);
  assert_int_equal(store_register(st, "app", "i0", k0, &f->pool, 7, &r), STORE_REG_NEW);
  /* a second connection sees the committed row at once */
  st2 = open_store(f);
  assert_int_equal(store_get(st2, "app", "i0", &r), 0);
  assert_int_equal(r.ip, IP(10, 0, 0, 2));
  assert_int_equal(store_register(st2, "app", "i1", k1, &f->pool, 8, &r), STORE_REG_NEW);
  assert_int_equal(r.ip, IP(10, 0, 0, 3));
  assert_int_equal(count_rows(st), 2);
  /* WAL mode, seen through an independent sqlite connection */
  snprintf(wal, sizeof(wal), "%s-wal", f->path);
  assert_int_equal(stat(wal, &sb), 0);
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
  sqlite3_finalize(s);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(s, 0), STORE_SCHEMA_VERSION);
  sqlite3_finalize(s);
  sqlite3_close(db);
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  store_close(st);
  store_close(st2);
  /* reopen: rows and their addresses survive */
  st = open_store(f);
  assert_int_equal(count_rows(st), 2);
  assert_int_equal(store_register(st, "app", "i0", k0, &f->pool, 9, &r), STORE_REG_UNCHANGED);
  assert_int_equal(r.ip, IP(10, 0, 0, 2));
  assert_int_equal(r.created, 7);
  /* a changed client_ip_range moves the row into the new range */
  struct addrpool other;
  assert_int_equal(addrpool_init(&other, "10.1.0.0/24", "10.1.0.1"), 0);
  assert_int_equal(store_register(st, "app", "i1", k1, &other, 10, &r), STORE_REG_REPLACED);
  assert_int_equal(r.ip, IP(10, 1, 0, 2));
  store_close(st);
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static void test_bad_files(void **state) {
  struct fixture *f = *state;
  struct tproxy_store *st = NULL;
  char garbage[8192], path[600];
  sqlite3 *db = NULL;
  memset(garbage, 'x', sizeof(garbage));
  write_file(f->path, garbage, sizeof(garbage));
  assert_int_equal(store_open(f->path, &st), -EBADMSG);
  assert_null(st);
  /* a valid header followed by garbage pages */
  memcpy(garbage, "SQLite format 3", 16);
  write_file(f->path, garbage, sizeof(garbage));
  assert_int_equal(store_open(f->path, &st), -EBADMSG);
  /* another application's database */
  snprintf(path, sizeof(path), "%s/other.db", f->dir);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(store_open(path, &st), -EBADMSG);
  /* a newer schema than ours */
  snprintf(path, sizeof(path), "%s/newer.db", f->dir);
  assert_int_equal(store_open(path, &st), 0);
  store_close(st);
  st = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(store_open(path, &st), -ENOTSUP);
  /* a missing directory */
  snprintf(path, sizeof(path), "%s/missing-dir/x.db", f->dir);
  assert_int_equal(store_open(path, &st), -ENOENT);
  /* a symlink is refused */
  snprintf(path, sizeof(path), "%s/link.db", f->dir);
  assert_int_equal(symlink(f->path, path), 0);
  assert_int_equal(store_open(path, &st), -ELOOP);
  assert_int_equal(store_open(NULL, &st), -EINVAL);
  assert_int_equal(store_open("", &st), -EINVAL);
  assert_null(st);
}

/* Child of the fork test: registers n instances of its own app; exit status 0 on success. */
static int child_register(const char *path, const struct addrpool *pool, unsigned which,
                          unsigned n) {
  struct tproxy_store *st = NULL;
  char k[STORE_PUBKEY_LEN + 1], inst[32], app[32];
  int bad = 0;
  if (store_open(path, &st) < 0)
    return 10;
  snprintf(app, sizeof(app), "app%u", which);
  for (unsigned i = 0; i < n; i++) {
    uint8_t raw[32] = {0};
    _cleanup_buf_ struct buf b = BUF_INIT(64);
    raw[0] = (uint8_t)which;
    raw[1] = (uint8_t)i;
    raw[2] = 0x5a;
    if (base64_encode_buf(raw, sizeof(raw), &b) < 0 || b.len != STORE_PUBKEY_LEN) {
      bad = 11;
      break;
    }
    memcpy(k, b.data, STORE_PUBKEY_LEN);
    k[STORE_PUBKEY_LEN] = '\0';
    snprintf(inst, sizeof(inst), "i%u", i);
    if (store_register(st, app, inst, k, pool, 1000 + i, NULL) != STORE_REG_NEW) {
      bad = 12;
      break;
    }
  }
  store_close(st);
  return bad;
}

static void test_concurrent_fork(void **state) {
  struct fixture *f = *state;
  enum { NPROC = 3, PER = 80 };
  pid_t pids[NPROC];
  int gate[2];
  struct tproxy_store *st = open_store(f); /* creates the schema first */
  struct tproxy_reg *v = NULL;
  size_t n = 0;
  store_close(st);
  assert_int_equal(pipe(gate), 0);
  for (unsigned p = 0; p < NPROC; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      char c;
      close(gate[1]);
      /* all children start together: the read returns at EOF when the parent closes the pipe */
      if (read(gate[0], &c, 1) != 0)
        _exit(20);
      _exit(child_register(f->path, &f->pool, p, PER));
    }
  }
  close(gate[0]);
  close(gate[1]);
  for (unsigned p = 0; p < NPROC; p++) {
    int status = -1;
    assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  st = open_store(f);
  assert_int_equal(store_list(st, &v, &n), 0);
  assert_int_equal(n, NPROC * PER);
  /* every address distinct and the set is exactly the lowest NPROC*PER addresses */
  bool seen[256] = {false};
  for (size_t i = 0; i < n; i++) {
    assert_true(v[i].ip >= IP(10, 0, 0, 2) && v[i].ip < IP(10, 0, 0, 2 + NPROC * PER));
    assert_false(seen[v[i].ip & 0xff]);
    seen[v[i].ip & 0xff] = true;
  }
  free(v);
  store_close(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ascending_and_same, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_change, setup, teardown),
      cmocka_unit_test_setup_teardown(test_instances, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exhaustion, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_persistence_and_wal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_fork, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
