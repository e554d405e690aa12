/* The RA-TLS verifier's collateral prefetch (ratls_verify.h) with a real Intel quote and
 * tests/it/pccs_server.py: off the loop, one fetch per platform, failures remembered from the end
 * of the fetch, cancelled waiters, forged quotes never fetched for, the verifier gone first. The
 * event-log identity rules are in test_boot_events.c, the whole peer check in test_kms_verify.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collateral/dcap_fetch.h"
#include "attest/quote.h"
#include "base/buf.h"
#include "net/offload.h"
#include "pccs_stub.h"
#include "ratls/ratls_verify.h"
#include "testutil.h"

#define QVL_TDX_TIME ((int64_t)1752919234)

struct fx {
  char *cache_dir;
  struct event_base *base;
  struct offload *pool;
  struct ratls_verifier *v;
  struct buf quote;
  int calls;
  int ticks; /* a 20 ms timer on the loop, to see it run while a fetch is under way */
  struct event *tick;
};

static void tick_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  ((struct fx *)arg)->ticks++;
}

static void new_verifier(struct fx *f) {
  ratls_verifier_free(f->v);
  tu_rm_rf(f->cache_dir);
  free(f->cache_dir);
  f->cache_dir = tu_mkdtemp(); /* a cache of its own: nothing from an earlier case */
  struct ratls_verifier_opts o = {
      .pccs_url = pccs_stub_base("dcap-qvl-tdx"),
      .cache_dir = f->cache_dir,
      .no_blocking_fetch = true,
  };
  char err[256];
  assert_int_equal(ratls_verifier_new(&o, &f->v, err, sizeof(err)), 0);
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  pccs_stub_start();
  f->base = event_base_new();
  assert_int_equal(offload_new(f->base, 2, 8, &f->pool), 0);
  buf_init(&f->quote, BUF_MAX_QUOTE);
  tu_read_vector("dcap-qvl/tdx_quote", false, &f->quote);
  new_verifier(f);
  f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, f);
  struct timeval tv = {0, 20000};
  event_add(f->tick, &tv);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  event_free(f->tick);
  offload_free(f->pool);
  ratls_verifier_free(f->v);
  event_base_free(f->base);
  buf_free(&f->quote);
  tu_rm_rf(f->cache_dir);
  free(f->cache_dir);
  pccs_stub_stop();
  dcap_fetch_caches_free();
  free(f);
  return 0;
}

static void on_fetched(void *ud) {
  ((struct fx *)ud)->calls++;
}

/* Runs the loop until calls reaches want and no fetch runs (bounded: 10 s). */
static void run_until(struct fx *f, int want) {
  for (int i = 0; i < 1000; i++) {
    if (f->calls >= want && ratls_verifier_fetches(f->v) == 0)
      return;
    event_base_loop(f->base, EVLOOP_ONCE);
  }
  fail_msg("the prefetch did not finish (%d of %d callbacks)", f->calls, want);
}

static int prefetch(struct fx *f, int64_t now, struct ratls_prefetch **w) {
  return ratls_verifier_prefetch_quote(f->v, f->pool, f->quote.data, f->quote.len, now,
                                       on_fetched, f, w);
}

static void test_fetch_off_loop_once(void **state) {
  struct fx *f = *state;
  pccs_stub_control("/__delay?ms=400");
  int before = pccs_stub_requests();
  struct ratls_prefetch *w1 = NULL, *w2 = NULL;
  assert_int_equal(prefetch(f, QVL_TDX_TIME, &w1), 1);
  assert_int_equal(prefetch(f, QVL_TDX_TIME, &w2), 1); /* waits for the same fetch */
  assert_int_equal(ratls_verifier_fetches(f->v), 1);
  f->ticks = 0;
  run_until(f, 2);
  assert_true(f->ticks >= 10); /* the loop ran on while the 4 requests took 1.6 s */
  assert_int_equal(pccs_stub_requests() - before, 4);
  /* Now current: nothing to wait for, nothing fetched. */
  struct ratls_prefetch *w3 = NULL;
  assert_int_equal(prefetch(f, QVL_TDX_TIME, &w3), 0);
  assert_int_equal(pccs_stub_requests() - before, 4);
  pccs_stub_control("/__delay?ms=0");
}

/* A failure is remembered for 30 s from the end of the fetch that failed. */
static void test_failure_remembered(void **state) {
  struct fx *f = *state;
  new_verifier(f);
  pccs_stub_control("/__fail?on=1");
  pccs_stub_control("/__delay?ms=1100"); /* each of the requests: the fetch takes > 1 s */
  struct ratls_prefetch *w = NULL;
  int before = pccs_stub_requests();
  assert_int_equal(prefetch(f, QVL_TDX_TIME, &w), 1);
  run_until(f, 1);
  pccs_stub_control("/__delay?ms=0");
  int after = pccs_stub_requests();
  assert_true(after > before);
  /* 30 s after the start but not after the end: still refused from memory */
  assert_int_equal(prefetch(f, QVL_TDX_TIME + 30, &w), 0);
  assert_int_equal(pccs_stub_requests(), after);
  /* later: fetched again */
  pccs_stub_control("/__fail?on=0");
  assert_int_equal(prefetch(f, QVL_TDX_TIME + 33, &w), 1);
  run_until(f, 2);
  assert_true(pccs_stub_requests() > after);
}

/* A waiter that goes away is never called; the fetch still fills the cache. */
static void test_cancel(void **state) {
  struct fx *f = *state;
  new_verifier(f);
  f->calls = 0;
  struct ratls_prefetch *w = NULL, *w2 = NULL;
  assert_int_equal(prefetch(f, QVL_TDX_TIME, &w), 1);
  assert_int_equal(prefetch(f, QVL_TDX_TIME, &w2), 1);
  ratls_prefetch_cancel(w);
  run_until(f, 1);
  assert_int_equal(f->calls, 1);
  assert_int_equal(prefetch(f, QVL_TDX_TIME, &w), 0);
}

/* Quotes that no real platform's QE signed make no fetch at all. */
static void test_forged_not_fetched(void **state) {
  struct fx *f = *state;
  new_verifier(f);
  int before = pccs_stub_requests();
  struct quote q;
  assert_int_equal(quote_parse(f->quote.data, f->quote.len, &q), 0);
  size_t offs[] = {
      (size_t)(q.pck_chain_pem.ptr - f->quote.data) + 200, /* the PCK leaf (its FMSPC, say) */
      /* the QE report */
      (size_t)(q.qe_auth_data.ptr - f->quote.data) - 2 - 64 - QUOTE_QE_REPORT_SIZE + 10,
      q.signed_len + 4 + 5,                                 /* the quote signature */
      200,                                                  /* the TD report (RTMRs) */
  };
  for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
    struct buf b = BUF_INIT(BUF_MAX_QUOTE);
    assert_int_equal(buf_append(&b, f->quote.data, f->quote.len), 0);
    b.data[offs[i]] ^= i == 0 ? 0x01 : 0x40;
    if (i == 0 && !((b.data[offs[i]] >= 'A' && b.data[offs[i]] <= 'Z') ||
                    (b.data[offs[i]] >= 'a' && b.data[offs[i]] <= 'z')))
      b.data[offs[i]] = 'Q';
    struct ratls_prefetch *w = NULL;
    if (ratls_verifier_prefetch_quote(f->v, f->pool, b.data, b.len, QVL_TDX_TIME, on_fetched,
                                      f, &w) != 0)
      fail_msg("a change at byte %zu still made a fetch", offs[i]);
    buf_free(&b);
  }
  assert_int_equal(ratls_verifier_fetches(f->v), 0);
  assert_int_equal(pccs_stub_requests(), before);
  /* bad arguments */
  struct ratls_prefetch *w = NULL;
  assert_int_equal(ratls_verifier_prefetch_quote(NULL, f->pool, f->quote.data, f->quote.len, 0,
                                                 on_fetched, f, &w),
                   -EINVAL);
  assert_int_equal(ratls_verifier_prefetch(f->v, f->pool, NULL, 0, on_fetched, f, &w), 0);
}

/* The verifier freed while its fetch runs: the fetch ends without it, waiters are told. */
static void test_verifier_gone(void **state) {
  struct fx *f = *state;
  new_verifier(f);
  pccs_stub_control("/__delay?ms=200");
  f->calls = 0;
  struct ratls_prefetch *w = NULL;
  assert_int_equal(prefetch(f, QVL_TDX_TIME, &w), 1);
  ratls_verifier_free(f->v);
  f->v = NULL;
  offload_free(f->pool); /* waits for the fetch, delivers it */
  assert_int_equal(f->calls, 1);
  assert_int_equal(offload_new(f->base, 2, 8, &f->pool), 0);
  pccs_stub_control("/__delay?ms=0");
  new_verifier(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fetch_off_loop_once), cmocka_unit_test(test_failure_remembered),
      cmocka_unit_test(test_cancel),              cmocka_unit_test(test_forged_not_fetched),
      cmocka_unit_test(test_verifier_gone),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
