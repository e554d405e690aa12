/* lib/daemon/daemon.c: the start-up every daemon shares, with a toy configuration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/str.h"
#include "daemon/daemon.h"
#include "testutil.h"

struct toy_config {
  char *name;
  char *dev_dir;
  char *log_level;
  bool bad;       /* the check fails */
  bool allocated; /* init ran and free did not */
};

static int g_frees;

static int toy_init(struct toy_config *c) {
  memset(c, 0, sizeof(*c));
  c->name = strdup("default");
  c->log_level = strdup("");
  c->allocated = true;
  return c->name && c->log_level ? 0 : -ENOMEM;
}

static int toy_init_dev(struct toy_config *c, const char *dir, char *err, size_t errlen) {
  int r = toy_init(c);
  if (r < 0)
    return r;
  if (dir[0] != '/')
    return str_err(err, errlen, -EINVAL, "dev dir %s is not absolute", dir);
  c->dev_dir = strdup(dir);
  return 0;
}

/* The "file" is the value itself: "bad" makes the check fail, "broken" fails to load. */
static int toy_apply_file(struct toy_config *c, const char *path, char *err, size_t errlen) {
  if (str_eq(path, "broken"))
    return str_err(err, errlen, -EINVAL, "broken: line 1: not TOML");
  if (str_eq(path, "bad"))
    c->bad = true;
  free(c->name);
  c->name = strdup(path);
  return 0;
}

static int toy_check(struct toy_config *c, char *err, size_t errlen) {
  return c->bad ? str_err(err, errlen, -EINVAL, "name must not be bad") : 0;
}

static int toy_dump(const struct toy_config *c, struct buf *out) {
  return buf_printf(out, "name = \"%s\"\n", c->name);
}

static void toy_free(struct toy_config *c) {
  free(c->name);
  free(c->dev_dir);
  free(c->log_level);
  c->allocated = false;
  g_frees++;
}

DAEMON_CONFIG_OPS(toy_ops, struct toy_config, toy_init, toy_init_dev, toy_apply_file, toy_check,
                  toy_dump, toy_free, log_level);

static void toy_usage(FILE *f) {
  fprintf(f, "Usage: toy [options]\n");
}

static const char *g_extra_value;
static bool g_extra_flag;

static int run(char *out, size_t outlen, struct toy_config *c, struct daemon_args *a,
               char **argv) {
  int argc = 0;
  while (argv[argc])
    argc++;
  const struct cli_opt extra[] = {{"source", &g_extra_value, NULL},
                                  {"exit", NULL, &g_extra_flag}};
  const struct daemon_def def = {.ident = "toy", .usage = toy_usage, .extra = extra,
                                 .n_extra = 2, .config = &toy_ops};
  /* stdout and stderr of the start-up go to a file we read back */
  fflush(stdout);
  fflush(stderr);
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  int so = dup(1), se = dup(2);
  dup2(fileno(tmp), 1);
  dup2(fileno(tmp), 2);
  int r = daemon_start(&def, argc, argv, c, a);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  rewind(tmp);
  size_t n = fread(out, 1, outlen - 1, tmp);
  out[n] = 0;
  fclose(tmp);
  return r;
}

static void test_defaults_and_file(void **state) {
  (void)state;
  char out[4096];
  struct toy_config c;
  struct daemon_args a;
  char *argv1[] = {"toy", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, argv1), DAEMON_CONTINUE);
  assert_string_equal(c.name, "default");
  assert_null(a.config_file);
  assert_null(a.dev_dir);
  toy_free(&c);
  daemon_args_free(&a);

  char *argv2[] = {"toy", "-c", "custom", "--check-config", "--source", "x", "--exit", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, argv2), DAEMON_CONTINUE);
  assert_string_equal(c.name, "custom");
  assert_string_equal(a.config_file, "custom");
  assert_true(a.check);
  assert_string_equal(g_extra_value, "x");
  assert_true(g_extra_flag);
  /* the process's files are private from here on */
  mode_t m = umask(0);
  umask(m);
  assert_int_equal(m, 077);
  toy_free(&c);
  daemon_args_free(&a);
}

static void test_exit_statuses(void **state) {
  (void)state;
  char out[4096];
  struct toy_config c = {0};
  struct daemon_args a;
  char *help[] = {"toy", "--help", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, help), 0);
  assert_non_null(strstr(out, "Usage: toy"));
  char *bad_opt[] = {"toy", "--nope", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, bad_opt), CLI_EXIT_USAGE);
  char *stray[] = {"toy", "stray", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, stray), CLI_EXIT_USAGE);
  assert_non_null(strstr(out, "unexpected argument 'stray'"));

  /* a file that does not load: its message once, the config freed */
  int frees = g_frees;
  char *broken[] = {"toy", "-c", "broken", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, broken), CLI_EXIT_CONFIG);
  assert_non_null(strstr(out, "toy: config: broken: line 1: not TOML"));
  assert_int_equal(g_frees, frees + 1);
  assert_false(c.allocated);
  assert_null(a.dev_dir);
}

/* A configuration that fails its check with no -c and no --dev says what to pass. */
static void test_check_hint(void **state) {
  (void)state;
  char out[4096];
  struct toy_config c;
  struct daemon_args a;
  char *bad[] = {"toy", "-c", "bad", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, bad), CLI_EXIT_CONFIG);
  assert_non_null(strstr(out, "toy: config: name must not be bad"));
  assert_null(strstr(out, "no configuration was given"));
  assert_false(c.allocated);

  struct daemon_args none = {0};
  fflush(stderr);
  FILE *tmp = tmpfile();
  int se = dup(2);
  dup2(fileno(tmp), 2);
  daemon_config_hint("toy", &none);
  fflush(stderr);
  dup2(se, 2);
  close(se);
  rewind(tmp);
  size_t n = fread(out, 1, sizeof(out) - 1, tmp);
  out[n] = 0;
  fclose(tmp);
  assert_non_null(strstr(out, "pass -c FILE, or --dev DIR"));
}

static void test_dump(void **state) {
  (void)state;
  char out[4096];
  struct toy_config c;
  struct daemon_args a;
  int frees = g_frees;
  char *dump[] = {"toy", "-c", "dumped", "--dump-config", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, dump), 0);
  assert_string_equal(out, "name = \"dumped\"\n");
  assert_int_equal(g_frees, frees + 1);
  assert_null(a.dev_dir);
}

/* --dev DIR is created 0700 and handed to the daemon as an absolute path. */
static void test_dev_dir(void **state) {
  (void)state;
  char out[4096];
  _cleanup_free_ char *tmp = tu_mkdtemp();
  _cleanup_free_ char *cwd = getcwd(NULL, 0);
  assert_int_equal(chdir(tmp), 0);
  struct toy_config c;
  struct daemon_args a;
  char *dev[] = {"toy", "--dev", "d", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, dev), DAEMON_CONTINUE);
  assert_non_null(a.dev_dir);
  assert_int_equal(a.dev_dir[0], '/');
  assert_string_equal(c.dev_dir, a.dev_dir);
  struct stat st;
  assert_int_equal(stat(a.dev_dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  toy_free(&c);
  daemon_args_free(&a);
  assert_null(a.dev_dir);
  /* a --dev path that cannot be made */
  char *nodev[] = {"toy", "--dev", "missing/parent/d", NULL};
  assert_int_equal(run(out, sizeof(out), &c, &a, nodev), CLI_EXIT_CONFIG);
  assert_non_null(strstr(out, "creating missing/parent/d"));
  assert_int_equal(chdir(cwd), 0);
  tu_rm_rf(tmp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_and_file), cmocka_unit_test(test_exit_statuses),
      cmocka_unit_test(test_check_hint),        cmocka_unit_test(test_dump),
      cmocka_unit_test(test_dev_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
