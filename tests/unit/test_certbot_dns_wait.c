/* src/certbot/certbot_dns_wait.c: the TXT matching on hand-built answers (several records,
 * records split into several strings, other types, malformed messages) and the argument and
 * time-out paths of certbot_dns_wait_txt. (Against a real name server: tests/it.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "certbot_dns_wait.h"
#include "testutil.h"

#define QN "_acme-challenge.example.com"

struct msg {
  uint8_t b[4096];
  size_t n;
  size_t ancount_off;
};

static void put(struct msg *m, const void *p, size_t n) {
  assert_true(m->n + n <= sizeof(m->b));
  memcpy(m->b + m->n, p, n);
  m->n += n;
}
static void put16(struct msg *m, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(m, x, 2);
}
static void put32(struct msg *m, uint32_t v) {
  put16(m, (uint16_t)(v >> 16));
  put16(m, (uint16_t)v);
}
static void put_name(struct msg *m, const char *name) {
  while (*name) {
    const char *dot = strchr(name, '.');
    size_t l = dot ? (size_t)(dot - name) : strlen(name);
    uint8_t lb = (uint8_t)l;
    put(m, &lb, 1);
    put(m, name, l);
    name += l + (dot ? 1 : 0);
  }
  uint8_t z = 0;
  put(m, &z, 1);
}

/* A response to "QN TXT IN" with rcode and no answers yet. */
static void msg_start(struct msg *m, unsigned rcode) {
  memset(m, 0, sizeof(*m));
  put16(m, 0x1234);
  put16(m, (uint16_t)(0x8400 | rcode)); /* QR, AA */
  put16(m, 1);
  m->ancount_off = m->n;
  put16(m, 0);
  put16(m, 0);
  put16(m, 0);
  put_name(m, QN);
  put16(m, 16);
  put16(m, 1);
}

/* An answer record of type (16: TXT) with the given character-strings (NULL-terminated). */
static void msg_answer(struct msg *m, uint16_t type, const char *const *strings) {
  put16(m, 0xc00c); /* the question's name */
  put16(m, type);
  put16(m, 1);
  put32(m, 120);
  size_t rdlen = 0;
  for (const char *const *s = strings; *s; s++)
    rdlen += 1 + strlen(*s);
  put16(m, (uint16_t)rdlen);
  for (const char *const *s = strings; *s; s++) {
    uint8_t l = (uint8_t)strlen(*s);
    put(m, &l, 1);
    put(m, *s, l);
  }
  uint16_t an = (uint16_t)((m->b[m->ancount_off] << 8 | m->b[m->ancount_off + 1]) + 1);
  m->b[m->ancount_off] = (uint8_t)(an >> 8);
  m->b[m->ancount_off + 1] = (uint8_t)an;
}

static void test_match_one(void **state) {
  (void)state;
  struct msg m;
  msg_start(&m, 0);
  msg_answer(&m, 16, (const char *[]){"abc", NULL});
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "abc"), 1);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "ab"), 0);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "abcd"), 0);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "ABC"), 0);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, ""), 0);
}

static void test_match_several(void **state) {
  (void)state;
  struct msg m;
  msg_start(&m, 0);
  msg_answer(&m, 16, (const char *[]){"old-value", NULL});
  msg_answer(&m, 16, (const char *[]){"part1-", "part2", NULL});
  msg_answer(&m, 16, (const char *[]){"", NULL});
  msg_answer(&m, 16, (const char *[]){"last", NULL});
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "old-value"), 1);
  /* a record's strings are joined; strings of different records never are */
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "part1-part2"), 1);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "part1-"), 0);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "old-valuepart1-"), 0);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "last"), 1);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, ""), 1);
}

static void test_match_none(void **state) {
  (void)state;
  struct msg m;
  msg_start(&m, 0); /* NODATA */
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "abc"), 0);
  msg_start(&m, 0);
  /* an A record that happens to carry the bytes is not a TXT record */
  uint8_t a[] = {3, 'a', 'b', 'c'};
  put16(&m, 0xc00c);
  put16(&m, 1);
  put16(&m, 1);
  put32(&m, 60);
  put16(&m, 4);
  put(&m, a, 4);
  m.b[m.ancount_off + 1] = 1;
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, "abc"), 0);
}

static void test_match_malformed(void **state) {
  (void)state;
  struct msg m;
  msg_start(&m, 0);
  msg_answer(&m, 16, (const char *[]){"abcdef", NULL});
  /* every truncation is refused or finds nothing, never reads past the end */
  for (size_t n = 0; n < m.n; n++) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, m.b, n);
    int r = certbot_dns_wait_txt_match(copy, n, "abcdef");
    assert_true(r == -EBADMSG || r == 0);
    free(copy);
  }
  /* a string length past the rdata */
  struct msg b = m;
  b.b[b.n - 7] = 50;
  assert_int_equal(certbot_dns_wait_txt_match(b.b, b.n, "abcdef"), -EBADMSG);
  /* an answer count larger than the records */
  b = m;
  b.b[b.ancount_off + 1] = 5;
  assert_int_equal(certbot_dns_wait_txt_match(b.b, b.n, "abcdef"), -EBADMSG);
  /* a compression loop in the answer's name */
  b = m;
  size_t an = b.n - (2 + 2 + 2 + 4 + 2 + 7);
  b.b[an] = 0xc0;
  b.b[an + 1] = (uint8_t)an;
  assert_int_equal(certbot_dns_wait_txt_match(b.b, b.n, "abcdef"), -EBADMSG);
  assert_int_equal(certbot_dns_wait_txt_match(NULL, 0, "x"), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt_match(m.b, m.n, NULL), -EINVAL);
}

static long ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_wait_args(void **state) {
  (void)state;
  char err[512];
  char *none[] = {NULL};
  char *ok[] = {"127.0.0.1:53", NULL};
  char *bad_port[] = {"127.0.0.1:99999", NULL};
  char *bad_v6[] = {"[::1", NULL};
  char *empty[] = {"", NULL};
  char *nohost[] = {"no-such-host.invalid:53", NULL};
  assert_int_equal(certbot_dns_wait_txt(NULL, QN, "v", 100, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt(none, QN, "v", 100, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt(ok, "", "v", 100, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt(ok, "a b", "v", 100, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt(ok, QN, NULL, 100, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt(bad_port, QN, "v", 100, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt(bad_v6, QN, "v", 100, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt(empty, QN, "v", 100, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_dns_wait_txt(nohost, QN, "v", 100, err, sizeof(err)), -ENOENT);
}

static void test_wait_times_out(void **state) {
  (void)state;
  /* nobody answers on port 9 of loopback: the wait ends with a clear error in bounded time */
  char *srv[] = {"127.0.0.1:9", NULL};
  char err[512] = "";
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(certbot_dns_wait_txt(srv, QN, "value", 700, err, sizeof(err)), -ETIMEDOUT);
  long ms = ms_since(&t0);
  assert_true(ms >= 600);
  assert_true(ms < 4000);
  assert_non_null(strstr(err, "127.0.0.1:9"));
  assert_non_null(strstr(err, QN));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_match_one),       cmocka_unit_test(test_match_several),
      cmocka_unit_test(test_match_none),      cmocka_unit_test(test_match_malformed),
      cmocka_unit_test(test_wait_args),       cmocka_unit_test(test_wait_times_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
