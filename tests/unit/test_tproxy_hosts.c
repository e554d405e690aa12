#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "tproxy_hosts.h"
#include "testutil.h"

static struct tproxy_host H(const char *app, uint32_t ip) {
  struct tproxy_host h = {.ip = ip};
  strcpy(h.app_id, app);
  return h;
}

static void test_empty_and_unknown(void **state) {
  (void)state;
  struct tproxy_table t;
  assert_int_equal(tproxy_table_init(&t), 0);
  struct tproxy_hosts *h = tproxy_table_acquire(&t);
  uint32_t ips[4];
  assert_int_equal(tproxy_hosts_count(h), 0);
  assert_int_equal(tproxy_hosts_pick(h, "aa", 0, ips, 4), 0);
  tproxy_hosts_release(h);
  struct tproxy_host v[] = {H("bb", 2), H("aa", 3)};
  assert_int_equal(tproxy_table_publish(&t, v, 2), 0);
  h = tproxy_table_acquire(&t);
  assert_int_equal(tproxy_hosts_pick(h, "cc", 0, ips, 4), 0);
  assert_int_equal(tproxy_hosts_pick(h, "a", 0, ips, 4), 0); /* prefix is not a match */
  assert_int_equal(tproxy_hosts_pick(h, "aa", 0, ips, 4), 1);
  assert_int_equal(ips[0], 3);
  assert_int_equal(tproxy_hosts_pick(h, "bb", 0, ips, 0), 0); /* max 0 */
  tproxy_hosts_release(h);
  tproxy_table_destroy(&t);
}

static void test_rotation_spreads(void **state) {
  (void)state;
  struct tproxy_table t;
  assert_int_equal(tproxy_table_init(&t), 0);
  struct tproxy_host v[] = {H("aa", 10), H("aa", 11), H("aa", 12), H("ab", 20), H("a0", 30)};
  assert_int_equal(tproxy_table_publish(&t, v, 5), 0);
  struct tproxy_hosts *h = tproxy_table_acquire(&t);
  unsigned first[3] = {0};
  for (int i = 0; i < 30; i++) {
    uint32_t ips[8];
    assert_int_equal(tproxy_hosts_pick(h, "aa", 0, ips, 8), 3);
    /* every instance is listed once */
    assert_int_equal(ips[0] + ips[1] + ips[2], 33);
    first[ips[0] - 10]++;
  }
  for (int i = 0; i < 3; i++)
    assert_int_equal(first[i], 10);
  tproxy_hosts_release(h);
  tproxy_table_destroy(&t);
}

static void test_down_marks(void **state) {
  (void)state;
  struct tproxy_table t;
  assert_int_equal(tproxy_table_init(&t), 0);
  struct tproxy_host v[] = {H("aa", 10), H("aa", 11)};
  assert_int_equal(tproxy_table_publish(&t, v, 2), 0);
  struct tproxy_hosts *h = tproxy_table_acquire(&t);
  tproxy_hosts_mark(h, "aa", 10, false, 1000);
  for (int i = 0; i < 4; i++) {
    uint32_t ips[2];
    assert_int_equal(tproxy_hosts_pick(h, "aa", 1000 + HOSTS_DOWN_MS - 1, ips, 2), 2);
    assert_int_equal(ips[0], 11); /* the down one last */
    assert_int_equal(ips[1], 10);
  }
  tproxy_hosts_release(h);
  /* A republished table keeps the mark of a surviving instance. */
  struct tproxy_host v2[] = {H("aa", 10), H("aa", 11), H("aa", 12)};
  assert_int_equal(tproxy_table_publish(&t, v2, 3), 0);
  h = tproxy_table_acquire(&t);
  for (int i = 0; i < 3; i++) {
    uint32_t ips[3];
    assert_int_equal(tproxy_hosts_pick(h, "aa", 2000, ips, 3), 3);
    assert_int_equal(ips[2], 10);
  }
  /* Expired mark, and an explicit up. */
  uint32_t ips[3];
  unsigned last10 = 0;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(tproxy_hosts_pick(h, "aa", 1000 + HOSTS_DOWN_MS + 1, ips, 3), 3);
    last10 += ips[2] == 10;
  }
  assert_true(last10 < 3);
  tproxy_hosts_mark(h, "aa", 10, false, 5000);
  tproxy_hosts_mark(h, "aa", 10, true, 5000);
  assert_int_equal(tproxy_hosts_pick(h, "aa", 5000, ips, 1), 1);
  tproxy_hosts_release(h);
  tproxy_table_destroy(&t);
}

static struct tproxy_table g_table;
static volatile int g_stop;

static void *reader(void *arg) {
  (void)arg;
  unsigned long n = 0;
  while (!g_stop) {
    struct tproxy_hosts *h = tproxy_table_acquire(&g_table);
    uint32_t ips[4];
    size_t k = tproxy_hosts_pick(h, "aa", n, ips, 4);
    for (size_t i = 0; i < k; i++)
      if (ips[i] < 10 || ips[i] > 13)
        return (void *)1;
    tproxy_hosts_release(h);
    n++;
  }
  return NULL;
}

/* Readers on other threads while the table is republished (run under ASan/TSan in CI). */
static void test_concurrent_publish(void **state) {
  (void)state;
  assert_int_equal(tproxy_table_init(&g_table), 0);
  pthread_t th[2];
  g_stop = 0;
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, reader, NULL), 0);
  for (uint32_t i = 0; i < 2000; i++) {
    struct tproxy_host v[] = {H("aa", 10 + i % 4), H("bb", 1)};
    assert_int_equal(tproxy_table_publish(&g_table, v, 2), 0);
  }
  g_stop = 1;
  for (int i = 0; i < 2; i++) {
    void *ret;
    assert_int_equal(pthread_join(th[i], &ret), 0);
    assert_null(ret);
  }
  tproxy_table_destroy(&g_table);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_and_unknown),
      cmocka_unit_test(test_rotation_spreads),
      cmocka_unit_test(test_down_marks),
      cmocka_unit_test(test_concurrent_publish),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
