/* ct_monitor's domain rule (upstream's regex plus DNS lengths) and name matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ct_monitor_domain.h"

static void test_valid(void **state) {
  (void)state;
  const char *ok[] = {"example.com", "app.example.com", "a.bc", "A-1.Example.COM",
                      "xn--bcher-kva.example", "0.example.org", "a-b-c.d-e.io",
                      /* 63-character labels */
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    assert_true(ct_domain_valid(ok[i]));
}

static void test_invalid(void **state) {
  (void)state;
  const char *bad[] = {"", "com", ".com", "example.", "example.com.", "a..com", "-a.com",
                       "a-.com", "a_b.com", "example.c", "example.c0m", "example.co-m",
                       "*.example.com", "exa mple.com", "example.com/", "a.b.c.1",
                       "example..com", "ex\xc3\xa4mple.com",
                       /* a 64-character label */
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_false(ct_domain_valid(bad[i]));
  assert_false(ct_domain_valid(NULL));
  /* DNS's 253 characters: 3 labels of 63, one of 57, "com" = 253 fits, one more does not */
  char big[300];
  size_t n = 0;
  for (int l = 0; l < 4; l++) {
    size_t len = l < 3 ? 63 : 57;
    memset(big + n, 'a', len);
    n += len;
    big[n++] = '.';
  }
  memcpy(big + n, "com", 4);
  assert_int_equal(strlen(big), 253);
  assert_true(ct_domain_valid(big));
  memmove(big + 1, big, strlen(big) + 1);
  assert_int_equal(strlen(big), 254);
  assert_false(ct_domain_valid(big));
  /* a top-level label of 64 letters */
  memcpy(big, "a.", 2);
  big[66] = '\0';
  memset(big + 2, 'b', 64);
  assert_false(ct_domain_valid(big));
  big[65] = '\0';
  assert_true(ct_domain_valid(big));
}

static void test_names(void **state) {
  (void)state;
  const char *d = "app.example.com";
#define IN(s) ct_name_in_domain((s), strlen(s), d)
  assert_true(IN("app.example.com"));
  assert_true(IN("*.app.example.com"));
  assert_true(IN("x.y.app.example.com"));
  assert_true(IN("APP.Example.COM"));
  assert_true(IN("app.example.com."));
  assert_false(IN("example.com"));
  assert_false(IN("myapp.example.com"));
  assert_false(IN("app.example.com.evil.net"));
  assert_false(IN("*.example.com"));
  assert_false(IN(""));
  assert_false(IN("*."));
  assert_true(ct_names_in_domain("other.org\nx.app.example.com", d));
  assert_true(ct_names_in_domain("x.app.example.com\r\n", d));
  assert_false(ct_names_in_domain("other.org\nexample.com\n", d));
  assert_false(ct_names_in_domain("", d));
  assert_false(ct_names_in_domain(NULL, d));
  /* a NUL inside the compared length never matches */
  assert_false(ct_name_in_domain("a\0.app.example.com", 18, d));
#undef IN
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
