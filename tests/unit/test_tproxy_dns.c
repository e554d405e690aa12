/* src/tproxy/dns.c: the TXT answer parser on hand-built messages, the TTL cache on a fake
 * clock, and tproxy_dns_resolve end to end against a small UDP DNS server on 127.0.0.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "tproxy_dns.h"
#include "testutil.h"

#define ID40 "3327603e03f5bd1f830812ca4a789277fc31f577"
#define QN "_dstack-app-address.a.example"

/* ---------------------------------------------------------------- message builder */

struct mb {
  uint8_t b[2048];
  size_t n;
};

static void mb_u8(struct mb *m, unsigned v) {
  assert_true(m->n + 1 <= sizeof(m->b));
  m->b[m->n++] = (uint8_t)v;
}

static void mb_u16(struct mb *m, unsigned v) {
  mb_u8(m, v >> 8);
  mb_u8(m, v & 0xFF);
}

static void mb_u32(struct mb *m, uint32_t v) {
  mb_u16(m, v >> 16);
  mb_u16(m, v & 0xFFFF);
}

static void mb_bytes(struct mb *m, const void *p, size_t n) {
  assert_true(m->n + n <= sizeof(m->b));
  memcpy(m->b + m->n, p, n);
  m->n += n;
}

/* Uncompressed name from dotted text ("" = root). */
static void mb_name(struct mb *m, const char *dotted) {
  const char *s = dotted;
  while (*s) {
    const char *dot = strchr(s, '.');
    size_t l = dot ? (size_t)(dot - s) : strlen(s);
    mb_u8(m, (unsigned)l);
    mb_bytes(m, s, l);
    s += l;
    if (*s == '.')
      s++;
  }
  mb_u8(m, 0);
}

static void mb_ptr(struct mb *m, size_t off) {
  mb_u16(m, 0xC000 | (unsigned)off);
}

/* flags: the rcode ORed into QR|RD|RA. */
static void mb_header(struct mb *m, unsigned rcode, unsigned qd, unsigned an) {
  m->n = 0;
  mb_u16(m, 0x1234);
  mb_u16(m, 0x8180 | rcode);
  mb_u16(m, qd);
  mb_u16(m, an);
  mb_u16(m, 0);
  mb_u16(m, 0);
}

static void mb_question(struct mb *m, const char *name, unsigned type) {
  mb_name(m, name);
  mb_u16(m, type);
  mb_u16(m, 1);
}

/* Type, class IN, TTL and a placeholder RDLENGTH; returns where RDLENGTH is. */
static size_t mb_rr_fixed(struct mb *m, unsigned type, uint32_t ttl) {
  mb_u16(m, type);
  mb_u16(m, 1);
  mb_u32(m, ttl);
  size_t at = m->n;
  mb_u16(m, 0);
  return at;
}

static void mb_rr_end(struct mb *m, size_t at) {
  size_t l = m->n - at - 2;
  m->b[at] = (uint8_t)(l >> 8);
  m->b[at + 1] = (uint8_t)l;
}

/* A TXT RR of owner name (NULL: a pointer to the question name at 12) with the strings. */
static void mb_txt(struct mb *m, const char *owner, uint32_t ttl, int nstr, ...) {
  if (owner)
    mb_name(m, owner);
  else
    mb_ptr(m, 12);
  size_t at = mb_rr_fixed(m, 16, ttl);
  va_list ap;
  va_start(ap, nstr);
  for (int i = 0; i < nstr; i++) {
    const char *s = va_arg(ap, const char *);
    mb_u8(m, (unsigned)strlen(s));
    mb_bytes(m, s, strlen(s));
  }
  va_end(ap);
  mb_rr_end(m, at);
}

static void mb_cname(struct mb *m, const char *owner, uint32_t ttl, const char *target) {
  if (owner)
    mb_name(m, owner);
  else
    mb_ptr(m, 12);
  size_t at = mb_rr_fixed(m, 5, ttl);
  mb_name(m, target);
  mb_rr_end(m, at);
}

static int parse(const struct mb *m, char *out, size_t outlen, uint32_t *ttl) {
  return tproxy_dns_parse_txt_answer(m->b, m->n, QN, out, outlen, ttl);
}

/* ---------------------------------------------------------------- parser: positive */

static void test_parse_one_string(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl = 0;
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 300, 1, ID40 ":8443");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), strlen(ID40 ":8443"));
  assert_string_equal(out, ID40 ":8443");
  assert_int_equal(ttl, 300);
  /* a final dot and upper case in qname, an uncompressed owner in upper case */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, "_DSTACK-app-address.A.Example", 7, 1, "x:1");
  assert_int_equal(tproxy_dns_parse_txt_answer(m.b, m.n, "_dstack-app-address.A.EXAMPLE.", out,
                                               sizeof(out), &ttl),
                   3);
  assert_string_equal(out, "x:1");
  assert_int_equal(ttl, 7);
  /* ret_ttl may be NULL; a TTL with the top bit set counts as 0 */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 0x80000001u, 1, "v");
  assert_int_equal(parse(&m, out, sizeof(out), NULL), 1);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), 1);
  assert_int_equal(ttl, 0);
}

static void test_parse_two_strings(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 60, 3, ID40, ":84", "43");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), strlen(ID40 ":8443"));
  assert_string_equal(out, ID40 ":8443");
  /* an empty character-string is fine */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 60, 1, "");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), 0);
  assert_string_equal(out, "");
}

static void test_parse_first_txt_and_skips(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  mb_header(&m, 0, 1, 5);
  mb_question(&m, QN, 16);
  /* an A record of the name, a TXT of another name, a TXT of class CH: all skipped */
  mb_ptr(&m, 12);
  size_t at = mb_rr_fixed(&m, 1, 60);
  mb_u32(&m, 0x7f000001);
  mb_rr_end(&m, at);
  mb_txt(&m, "other.example", 60, 1, "no");
  mb_ptr(&m, 12);
  mb_u16(&m, 16);
  mb_u16(&m, 3); /* CH */
  mb_u32(&m, 60);
  mb_u16(&m, 3);
  mb_u8(&m, 2);
  mb_bytes(&m, "ch", 2);
  mb_txt(&m, NULL, 50, 1, "first");
  mb_txt(&m, NULL, 40, 1, "second");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), 5);
  assert_string_equal(out, "first");
  assert_int_equal(ttl, 50);
}

static void test_parse_cname_chain(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  /* QN → b.example (300) → c.example (100) → TXT (200); records out of order, the last
   * CNAME's target compressed into the first's rdata */
  mb_header(&m, 0, 1, 3);
  mb_question(&m, QN, 16);
  size_t first = m.n;
  mb_cname(&m, NULL, 300, "b.example");
  size_t b_name = first + 2 + 10; /* "b.example" in the first RR's rdata */
  mb_txt(&m, "c.example", 200, 1, "x:2");
  mb_ptr(&m, b_name);
  size_t at = mb_rr_fixed(&m, 5, 100);
  mb_u8(&m, 1);
  mb_u8(&m, 'c');
  mb_ptr(&m, b_name + 2); /* "example" */
  mb_rr_end(&m, at);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), 3);
  assert_string_equal(out, "x:2");
  assert_int_equal(ttl, 100);
  /* the TXT's own TTL when it is the smallest */
  mb_header(&m, 0, 1, 2);
  mb_question(&m, QN, 16);
  mb_cname(&m, NULL, 300, "b.example");
  mb_txt(&m, "B.example", 9, 1, "y:3");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), 3);
  assert_int_equal(ttl, 9);
  /* a chain of 8 CNAMEs is followed, 9 is not */
  for (int len = 8; len <= 9; len++) {
    mb_header(&m, 0, 1, (unsigned)len + 1);
    mb_question(&m, QN, 16);
    char from[32], to[32];
    for (int i = 0; i < len; i++) {
      snprintf(from, sizeof(from), "n%d.example", i);
      snprintf(to, sizeof(to), "n%d.example", i + 1);
      mb_cname(&m, i == 0 ? NULL : from, 60, to);
    }
    mb_txt(&m, to, 60, 1, "z:4");
    assert_int_equal(parse(&m, out, sizeof(out), &ttl), len == 8 ? 3 : -EBADMSG);
  }
}

static void test_parse_fits(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 60, 2, "abcd", "efgh");
  assert_int_equal(parse(&m, out, 9, &ttl), 8);
  assert_string_equal(out, "abcdefgh");
  assert_int_equal(parse(&m, out, 8, &ttl), -EMSGSIZE);
  assert_int_equal(parse(&m, out, 4, &ttl), -EMSGSIZE);
  assert_int_equal(parse(&m, out, 1, &ttl), -EMSGSIZE);
  /* a long value in many strings */
  char s[201];
  memset(s, 'q', 200);
  s[200] = 0;
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 60, 2, s, s);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EMSGSIZE);
}

/* ---------------------------------------------------------------- parser: negative */

static void test_parse_rcodes(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl = 5;
  mb_header(&m, 3, 1, 0); /* NXDOMAIN */
  mb_question(&m, QN, 16);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -ENOENT);
  assert_int_equal(ttl, 0);
  mb_header(&m, 3, 0, 0); /* NXDOMAIN without the question */
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -ENOENT);
  mb_header(&m, 2, 1, 0); /* SERVFAIL */
  mb_question(&m, QN, 16);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EIO);
  mb_header(&m, 5, 0, 0); /* REFUSED */
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EIO);
  mb_header(&m, 1, 1, 0); /* FORMERR */
  mb_question(&m, QN, 16);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EIO);
  /* an error rcode still needs the right question when there is one */
  mb_header(&m, 3, 1, 0);
  mb_question(&m, "_dstack-app-address.b.example", 16);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
}

static void test_parse_nodata(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  mb_header(&m, 0, 1, 0);
  mb_question(&m, QN, 16);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -ENOENT);
  /* only another type */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_ptr(&m, 12);
  size_t at = mb_rr_fixed(&m, 1, 60);
  mb_u32(&m, 0x7f000001);
  mb_rr_end(&m, at);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -ENOENT);
  /* a CNAME to a name without TXT */
  mb_header(&m, 0, 1, 2);
  mb_question(&m, QN, 16);
  mb_cname(&m, NULL, 60, "b.example");
  mb_txt(&m, "c.example", 60, 1, "x:1");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -ENOENT);
}

static void test_parse_header(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 60, 1, "x:1");
  assert_int_equal(tproxy_dns_parse_txt_answer(m.b, 11, QN, out, sizeof(out), &ttl), -EBADMSG);
  assert_int_equal(tproxy_dns_parse_txt_answer(m.b, 0, QN, out, sizeof(out), &ttl), -EBADMSG);
  /* every truncation of a good message is malformed */
  for (size_t n = 0; n < m.n; n++)
    assert_int_equal(tproxy_dns_parse_txt_answer(m.b, n, QN, out, sizeof(out), &ttl), -EBADMSG);
  struct mb q = m;
  q.b[2] &= 0x7F; /* a query, not a response */
  assert_int_equal(parse(&q, out, sizeof(out), &ttl), -EBADMSG);
  q = m;
  q.b[2] |= 0x10; /* opcode 2 */
  assert_int_equal(parse(&q, out, sizeof(out), &ttl), -EBADMSG);
  q = m;
  q.b[5] = 2; /* two questions */
  assert_int_equal(parse(&q, out, sizeof(out), &ttl), -EBADMSG);
  q = m;
  q.b[5] = 0; /* no question, NOERROR */
  assert_int_equal(parse(&q, out, sizeof(out), &ttl), -EBADMSG);
  q = m;
  q.b[7] = 2; /* one answer more than there is */
  assert_int_equal(parse(&q, out, sizeof(out), &ttl), -EBADMSG);
  /* arguments */
  assert_int_equal(tproxy_dns_parse_txt_answer(NULL, 0, QN, out, sizeof(out), &ttl), -EINVAL);
  assert_int_equal(tproxy_dns_parse_txt_answer(m.b, m.n, QN, out, 0, &ttl), -EINVAL);
  assert_int_equal(tproxy_dns_parse_txt_answer(m.b, m.n, "", out, sizeof(out), &ttl), -EINVAL);
}

static void test_parse_question(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  mb_header(&m, 0, 1, 1); /* wrong qname */
  mb_question(&m, "_dstack-app-address.b.example", 16);
  mb_txt(&m, NULL, 60, 1, "x:1");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  mb_header(&m, 0, 1, 1); /* a suffix of qname is not qname */
  mb_question(&m, "a.example", 16);
  mb_txt(&m, NULL, 60, 1, "x:1");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  mb_header(&m, 0, 1, 1); /* wrong type */
  mb_question(&m, QN, 1);
  mb_txt(&m, NULL, 60, 1, "x:1");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  mb_header(&m, 0, 1, 0); /* class CH */
  mb_name(&m, QN);
  mb_u16(&m, 16);
  mb_u16(&m, 3);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
}

static void test_parse_names(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  /* a compression pointer to itself, and two pointing at each other */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  size_t self = m.n;
  mb_ptr(&m, self);
  mb_rr_fixed(&m, 16, 60);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  size_t a = m.n;
  mb_u8(&m, 1);
  mb_u8(&m, 'x');
  mb_ptr(&m, a + 4);
  mb_ptr(&m, a); /* a+4 → a → 'x' → a+4 ... */
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  /* a pointer past the end, and a pointer cut in half */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_ptr(&m, 0x3FFF);
  size_t at = mb_rr_fixed(&m, 16, 60);
  mb_u8(&m, 1);
  mb_u8(&m, 'x');
  mb_rr_end(&m, at);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_u8(&m, 0xC0);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  /* a pointer in the question to the header bytes: not the name */
  mb_header(&m, 0, 1, 0);
  mb_ptr(&m, 0);
  mb_u16(&m, 16);
  mb_u16(&m, 1);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  /* label length 64 (0x40: an extended label type) and 0x80 */
  for (unsigned l = 0x40; l <= 0x80; l += 0x40) {
    mb_header(&m, 0, 1, 0);
    mb_u8(&m, l);
    for (int i = 0; i < 64; i++)
      mb_u8(&m, 'a');
    mb_u8(&m, 0);
    mb_u16(&m, 16);
    mb_u16(&m, 1);
    assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  }
  /* a name of more than 255 octets: 63-byte labels joined by pointers, kept in the rdata
   * of a record of an unknown type; the next record's owner points at them */
  for (int bad = 0; bad <= 1; bad++) {
    mb_header(&m, 0, 1, 2);
    mb_question(&m, QN, 16);
    mb_ptr(&m, 12);
    size_t ra = mb_rr_fixed(&m, 99, 60);
    size_t lab[4];
    for (int k = 0; k < 4; k++) {
      lab[k] = m.n;
      mb_u8(&m, 63);
      for (int i = 0; i < 63; i++)
        mb_u8(&m, 'a' + (unsigned)k);
      if (k == 0)
        mb_u8(&m, 0);
      else
        mb_ptr(&m, lab[k - 1]);
    }
    mb_rr_end(&m, ra);
    /* lab[2]: 3 labels, 193 octets; lab[3]: 4 labels, 257 octets */
    mb_ptr(&m, lab[bad ? 3 : 2]);
    ra = mb_rr_fixed(&m, 16, 60);
    mb_u8(&m, 1);
    mb_u8(&m, 'x');
    mb_rr_end(&m, ra);
    assert_int_equal(parse(&m, out, sizeof(out), &ttl), bad ? -EBADMSG : -ENOENT);
  }
  /* the same in the question, uncompressed */
  struct mb q;
  mb_header(&q, 0, 1, 0);
  for (int k = 0; k < 4; k++) {
    mb_u8(&q, 63);
    for (int i = 0; i < 63; i++)
      mb_u8(&q, 'a' + (unsigned)k);
  }
  mb_u8(&q, 0);
  mb_u16(&q, 16);
  mb_u16(&q, 1);
  assert_int_equal(tproxy_dns_parse_txt_answer(q.b, q.n, "x.example", out, sizeof(out), &ttl),
                   -EBADMSG);
  /* a '.' inside a label */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_u8(&m, 9);
  mb_bytes(&m, "a.example", 9);
  mb_u8(&m, 0);
  at = mb_rr_fixed(&m, 16, 60);
  mb_u8(&m, 1);
  mb_u8(&m, 'x');
  mb_rr_end(&m, at);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
}

static void test_parse_rdata(void **state) {
  (void)state;
  struct mb m;
  char out[256];
  uint32_t ttl;
  /* rdlength past the end */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 60, 1, "x:1");
  m.b[m.n - 5] = 0;
  m.b[m.n - 6] = 0x01; /* rdlength 256 + ... */
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  /* a character-string past the rdata */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 60, 1, "x:1");
  m.b[m.n - 4] = 4;
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  /* the same followed by another record: still past this record's rdata */
  mb_header(&m, 0, 1, 2);
  mb_question(&m, QN, 16);
  mb_txt(&m, NULL, 60, 1, "x:1");
  m.b[m.n - 4] = 9;
  mb_txt(&m, "other.example", 60, 1, "padding");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  /* an empty TXT rdata */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_ptr(&m, 12);
  mb_rr_fixed(&m, 16, 60);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  /* a CNAME whose rdata holds more than the name, and a CNAME loop */
  mb_header(&m, 0, 1, 2);
  mb_question(&m, QN, 16);
  mb_ptr(&m, 12);
  size_t at = mb_rr_fixed(&m, 5, 60);
  mb_name(&m, "b.example");
  mb_u8(&m, 0);
  mb_rr_end(&m, at);
  mb_txt(&m, "b.example", 60, 1, "x:1");
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  mb_header(&m, 0, 1, 2);
  mb_question(&m, QN, 16);
  mb_cname(&m, NULL, 60, "b.example");
  mb_cname(&m, "b.example", 60, QN);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
  /* an RR header cut short */
  mb_header(&m, 0, 1, 1);
  mb_question(&m, QN, 16);
  mb_ptr(&m, 12);
  mb_u16(&m, 16);
  mb_u16(&m, 1);
  assert_int_equal(parse(&m, out, sizeof(out), &ttl), -EBADMSG);
}

/* ---------------------------------------------------------------- cache */

static int64_t fake_now = 1000;
static int64_t fake_clock(void) {
  return fake_now;
}

static void test_cache_ttl(void **state) {
  (void)state;
  struct tproxy_dns_cache *c;
  struct tproxy_route r = {0}, got;
  int st;
  assert_int_equal(tproxy_dns_cache_new(0, &c), -EINVAL);
  assert_int_equal(tproxy_dns_cache_new(8, &c), 0);
  fake_now = 1000;
  tproxy_dns_cache_set_clock(c, fake_clock);
  assert_int_equal(tproxy_route_parse_txt(ID40 ":8443", strlen(ID40 ":8443"), &r), 0);
  assert_int_equal(tproxy_dns_cache_get(c, "a.example", &got, &st), 0);
  assert_int_equal(tproxy_dns_cache_put(c, "A.Example", &r, 0, 10), 0);
  fake_now = 1009;
  assert_int_equal(tproxy_dns_cache_get(c, "a.example.", &got, &st), 1);
  assert_int_equal(st, 0);
  assert_string_equal(got.app_id, ID40);
  assert_int_equal(got.port, 8443);
  assert_true(got.custom);
  fake_now = 1010;
  assert_int_equal(tproxy_dns_cache_get(c, "a.example", &got, &st), 0);
  /* negative entries, replaced; ttl 0 drops */
  assert_int_equal(tproxy_dns_cache_put(c, "n.example", NULL, -ENOENT, 5), 0);
  assert_int_equal(tproxy_dns_cache_get(c, "n.example", &got, &st), 1);
  assert_int_equal(st, -ENOENT);
  assert_string_equal(got.app_id, "");
  assert_int_equal(tproxy_dns_cache_put(c, "n.example", &r, 0, 100), 0);
  assert_int_equal(tproxy_dns_cache_get(c, "n.example", &got, &st), 1);
  assert_int_equal(st, 0);
  assert_int_equal(tproxy_dns_cache_put(c, "n.example", &r, 0, 0), 0);
  assert_int_equal(tproxy_dns_cache_get(c, "n.example", &got, &st), 0);
  assert_int_equal(tproxy_dns_cache_put(c, "x.example", NULL, 0, 5), -EINVAL);
  assert_int_equal(tproxy_dns_cache_put(c, "x.example", NULL, 1, 5), -EINVAL);
  tproxy_dns_cache_set_clock(c, NULL);
  assert_int_equal(tproxy_dns_cache_put(c, "real.example", &r, 0, 60), 0);
  assert_int_equal(tproxy_dns_cache_get(c, "real.example", &got, &st), 1);
  tproxy_dns_cache_free(c);
  tproxy_dns_cache_free(NULL);
}

static void test_cache_lru(void **state) {
  (void)state;
  struct tproxy_dns_cache *c;
  struct tproxy_route r = {0}, got;
  int st;
  assert_int_equal(tproxy_dns_cache_new(3, &c), 0);
  fake_now = 50;
  tproxy_dns_cache_set_clock(c, fake_clock);
  r.port = 1;
  assert_int_equal(tproxy_dns_cache_put(c, "a", &r, 0, 100), 0);
  assert_int_equal(tproxy_dns_cache_put(c, "b", &r, 0, 100), 0);
  assert_int_equal(tproxy_dns_cache_put(c, "c", &r, 0, 100), 0);
  assert_int_equal(tproxy_dns_cache_get(c, "a", &got, &st), 1); /* a is now the most recent */
  assert_int_equal(tproxy_dns_cache_put(c, "d", &r, 0, 100), 0); /* drops b */
  assert_int_equal(tproxy_dns_cache_get(c, "b", &got, &st), 0);
  assert_int_equal(tproxy_dns_cache_get(c, "a", &got, &st), 1);
  assert_int_equal(tproxy_dns_cache_get(c, "c", &got, &st), 1);
  assert_int_equal(tproxy_dns_cache_get(c, "d", &got, &st), 1);
  /* many more names than entries */
  char name[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof(name), "n%d.example", i);
    r.port = (uint16_t)(i + 1);
    assert_int_equal(tproxy_dns_cache_put(c, name, &r, 0, 100), 0);
  }
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof(name), "n%d.example", i);
    int hit = tproxy_dns_cache_get(c, name, &got, &st);
    assert_int_equal(hit, i >= 997);
    if (hit)
      assert_int_equal(got.port, i + 1);
  }
  tproxy_dns_cache_free(c);
}

/* ---------------------------------------------------------------- a small DNS server */

struct srv {
  int fd;
  uint16_t port;
  pthread_t th;
  atomic_bool stop;
  pthread_mutex_t mu;
  char names[64][256]; /* queries seen */
  int counts[64];
  int n;
};

static struct srv srv;

static void srv_note(const char *name) {
  pthread_mutex_lock(&srv.mu);
  int i;
  for (i = 0; i < srv.n; i++)
    if (strcmp(srv.names[i], name) == 0)
      break;
  if (i == srv.n && srv.n < 64)
    snprintf(srv.names[srv.n++], sizeof(srv.names[0]), "%s", name);
  if (i < 64)
    srv.counts[i]++;
  pthread_mutex_unlock(&srv.mu);
}

static int srv_count(const char *name) {
  int c = 0;
  pthread_mutex_lock(&srv.mu);
  for (int i = 0; i < srv.n; i++)
    if (strcmp(srv.names[i], name) == 0)
      c = srv.counts[i];
  pthread_mutex_unlock(&srv.mu);
  return c;
}

static void srv_txt(struct mb *m, uint32_t ttl, const char *v) {
  mb_ptr(m, 12);
  size_t at = mb_rr_fixed(m, 16, ttl);
  size_t l = strlen(v);
  while (l > 0) {
    size_t k = l > 255 ? 255 : l;
    mb_u8(m, (unsigned)k);
    mb_bytes(m, v, k);
    v += k;
    l -= k;
  }
  mb_rr_end(m, at);
}

/* Builds the answer to the query q; false to drop it. */
static bool srv_answer(const uint8_t *q, size_t qlen, struct mb *m) {
  char name[256];
  size_t off = 12, n = 0;
  if (qlen < 12)
    return false;
  while (off < qlen && q[off] != 0) {
    size_t l = q[off++];
    if (l > 63 || off + l > qlen || n + l + 2 > sizeof(name))
      return false;
    if (n)
      name[n++] = '.';
    memcpy(name + n, q + off, l);
    n += l;
    off += l;
  }
  name[n] = 0;
  off++;
  if (off + 4 > qlen)
    return false;
  size_t qend = off + 4;
  srv_note(name);
  const char *dot = strchr(name, '.');
  const char *host = dot ? dot + 1 : name;
  if (strcmp(host, "slow.example") == 0)
    return false;
  unsigned rcode = 3, an = 0;
  const char *txt = NULL, *cname = NULL;
  uint32_t ttl = 60;
  if (strcmp(name, "_dstack-app-address.a.example") == 0 ||
      strcmp(name, "_dstack-app-address.share.example") == 0 ||
      strcmp(name, "_dstack-app-address.cancel.example") == 0 ||
      strcmp(name, "_dstack-app-address.cancel2.example") == 0 ||
      strcmp(name, "_dstack-app-address.clamp.example") == 0) {
    txt = ID40 ":8443";
  } else if (strcmp(name, "_tapp-address.legacy.example") == 0 ||
             strcmp(name, "_tapp-address.legacy2.example") == 0) {
    txt = ID40 ":9000";
  } else if (strcmp(name, "_dstack-app-address.legacy2.example") == 0) {
    rcode = 0; /* NODATA */
  } else if (strcmp(name, "_dstack-app-address.bad.example") == 0) {
    txt = "not a route";
  } else if (strcmp(name, "_dstack-app-address.big.example") == 0) {
    static char big[301];
    memset(big, '7', 300);
    txt = big;
  } else if (strcmp(name, "_dstack-app-address.ttl0.example") == 0) {
    txt = ID40 ":1";
    ttl = 0;
  } else if (strcmp(name, "_dstack-app-address.cname.example") == 0) {
    cname = "target.example";
  } else if (strcmp(name, "_dstack-app-address.fail.example") == 0) {
    rcode = 2;
  }
  m->n = 0;
  mb_bytes(m, q, qend);
  m->b[2] = (uint8_t)(0x80 | (q[2] & 0x01)); /* QR, RD copied */
  m->b[3] = (uint8_t)(0x80 | rcode);
  m->b[4] = 0;
  m->b[5] = 1;
  memset(m->b + 6, 0, 6);
  if (txt) {
    m->b[3] = 0x80;
    srv_txt(m, ttl, txt);
    an = 1;
  } else if (cname) {
    m->b[3] = 0x80;
    mb_cname(m, NULL, 30, cname);
    mb_txt(m, cname, 40, 2, ID40, ":7000");
    an = 2;
  }
  m->b[7] = (uint8_t)an;
  return true;
}

static void *srv_main(void *arg) {
  (void)arg;
  uint8_t q[1500];
  struct mb m;
  while (!atomic_load(&srv.stop)) {
    struct pollfd pfd = {.fd = srv.fd, .events = POLLIN};
    if (poll(&pfd, 1, 50) <= 0)
      continue;
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(srv.fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    if (n <= 0)
      continue;
    if (srv_answer(q, (size_t)n, &m))
      (void)sendto(srv.fd, m.b, m.n, 0, (struct sockaddr *)&from, fl);
  }
  return NULL;
}

static int srv_start(void **state) {
  (void)state;
  memset(&srv, 0, sizeof(srv));
  pthread_mutex_init(&srv.mu, NULL);
  srv.fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (srv.fd < 0)
    return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof(sa);
  if (bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
      getsockname(srv.fd, (struct sockaddr *)&sa, &sl) < 0)
    return -1;
  srv.port = ntohs(sa.sin_port);
  return pthread_create(&srv.th, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int srv_stop(void **state) {
  (void)state;
  atomic_store(&srv.stop, true);
  pthread_join(srv.th, NULL);
  close(srv.fd);
  pthread_mutex_destroy(&srv.mu);
  return 0;
}

/* ---------------------------------------------------------------- resolver end to end */

struct res {
  int calls;
  int status;
  struct tproxy_route route;
};

static void res_cb(int status, const struct tproxy_route *route, void *arg) {
  struct res *r = arg;
  r->calls++;
  r->status = status;
  r->route = *route;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
}

static int64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until *calls reaches want or ms pass. */
static void run_until(struct event_base *b, const int *calls, int want, int ms) {
  struct event *tick = event_new(b, -1, EV_PERSIST, tick_cb, NULL);
  struct timeval tv = {0, 10000};
  assert_non_null(tick);
  assert_int_equal(event_add(tick, &tv), 0);
  int64_t end = ms_now() + ms;
  while ((!calls || *calls < want) && ms_now() < end)
    event_base_loop(b, EVLOOP_ONCE);
  event_free(tick);
}

struct env {
  struct event_base *base;
  struct tproxy_dns_cache *cache;
  struct tproxy_dns *dns;
};

static void env_open(struct env *e, bool legacy, int timeout_ms, uint32_t min_ttl,
                     uint32_t max_ttl) {
  char servers[64];
  snprintf(servers, sizeof(servers), "127.0.0.1:%u", srv.port);
  e->base = event_base_new();
  assert_non_null(e->base);
  assert_int_equal(tproxy_dns_cache_new(64, &e->cache), 0);
  struct tproxy_dns_opts o = {
      .servers = servers,
      .timeout_ms = timeout_ms,
      .tries = 1,
      .min_ttl = min_ttl,
      .max_ttl = max_ttl,
      .neg_ttl = 30,
      .legacy = legacy,
  };
  assert_int_equal(tproxy_dns_new(e->base, e->cache, &o, &e->dns), 0);
}

static void env_close(struct env *e) {
  tproxy_dns_free(e->dns);
  tproxy_dns_cache_free(e->cache);
  event_base_free(e->base);
}

/* A lookup that must go to the server; returns its result. */
static struct res lookup(struct env *e, const char *sni) {
  struct res r = {.status = 12345};
  struct tproxy_route rt;
  int st = 777;
  struct tproxy_dns_query *q = NULL;
  assert_int_equal(tproxy_dns_resolve(e->dns, sni, res_cb, &r, &rt, &st, &q), 0);
  assert_non_null(q);
  assert_int_equal(r.calls, 0); /* never inside the call */
  run_until(e->base, &r.calls, 1, 5000);
  assert_int_equal(r.calls, 1);
  run_until(e->base, NULL, 0, 20); /* and only once */
  assert_int_equal(r.calls, 1);
  return r;
}

static int hit(struct env *e, const char *sni, struct tproxy_route *rt, int *st) {
  struct res r = {0};
  struct tproxy_dns_query *q = (struct tproxy_dns_query *)&r;
  int ret = tproxy_dns_resolve(e->dns, sni, res_cb, &r, rt, st, &q);
  if (ret == 1)
    assert_null(q);
  if (ret == 0) /* not a hit: finish the lookup so nothing dangles */
    run_until(e->base, &r.calls, 1, 5000);
  else
    assert_int_equal(r.calls, 0);
  return ret;
}

static void test_resolve_positive(void **state) {
  (void)state;
  struct env e;
  env_open(&e, false, 2000, 0, 3600);
  struct res r = lookup(&e, "a.example");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.route.app_id, ID40);
  assert_int_equal(r.route.port, 8443);
  assert_true(r.route.custom);
  assert_int_equal(r.route.mode, ROUTE_PASSTHROUGH);
  assert_int_equal(srv_count("_dstack-app-address.a.example"), 1);
  struct tproxy_route rt;
  int st = 99;
  assert_int_equal(hit(&e, "a.example", &rt, &st), 1);
  assert_int_equal(st, 0);
  assert_string_equal(rt.app_id, ID40);
  assert_int_equal(rt.port, 8443);
  assert_int_equal(hit(&e, "A.EXAMPLE.", &rt, &st), 1);
  assert_int_equal(srv_count("_dstack-app-address.a.example"), 1);
  /* through a CNAME */
  r = lookup(&e, "cname.example");
  assert_int_equal(r.status, 0);
  assert_int_equal(r.route.port, 7000);
  env_close(&e);
}

static void test_resolve_negative(void **state) {
  (void)state;
  struct env e;
  env_open(&e, false, 2000, 0, 3600);
  struct res r = lookup(&e, "nope.example");
  assert_int_equal(r.status, -ENOENT);
  struct tproxy_route rt;
  int st = 0;
  assert_int_equal(hit(&e, "nope.example", &rt, &st), 1); /* cached for neg_ttl */
  assert_int_equal(st, -ENOENT);
  assert_int_equal(srv_count("_dstack-app-address.nope.example"), 1);
  /* no legacy lookup when legacy is off */
  assert_int_equal(lookup(&e, "legacy.example").status, -ENOENT);
  assert_int_equal(srv_count("_tapp-address.legacy.example"), 0);
  /* a malformed value, a value too long: -EBADMSG, cached */
  assert_int_equal(lookup(&e, "bad.example").status, -EBADMSG);
  assert_int_equal(hit(&e, "bad.example", &rt, &st), 1);
  assert_int_equal(st, -EBADMSG);
  assert_int_equal(lookup(&e, "big.example").status, -EBADMSG);
  /* SERVFAIL: -EIO, not cached */
  assert_int_equal(lookup(&e, "fail.example").status, -EIO);
  assert_int_equal(lookup(&e, "fail.example").status, -EIO);
  /* bad names */
  struct tproxy_dns_query *q = (struct tproxy_dns_query *)&r;
  assert_int_equal(tproxy_dns_resolve(e.dns, "", res_cb, &r, &rt, &st, &q), -EINVAL);
  assert_null(q);
  assert_int_equal(tproxy_dns_resolve(e.dns, "a..example", res_cb, &r, &rt, &st, &q), -EINVAL);
  assert_int_equal(tproxy_dns_resolve(e.dns, "a b.example", res_cb, &r, &rt, &st, &q), -EINVAL);
  assert_int_equal(tproxy_dns_resolve(e.dns, "a\\.b", res_cb, &r, &rt, &st, &q), -EINVAL);
  char longname[300];
  memset(longname, 'a', sizeof(longname));
  for (int i = 60; i < 240; i += 61)
    longname[i] = '.';
  longname[240] = 0; /* a valid host name, too long with the prefix */
  assert_int_equal(tproxy_dns_resolve(e.dns, longname, res_cb, &r, &rt, &st, &q),
                   -ENAMETOOLONG);
  longname[240] = 'a';
  longname[299] = 0;
  assert_int_equal(tproxy_dns_resolve(e.dns, longname, res_cb, &r, &rt, &st, &q),
                   -ENAMETOOLONG);
  assert_int_equal(tproxy_dns_resolve(e.dns, NULL, res_cb, &r, &rt, &st, &q), -EINVAL);
  env_close(&e);
}

static void test_resolve_legacy(void **state) {
  (void)state;
  struct env e;
  env_open(&e, true, 2000, 0, 3600);
  struct res r = lookup(&e, "legacy.example"); /* NXDOMAIN, then _tapp-address */
  assert_int_equal(r.status, 0);
  assert_int_equal(r.route.port, 9000);
  r = lookup(&e, "legacy2.example"); /* NODATA, then _tapp-address */
  assert_int_equal(r.status, 0);
  assert_int_equal(r.route.port, 9000);
  /* the new name first: no legacy lookup when it answers */
  assert_int_equal(lookup(&e, "share.example").status, 0);
  assert_int_equal(srv_count("_tapp-address.share.example"), 0);
  /* neither has a record */
  assert_int_equal(lookup(&e, "none.example").status, -ENOENT);
  assert_int_equal(srv_count("_dstack-app-address.none.example"), 1);
  assert_int_equal(srv_count("_tapp-address.none.example"), 1);
  env_close(&e);
}

static void test_resolve_shared_and_cancel(void **state) {
  (void)state;
  struct env e;
  env_open(&e, false, 2000, 0, 3600);
  struct res r1 = {0}, r2 = {0}, r3 = {0};
  struct tproxy_route rt;
  int st;
  struct tproxy_dns_query *q1, *q2, *q3;
  /* three waiters of one name: one query; the middle one cancelled */
  assert_int_equal(tproxy_dns_resolve(e.dns, "cancel2.example", res_cb, &r1, &rt, &st, &q1), 0);
  assert_int_equal(tproxy_dns_resolve(e.dns, "cancel2.example", res_cb, &r2, &rt, &st, &q2), 0);
  assert_int_equal(tproxy_dns_resolve(e.dns, "Cancel2.example", res_cb, &r3, &rt, &st, &q3), 0);
  assert_ptr_not_equal(q1, q2);
  tproxy_dns_cancel(q2);
  run_until(e.base, &r3.calls, 1, 5000);
  run_until(e.base, NULL, 0, 50);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r2.calls, 0);
  assert_int_equal(r3.calls, 1);
  assert_int_equal(r1.status, 0);
  assert_int_equal(r3.route.port, 8443);
  assert_int_equal(srv_count("_dstack-app-address.cancel2.example"), 1);
  /* the only waiter cancelled: no callback, the answer still fills the cache */
  struct res r = {0};
  struct tproxy_dns_query *q;
  assert_int_equal(tproxy_dns_resolve(e.dns, "cancel.example", res_cb, &r, &rt, &st, &q), 0);
  tproxy_dns_cancel(q);
  tproxy_dns_cancel(NULL);
  int64_t end = ms_now() + 5000;
  while (!tproxy_dns_cache_get(e.cache, "cancel.example", &rt, &st) && ms_now() < end)
    run_until(e.base, NULL, 0, 10);
  assert_int_equal(r.calls, 0);
  assert_int_equal(hit(&e, "cancel.example", &rt, &st), 1);
  assert_int_equal(st, 0);
  /* freeing the resolver with lookups pending calls nobody */
  assert_int_equal(tproxy_dns_resolve(e.dns, "slow.example", res_cb, &r, &rt, &st, &q), 0);
  assert_int_equal(tproxy_dns_resolve(e.dns, "share.example", res_cb, &r, &rt, &st, &q), 0);
  run_until(e.base, NULL, 0, 100); /* share's answer is in, its callback may have run */
  int calls = r.calls;
  tproxy_dns_free(e.dns);
  e.dns = NULL;
  run_until(e.base, NULL, 0, 50);
  assert_int_equal(r.calls, calls);
  env_close(&e);
}

static void test_resolve_timeout(void **state) {
  (void)state;
  struct env e;
  env_open(&e, true, 200, 0, 3600);
  int64_t t0 = ms_now();
  struct res r = lookup(&e, "slow.example");
  assert_int_equal(r.status, -ETIMEDOUT);
  assert_true(ms_now() - t0 < 3000);
  /* not cached; legacy not tried after a timeout */
  assert_int_equal(srv_count("_tapp-address.slow.example"), 0);
  struct tproxy_route rt;
  int st;
  struct tproxy_dns_query *q;
  assert_int_equal(tproxy_dns_resolve(e.dns, "slow.example", res_cb, &r, &rt, &st, &q), 0);
  tproxy_dns_cancel(q);
  env_close(&e);
}

static void test_resolve_ttl_clamp(void **state) {
  (void)state;
  struct env e;
  struct tproxy_route rt;
  int st;
  /* record TTL 60 clamped to max 30 */
  env_open(&e, false, 2000, 0, 30);
  fake_now = 5000;
  tproxy_dns_cache_set_clock(e.cache, fake_clock);
  assert_int_equal(lookup(&e, "clamp.example").status, 0);
  fake_now += 29;
  assert_int_equal(hit(&e, "clamp.example", &rt, &st), 1);
  fake_now += 1;
  assert_int_equal(hit(&e, "clamp.example", &rt, &st), 0); /* asked again */
  assert_int_equal(srv_count("_dstack-app-address.clamp.example"), 2);
  /* record TTL 0 with min 0: not cached */
  assert_int_equal(lookup(&e, "ttl0.example").status, 0);
  assert_int_equal(hit(&e, "ttl0.example", &rt, &st), 0);
  env_close(&e);
  /* record TTL 0 with min 5: cached for 5 s */
  env_open(&e, false, 2000, 5, 30);
  tproxy_dns_cache_set_clock(e.cache, fake_clock);
  assert_int_equal(lookup(&e, "ttl0.example").status, 0);
  fake_now += 4;
  assert_int_equal(hit(&e, "ttl0.example", &rt, &st), 1);
  assert_int_equal(rt.port, 1);
  fake_now += 1;
  assert_int_equal(hit(&e, "ttl0.example", &rt, &st), 0);
  env_close(&e);
}

static void test_resolver_new(void **state) {
  (void)state;
  struct event_base *b = event_base_new();
  struct tproxy_dns_cache *c;
  struct tproxy_dns *d;
  assert_int_equal(tproxy_dns_cache_new(4, &c), 0);
  struct tproxy_dns_opts o = {.servers = "not an address", .max_ttl = 10};
  assert_int_equal(tproxy_dns_new(b, c, &o, &d), -EINVAL);
  o.servers = "127.0.0.1:53";
  o.min_ttl = 11;
  assert_int_equal(tproxy_dns_new(b, c, &o, &d), -EINVAL);
  o.min_ttl = 0;
  assert_int_equal(tproxy_dns_new(NULL, c, &o, &d), -EINVAL);
  assert_int_equal(tproxy_dns_new(b, c, &o, &d), 0);
  tproxy_dns_free(d);
  o.servers = NULL; /* resolv.conf */
  assert_int_equal(tproxy_dns_new(b, c, &o, &d), 0);
  tproxy_dns_free(d);
  tproxy_dns_free(NULL);
  tproxy_dns_cache_free(c);
  event_base_free(b);
}

int main(void) {
  const struct CMUnitTest parser[] = {
      cmocka_unit_test(test_parse_one_string),  cmocka_unit_test(test_parse_two_strings),
      cmocka_unit_test(test_parse_first_txt_and_skips), cmocka_unit_test(test_parse_cname_chain),
      cmocka_unit_test(test_parse_fits),        cmocka_unit_test(test_parse_rcodes),
      cmocka_unit_test(test_parse_nodata),      cmocka_unit_test(test_parse_header),
      cmocka_unit_test(test_parse_question),    cmocka_unit_test(test_parse_names),
      cmocka_unit_test(test_parse_rdata),       cmocka_unit_test(test_cache_ttl),
      cmocka_unit_test(test_cache_lru),         cmocka_unit_test(test_resolver_new),
  };
  const struct CMUnitTest resolver[] = {
      cmocka_unit_test(test_resolve_positive),
      cmocka_unit_test(test_resolve_negative),
      cmocka_unit_test(test_resolve_legacy),
      cmocka_unit_test(test_resolve_shared_and_cancel),
      cmocka_unit_test(test_resolve_timeout),
      cmocka_unit_test(test_resolve_ttl_clamp),
  };
  int fails = cmocka_run_group_tests_name("parser", parser, NULL, NULL);
  fails += cmocka_run_group_tests_name("resolver", resolver, srv_start, srv_stop);
  return fails;
}
