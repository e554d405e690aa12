/* src/certbot/certbot_names.c: which names an order may hold, comparing lists, and the names
 * a renewal takes from the certificate in place. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/str.h"
#include "certbot_names.h"

static void test_valid(void **state) {
  (void)state;
  static const char *const good[] = {"example.test", "*.example.test", "a-b.c0.example.test",
                                     "EXAMPLE.Test", "x.y"};
  for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
    assert_true(certbot_name_valid(good[i]));
  char long_label[80], long_name[300];
  memset(long_label, 'a', 64);
  strcpy(long_label + 64, ".test");
  for (size_t i = 0; i < 250; i += 2)
    memcpy(long_name + i, "a.", 2);
  strcpy(long_name + 250, "test");
  static const char *const bad[] = {"",           "test",          "*.test",      "*",
                                    "a..test",    ".example.test", "example.test.", "-a.test",
                                    "a-.test",    "a_b.test",      "a.*.test",    "**.a.test",
                                    "*a.test",    "a b.test",      "a.test\n",    "*.*.a.test"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    assert_false(certbot_name_valid(bad[i]));
  assert_false(certbot_name_valid(long_label));
  assert_false(certbot_name_valid(long_name));
  assert_false(certbot_name_valid(NULL));
}

static void test_same(void **state) {
  (void)state;
  char *a[] = {"*.example.test", "example.test", NULL};
  char *b[] = {"EXAMPLE.test", "*.example.test", NULL};
  char *c[] = {"*.example.test", NULL};
  char *d[] = {"*.example.test", "example.test", "www.example.test", NULL};
  char *e[] = {"example.test", "example.test", "*.example.test", NULL};
  assert_true(certbot_names_same(a, b));
  assert_true(certbot_names_same(a, e));
  assert_false(certbot_names_same(a, c));
  assert_false(certbot_names_same(c, a));
  assert_false(certbot_names_same(a, d));
  assert_false(certbot_names_same(d, a));
}

static void test_from_sans(void **state) {
  (void)state;
  char **l = NULL;
  char *sans[] = {"*.Example.test", "example.test", "*.example.TEST", "www.example.test"};
  assert_int_equal(certbot_names_from_sans(sans, 4, &l), 0);
  assert_int_equal(strv_length(l), 3);
  assert_string_equal(l[0], "*.example.test");
  assert_string_equal(l[1], "example.test");
  assert_string_equal(l[2], "www.example.test");
  strv_free(l);

  assert_int_equal(certbot_names_from_sans(sans, 0, &l), -ENOENT);
  assert_null(l);
  char *bad[] = {"example.test", "bad_name.example.test"};
  assert_int_equal(certbot_names_from_sans(bad, 2, &l), -EBADMSG);
  assert_null(l);
  char *ip[] = {"127.0.0.1"}; /* digits are valid labels: a name, not refused here */
  assert_int_equal(certbot_names_from_sans(ip, 1, &l), 0);
  strv_free(l);

  /* CERTBOT_NAMES_MAX distinct names pass; one more does not; duplicates do not count */
  char *many[CERTBOT_NAMES_MAX + 2];
  char buf[CERTBOT_NAMES_MAX + 2][32];
  for (size_t i = 0; i < CERTBOT_NAMES_MAX + 1; i++) {
    snprintf(buf[i], sizeof(buf[i]), "n%zu.example.test", i);
    many[i] = buf[i];
  }
  many[CERTBOT_NAMES_MAX + 1] = buf[0];
  assert_int_equal(certbot_names_from_sans(many, CERTBOT_NAMES_MAX, &l), 0);
  assert_int_equal(strv_length(l), CERTBOT_NAMES_MAX);
  strv_free(l);
  many[CERTBOT_NAMES_MAX] = buf[0];
  assert_int_equal(certbot_names_from_sans(many, CERTBOT_NAMES_MAX + 1, &l), 0);
  strv_free(l);
  many[CERTBOT_NAMES_MAX] = buf[CERTBOT_NAMES_MAX];
  assert_int_equal(certbot_names_from_sans(many, CERTBOT_NAMES_MAX + 1, &l), -E2BIG);
  assert_null(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_same),
      cmocka_unit_test(test_from_sans),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
