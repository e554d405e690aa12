/* ct_monitor's state file: round trip, absent file, another domain or crt.sh, malformed files,
 * and the atomic write (no temporary left behind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/str.h"
#include "ct_monitor_state.h"
#include "testutil.h"

#define D "app.example.com"
#define U "https://crt.sh"

static void test_round_trip(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char *p = str_printf("%s/ct.state", dir);
  struct ct_state s = {.last_checked = 7}, got;
  char why[512];
  /* absent: empty state */
  assert_int_equal(ct_state_load(p, D, U, &got, why, sizeof(why)), 0);
  assert_true(got.last_checked == 0 && !got.quotes_seen);
  assert_int_equal(ct_state_save(p, D, U, &s), 0);
  assert_int_equal(ct_state_load(p, D, U, &got, why, sizeof(why)), 0);
  assert_true(got.last_checked == 7 && !got.quotes_seen);
  s.last_checked = 15187453042LL;
  s.quotes_seen = true;
  assert_int_equal(ct_state_save(p, D, U, &s), 0);
  assert_int_equal(ct_state_load(p, D, U, &got, why, sizeof(why)), 0);
  assert_true(got.last_checked == 15187453042LL && got.quotes_seen);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  /* another domain, another crt.sh: not used, and said why */
  assert_int_equal(ct_state_load(p, "other.example.com", U, &got, why, sizeof(why)), 1);
  assert_true(got.last_checked == 0 && !got.quotes_seen);
  assert_non_null(strstr(why, "other.example.com"));
  assert_int_equal(ct_state_load(p, D, "https://crt.example", &got, why, sizeof(why)), 1);
  assert_true(got.last_checked == 0);
  /* quotes_seen may be absent (older files) */
  const char old[] = "{\"domain\":\"" D "\",\"crtsh_url\":\"" U "\",\"last_checked\":3}";
  assert_int_equal(file_write_atomic(p, old, strlen(old), 0600), 0);
  assert_int_equal(ct_state_load(p, D, U, &got, why, sizeof(why)), 0);
  assert_true(got.last_checked == 3 && !got.quotes_seen);
  free(p);
  tu_rm_rf(dir);
  free(dir);
}

static void test_malformed(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char *p = str_printf("%s/ct.state", dir);
  const char *bad[] = {
      "",
      "garbage",
      "[]",
      "{}",
      "{\"domain\":\"" D "\",\"crtsh_url\":\"" U "\"}",
      "{\"domain\":\"" D "\",\"crtsh_url\":\"" U "\",\"last_checked\":\"3\"}",
      "{\"domain\":\"" D "\",\"crtsh_url\":\"" U "\",\"last_checked\":-1}",
      "{\"domain\":\"" D "\",\"crtsh_url\":\"" U "\",\"last_checked\":1.5}",
      "{\"domain\":\"" D "\",\"crtsh_url\":\"" U "\",\"last_checked\":1,\"quotes_seen\":1}",
      "{\"domain\":5,\"crtsh_url\":\"" U "\",\"last_checked\":1}",
      "{\"domain\":\"" D "\",\"crtsh_url\":\"" U "\",\"last_checked\":1}trailing",
  };
  char why[512];
  struct ct_state got;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(file_write_atomic(p, bad[i], strlen(bad[i]), 0600), 0);
    int r = ct_state_load(p, D, U, &got, why, sizeof(why));
    if (r != -EBADMSG)
      fail_msg("'%s': %d", bad[i], r);
    assert_non_null(strstr(why, "not a ct_monitor state file"));
  }
  /* too big */
  char *big = malloc(CT_STATE_MAX + 2);
  memset(big, ' ', CT_STATE_MAX + 1);
  assert_int_equal(file_write_atomic(p, big, CT_STATE_MAX + 1, 0600), 0);
  assert_true(ct_state_load(p, D, U, &got, why, sizeof(why)) < 0);
  free(big);
  /* a directory in its place: cannot be read, nor written */
  unlink(p);
  assert_int_equal(mkdir(p, 0700), 0);
  assert_true(ct_state_load(p, D, U, &got, why, sizeof(why)) < 0);
  struct ct_state s = {.last_checked = 1};
  assert_true(ct_state_save(p, D, U, &s) < 0);
  free(p);
  tu_rm_rf(dir);
  free(dir);
}

static void test_atomic(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char *p = str_printf("%s/ct.state", dir);
  struct ct_state s = {.last_checked = 1};
  for (int i = 0; i < 20; i++) {
    s.last_checked = i + 1;
    assert_int_equal(ct_state_save(p, D, U, &s), 0);
  }
  /* nothing but the file in the directory */
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *de; (de = readdir(d));)
    n += de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."));
  closedir(d);
  assert_int_equal(n, 1);
  struct ct_state got;
  char why[256];
  assert_int_equal(ct_state_load(p, D, U, &got, why, sizeof(why)), 0);
  assert_true(got.last_checked == 20);
  free(p);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_atomic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
