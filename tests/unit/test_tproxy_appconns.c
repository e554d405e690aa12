#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tproxy_appconns.h"
#include "tproxy_route.h"
#include "testutil.h"

static void test_limit_per_app(void **state) {
  (void)state;
  struct tproxy_appconns *a;
  assert_int_equal(tproxy_appconns_new(2, &a), 0);
  assert_int_equal(tproxy_appconns_limit(a), 2);
  assert_int_equal(tproxy_appconns_acquire(a, "aa"), 0);
  assert_int_equal(tproxy_appconns_acquire(a, "aa"), 0);
  assert_int_equal(tproxy_appconns_acquire(a, "aa"), -EBUSY);
  /* another app is not affected */
  assert_int_equal(tproxy_appconns_acquire(a, "bb"), 0);
  assert_int_equal(tproxy_appconns_count(a, "aa"), 2);
  assert_int_equal(tproxy_appconns_count(a, "bb"), 1);
  assert_int_equal(tproxy_appconns_count(a, "cc"), 0);
  tproxy_appconns_release(a, "aa");
  assert_int_equal(tproxy_appconns_acquire(a, "aa"), 0);
  /* releasing what was never taken changes nothing */
  tproxy_appconns_release(a, "cc");
  assert_int_equal(tproxy_appconns_count(a, "cc"), 0);
  tproxy_appconns_release(a, "bb");
  assert_int_equal(tproxy_appconns_count(a, "bb"), 0);
  tproxy_appconns_release(a, "bb");
  assert_int_equal(tproxy_appconns_count(a, "bb"), 0);
  tproxy_appconns_free(a);
  tproxy_appconns_free(NULL);
}

static void test_bad_ids_and_zero_limit(void **state) {
  (void)state;
  struct tproxy_appconns *a;
  char longid[TPROXY_APP_ID_MAX + 2];
  memset(longid, 'a', sizeof(longid) - 1);
  longid[sizeof(longid) - 1] = 0;
  assert_int_equal(tproxy_appconns_new(1, &a), 0);
  assert_int_equal(tproxy_appconns_acquire(a, ""), -EINVAL);
  assert_int_equal(tproxy_appconns_acquire(a, NULL), -EINVAL);
  assert_int_equal(tproxy_appconns_acquire(a, longid), -EINVAL);
  longid[TPROXY_APP_ID_MAX] = 0; /* the longest allowed */
  assert_int_equal(tproxy_appconns_acquire(a, longid), 0);
  assert_int_equal(tproxy_appconns_count(a, longid), 1);
  tproxy_appconns_release(a, longid);
  tproxy_appconns_free(a);
  assert_int_equal(tproxy_appconns_new(0, &a), 0);
  assert_int_equal(tproxy_appconns_acquire(a, "aa"), -EBUSY);
  assert_int_equal(tproxy_appconns_count(a, "aa"), 0);
  tproxy_appconns_free(a);
}

/* Worker threads take and give back slots of a few apps at once: the limit always holds and
 * everything is given back in the end. */
#define THREADS 4
#define ROUNDS 20000
static struct tproxy_appconns *g_a;
static _Atomic int g_over;

static void *churn(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  char held[8][8];
  int n = 0;
  for (int i = 0; i < ROUNDS; i++) {
    seed = seed * 1103515245u + 12345u;
    if (n < 8 && (seed >> 16) % 2) {
      char id[8];
      snprintf(id, sizeof(id), "a%u", (seed >> 8) % 3);
      int r = tproxy_appconns_acquire(g_a, id);
      if (r == 0)
        memcpy(held[n++], id, sizeof(id));
      else if (r != -EBUSY)
        g_over = 1;
      if (tproxy_appconns_count(g_a, id) > tproxy_appconns_limit(g_a))
        g_over = 1;
    } else if (n > 0) {
      tproxy_appconns_release(g_a, held[--n]);
    }
  }
  while (n > 0)
    tproxy_appconns_release(g_a, held[--n]);
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  pthread_t th[THREADS];
  assert_int_equal(tproxy_appconns_new(5, &g_a), 0);
  for (uintptr_t i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, churn, (void *)(i + 1)), 0);
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  assert_int_equal(g_over, 0);
  for (int i = 0; i < 3; i++) {
    char id[8];
    snprintf(id, sizeof(id), "a%d", i);
    assert_int_equal(tproxy_appconns_count(g_a, id), 0);
  }
  tproxy_appconns_free(g_a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_limit_per_app),
      cmocka_unit_test(test_bad_ids_and_zero_limit),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
