#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "tproxy_addrpool.h"
#include "testutil.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static void test_ipv4_parse(void **state) {
  (void)state;
  uint32_t ip;
  char s[IPV4_STR_MAX];
  assert_int_equal(ipv4_parse("10.0.0.1", &ip), 0);
  assert_int_equal(ip, IP(10, 0, 0, 1));
  assert_int_equal(ipv4_parse("255.255.255.255", &ip), 0);
  assert_int_equal(ip, 0xffffffffu);
  assert_int_equal(ipv4_parse("0.0.0.0", &ip), 0);
  assert_int_equal(ip, 0);
  assert_string_equal(ipv4_format(IP(192, 168, 100, 254), s), "192.168.100.254");
  static const char *const bad[] = {"", "10", "10.0.0", "10.0.0.1.", "10.0.0.1.2", "256.0.0.1",
                                    "010.0.0.1", "10.0.0.01", " 10.0.0.1", "10.0.0.1 ",
                                    "10..0.1", "-1.0.0.1", "+1.0.0.1", "0x0a.0.0.1", "1.2.3.4/24",
                                    "99999999999.0.0.1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(ipv4_parse(bad[i], &ip), -EINVAL);
  assert_int_equal(ipv4_parse(NULL, &ip), -EINVAL);
}

static void test_cidr_parse(void **state) {
  (void)state;
  uint32_t ip;
  unsigned n;
  assert_int_equal(ipv4_cidr_parse("10.0.0.0/24", &ip, &n), 0);
  assert_int_equal(ip, IP(10, 0, 0, 0));
  assert_int_equal(n, 24);
  assert_int_equal(ipv4_cidr_parse("0.0.0.0/0", &ip, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(ipv4_cidr_parse("1.2.3.4/32", &ip, &n), 0);
  static const char *const bad[] = {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/024",
                                    "10.0.0.0/24x", "10.0.0.0/-1", "10.0.0.0 /24", "10.0.0/24",
                                    "10.0.0.0/2 4", "/24"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(ipv4_cidr_parse(bad[i], &ip, &n), -EINVAL);
}

static void test_pool_init(void **state) {
  (void)state;
  struct addrpool p;
  /* upstream default: client_ip_range 10.0.0.0/24, wg.ip 10.0.0.1 */
  assert_int_equal(addrpool_init(&p, "10.0.0.0/24", "10.0.0.1"), 0);
  assert_int_equal(p.first, IP(10, 0, 0, 1));
  assert_int_equal(p.last, IP(10, 0, 0, 254));
  assert_int_equal(addrpool_size(&p), 253);
  assert_false(addrpool_contains(&p, IP(10, 0, 0, 0)));
  assert_false(addrpool_contains(&p, IP(10, 0, 0, 1)));
  assert_true(addrpool_contains(&p, IP(10, 0, 0, 2)));
  assert_true(addrpool_contains(&p, IP(10, 0, 0, 254)));
  assert_false(addrpool_contains(&p, IP(10, 0, 0, 255)));
  assert_false(addrpool_contains(&p, IP(10, 0, 1, 2)));
  /* host bits in the range are accepted and cleared */
  assert_int_equal(addrpool_init(&p, "10.0.0.77/24", NULL), 0);
  assert_int_equal(p.network, IP(10, 0, 0, 0));
  assert_int_equal(addrpool_size(&p), 254);
  /* a server address outside the range excludes nothing */
  assert_int_equal(addrpool_init(&p, "10.0.0.0/30", "192.168.0.1"), 0);
  assert_int_equal(addrpool_size(&p), 2);
  assert_int_equal(addrpool_init(&p, "0.0.0.0/0", NULL), 0);
  assert_int_equal(addrpool_size(&p), 0xfffffffeu);
  assert_int_equal(addrpool_init(&p, "10.0.0.0/31", NULL), -EINVAL);
  assert_int_equal(addrpool_init(&p, "10.0.0.0/32", NULL), -EINVAL);
  assert_int_equal(addrpool_init(&p, "10.0.0.0/24", "10.0.0"), -EINVAL);
  assert_int_equal(addrpool_init(&p, "10.0.0.0", NULL), -EINVAL);
}

static void test_pool_ascending(void **state) {
  (void)state;
  struct addrpool p;
  uint32_t ip = 0;
  bool valid = false;
  uint32_t seen[8];
  size_t n = 0;
  /* /29: .1-.6 usable, server .3 in the middle */
  assert_int_equal(addrpool_init(&p, "10.9.8.0/29", "10.9.8.3"), 0);
  while (addrpool_next(&p, valid, ip, &ip) == 0) {
    assert_true(n < 8);
    seen[n++] = ip;
    valid = true;
  }
  assert_int_equal(n, 5);
  assert_int_equal(seen[0], IP(10, 9, 8, 1));
  assert_int_equal(seen[1], IP(10, 9, 8, 2));
  assert_int_equal(seen[2], IP(10, 9, 8, 4));
  assert_int_equal(seen[3], IP(10, 9, 8, 5));
  assert_int_equal(seen[4], IP(10, 9, 8, 6));
  /* server is the last usable host */
  assert_int_equal(addrpool_init(&p, "10.9.8.0/30", "10.9.8.2"), 0);
  assert_int_equal(addrpool_next(&p, true, IP(10, 9, 8, 1), &ip), -ENOSPC);
  assert_int_equal(addrpool_next(&p, true, IP(10, 9, 8, 0), &ip), 0);
  assert_int_equal(ip, IP(10, 9, 8, 1));
  /* server is the only usable host left after the first */
  assert_int_equal(addrpool_init(&p, "10.9.8.0/30", "10.9.8.1"), 0);
  assert_int_equal(addrpool_next(&p, false, 0, &ip), 0);
  assert_int_equal(ip, IP(10, 9, 8, 2));
  assert_int_equal(addrpool_next(&p, true, ip, &ip), -ENOSPC);
}

static void test_first_free(void **state) {
  (void)state;
  struct addrpool p;
  uint32_t ip;
  assert_int_equal(addrpool_init(&p, "10.0.0.0/24", "10.0.0.1"), 0);
  assert_int_equal(addrpool_first_free(&p, NULL, 0, &ip), 0);
  assert_int_equal(ip, IP(10, 0, 0, 2));
  /* unsorted, duplicates, foreign addresses and the server itself in the used set */
  uint32_t used[] = {IP(10, 0, 0, 4), IP(10, 0, 0, 2), IP(192, 168, 0, 3), IP(10, 0, 0, 3),
                     IP(10, 0, 0, 2), IP(10, 0, 0, 1), IP(10, 0, 0, 6), IP(10, 0, 0, 0)};
  assert_int_equal(addrpool_first_free(&p, used, 8, &ip), 0);
  assert_int_equal(ip, IP(10, 0, 0, 5));
  /* full pool */
  uint32_t all[253];
  for (uint32_t i = 0; i < 253; i++)
    all[i] = IP(10, 0, 0, 2 + i);
  assert_int_equal(addrpool_first_free(&p, all, 253, &ip), -ENOSPC);
  /* one hole at the very end */
  assert_int_equal(addrpool_first_free(&p, all, 252, &ip), 0);
  assert_int_equal(ip, IP(10, 0, 0, 254));
  assert_int_equal(addrpool_first_free(&p, NULL, 1, &ip), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ipv4_parse),     cmocka_unit_test(test_cidr_parse),
      cmocka_unit_test(test_pool_init),      cmocka_unit_test(test_pool_ascending),
      cmocka_unit_test(test_first_free),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
