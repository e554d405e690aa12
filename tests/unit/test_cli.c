/* The common daemon command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/cli.h"

static int usage_calls;
static FILE *usage_to;

static void usage(FILE *f) {
  usage_calls++;
  usage_to = f;
}

static int parse(const char *const *v, int n, const struct cli_opt *extra, size_t n_extra,
                 struct cli_daemon_args *a) {
  char *argv[16];
  for (int i = 0; i < n; i++)
    argv[i] = (char *)v[i];
  argv[n] = NULL;
  usage_calls = 0;
  usage_to = NULL;
  FILE *saved = stderr;
  stderr = fopen("/dev/null", "w"); /* getopt's and our complaints */
  int r = cli_daemon_args_parse(n, argv, "d", extra, n_extra, usage, a);
  fclose(stderr);
  stderr = saved;
  return r;
}

static void test_common(void **state) {
  (void)state;
  struct cli_daemon_args a;
  const char *v1[] = {"d", "-c", "x.toml", "--dev", "/tmp/d", "--dump-config", "--check-config"};
  assert_int_equal(parse(v1, 7, NULL, 0, &a), 0);
  assert_string_equal(a.config_file, "x.toml");
  assert_string_equal(a.dev_dir, "/tmp/d");
  assert_true(a.dump && a.check);
  const char *v2[] = {"d", "--config=y.toml"};
  assert_int_equal(parse(v2, 2, NULL, 0, &a), 0);
  assert_string_equal(a.config_file, "y.toml");
  assert_null(a.dev_dir);
  assert_false(a.dump || a.check);
  const char *v3[] = {"d", "--help"};
  assert_int_equal(parse(v3, 2, NULL, 0, &a), 1);
  assert_int_equal(usage_calls, 1);
  assert_ptr_equal(usage_to, stdout);
}

static void test_bad(void **state) {
  (void)state;
  struct cli_daemon_args a;
  const char *v1[] = {"d", "--bogus"};
  assert_int_equal(parse(v1, 2, NULL, 0, &a), CLI_EXIT_USAGE);
  assert_int_equal(usage_calls, 1);
  const char *v2[] = {"d", "positional"};
  assert_int_equal(parse(v2, 2, NULL, 0, &a), CLI_EXIT_USAGE);
  assert_int_equal(usage_calls, 0);
  const char *v3[] = {"d", "-c"}; /* missing value */
  assert_int_equal(parse(v3, 2, NULL, 0, &a), CLI_EXIT_USAGE);
  const char *v4[] = {"d", "--source", "u"}; /* another daemon's option */
  assert_int_equal(parse(v4, 3, NULL, 0, &a), CLI_EXIT_USAGE);
}

static void test_extra(void **state) {
  (void)state;
  const char *src = NULL;
  bool ex = false;
  const struct cli_opt extra[] = {{"source", &src, NULL}, {"exit", NULL, &ex}};
  struct cli_daemon_args a;
  const char *v1[] = {"d", "--source", "https://k", "--exit", "-c", "k.toml"};
  assert_int_equal(parse(v1, 6, extra, 2, &a), 0);
  assert_string_equal(src, "https://k");
  assert_true(ex);
  assert_string_equal(a.config_file, "k.toml");
  const char *v2[] = {"d", "--exit=1"}; /* a flag takes no value */
  assert_int_equal(parse(v2, 2, extra, 2, &a), CLI_EXIT_USAGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_common),
      cmocka_unit_test(test_bad),
      cmocka_unit_test(test_extra),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
