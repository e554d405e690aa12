/* src/certbot/certbot_dnsmsg.c: names, UPDATE messages, TXT/CAA rdata, TSIG signing and the
 * verification of signed answers, the response parser's bounds, and the TXT wait. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "certbot_dns_wait.h"
#include "certbot_dnsmsg.h"
#include "testutil.h"

static const uint8_t SECRET[] = "0123456789abcdef0123456789abcdef";
static const struct certbot_tsig_key KEY = {"Certbot-Key.", SECRET, 32};

static void test_name_encode(void **state) {
  (void)state;
  struct buf b = BUF_INIT(1024);
  assert_int_equal(certbot_dns_name_encode("Example.TEST.", &b), 0);
  assert_int_equal(b.len, 14);
  assert_memory_equal(b.data,
                      "\x07"
                      "example"
                      "\x04"
                      "test"
                      "\x00",
                      14);
  buf_reset(&b);
  assert_int_equal(certbot_dns_name_encode("", &b), 0);
  assert_int_equal(b.len, 1);
  buf_reset(&b);
  assert_int_equal(certbot_dns_name_encode("a..b", &b), -EINVAL);
  buf_reset(&b);
  assert_int_equal(certbot_dns_name_encode(".a", &b), -EINVAL);
  char lab[80];
  memset(lab, 'a', 64);
  lab[64] = 0;
  buf_reset(&b);
  assert_int_equal(certbot_dns_name_encode(lab, &b), -EINVAL);
  char lng[400] = "";
  for (int i = 0; i < 70; i++)
    strcat(lng, "abcd.");
  buf_reset(&b);
  assert_int_equal(certbot_dns_name_encode(lng, &b), -EINVAL);
  buf_free(&b);
}

static void test_update_message(void **state) {
  (void)state;
  struct buf m = BUF_INIT(65535), rd = BUF_INIT(4096);
  char v[301];
  memset(v, 'x', 300);
  v[300] = 0;
  assert_int_equal(certbot_dns_txt_rdata(v, &rd), 0);
  assert_int_equal(rd.len, 302);
  assert_int_equal(rd.data[0], 255);
  assert_int_equal(rd.data[256], 45);
  assert_int_equal(certbot_dnsmsg_update_begin(0x1234, "example.test", &m), 0);
  assert_int_equal(certbot_dnsmsg_update_rr(&m, "_acme-challenge.example.test", DNS_TYPE_TXT,
                                            DNS_CLASS_IN, 120, rd.data, rd.len),
                   0);
  assert_memory_equal(m.data, "\x12\x34\x28\x00\x00\x01\x00\x00\x00\x01\x00\x00", 12);
  /* Zone section: name, SOA, IN. */
  assert_memory_equal(m.data + 12 + 14, "\x00\x06\x00\x01", 4);
  /* The message parses back; the update record is counted in the authority slot. */
  struct certbot_dns_msg p = {0};
  assert_int_equal(certbot_dnsmsg_parse(m.data, m.len, &p), 0);
  assert_int_equal(p.n_rrs, 1);
  assert_string_equal(p.rrs[0].name, "_acme-challenge.example.test");
  assert_int_equal(p.rrs[0].ttl, 120);
  char *back = NULL;
  assert_int_equal(certbot_dns_txt_rdata_decode(p.rrs[0].rdata, &back), 0);
  assert_string_equal(back, v);
  free(back);
  certbot_dnsmsg_free(&p);
  /* An empty TXT is one empty string. */
  buf_reset(&rd);
  assert_int_equal(certbot_dns_txt_rdata("", &rd), 0);
  assert_int_equal(rd.len, 1);
  buf_free(&rd);
  buf_free(&m);
}

static void test_caa(void **state) {
  (void)state;
  struct buf rd = BUF_INIT(4096);
  char *s = NULL;
  assert_int_equal(certbot_dns_caa_rdata(0, "issue", "letsencrypt.org", &rd), 0);
  assert_memory_equal(rd.data, "\x00\x05issueletsencrypt.org", rd.len);
  assert_int_equal(certbot_dns_caa_rdata_decode(buf_slice(&rd), &s), 0);
  assert_string_equal(s, "0 issue \"letsencrypt.org\"");
  free(s);
  buf_reset(&rd);
  assert_int_equal(certbot_dns_caa_rdata(0, "", "x", &rd), -EINVAL);
  assert_int_equal(certbot_dns_caa_rdata(0, "is sue", "x", &rd), -EINVAL);
  assert_int_equal(certbot_dns_caa_rdata(256, "issue", "x", &rd), -EINVAL);
  assert_int_equal(certbot_dns_caa_rdata(0, "abcdefghijklmnop", "x", &rd), -EINVAL);
  static const struct {
    const char *p;
    size_t n;
  } bad[] = {{"", 0}, {"\x00", 1}, {"\x00\x00", 2}, {"\x00\x06issue", 7}, {"\x00\x01i\x00", 4}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(certbot_dns_caa_rdata_decode(SLICE(bad[i].p, bad[i].n), &s), -EBADMSG);
  /* TXT rdata: a length past the end, a NUL inside. */
  assert_int_equal(certbot_dns_txt_rdata_decode(SLICE("\x05"
                                                      "abc",
                                                      4),
                                                &s),
                   -EBADMSG);
  assert_int_equal(certbot_dns_txt_rdata_decode(SLICE("\x02"
                                                      "a\x00",
                                                      3),
                                                &s),
                   -EBADMSG);
  buf_free(&rd);
}

static void put16(struct buf *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  assert_int_equal(buf_append(b, x, 2), 0);
}

/* Signs resp as a server answers a request whose MAC is req_mac (RFC 8945 4.3.1), written
 * here independently of dnsmsg.c. */
static void server_sign(struct buf *resp, const uint8_t req_mac[32], uint64_t t, uint16_t fudge,
                        const uint8_t *secret, size_t slen) {
  struct buf d = BUF_INIT(70000);
  put16(&d, 32);
  assert_int_equal(buf_append(&d, req_mac, 32), 0);
  assert_int_equal(buf_append(&d, resp->data, resp->len), 0);
  static const uint8_t keyname[] = "\x0b"
                                   "certbot-key";
  static const uint8_t alg[] = "\x0b"
                               "hmac-sha256";
  assert_int_equal(buf_append(&d, keyname, sizeof(keyname)), 0);
  put16(&d, 255);
  put16(&d, 0);
  put16(&d, 0);
  assert_int_equal(buf_append(&d, alg, sizeof(alg)), 0);
  put16(&d, (uint16_t)(t >> 32));
  put16(&d, (uint16_t)(t >> 16));
  put16(&d, (uint16_t)t);
  put16(&d, fudge);
  put16(&d, 0);
  put16(&d, 0);
  uint8_t mac[32];
  unsigned ml = 32;
  assert_non_null(HMAC(EVP_sha256(), secret, (int)slen, d.data, d.len, mac, &ml));
  uint16_t id = (uint16_t)((resp->data[0] << 8) | resp->data[1]);
  assert_int_equal(buf_append(resp, keyname, sizeof(keyname)), 0);
  put16(resp, 250);
  put16(resp, 255);
  put16(resp, 0);
  put16(resp, 0);
  put16(resp, (uint16_t)(sizeof(alg) + 10 + 32 + 6));
  assert_int_equal(buf_append(resp, alg, sizeof(alg)), 0);
  put16(resp, (uint16_t)(t >> 32));
  put16(resp, (uint16_t)(t >> 16));
  put16(resp, (uint16_t)t);
  put16(resp, fudge);
  put16(resp, 32);
  assert_int_equal(buf_append(resp, mac, 32), 0);
  put16(resp, id);
  put16(resp, 0);
  put16(resp, 0);
  resp->data[11]++;
  buf_free(&d);
}

static void make_resp(struct buf *r, uint16_t id) {
  buf_reset(r);
  assert_int_equal(certbot_dnsmsg_update_begin(id, "example.test", r), 0);
  r->data[2] |= 0x80; /* QR */
}

static int verify(struct buf *resp, const uint8_t req_mac[32], uint64_t now) {
  struct certbot_dns_msg m = {0};
  int r = certbot_dnsmsg_parse(resp->data, resp->len, &m);
  if (r >= 0)
    r = certbot_tsig_verify(resp->data, resp->len, &m, &KEY, req_mac, now);
  certbot_dnsmsg_free(&m);
  return r;
}

static void test_tsig(void **state) {
  (void)state;
  struct buf req = BUF_INIT(65535), resp = BUF_INIT(65535);
  uint8_t mac[32];
  uint64_t now = 1700000000;
  assert_int_equal(certbot_dnsmsg_update_begin(7, "example.test", &req), 0);
  size_t unsigned_len = req.len;
  assert_int_equal(certbot_tsig_sign(&req, &KEY, now, mac), 0);
  assert_int_equal(req.data[11], 1); /* ARCOUNT */
  /* The request MAC, recomputed independently: message + variables. */
  {
    struct buf d = BUF_INIT(4096);
    assert_int_equal(buf_append(&d, req.data, unsigned_len), 0);
    d.data[11] = 0;
    static const uint8_t keyname[] = "\x0b"
                                     "certbot-key";
    static const uint8_t alg[] = "\x0b"
                                 "hmac-sha256";
    assert_int_equal(buf_append(&d, keyname, sizeof(keyname)), 0);
    put16(&d, 255);
    put16(&d, 0);
    put16(&d, 0);
    assert_int_equal(buf_append(&d, alg, sizeof(alg)), 0);
    put16(&d, 0);
    put16(&d, (uint16_t)(now >> 16));
    put16(&d, (uint16_t)now);
    put16(&d, 300);
    put16(&d, 0);
    put16(&d, 0);
    uint8_t m2[32];
    unsigned ml = 32;
    assert_non_null(HMAC(EVP_sha256(), SECRET, 32, d.data, d.len, m2, &ml));
    assert_memory_equal(m2, mac, 32);
    buf_free(&d);
  }
  /* The signed request parses: the TSIG is last. */
  struct certbot_dns_msg m = {0};
  assert_int_equal(certbot_dnsmsg_parse(req.data, req.len, &m), 0);
  assert_true(m.has_tsig);
  certbot_dnsmsg_free(&m);

  make_resp(&resp, 7);
  server_sign(&resp, mac, now, 300, SECRET, 32);
  assert_int_equal(verify(&resp, mac, now), 0);
  assert_int_equal(verify(&resp, mac, now + 299), 0);
  assert_int_equal(verify(&resp, mac, now + 301), -EPERM); /* outside the fudge */
  uint8_t other[32];
  memcpy(other, mac, 32);
  other[0] ^= 1;
  assert_int_equal(verify(&resp, other, now), -EPERM); /* another request */
  resp.data[3] ^= 1;                                   /* a flipped bit in the header */
  assert_int_equal(verify(&resp, mac, now), -EPERM);
  /* Signed with another secret. */
  make_resp(&resp, 7);
  server_sign(&resp, mac, now, 300, (const uint8_t *)"another secret", 14);
  assert_int_equal(verify(&resp, mac, now), -EPERM);
  /* Unsigned. */
  make_resp(&resp, 7);
  assert_int_equal(verify(&resp, mac, now), -EPERM);
  buf_free(&req);
  buf_free(&resp);
}

static int parse(const void *p, size_t n) {
  struct certbot_dns_msg m = {0};
  int r = certbot_dnsmsg_parse(p, n, &m);
  certbot_dnsmsg_free(&m);
  return r;
}

#define HDR(an) "\x00\x01\x81\x80\x00\x01\x00" an "\x00\x00\x00\x00"
#define Q                                                                                          \
  "\x01"                                                                                           \
  "a\x00\x00\x10\x00\x01"

static void test_parse_answer(void **state) {
  (void)state;
  /* One TXT answer whose owner is a pointer to the question name. */
  static const uint8_t ok[] = HDR("\x01") Q "\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x03"
                                            "\x02hi";
  struct certbot_dns_msg m = {0};
  assert_int_equal(certbot_dnsmsg_parse(ok, sizeof(ok) - 1, &m), 0);
  assert_int_equal(m.n_answer, 1);
  assert_string_equal(m.rrs[0].name, "a");
  assert_int_equal(m.rrs[0].ttl, 60);
  char *v = NULL;
  assert_int_equal(certbot_dns_txt_rdata_decode(m.rrs[0].rdata, &v), 0);
  assert_string_equal(v, "hi");
  free(v);
  certbot_dnsmsg_free(&m);
}

static void test_parse_negative(void **state) {
  (void)state;
  static const struct {
    const char *p;
    size_t n;
    int err;
  } bad[] = {
      {"", 0, -EBADMSG},
      {"\x00\x01\x81\x80\x00\x00", 6, -EBADMSG},                        /* short header */
      {HDR("\x01"), 12, -EBADMSG},                                      /* question missing */
      {HDR("\x01") Q, 19, -EBADMSG},                                    /* answer missing */
      {HDR("\x01") Q "\xc0\x0c\x00\x10\x00\x01\x00\x00", 27, -EBADMSG}, /* short RR */
      {HDR("\x01") Q "\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x09\x02hi", 33, -EBADMSG},
      {HDR("\x01") Q "\xc0\x13\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x00", 31, -EBADMSG}, /* self */
      {HDR("\x01") Q "\xc0\x40\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x00", 31, -EBADMSG}, /* fwd */
      {HDR("\x01") Q "\x80\x00\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x00", 31, -EBADMSG}, /* 0x80 */
      {HDR("\x00") Q "x", 20, -EBADMSG},                                  /* trailing byte */
      {"\x00\x01\x81\x80\x00\x01\x01\x01\x00\x00\x00\x00", 12, -ENOBUFS}, /* 257 answers */
      {"\x00\x01\x81\x80\x00\x40\x00\x00\x00\x00\x00\x00", 12, -ENOBUFS}, /* 64 questions */
      {"\x00\x01\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x05"
       "ab",
       15, -EBADMSG}, /* label */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int r = parse(bad[i].p, bad[i].n);
    if (r != bad[i].err)
      fail_msg("case %zu: %d, expected %d", i, r, bad[i].err);
  }
  /* A TSIG that is not the last record. */
  static const uint8_t tsig_first[] = "\x00\x01\x81\x80\x00\x00\x00\x00\x00\x00\x00\x02"
                                      "\x00\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x00"
                                      "\x00\x00\x10\x00\x01\x00\x00\x00\x00\x00\x00";
  assert_int_equal(parse(tsig_first, sizeof(tsig_first) - 1), -EBADMSG);
  /* A name longer than 255 bytes through pointers to long labels. */
  struct buf b = BUF_INIT(4096);
  assert_int_equal(buf_append(&b, "\x00\x01\x81\x80\x00\x05\x00\x00\x00\x00\x00\x00", 12), 0);
  size_t prev = 0;
  for (int i = 0; i < 5; i++) {
    size_t here = b.len;
    uint8_t l = 60;
    assert_int_equal(buf_append_u8(&b, l), 0);
    for (int k = 0; k < 60; k++)
      assert_int_equal(buf_append_u8(&b, 'a'), 0);
    if (i == 0) {
      assert_int_equal(buf_append_u8(&b, 0), 0);
    } else {
      uint8_t ptr[2] = {(uint8_t)(0xc0 | (prev >> 8)), (uint8_t)prev};
      assert_int_equal(buf_append(&b, ptr, 2), 0);
    }
    assert_int_equal(buf_append(&b, "\x00\x10\x00\x01", 4), 0);
    prev = here;
  }
  assert_int_equal(parse(b.data, b.len), -EBADMSG);
  buf_free(&b);
}

static void test_wait_timeout(void **state) {
  (void)state;
  char err[256] = "";
  char *servers[] = {"127.0.0.1:1", NULL};
  struct timespec a, z;
  clock_gettime(CLOCK_MONOTONIC, &a);
  assert_int_equal(
      certbot_dns_wait_txt(servers, "_acme-challenge.example.test", "v", 400, err, sizeof(err)),
      -ETIMEDOUT);
  clock_gettime(CLOCK_MONOTONIC, &z);
  long ms = (z.tv_sec - a.tv_sec) * 1000 + (z.tv_nsec - a.tv_nsec) / 1000000;
  assert_true(ms >= 300 && ms < 3000);
  assert_non_null(strstr(err, "127.0.0.1:1"));
  char *none[] = {NULL};
  assert_int_equal(certbot_dns_wait_txt(none, "x", "v", 100, err, sizeof(err)), -EINVAL);
  struct buf resp = BUF_INIT(65535);
  assert_int_equal(certbot_dns_tcp_exchange("nocolon", SLICE("x", 1), 100, &resp), -EINVAL);
  assert_int_equal(certbot_dns_tcp_exchange("[::1", SLICE("x", 1), 100, &resp), -EINVAL);
  buf_free(&resp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name_encode),  cmocka_unit_test(test_update_message),
      cmocka_unit_test(test_caa),          cmocka_unit_test(test_tsig),
      cmocka_unit_test(test_parse_answer), cmocka_unit_test(test_parse_negative),
      cmocka_unit_test(test_wait_timeout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
