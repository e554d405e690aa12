/* Per-source connection counts: which addresses are one source, the cap, release, growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "net/source_limit.h"
#include "testutil.h"

static struct sockaddr_storage g_ss;

/* A sockaddr for a numeric IPv4 or IPv6 address (port p); static storage. */
static const struct sockaddr *sa_of(const char *ip, uint16_t p, socklen_t *ret_len) {
  memset(&g_ss, 0, sizeof(g_ss));
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&g_ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(p);
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    *ret_len = sizeof(*a);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&g_ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(p);
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    *ret_len = sizeof(*a);
  }
  return (const struct sockaddr *)&g_ss;
}

static int acquire(struct source_limit *l, const char *ip, uint16_t port,
                   struct source_entry **ret) {
  socklen_t len;
  const struct sockaddr *sa = sa_of(ip, port, &len);
  return source_limit_acquire(l, sa, len, ret);
}

static unsigned count(struct source_limit *l, const char *ip) {
  socklen_t len;
  const struct sockaddr *sa = sa_of(ip, 1, &len);
  return source_limit_count(l, sa, len);
}

static void test_ipv4_cap(void **state) {
  (void)state;
  struct source_limit *l = NULL;
  assert_int_equal(source_limit_new(0, &l), -EINVAL);
  assert_int_equal(source_limit_new(3, &l), 0);
  struct source_entry *e[3], *x = NULL, *y = NULL;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(acquire(l, "192.0.2.7", (uint16_t)(1000 + i), &e[i]), 0);
    assert_non_null(e[i]);
  }
  assert_int_equal(count(l, "192.0.2.7"), 3);
  /* A fourth from the same address, any port: refused, nothing counted. */
  assert_int_equal(acquire(l, "192.0.2.7", 2000, &x), -EBUSY);
  assert_int_equal(count(l, "192.0.2.7"), 3);
  /* The neighbour address is another source. */
  assert_int_equal(acquire(l, "192.0.2.8", 1, &y), 0);
  assert_int_equal(count(l, "192.0.2.8"), 1);
  assert_int_equal(source_limit_n_sources(l), 2);
  /* Releasing one makes room for exactly one. */
  source_limit_release(l, e[1]);
  assert_int_equal(count(l, "192.0.2.7"), 2);
  assert_int_equal(acquire(l, "192.0.2.7", 3000, &e[1]), 0);
  assert_int_equal(acquire(l, "192.0.2.7", 3001, &x), -EBUSY);
  /* The last release drops the entry. */
  source_limit_release(l, y);
  assert_int_equal(count(l, "192.0.2.8"), 0);
  assert_int_equal(source_limit_n_sources(l), 1);
  for (int i = 0; i < 3; i++)
    source_limit_release(l, e[i]);
  assert_int_equal(count(l, "192.0.2.7"), 0);
  assert_int_equal(source_limit_n_sources(l), 0);
  source_limit_release(l, NULL);
  source_limit_free(l);
  source_limit_free(NULL);
}

static void test_ipv6_prefix(void **state) {
  (void)state;
  struct source_limit *l = NULL;
  assert_int_equal(source_limit_new(2, &l), 0);
  struct source_entry *a, *b, *c, *d, *x;
  /* One /64: different interface identifiers are the same source. */
  assert_int_equal(acquire(l, "2001:db8:1:2::1", 1, &a), 0);
  assert_int_equal(acquire(l, "2001:db8:1:2:ffff:ffff:ffff:ffff", 1, &b), 0);
  assert_int_equal(acquire(l, "2001:db8:1:2:abcd::9", 1, &x), -EBUSY);
  assert_int_equal(count(l, "2001:db8:1:2::77"), 2);
  /* The next /64 is another source. */
  assert_int_equal(acquire(l, "2001:db8:1:3::1", 1, &c), 0);
  assert_int_equal(count(l, "2001:db8:1:3::1"), 1);
  /* IPv4-mapped addresses count as IPv4, per address (not all in the ::ffff:0:0 /64). */
  assert_int_equal(acquire(l, "::ffff:198.51.100.1", 1, &d), 0);
  assert_int_equal(count(l, "198.51.100.1"), 1);
  assert_int_equal(acquire(l, "198.51.100.1", 1, &x), 0);
  assert_int_equal(acquire(l, "::ffff:198.51.100.1", 2, &x), -EBUSY);
  assert_int_equal(count(l, "::ffff:198.51.100.2"), 0);
  assert_int_equal(acquire(l, "::ffff:198.51.100.2", 1, &x), 0);
  /* An IPv4 address and an IPv6 prefix with the same bits are different sources. */
  assert_int_equal(count(l, "0:0:c633:6401::1"), 0);
  assert_int_equal(source_limit_n_sources(l), 4);
  source_limit_free(l); /* with entries still counted */
}

static void test_not_counted(void **state) {
  (void)state;
  struct source_limit *l = NULL;
  assert_int_equal(source_limit_new(1, &l), 0);
  struct sockaddr_un su = {.sun_family = AF_UNIX};
  struct source_entry *e = (struct source_entry *)&su;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(source_limit_acquire(l, (struct sockaddr *)&su, sizeof(su), &e), 0);
    assert_null(e);
  }
  assert_int_equal(source_limit_acquire(l, NULL, 0, &e), 0);
  assert_null(e);
  /* A truncated address is not read past its length. */
  socklen_t len;
  const struct sockaddr *sa = sa_of("192.0.2.1", 1, &len);
  assert_int_equal(source_limit_acquire(l, sa, len - 1, &e), 0);
  assert_null(e);
  sa = sa_of("2001:db8::1", 1, &len);
  assert_int_equal(source_limit_acquire(l, sa, len - 1, &e), 0);
  assert_null(e);
  assert_int_equal(source_limit_acquire(l, sa, 1, &e), 0);
  assert_null(e);
  assert_int_equal(source_limit_n_sources(l), 0);
  assert_int_equal(source_limit_count(l, (struct sockaddr *)&su, sizeof(su)), 0);
  assert_int_equal(source_limit_acquire(NULL, sa, len, &e), -EINVAL);
  source_limit_free(l);
}

static struct source_entry *find(struct source_limit *l, const char *ip) {
  socklen_t len;
  const struct sockaddr *sa = sa_of(ip, 9, &len);
  return source_limit_find(l, sa, len);
}

/* A full source's entry is found (for the caller's data); the data starts NULL and goes with
 * the entry. */
static void test_find_and_data(void **state) {
  (void)state;
  struct source_limit *l = NULL;
  assert_int_equal(source_limit_new(2, &l), 0);
  struct source_entry *a, *b, *c, *x = NULL;
  int tag = 0;
  assert_null(find(l, "192.0.2.7"));
  assert_int_equal(acquire(l, "192.0.2.7", 1, &a), 0);
  assert_null(source_entry_get_data(a));
  source_entry_set_data(a, &tag);
  assert_int_equal(acquire(l, "192.0.2.7", 2, &b), 0);
  assert_ptr_equal(b, a);
  assert_int_equal(acquire(l, "192.0.2.7", 3, &x), -EBUSY);
  assert_ptr_equal(find(l, "192.0.2.7"), a);
  assert_ptr_equal(source_entry_get_data(find(l, "192.0.2.7")), &tag);
  assert_ptr_equal(find(l, "2001:db8:1:2::1"), NULL);
  assert_int_equal(acquire(l, "2001:db8:1:2::1", 1, &c), 0);
  assert_ptr_equal(find(l, "2001:db8:1:2:ffff::5"), c); /* same /64 */
  assert_ptr_equal(find(l, "::ffff:192.0.2.7"), a);     /* IPv4-mapped */
  assert_null(source_entry_get_data(c));
  assert_null(source_entry_get_data(NULL));
  source_entry_set_data(NULL, &tag);
  struct sockaddr_un su = {.sun_family = AF_UNIX};
  assert_null(source_limit_find(l, (struct sockaddr *)&su, sizeof(su)));
  assert_null(source_limit_find(NULL, (struct sockaddr *)&su, sizeof(su)));
  /* Released to zero: the entry (and its data) is gone; a new one starts with NULL. */
  source_limit_release(l, a);
  assert_ptr_equal(source_entry_get_data(find(l, "192.0.2.7")), &tag);
  source_limit_release(l, b);
  assert_null(find(l, "192.0.2.7"));
  assert_int_equal(acquire(l, "192.0.2.7", 4, &a), 0);
  assert_null(source_entry_get_data(a));
  source_limit_free(l);
}

/* Many sources: the table grows and every count stays exact. */
static void test_many_sources(void **state) {
  (void)state;
  struct source_limit *l = NULL;
  assert_int_equal(source_limit_new(2, &l), 0);
  enum { N = 5000 };
  static struct source_entry *e[N][2];
  char ip[64];
  for (int i = 0; i < N; i++) {
    snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
    assert_int_equal(acquire(l, ip, 1, &e[i][0]), 0);
    assert_int_equal(acquire(l, ip, 2, &e[i][1]), 0);
    assert_int_equal(acquire(l, ip, 3, &(struct source_entry *){NULL}), -EBUSY);
  }
  assert_int_equal(source_limit_n_sources(l), N);
  for (int i = 0; i < N; i += 2) {
    source_limit_release(l, e[i][0]);
    source_limit_release(l, e[i][1]);
  }
  assert_int_equal(source_limit_n_sources(l), N / 2);
  for (int i = 0; i < N; i++) {
    snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
    assert_int_equal(count(l, ip), i % 2 ? 2 : 0);
  }
  for (int i = 1; i < N; i += 2) {
    source_limit_release(l, e[i][1]);
    source_limit_release(l, e[i][0]);
  }
  assert_int_equal(source_limit_n_sources(l), 0);
  source_limit_free(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ipv4_cap),
      cmocka_unit_test(test_ipv6_prefix),
      cmocka_unit_test(test_not_counted),
      cmocka_unit_test(test_find_and_data),
      cmocka_unit_test(test_many_sources),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
