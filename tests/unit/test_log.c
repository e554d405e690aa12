#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "testutil.h"

/* Runs fn with stderr redirected to a temp file; returns what it wrote. */
static char *capture_stderr(void (*fn)(void)) {
  char path[] = "/tmp/dstack-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  _cleanup_buf_ struct buf b = BUF_INIT(65536);
  tu_read_file(path, &b);
  unlink(path);
  close(fd);
  assert_int_equal(buf_terminate(&b), 0);
  return (char *)buf_steal(&b, NULL);
}

static void emit(void) {
  log_info("hello %d", 1);
  log_debug("hidden");
  assert_int_equal(log_errno(-ENOENT, "opening %s", "x"), -ENOENT);
  log_warn("line\nforged");
}

static void test_log_levels(void **state) {
  (void)state;
  log_level_set(LOG_LVL_INFO);
  char *out = capture_stderr(emit);
  assert_non_null(strstr(out, "info: hello 1\n"));
  assert_null(strstr(out, "hidden"));
  assert_non_null(strstr(out, "error: opening x: No such file or directory\n"));
  assert_non_null(strstr(out, "warn: line?forged\n"));
  free(out);
}

static void test_log_env(void **state) {
  (void)state;
  enum log_level l;
  setenv("DSTACK_LOG", "debug", 1);
  assert_int_equal(log_level_from_env(), 0);
  assert_int_equal(log_level_get(), LOG_LVL_DEBUG);
  setenv("DSTACK_LOG", "bogus", 1);
  assert_int_equal(log_level_from_env(), -EINVAL);
  assert_int_equal(log_level_get(), LOG_LVL_DEBUG);
  assert_int_equal(log_level_from_name("WARNING", &l), 0);
  assert_int_equal(l, LOG_LVL_WARN);
  assert_int_equal(log_level_from_name(NULL, &l), -EINVAL);
  unsetenv("DSTACK_LOG");
  log_level_set(LOG_LVL_INFO);
}

static void test_log_ratelimit(void **state) {
  (void)state;
  struct log_ratelimit rl = {0};
  uint64_t n = 99;
  assert_true(log_ratelimit_ok(&rl, 200, &n));
  assert_int_equal(n, 0);
  for (int i = 0; i < 1000; i++)
    assert_false(log_ratelimit_ok(&rl, 200, &n));
  usleep(250 * 1000);
  assert_true(log_ratelimit_ok(&rl, 200, &n));
  assert_int_equal(n, 1000);
  assert_false(log_ratelimit_ok(&rl, 200, &n));
}

static struct log_ratelimit emit_rl;

static void emit_flood(void) {
  for (int i = 0; i < 500; i++)
    log_warn_errno_ratelimited(&emit_rl, -EMFILE, "accepting %d", i);
}

static void test_log_ratelimited_lines(void **state) {
  (void)state;
  log_level_set(LOG_LVL_INFO);
  char *out = capture_stderr(emit_flood);
  /* one line for 500 calls */
  assert_non_null(strstr(out, "warn: accepting 0: Too many open files\n"));
  assert_null(strstr(out, "accepting 1"));
  free(out);
  /* the next one to go out tells how many were held back */
  atomic_store(&emit_rl.next_ms, 0);
  out = capture_stderr(emit_flood);
  assert_non_null(strstr(out, "warn: accepting 0: Too many open files (499 more since the last "
                              "report)\n"));
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_log_levels),
      cmocka_unit_test(test_log_env),
      cmocka_unit_test(test_log_ratelimit),
      cmocka_unit_test(test_log_ratelimited_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
