#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "net/tls_hello.h"
#include "testutil.h"

/* Real ClientHellos captured from openssl s_client 3.0 and curl (tests/data/tls/). */
static void load(const char *name, struct buf *b) {
  char rel[128];
  snprintf(rel, sizeof(rel), "tests/data/tls/%s", name);
  tu_read_file(tu_source_path(rel), b);
}

/* Re-frames the handshake message of a single-record hello into records of at most frag bytes. */
static void refragment(const struct buf *in, size_t frag, struct buf *out) {
  size_t rlen = ((size_t)in->data[3] << 8) | in->data[4];
  assert_int_equal(rlen + 5, in->len);
  for (size_t off = 0; off < rlen; off += frag) {
    size_t n = MIN(frag, rlen - off);
    uint8_t h[5] = {22, 3, 1, (uint8_t)(n >> 8), (uint8_t)n};
    assert_int_equal(buf_append(out, h, 5), 0);
    assert_int_equal(buf_append(out, in->data + 5 + off, n), 0);
  }
}

static void check_prefixes(const struct buf *b) {
  struct tls_hello h;
  for (size_t i = 0; i < b->len; i++)
    assert_int_equal(tls_hello_parse(b->data, i, &h), -EAGAIN);
  assert_int_equal(tls_hello_parse(b->data, b->len, &h), 0);
}

static void test_openssl_alpn(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  struct tls_hello h;
  struct slice s;
  load("openssl-alpn.bin", &b);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), 0);
  assert_string_equal(h.sni, "app1.example.com"); /* sent as App1.Example.COM */
  assert_int_equal(h.n_alpn, 2);
  assert_int_equal(tls_hello_alpn_get(&h, 0, &s), 0);
  assert_true(slice_eq_str(s, "h2"));
  assert_int_equal(tls_hello_alpn_get(&h, 1, &s), 0);
  assert_true(slice_eq_str(s, "http/1.1"));
  assert_int_equal(tls_hello_alpn_get(&h, 2, &s), -ENOENT);
  assert_true(tls_hello_alpn_offers(&h, "h2"));
  assert_false(tls_hello_alpn_offers(&h, "h3"));
  assert_true(h.has_supported_versions);
  assert_true(h.offers_tls13);
  assert_int_equal(h.legacy_version, 0x0303);
  assert_int_equal(h.hello_len, b.len);
  check_prefixes(&b);
}

static void test_curl(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  struct tls_hello h;
  load("curl.bin", &b);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), 0);
  assert_string_equal(h.sni, "abc123-8080.gw.example.com");
  assert_true(tls_hello_alpn_offers(&h, "http/1.1"));
  assert_true(h.offers_tls13);
  check_prefixes(&b);
}

static void test_tls12_no_sni(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  struct tls_hello h;
  load("openssl-tls12-nosni.bin", &b);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), 0);
  assert_string_equal(h.sni, "");
  assert_int_equal(h.n_alpn, 0);
  assert_false(h.has_supported_versions);
  assert_false(h.offers_tls13);
  assert_true(h.n_extensions > 0);
}

static void test_fragmented(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  struct tls_hello h;
  load("openssl-alpn.bin", &b);
  size_t frags[] = {1, 2, 3, 7, 100, 339};
  for (size_t i = 0; i < ARRAY_SIZE(frags); i++) {
    _cleanup_buf_ struct buf f = BUF_INIT(1 << 16);
    refragment(&b, frags[i], &f);
    check_prefixes(&f);
    assert_int_equal(tls_hello_parse(f.data, f.len, &h), 0);
    assert_string_equal(h.sni, "app1.example.com");
    assert_int_equal(h.n_alpn, 2);
    assert_int_equal(h.hello_len, f.len);
  }
  /* a following record (e.g. early ChangeCipherSpec) is left to the caller */
  assert_int_equal(buf_append(&b, "\x14\x03\x03\x00\x01\x01", 6), 0);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), 0);
  assert_int_equal(h.hello_len, b.len - 6);
}

static void test_trailing_in_record(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  struct tls_hello h;
  load("openssl-alpn.bin", &b);
  size_t rlen = ((size_t)b.data[3] << 8) | b.data[4];
  b.data[3] = (uint8_t)((rlen + 1) >> 8);
  b.data[4] = (uint8_t)(rlen + 1);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), -EBADMSG); /* known before the byte */
  assert_int_equal(buf_append_u8(&b, 0), 0);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), -EBADMSG);
}

/* ClientHello builder: body from version to extensions, wrapped in one record. */
static void build(const uint8_t *exts, size_t exts_len, bool with_ext_len, struct buf *out) {
  _cleanup_buf_ struct buf body = BUF_INIT(1 << 16);
  uint8_t fixed[2 + 32 + 1 + 2 + 2 + 2] = {3, 3};
  fixed[34] = 0;                    /* session id */
  fixed[35] = 0, fixed[36] = 2;     /* cipher suites */
  fixed[37] = 0x13, fixed[38] = 1;
  fixed[39] = 1, fixed[40] = 0;     /* compression */
  assert_int_equal(buf_append(&body, fixed, sizeof(fixed)), 0);
  if (with_ext_len) {
    assert_int_equal(buf_append_u8(&body, (uint8_t)(exts_len >> 8)), 0);
    assert_int_equal(buf_append_u8(&body, (uint8_t)exts_len), 0);
  }
  assert_int_equal(buf_append(&body, exts, exts_len), 0);
  size_t hl = body.len + 4;
  uint8_t rh[9] = {22, 3, 1, (uint8_t)(hl >> 8), (uint8_t)hl, 1, (uint8_t)(body.len >> 16),
                   (uint8_t)(body.len >> 8), (uint8_t)body.len};
  assert_int_equal(buf_append(out, rh, 9), 0);
  assert_int_equal(buf_append(out, body.data, body.len), 0);
}

static int parse_exts(const char *hex, struct tls_hello *h) {
  _cleanup_buf_ struct buf e = BUF_INIT(1 << 16), m = BUF_INIT(1 << 16);
  tu_hex(hex, &e);
  build(e.data, e.len, true, &m);
  return tls_hello_parse(m.data, m.len, h);
}

/* SNI extension holding one host_name */
static int parse_sni(const char *name, struct tls_hello *h) {
  char hex[2048] = "0000";
  size_t n = strlen(name);
  char *p = hex + 4;
  p += sprintf(p, "%04zx%04zx00%04zx", n + 5, n + 3, n);
  for (size_t i = 0; i < n; i++)
    p += sprintf(p, "%02x", (unsigned char)name[i]);
  return parse_exts(hex, h);
}

static void test_built(void **state) {
  (void)state;
  struct tls_hello h;
  char big[300];
  assert_int_equal(parse_exts("", &h), 0);
  assert_int_equal(parse_sni("a.b", &h), 0);
  assert_string_equal(h.sni, "a.b");
  assert_int_equal(parse_sni("x-1.EXAMPLE.org", &h), 0);
  assert_string_equal(h.sni, "x-1.example.org");
  assert_int_equal(parse_sni("a.b.", &h), -EBADMSG);
  assert_int_equal(parse_sni(".a", &h), -EBADMSG);
  assert_int_equal(parse_sni("a..b", &h), -EBADMSG);
  assert_int_equal(parse_sni("a_b.c", &h), -EBADMSG);
  assert_int_equal(parse_sni("a b", &h), -EBADMSG);
  assert_int_equal(parse_sni("", &h), -EBADMSG);
  memset(big, 'a', 63);
  big[63] = 0;
  assert_int_equal(parse_sni(big, &h), 0);
  memset(big, 'a', 64);
  big[64] = 0;
  assert_int_equal(parse_sni(big, &h), -EBADMSG);
  for (int i = 0; i < 253; i++)
    big[i] = (i % 2) ? '.' : 'a';
  big[253] = 0;
  assert_int_equal(parse_sni(big, &h), 0);
  big[253] = '.', big[254] = 'a', big[255] = 0;
  assert_int_equal(parse_sni(big, &h), -EBADMSG);
  /* NUL inside the name */
  assert_int_equal(parse_exts("000000080006000003610062", &h), -EBADMSG);
  /* unknown name type skipped, then host_name */
  assert_int_equal(parse_exts("0000000c000a0100017a00000361626300", &h), -EBADMSG);
  assert_int_equal(parse_exts("0000000c000a0100017a000003616263", &h), 0);
  assert_string_equal(h.sni, "abc");
  /* two host_names */
  assert_int_equal(parse_exts("0000000a00080000016100000162", &h), -EBADMSG);
  /* empty SNI extension / empty list / list length mismatch */
  assert_int_equal(parse_exts("00000000", &h), -EBADMSG);
  assert_int_equal(parse_exts("000000020000", &h), -EBADMSG);
  assert_int_equal(parse_exts("00000006000500000161", &h), -EBADMSG);
  /* ALPN */
  assert_int_equal(parse_exts("00100005000302683200", &h), -EBADMSG);
  assert_int_equal(parse_exts("001000050003026832", &h), 0);
  assert_int_equal(h.n_alpn, 1);
  assert_int_equal(parse_exts("00100006000400026832", &h), -EBADMSG); /* empty name */
  assert_int_equal(parse_exts("001000050004026832", &h), -EBADMSG);   /* list > ext */
  assert_int_equal(parse_exts("0010000400020361", &h), -EBADMSG);       /* name > list */
  /* supported_versions */
  assert_int_equal(parse_exts("002b0003020304", &h), 0);
  assert_true(h.offers_tls13);
  assert_int_equal(parse_exts("002b000403030304", &h), -EBADMSG);
  assert_int_equal(parse_exts("002b00020103", &h), -EBADMSG);
  assert_int_equal(parse_exts("002b00030203", &h), -EBADMSG);
  /* duplicates, overruns */
  assert_int_equal(parse_exts("0017000000170000", &h), -EBADMSG);
  assert_int_equal(parse_exts("0017000000180000", &h), 0);
  assert_int_equal(h.n_extensions, 2);
  assert_int_equal(parse_exts("00170001", &h), -EBADMSG);
  assert_int_equal(parse_exts("001700", &h), -EBADMSG);
}

static void test_bad_body(void **state) {
  (void)state;
  struct tls_hello h;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  build(NULL, 0, false, &b);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), 0);
  struct { size_t off; uint8_t v; } muts[] = {
    {9, 2}, {10, 4}, {9 + 34, 33}, {9 + 34, 1}, {9 + 36, 3}, {9 + 36, 0}, {9 + 39, 0}, {9 + 39, 2},
  };
  for (size_t i = 0; i < ARRAY_SIZE(muts); i++) {
    uint8_t save = b.data[muts[i].off];
    b.data[muts[i].off] = muts[i].v;
    assert_int_equal(tls_hello_parse(b.data, b.len, &h), -EBADMSG);
    b.data[muts[i].off] = save;
  }
}

/* Every shortening of the handshake body with consistent outer lengths is rejected, except
 * the cut right after the compression methods (a hello without extensions). */
static void test_truncations(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  struct tls_hello h;
  load("curl.bin", &b);
  size_t body = b.len - 9;
  size_t sid = b.data[9 + 34];
  size_t cs = ((size_t)b.data[9 + 35 + sid] << 8) | b.data[9 + 36 + sid];
  size_t comp_end = 2 + 32 + 1 + sid + 2 + cs + 1 + b.data[9 + 37 + sid + cs];
  for (size_t n = 0; n < body; n++) {
    _cleanup_buf_ struct buf t = BUF_INIT(1 << 16);
    assert_int_equal(buf_append(&t, b.data, 9 + n), 0);
    t.data[3] = (uint8_t)((n + 4) >> 8), t.data[4] = (uint8_t)(n + 4);
    t.data[6] = 0, t.data[7] = (uint8_t)(n >> 8), t.data[8] = (uint8_t)n;
    int r = tls_hello_parse(t.data, t.len, &h);
    if (n == comp_end)
      assert_int_equal(r, 0);
    else
      assert_int_equal(r, -EBADMSG);
  }
}

static void test_garbage(void **state) {
  (void)state;
  struct tls_hello h;
  const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(tls_hello_parse((const uint8_t *)http, strlen(http), &h), -EBADMSG);
  assert_int_equal(tls_hello_parse((const uint8_t *)http, 1, &h), -EBADMSG);
  /* SSLv2-compatible hello */
  static const uint8_t v2[] = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10};
  assert_int_equal(tls_hello_parse(v2, sizeof(v2), &h), -EBADMSG);
  static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
  assert_int_equal(tls_hello_parse(alert, sizeof(alert), &h), -EBADMSG);
  static const uint8_t badver[] = {22, 2, 0};
  assert_int_equal(tls_hello_parse(badver, sizeof(badver), &h), -EBADMSG);
  static const uint8_t badminor[] = {22, 3, 5};
  assert_int_equal(tls_hello_parse(badminor, sizeof(badminor), &h), -EBADMSG);
  static const uint8_t zero[] = {22, 3, 1, 0, 0};
  assert_int_equal(tls_hello_parse(zero, sizeof(zero), &h), -EBADMSG);
  static const uint8_t huge_rec[] = {22, 3, 1, 0x40, 0x01};
  assert_int_equal(tls_hello_parse(huge_rec, sizeof(huge_rec), &h), -EBADMSG);
  static const uint8_t server_hello[] = {22, 3, 3, 0, 10, 2};
  assert_int_equal(tls_hello_parse(server_hello, sizeof(server_hello), &h), -EBADMSG);
  static const uint8_t tiny[] = {22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0};
  assert_int_equal(tls_hello_parse(tiny, sizeof(tiny), &h), -EBADMSG);
  assert_int_equal(tls_hello_parse(NULL, 0, &h), -EAGAIN);
  assert_int_equal(tls_hello_parse(NULL, 1, &h), -EINVAL);
}

static void test_oversized(void **state) {
  (void)state;
  struct tls_hello h;
  static const uint8_t big_msg[] = {22, 3, 1, 0x40, 0x00, 1, 0x01, 0x00, 0x00};
  assert_int_equal(tls_hello_parse(big_msg, sizeof(big_msg), &h), -ENOBUFS);
  /* a valid but long hello in 1-byte records needs more than the input cap */
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16), f = BUF_INIT(1 << 17);
  _cleanup_buf_ struct buf e = BUF_INIT(1 << 16);
  assert_int_equal(buf_append(&e, "\x00\x15\x0b\xb8", 4), 0); /* padding, 3000 bytes */
  assert_int_equal(buf_append_zero(&e, 3000), 0);
  build(e.data, e.len, true, &b);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), 0);
  refragment(&b, 1, &f);
  assert_true(f.len > TLS_HELLO_MAX_INPUT);
  assert_int_equal(tls_hello_parse(f.data, TLS_HELLO_MAX_INPUT - 1, &h), -EAGAIN);
  assert_int_equal(tls_hello_parse(f.data, TLS_HELLO_MAX_INPUT, &h), -ENOBUFS);
  assert_int_equal(tls_hello_parse(f.data, f.len, &h), 0); /* caller's cap, not ours */
  /* ALPN list past TLS_HELLO_ALPN_MAX */
  buf_reset(&e);
  buf_reset(&b);
  assert_int_equal(buf_append(&e, "\x00\x10\x02\x5a\x02\x58", 6), 0);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(buf_append_u8(&e, 99), 0);
    assert_int_equal(buf_append_zero(&e, 99), 0);
  }
  build(e.data, e.len, true, &b);
  assert_int_equal(tls_hello_parse(b.data, b.len, &h), -ENOBUFS);
}

static void test_hostname_valid(void **state) {
  (void)state;
  assert_true(tls_hello_hostname_valid("a", 1));
  assert_true(tls_hello_hostname_valid("xn--d1a.b-c", 11));
  assert_false(tls_hello_hostname_valid("A", 1));
  assert_false(tls_hello_hostname_valid("", 0));
  assert_false(tls_hello_hostname_valid("a.", 2));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_openssl_alpn), cmocka_unit_test(test_curl),
    cmocka_unit_test(test_tls12_no_sni), cmocka_unit_test(test_fragmented),
    cmocka_unit_test(test_trailing_in_record), cmocka_unit_test(test_built),
    cmocka_unit_test(test_bad_body), cmocka_unit_test(test_truncations),
    cmocka_unit_test(test_garbage), cmocka_unit_test(test_oversized),
    cmocka_unit_test(test_hostname_valid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
