#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "tproxy_route.h"
#include "testutil.h"

#define ID40 "3327603e03f5bd1f830812ca4a789277fc31f577"
#define BASE "gw.example.com"

static void expect(const char *sni, const char *app, uint16_t port, enum tproxy_route_mode m) {
  struct tproxy_route r;
  assert_int_equal(tproxy_route_parse(sni, BASE, &r), 0);
  assert_false(r.custom);
  assert_string_equal(r.app_id, app);
  assert_int_equal(r.port, port);
  assert_int_equal(r.mode, m);
}

static void expect_err(const char *sni, int err) {
  struct tproxy_route r;
  assert_int_equal(tproxy_route_parse(sni, BASE, &r), err);
}

static void test_rules(void **state) {
  (void)state;
  expect(ID40 "." BASE, ID40, 80, ROUTE_TERMINATE);
  expect(ID40 "-8080." BASE, ID40, 8080, ROUTE_TERMINATE);
  expect(ID40 "-8443s." BASE, ID40, 8443, ROUTE_PASSTHROUGH);
  expect(ID40 "-50051g." BASE, ID40, 50051, ROUTE_H2);
  expect(ID40 "-s." BASE, ID40, 443, ROUTE_PASSTHROUGH);
  expect(ID40 "-g." BASE, ID40, 80, ROUTE_H2);
  expect("a-1." BASE, "a", 1, ROUTE_TERMINATE);
  expect("abc-65535." BASE, "abc", 65535, ROUTE_TERMINATE);
  /* a DNS label holds 63 chars: the longest app id with a port suffix */
  char id[65];
  memset(id, 'f', 56);
  id[56] = 0;
  char sni[128];
  snprintf(sni, sizeof(sni), "%s-65535s.%s", id, BASE);
  expect(sni, id, 65535, ROUTE_PASSTHROUGH);
  memset(id, '0', 63);
  id[63] = 0;
  snprintf(sni, sizeof(sni), "%s.%s", id, BASE);
  expect(sni, id, 80, ROUTE_TERMINATE);
  snprintf(sni, sizeof(sni), "%sf-65535s.%s", id, BASE);
  expect_err(sni, -EBADMSG);
  assert_string_equal(tproxy_route_mode_name(ROUTE_H2), "h2");
}

static void test_base_forms(void **state) {
  (void)state;
  struct tproxy_route r;
  const char *bases[] = {BASE, "." BASE, BASE ".", "GW.Example.COM"};
  for (size_t i = 0; i < ARRAY_SIZE(bases); i++) {
    assert_int_equal(tproxy_route_parse("ab-81." BASE, bases[i], &r), 0);
    assert_false(r.custom);
    assert_int_equal(r.port, 81);
  }
  assert_int_equal(tproxy_route_parse("ab." BASE, "", &r), -EINVAL);
  assert_int_equal(tproxy_route_parse("ab." BASE, ".", &r), -EINVAL);
  assert_int_equal(tproxy_route_parse("ab." BASE, "a..b", &r), -EINVAL);
  assert_int_equal(tproxy_route_parse("ab." BASE, "a_b.c", &r), -EINVAL);
  assert_int_equal(tproxy_route_parse(NULL, BASE, &r), -EINVAL);
}

static void test_custom(void **state) {
  (void)state;
  struct tproxy_route r;
  const char *names[] = {"example.org", BASE, "x" BASE, "ab.gw.example.com.evil.net",
                         "ab.example.com", "zz-notanid.org"};
  for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
    assert_int_equal(tproxy_route_parse(names[i], BASE, &r), 0);
    assert_true(r.custom);
    assert_string_equal(r.app_id, "");
    assert_int_equal(r.port, 0);
  }
}

static void test_negatives(void **state) {
  (void)state;
  const char *bad[] = {
    "a.b." BASE,         /* two labels */
    "-80." BASE,         /* empty app id */
    "xyz." BASE,         /* not hex */
    "ab-." BASE,         /* empty port */
    "ab-0." BASE,        /* port 0 */
    "ab-080." BASE,      /* leading zero */
    "ab-65536." BASE,    /* > u16 */
    "ab-123456." BASE,   /* too long */
    "ab-80-81." BASE,    /* third part */
    "ab-80gs." BASE, "ab-80sg." BASE, "ab-ss." BASE, "ab-x." BASE, "ab-8x0." BASE,
    "ab--80." BASE,
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    expect_err(bad[i], -EBADMSG);
  /* names failing DNS syntax */
  expect_err("AB." BASE, -EBADMSG);
  expect_err("ab." BASE ".", -EBADMSG);
  expect_err("", -EBADMSG);
  expect_err("a b." BASE, -EBADMSG);
}

static void test_txt(void **state) {
  (void)state;
  struct tproxy_route r;
  const char *v = ID40 ":8043";
  assert_int_equal(tproxy_route_parse_txt(v, strlen(v), &r), 0);
  assert_true(r.custom);
  assert_string_equal(r.app_id, ID40);
  assert_int_equal(r.port, 8043);
  assert_int_equal(r.mode, ROUTE_PASSTHROUGH);
  char t[80];
  memset(t, 'a', 64);
  memcpy(t + 64, ":443", 5);
  assert_int_equal(tproxy_route_parse_txt(t, strlen(t), &r), 0);
  assert_int_equal(strlen(r.app_id), 64);
  memset(t, 'a', 65);
  memcpy(t + 65, ":443", 5);
  assert_int_equal(tproxy_route_parse_txt(t, strlen(t), &r), -EBADMSG);
  assert_int_equal(tproxy_route_parse_txt("ABCdef:1", 8, &r), 0);
  assert_string_equal(r.app_id, "abcdef");
  assert_int_equal(r.port, 1);
  const char *bad[] = {"", ":", "ab", "ab:", ":80", "ab:0", "ab:080", "ab:+80", "ab:-1",
                       "ab:65536", "ab:80:81", "ab: 80", " ab:80", "ab:80 ", "xy:80", "a-b:80",
                       "ab:80\n"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_int_equal(tproxy_route_parse_txt(bad[i], strlen(bad[i]), &r), -EBADMSG);
  assert_int_equal(tproxy_route_parse_txt("ab:8\0" "0", 5, &r), -EBADMSG);
  assert_int_equal(tproxy_route_parse_txt("ab:80", 4, &r), 0); /* length, not NUL, bounds it */
  assert_int_equal(r.port, 8);
  assert_int_equal(tproxy_route_parse_txt(NULL, 0, &r), -EBADMSG);
  assert_int_equal(tproxy_route_parse_txt(NULL, 1, &r), -EINVAL);
}

static void test_txt_name(void **state) {
  (void)state;
  char out[300];
  assert_int_equal(tproxy_route_txt_name("app.example.org", false, out, sizeof(out)), 0);
  assert_string_equal(out, "_dstack-app-address.app.example.org");
  assert_int_equal(tproxy_route_txt_name("app.example.org", true, out, sizeof(out)), 0);
  assert_string_equal(out, "_tapp-address.app.example.org");
  assert_int_equal(tproxy_route_txt_name("app.example.org", false, out, 10), -ENAMETOOLONG);
  char longname[254];
  memset(longname, 'a', 240);
  longname[240] = 0;
  assert_int_equal(tproxy_route_txt_name(longname, false, out, sizeof(out)), -ENAMETOOLONG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rules), cmocka_unit_test(test_base_forms),
    cmocka_unit_test(test_custom), cmocka_unit_test(test_negatives),
    cmocka_unit_test(test_txt), cmocka_unit_test(test_txt_name),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
