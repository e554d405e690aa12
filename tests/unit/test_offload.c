/* Worker threads with completions on the loop thread (net/offload.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "net/offload.h"
#include "testutil.h"

struct job {
  int in;
  int sleep_ms;
  pthread_t worker;  /* the thread work ran on */
  pthread_t deliver; /* the thread done ran on */
  int result;
  bool done;
  atomic_int *gate; /* work waits while *gate is 0 (NULL: no gate) */
};

static int work(void *ud) {
  struct job *j = ud;
  j->worker = pthread_self();
  for (int i = 0; j->gate && !atomic_load(j->gate) && i < 5000; i++)
    usleep(1000);
  if (j->sleep_ms)
    usleep((useconds_t)j->sleep_ms * 1000);
  return j->in < 0 ? j->in : j->in * 2;
}

static void done(void *ud, int result) {
  struct job *j = ud;
  j->deliver = pthread_self();
  j->result = result;
  j->done = true;
}

/* Runs the loop until every job is done (bounded). */
static void run_until(struct event_base *b, struct job *jobs, size_t n) {
  for (int i = 0; i < 5000; i++) {
    bool all = true;
    for (size_t k = 0; k < n; k++)
      all = all && jobs[k].done;
    if (all)
      return;
    event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    usleep(1000);
  }
  fail_msg("jobs did not complete");
}

static void test_results_on_loop_thread(void **state) {
  (void)state;
  struct event_base *b = event_base_new();
  struct offload *o = NULL;
  assert_int_equal(offload_new(b, 3, 16, &o), 0);
  struct job jobs[10] = {0};
  for (int i = 0; i < 10; i++) {
    jobs[i].in = i == 7 ? -EIO : i;
    jobs[i].sleep_ms = i % 3;
    assert_int_equal(offload_submit(o, work, done, &jobs[i]), 0);
  }
  assert_int_equal(offload_pending(o), 10);
  run_until(b, jobs, 10);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(jobs[i].result, i == 7 ? -EIO : 2 * i);
    assert_true(pthread_equal(jobs[i].deliver, pthread_self()));
    assert_false(pthread_equal(jobs[i].worker, pthread_self()));
  }
  assert_int_equal(offload_pending(o), 0);
  offload_free(o);
  event_base_free(b);
}

/* A slow job does not hold back the others, nor the loop. */
static void test_loop_not_blocked(void **state) {
  (void)state;
  struct event_base *b = event_base_new();
  struct offload *o = NULL;
  assert_int_equal(offload_new(b, 2, 4, &o), 0);
  atomic_int gate = 0;
  struct job slow = {.in = 1, .gate = &gate}, fast = {.in = 2};
  assert_int_equal(offload_submit(o, work, done, &slow), 0);
  assert_int_equal(offload_submit(o, work, done, &fast), 0);
  run_until(b, &fast, 1);
  assert_false(slow.done);
  atomic_store(&gate, 1);
  run_until(b, &slow, 1);
  assert_int_equal(slow.result, 2);
  offload_free(o);
  event_base_free(b);
}

static void *open_gate_later(void *g) {
  usleep(100000);
  atomic_store((atomic_int *)g, 1);
  return NULL;
}

static void test_limits_and_free(void **state) {
  (void)state;
  struct event_base *b = event_base_new();
  struct offload *o = NULL;
  assert_int_equal(offload_new(b, 0, 4, &o), -EINVAL);
  assert_int_equal(offload_new(b, 65, 4, &o), -EINVAL);
  assert_int_equal(offload_new(b, 1, 0, &o), -EINVAL);
  assert_int_equal(offload_new(NULL, 1, 4, &o), -EINVAL);
  assert_int_equal(offload_new(b, 1, 3, &o), 0);
  atomic_int gate = 0;
  struct job jobs[4] = {{.in = 1, .gate = &gate}, {.in = 2}, {.in = 3}, {.in = 4}};
  for (int i = 0; i < 3; i++)
    assert_int_equal(offload_submit(o, work, done, &jobs[i]), 0);
  assert_int_equal(offload_submit(o, work, done, &jobs[3]), -EAGAIN);
  assert_int_equal(offload_submit(o, NULL, done, &jobs[3]), -EINVAL);
  /* Free with the first job running (held by the gate, opened by another thread) and two
   * queued on the single worker: the running one is waited for and delivered with its result,
   * the queued ones are delivered as cancelled. */
  for (int i = 0; i < 1000 && !jobs[0].worker; i++)
    usleep(1000);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, open_gate_later, &gate), 0);
  offload_free(o);
  pthread_join(t, NULL);
  assert_true(jobs[0].done && jobs[1].done && jobs[2].done);
  assert_false(jobs[3].done);
  assert_int_equal(jobs[0].result, 2);
  assert_int_equal(jobs[1].result, -ECANCELED);
  assert_int_equal(jobs[2].result, -ECANCELED);
  offload_free(NULL);
  event_base_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_results_on_loop_thread),
      cmocka_unit_test(test_loop_not_blocked),
      cmocka_unit_test(test_limits_and_free),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
