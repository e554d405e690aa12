#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/resource.h>

#include "tproxy_fdlimit.h"
#include "testutil.h"

/* Everything the plan hands out fits in the limit. */
static void assert_fits(const struct tproxy_fd_plan *p, unsigned workers) {
  uint64_t used = (uint64_t)p->reserve + p->rpc_conns + (uint64_t)p->pipe_pool * 2 * workers +
                  (uint64_t)p->proxy_fit * TPROXY_FDS_PER_CONN;
  assert_true(used <= p->nofile);
  assert_true(p->proxy_conns <= p->proxy_fit);
}

static void test_plan_roomy(void **state) {
  (void)state;
  struct tproxy_fd_plan p;
  /* a big hard limit: everything configured fits */
  assert_int_equal(tproxy_fdlimit_plan(1048576, 2, 1024, 16384, &p), 0);
  assert_int_equal(p.rpc_conns, 1024);
  assert_int_equal(p.proxy_conns, 16384);
  assert_int_equal(p.pipe_pool, TPROXY_PIPE_POOL_MAX);
  assert_true(p.proxy_fit > 16384);
  assert_fits(&p, 2);
  /* no limit at all */
  assert_int_equal(tproxy_fdlimit_plan(UINT64_MAX, 64, 1024, 16384, &p), 0);
  assert_int_equal(p.proxy_conns, 16384);
}

static void test_plan_clamps(void **state) {
  (void)state;
  struct tproxy_fd_plan p;
  /* the numbers: 16384 connections of 6 descriptors do not fit in 20000 */
  assert_int_equal(tproxy_fdlimit_plan(20000, 2, 1024, 16384, &p), 0);
  assert_int_equal(p.rpc_conns, 1024);
  assert_true(p.proxy_conns < 16384 && p.proxy_conns > 2500);
  assert_int_equal(p.proxy_conns, p.proxy_fit);
  assert_fits(&p, 2);
  /* a small limit: the RPC server gets at most a quarter after the reserve, the pool shrinks */
  assert_int_equal(tproxy_fdlimit_plan(256, 2, 1024, 16384, &p), 0);
  assert_int_equal(p.reserve, TPROXY_FD_RESERVE + 2 * TPROXY_FD_PER_WORKER);
  assert_int_equal(p.rpc_conns, (256 - p.reserve) / 4);
  assert_true(p.pipe_pool < 8);
  assert_true(p.proxy_conns >= TPROXY_FD_MIN_CONNS && p.proxy_conns * 6 < 256);
  assert_fits(&p, 2);
  /* workers = 0 counts as one */
  assert_int_equal(tproxy_fdlimit_plan(256, 0, 1, 1, &p), 0);
  assert_int_equal(p.reserve, TPROXY_FD_RESERVE + TPROXY_FD_PER_WORKER);
  assert_int_equal(p.proxy_conns, 1);
  assert_int_equal(p.rpc_conns, 1);
  /* every limit from tiny to roomy: refused, or a plan that fits */
  for (uint64_t n = 0; n < 4096; n += 7) {
    int r = tproxy_fdlimit_plan(n, 4, 1024, 16384, &p);
    if (r < 0) {
      assert_int_equal(r, -EMFILE);
      continue;
    }
    assert_true(p.proxy_conns >= TPROXY_FD_MIN_CONNS);
    assert_true(p.rpc_conns >= TPROXY_FD_MIN_CONNS);
    assert_fits(&p, 4);
  }
}

static void test_plan_refuses(void **state) {
  (void)state;
  struct tproxy_fd_plan p;
  assert_int_equal(tproxy_fdlimit_plan(40, 2, 1024, 16384, &p), -EMFILE);
  assert_int_equal(p.reserve, TPROXY_FD_RESERVE + 2 * TPROXY_FD_PER_WORKER);
  assert_int_equal(tproxy_fdlimit_plan(0, 1, 1, 1, &p), -EMFILE);
  /* 256 workers need more than a 1024 limit holds */
  assert_int_equal(tproxy_fdlimit_plan(1024, 256, 1024, 16384, &p), -EMFILE);
}

static void test_raise(void **state) {
  (void)state;
  struct rlimit rl;
  uint64_t n;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  assert_int_equal(tproxy_fdlimit_raise(&n), 0);
  assert_true(n == rl.rlim_max || rl.rlim_max == RLIM_INFINITY);
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  assert_true(rl.rlim_cur == rl.rlim_max);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plan_roomy),
      cmocka_unit_test(test_plan_clamps),
      cmocka_unit_test(test_plan_refuses),
      cmocka_unit_test(test_raise),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
