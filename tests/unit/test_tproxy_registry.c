/* Registry: store → WireGuard (a fake UAPI server on a unix socket) → routing table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/hex.h"
#include "base/str.h"
#include "tproxy_registry.h"
#include "testutil.h"
#include "tproxy_config.h"
#include "tproxy_wg.h"

#define PRIV "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
#define APP "aabbccddeeff00112233445566778899aabbccdd"

/* ---- fake wireguard-go control socket ---- */

struct fake {
  char path[256];
  int lfd;
  pthread_t th;
  pthread_mutex_t lock;
  unsigned sets;
  char last_set[8192];
  char peers_get[4096]; /* peer lines served by get=1 */
  volatile int stop;
};

static void *fake_main(void *arg) {
  struct fake *f = arg;
  while (!f->stop) {
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    char req[8192];
    size_t n = 0;
    while (n < sizeof(req) - 1) {
      ssize_t k = read(fd, req + n, sizeof(req) - 1 - n);
      if (k <= 0)
        break;
      n += (size_t)k;
      req[n] = 0;
      if (strstr(req, "\n\n"))
        break;
    }
    req[n] = 0;
    pthread_mutex_lock(&f->lock);
    char resp[8192];
    if (str_startswith(req, "set=1")) {
      f->sets++;
      snprintf(f->last_set, sizeof(f->last_set), "%s", req);
      snprintf(resp, sizeof(resp), "errno=0\n\n");
    } else {
      snprintf(resp, sizeof(resp), "listen_port=51820\n%serrno=0\n\n", f->peers_get);
    }
    pthread_mutex_unlock(&f->lock);
    (void)!write(fd, resp, strlen(resp));
    close(fd);
  }
  return NULL;
}

static void fake_start(struct fake *f, const char *dir, const char *ifname) {
  memset(f, 0, sizeof(*f));
  snprintf(f->path, sizeof(f->path), "%s/%s.sock", dir, ifname);
  f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, f->path);
  assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(f->lfd, 8), 0);
  pthread_mutex_init(&f->lock, NULL);
  assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f) {
  f->stop = 1;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, f->path);
  (void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  close(fd);
  pthread_join(f->th, NULL);
  close(f->lfd);
  unlink(f->path);
}

static void fake_set_handshake(struct fake *f, const char *pub_b64, int64_t t) {
  uint8_t k[32];
  char hx[65];
  assert_int_equal(wg_key_decode(pub_b64, k), 0);
  hex_encode(k, 32, hx);
  pthread_mutex_lock(&f->lock);
  size_t n = strlen(f->peers_get);
  snprintf(f->peers_get + n, sizeof(f->peers_get) - n,
           "public_key=%s\nlast_handshake_time_sec=%lld\nlast_handshake_time_nsec=0\n", hx,
           (long long)t);
  pthread_mutex_unlock(&f->lock);
}

static unsigned fake_sets(struct fake *f) {
  pthread_mutex_lock(&f->lock);
  unsigned n = f->sets;
  pthread_mutex_unlock(&f->lock);
  return n;
}

/* ---- fixture ---- */

struct fx {
  char *dir;
  struct tproxy_config cfg;
  struct tproxy_table table;
  struct fake fake;
};

static void pubkey(int i, char out[WG_KEY_B64_LEN + 1]) {
  uint8_t priv[32];
  memset(priv, 0x40 + i, sizeof(priv));
  assert_int_equal(wg_key_public_from_private(priv, out), 0);
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  f->dir = tu_mkdtemp();
  assert_int_equal(tproxy_config_init(&f->cfg), 0);
  char *db = str_printf("%s/t.db", f->dir);
  assert_int_equal(tproxy_config_set(&f->cfg.state_db, db), 0);
  free(db);
  assert_int_equal(tproxy_config_set(&f->cfg.wg_mode, "uapi"), 0);
  assert_int_equal(tproxy_config_set(&f->cfg.wg_sock_dir, f->dir), 0);
  assert_int_equal(tproxy_config_set(&f->cfg.wg_interface, "wgt0"), 0);
  assert_int_equal(tproxy_config_set(&f->cfg.wg_private_key, PRIV), 0);
  assert_int_equal(tproxy_config_set(&f->cfg.wg_client_ip_range, "10.9.0.0/29"), 0);
  assert_int_equal(tproxy_config_set(&f->cfg.wg_ip, "10.9.0.1"), 0);
  f->cfg.wg_stale_timeout = 100;
  char err[256];
  assert_int_equal(tproxy_config_check(&f->cfg, err, sizeof(err)), 0);
  assert_int_equal(tproxy_table_init(&f->table), 0);
  fake_start(&f->fake, f->dir, "wgt0");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  fake_stop(&f->fake);
  tproxy_table_destroy(&f->table);
  tproxy_config_free(&f->cfg);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static size_t route_of(struct fx *f, const char *app, uint32_t *ips, size_t max) {
  struct tproxy_hosts *h = tproxy_table_acquire(&f->table);
  size_t n = tproxy_hosts_pick(h, app, 0, ips, max);
  tproxy_hosts_release(h);
  return n;
}

static void test_register_sync_restart(void **state) {
  struct fx *f = *state;
  struct tproxy_registry *r = NULL;
  char err[256] = "", k1[45], k2[45], k3[45];
  pubkey(1, k1), pubkey(2, k2), pubkey(3, k3);
  assert_int_equal(tproxy_registry_open(&f->cfg, &f->table, &r, err, sizeof(err)), 0);
  unsigned sets0 = fake_sets(&f->fake);
  assert_int_equal(sets0, 1); /* the (empty) config applied at open */
  struct tproxy_reg reg;
  assert_int_equal(tproxy_registry_register(r, APP, "i1", k1, 1000, &reg), STORE_REG_NEW);
  assert_int_equal(reg.ip, 0x0a090002);
  assert_int_equal(fake_sets(&f->fake), 2);
  /* same again: nothing written to the interface */
  assert_int_equal(tproxy_registry_register(r, APP, "i1", k1, 1001, &reg), STORE_REG_UNCHANGED);
  assert_int_equal(fake_sets(&f->fake), 2);
  /* a second instance: its own address; both routed */
  assert_int_equal(tproxy_registry_register(r, APP, "i2", k2, 1002, &reg), STORE_REG_NEW);
  assert_int_equal(reg.ip, 0x0a090003);
  uint32_t ips[4];
  assert_int_equal(route_of(f, APP, ips, 4), 2);
  assert_int_equal(fake_sets(&f->fake), 3);
  /* the interface got both peers with their /32s */
  pthread_mutex_lock(&f->fake.lock);
  assert_non_null(strstr(f->fake.last_set, "allowed_ip=10.9.0.2/32"));
  assert_non_null(strstr(f->fake.last_set, "allowed_ip=10.9.0.3/32"));
  assert_null(strstr(f->fake.last_set, "replace_peers")); /* a delta, as wg syncconf */
  pthread_mutex_unlock(&f->fake.lock);
  /* a new key for i1 replaces its peer, same address */
  assert_int_equal(tproxy_registry_register(r, APP, "i1", k3, 1003, &reg), STORE_REG_REPLACED);
  assert_int_equal(reg.ip, 0x0a090002);
  /* someone else's key: refused */
  assert_int_equal(tproxy_registry_register(r, "bb", "i9", k2, 1004, &reg), -EEXIST);
  tproxy_registry_free(r);

  /* restart: the table is rebuilt from the store before anything else happens */
  struct tproxy_table t2;
  assert_int_equal(tproxy_table_init(&t2), 0);
  assert_int_equal(tproxy_registry_open(&f->cfg, &t2, &r, err, sizeof(err)), 0);
  struct tproxy_hosts *h = tproxy_table_acquire(&t2);
  assert_int_equal(tproxy_hosts_count(h), 2);
  tproxy_hosts_release(h);
  assert_int_equal(tproxy_registry_register(r, APP, "i2", k2, 1005, &reg), STORE_REG_UNCHANGED);
  assert_int_equal(reg.ip, 0x0a090003);
  tproxy_registry_free(r);
  tproxy_table_destroy(&t2);
}

static void test_pool_exhausted(void **state) {
  struct fx *f = *state;
  struct tproxy_registry *r = NULL;
  char err[256] = "", k[45];
  assert_int_equal(tproxy_registry_open(&f->cfg, &f->table, &r, err, sizeof(err)), 0);
  struct tproxy_reg reg;
  /* /29: .1 is the server, .2 .. .6 for clients */
  for (int i = 0; i < 5; i++) {
    char inst[8];
    snprintf(inst, sizeof(inst), "i%d", i);
    pubkey(10 + i, k);
    assert_int_equal(tproxy_registry_register(r, APP, inst, k, 1000, &reg), STORE_REG_NEW);
  }
  pubkey(20, k);
  assert_int_equal(tproxy_registry_register(r, APP, "i9", k, 1000, &reg), -ENOSPC);
  uint32_t ips[8];
  assert_int_equal(route_of(f, APP, ips, 8), 5);
  tproxy_registry_free(r);
}

static void test_expiry_by_handshake(void **state) {
  struct fx *f = *state;
  struct tproxy_registry *r = NULL;
  char err[256] = "", k1[45], k2[45];
  pubkey(1, k1), pubkey(2, k2);
  assert_int_equal(tproxy_registry_open(&f->cfg, &f->table, &r, err, sizeof(err)), 0);
  struct tproxy_reg reg;
  assert_int_equal(tproxy_registry_register(r, APP, "i1", k1, 1000, &reg), STORE_REG_NEW);
  assert_int_equal(tproxy_registry_register(r, APP, "i2", k2, 1000, &reg), STORE_REG_NEW);
  fake_set_handshake(&f->fake, k1, 1150); /* i1 keeps talking, i2 never did */
  assert_int_equal(tproxy_registry_poll(r, 1050), 0);
  uint32_t ips[4];
  assert_int_equal(route_of(f, APP, ips, 4), 2); /* not stale yet */
  assert_int_equal(tproxy_registry_poll(r, 1200), 0);
  assert_int_equal(route_of(f, APP, ips, 4), 1);
  assert_int_equal(ips[0], 0x0a090002);
  assert_int_equal(r->n_expired, 1);
  /* the freed address is handed out again */
  char k3[45];
  pubkey(3, k3);
  assert_int_equal(tproxy_registry_register(r, APP, "i3", k3, 1200, &reg), STORE_REG_NEW);
  assert_int_equal(reg.ip, 0x0a090003);
  tproxy_registry_free(r);
}

/* Without readable handshakes nothing expires, and a failed interface update is retried. */
static void test_interface_down(void **state) {
  struct fx *f = *state;
  struct tproxy_registry *r = NULL;
  char err[256] = "", k1[45];
  pubkey(1, k1);
  fake_stop(&f->fake);
  assert_int_equal(tproxy_registry_open(&f->cfg, &f->table, &r, err, sizeof(err)), 0);
  struct tproxy_reg reg;
  assert_int_equal(tproxy_registry_register(r, APP, "i1", k1, 1000, &reg), STORE_REG_NEW);
  assert_true(r->wg_dirty);
  uint32_t ips[4];
  assert_int_equal(route_of(f, APP, ips, 4), 1); /* stored and routed all the same */
  assert_true(tproxy_registry_poll(r, 100000) < 0);
  assert_int_equal(route_of(f, APP, ips, 4), 1);
  fake_start(&f->fake, f->dir, "wgt0");
  assert_int_equal(tproxy_registry_poll(r, 1001), 0);
  assert_false(r->wg_dirty);
  assert_int_equal(fake_sets(&f->fake), 1);
  tproxy_registry_free(r);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_sync_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pool_exhausted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry_by_handshake, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interface_down, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
