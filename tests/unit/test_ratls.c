#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/eventlog.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/tee.h"
#include "base/hex.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "ratls/ratls.h"
#include "ratls/ratls_verify.h"
#include "testutil.h"

/* --- inner OCTET STRING ------------------------------------------------------------------- */

static void test_wrap_unwrap_roundtrip(void **state) {
  (void)state;
  static const size_t lens[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 70000};
  for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
    _cleanup_buf_ struct buf data = BUF_INIT(1 << 20);
    _cleanup_buf_ struct buf w = BUF_INIT(1 << 20);
    assert_int_equal(buf_append_zero(&data, lens[i]), 0);
    for (size_t j = 0; j < lens[i]; j++)
      data.data[j] = (uint8_t)(j * 7 + 1);
    assert_int_equal(ratls_ext_wrap(data.data, data.len, &w), 0);
    assert_int_equal(w.data[0], 0x04);
    /* DER header sizes: 2 below 128, 3 up to 255, 4 up to 65535, 5 beyond. */
    size_t hdr = lens[i] < 128 ? 2 : lens[i] < 256 ? 3 : lens[i] < 65536 ? 4 : 5;
    assert_int_equal(w.len, hdr + lens[i]);
    struct slice s;
    assert_int_equal(ratls_ext_unwrap(w.data, w.len, 1 << 20, &s), 0);
    assert_int_equal(s.len, lens[i]);
    if (lens[i])
      assert_memory_equal(s.ptr, data.data, lens[i]);
    /* Cap: one byte less than the content is refused. */
    if (lens[i])
      assert_int_equal(ratls_ext_unwrap(w.data, w.len, lens[i] - 1, &s), -ENOBUFS);
    /* Truncated anywhere: malformed. */
    assert_int_equal(ratls_ext_unwrap(w.data, w.len - 1, 1 << 20, &s), -EBADMSG);
  }
}

static void test_unwrap_malformed(void **state) {
  (void)state;
  struct slice s;
  static const struct {
    const char *hex;
    int want;
  } cases[] = {
      {"", -EBADMSG},               /* empty */
      {"04", -EBADMSG},             /* no length */
      {"0401", -EBADMSG},           /* short content */
      {"040100ff", -EBADMSG},       /* trailing byte */
      {"0c0141", -EBADMSG},         /* UTF8String, not OCTET STRING */
      {"2403040141", -EBADMSG},     /* constructed OCTET STRING */
      {"048001410000", -EBADMSG},   /* indefinite length */
      {"04810141", -EBADMSG},       /* long form for a short length */
      {"0482000141", -EBADMSG},     /* leading zero length byte */
      {"0485000000000141", -EBADMSG}, /* 5 length bytes */
      {"0484ffffffff", -EBADMSG},   /* length beyond the input */
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(64);
    assert_int_equal(hex_decode_buf(cases[i].hex, strlen(cases[i].hex), false, &b), 0);
    assert_int_equal(ratls_ext_unwrap(b.data, b.len, 1 << 20, &s), cases[i].want);
  }
  assert_int_equal(ratls_ext_unwrap((const uint8_t *)"\x04\x01\x41", 3, 1, &s), 0);
  assert_int_equal(s.len, 1);
  assert_int_equal(s.ptr[0], 0x41);
}

/* --- certificates with a fake quote (no TEE) -------------------------------------------- */

static void make_ca(X509 **ret_cert, EVP_PKEY **ret_key) {
  assert_int_equal(key_p256_generate(ret_key), 0);
  struct x509_params p = {
      .subject_cn = "Test CA",
      .is_ca = true,
      .path_len = -1,
      .key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN,
      .skid_akid = true,
  };
  assert_int_equal(x509_cert_build(&p, *ret_key, NULL, NULL, ret_cert), 0);
}

/* The real dcap-qvl TDX quote with its report_data replaced (when rd != NULL). */
static void fake_quote(const uint8_t rd[64], struct buf *out) {
  _cleanup_buf_ struct buf raw = BUF_INIT(BUF_MAX_QUOTE);
  tu_read_vector("dcap-qvl/tdx_quote", false, &raw);
  struct quote q;
  assert_int_equal(quote_parse(raw.data, raw.len, &q), 0);
  if (rd)
    memcpy(q.td.report_data, rd, 64);
  buf_init(out, BUF_MAX_QUOTE);
  assert_int_equal(quote_encode(&q, out), 0);
}

static const char seed_log[] =
    "{\"imr\":3,\"event_type\":1,\"digest\":"
    "\"0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30\","
    "\"associated_data\":\"rootfs-hash\"}\n"
    "{\"imr\":3,\"event_type\":1,\"digest\":"
    "\"a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0\","
    "\"associated_data\":\"app-id\"}\n"
    "{\"imr\":3,\"event_type\":1,\"digest\":\"c0\",\"associated_data\":\"ca-cert-hash\"}\n";

static void test_cert_fake_quote_roundtrip(void **state) {
  (void)state;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_(X509_freep) X509 *cert = NULL;
  _cleanup_buf_ struct buf quote = {0};
  uint8_t rd[64];

  assert_int_equal(key_p256_generate(&key), 0);
  assert_int_equal(ratls_report_data_for_key(key, rd), 0);
  fake_quote(rd, &quote);

  struct ratls_cert_params p;
  ratls_cert_params_default(&p);
  p.org_name = "Phala";
  p.alt_subject = "app.example.com";
  p.app_info = (const uint8_t *)"info";
  p.app_info_len = 4;
  struct ratls_evidence ev = {.quote = quote.data,
                              .quote_len = quote.len,
                              .event_log = (const uint8_t *)seed_log,
                              .event_log_len = strlen(seed_log)};
  assert_int_equal(ratls_cert_build(&p, key, &ev, NULL, NULL, &cert), 0);

  /* Subject, SAN, not a CA, self-signed. */
  _cleanup_buf_ struct buf subj = BUF_INIT(1024);
  assert_int_equal(x509_cert_subject_string(cert, &subj), 0);
  assert_int_equal(buf_terminate(&subj), 0);
  assert_non_null(strstr((char *)subj.data, "CN=" RATLS_DEFAULT_CN));
  assert_non_null(strstr((char *)subj.data, "O=Phala"));
  char **sans = NULL;
  size_t n_sans = 0;
  assert_int_equal(x509_cert_dns_sans(cert, &sans, &n_sans), 0);
  assert_int_equal(n_sans, 1);
  assert_string_equal(sans[0], "app.example.com");
  x509_strv_free(sans);
  bool ca;
  int pl;
  int bc = x509_cert_basic_constraints(cert, &ca, &pl);
  assert_true(bc == -ENOENT || (bc == 0 && !ca));
  assert_int_equal(x509_cert_verify_signed_by(cert, key), 0);

  /* Extensions: order, non-critical, double-wrapped. */
  static const char *const oids[] = {RATLS_OID_QUOTE, RATLS_OID_EVENT_LOG, RATLS_OID_APP_INFO};
  int last = -1;
  for (size_t i = 0; i < ARRAY_SIZE(oids); i++) {
    _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(oids[i], 1);
    int pos = X509_get_ext_by_OBJ(cert, obj, -1);
    assert_true(pos > last);
    last = pos;
    struct slice v;
    bool crit = true;
    assert_int_equal(x509_cert_ext_find(cert, oids[i], &v, &crit), 0);
    assert_false(crit);
    assert_int_equal(v.ptr[0], 0x04);
  }

  _cleanup_ratls_attestation_ struct ratls_attestation a = {0};
  assert_int_equal(ratls_cert_attestation(cert, &a), 0);
  assert_int_equal(a.quote.len, quote.len);
  assert_memory_equal(a.quote.data, quote.data, quote.len);
  assert_int_equal(a.event_log.len, strlen(seed_log));
  assert_memory_equal(a.event_log.data, seed_log, strlen(seed_log));
  assert_int_equal(a.app_info.len, 4);
  assert_memory_equal(a.app_info.data, "info", 4);
  assert_int_equal(ratls_report_data_binds_key(cert, &a), 0);

  struct ratls_app_identity id;
  char why[256];
  assert_int_equal(ratls_attestation_identity(&a, RATLS_ID_ALLOW_SEED, &id, why, sizeof(why)),
                   RATLS_OK);
  assert_string_equal(id.app_id_hex, "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4");
  assert_string_equal(id.rootfs_hash_hex,
                      "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
  /* Seed-era names are not bound to digests: refused unless asked for. */
  assert_int_equal(ratls_attestation_identity(&a, 0, &id, why, sizeof(why)),
                   RATLS_R_SEED_LOG_NOT_ALLOWED);

  /* DER round trip keeps everything. */
  _cleanup_buf_ struct buf der = BUF_INIT(1 << 20);
  assert_int_equal(x509_cert_to_der(cert, &der), 0);
  _cleanup_(X509_freep) X509 *again = NULL;
  assert_int_equal(x509_cert_from_der(der.data, der.len, &again), 0);
  _cleanup_ratls_attestation_ struct ratls_attestation b = {0};
  assert_int_equal(ratls_cert_attestation(again, &b), 0);
  assert_int_equal(b.quote.len, quote.len);
  assert_int_equal(ratls_report_data_binds_key(again, &b), 0);
}

static void test_cert_signed_by_ca_and_binding(void **state) {
  (void)state;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL, *key = NULL, *other = NULL;
  _cleanup_(X509_freep) X509 *ca = NULL, *cert = NULL;
  _cleanup_buf_ struct buf quote = {0};
  make_ca(&ca, &ca_key);
  assert_int_equal(key_p256_generate(&key), 0);
  assert_int_equal(key_p256_generate(&other), 0);
  /* The quote binds a different key: extraction works, binding fails. */
  uint8_t rd[64];
  assert_int_equal(ratls_report_data_for_key(other, rd), 0);
  fake_quote(rd, &quote);

  struct ratls_cert_params p;
  ratls_cert_params_default(&p);
  p.subject_cn = "tproxy";
  p.ca_level = 1;
  struct ratls_evidence ev = {.quote = quote.data, .quote_len = quote.len};
  assert_int_equal(ratls_cert_build(&p, key, &ev, ca, ca_key, &cert), 0);
  assert_int_equal(x509_cert_verify_signed_by(cert, ca_key), 0);
  assert_int_equal(x509_cert_verify_signed_by(cert, key), -EBADMSG);
  bool is_ca = false;
  int path_len = -5;
  assert_int_equal(x509_cert_basic_constraints(cert, &is_ca, &path_len), 0);
  assert_true(is_ca);
  assert_int_equal(path_len, 1);

  _cleanup_ratls_attestation_ struct ratls_attestation a = {0};
  assert_int_equal(ratls_cert_attestation(cert, &a), 0);
  assert_int_equal(a.event_log.len, 0); /* present and empty */
  assert_int_equal(a.app_info.len, 0);  /* absent: empty */
  assert_int_equal(ratls_report_data_binds_key(cert, &a), -EPERM);
  struct ratls_app_identity id;
  assert_int_equal(ratls_attestation_identity(&a, RATLS_ID_ALLOW_SEED, &id, NULL, 0),
                   RATLS_R_MISSING_EVENT);

  /* A garbage quote does not bind anything. */
  buf_reset(&a.quote);
  assert_int_equal(buf_append(&a.quote, "garbage", 7), 0);
  assert_true(ratls_report_data_binds_key(cert, &a) < 0);
}

static void test_cert_build_rejects(void **state) {
  (void)state;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  X509 *cert = NULL;
  assert_int_equal(key_p256_generate(&key), 0);
  struct ratls_evidence ev = {0};
  assert_int_equal(ratls_cert_build(NULL, key, &ev, NULL, NULL, &cert), -EINVAL);
  _cleanup_buf_ struct buf big = BUF_INIT(RATLS_MAX_EVENT_LOG + 2);
  assert_int_equal(buf_append_zero(&big, RATLS_MAX_EVENT_LOG + 1), 0);
  ev = (struct ratls_evidence){.quote = big.data, .quote_len = RATLS_MAX_QUOTE + 1};
  assert_int_equal(ratls_cert_build(NULL, key, &ev, NULL, NULL, &cert), -ENOBUFS);
  ev = (struct ratls_evidence){.quote = big.data, .quote_len = 10, .event_log = big.data,
                               .event_log_len = RATLS_MAX_EVENT_LOG + 1};
  assert_int_equal(ratls_cert_build(NULL, key, &ev, NULL, NULL, &cert), -ENOBUFS);
  assert_null(cert);
}

/* A certificate with hand-made extensions, for the negative cases. */
static X509 *cert_with_exts(const struct x509_ext *exts, size_t n, EVP_PKEY *key) {
  struct x509_params p = {.subject_cn = "x", .path_len = -1, .exts = exts, .n_exts = n};
  X509 *c = NULL;
  assert_int_equal(x509_cert_build(&p, key, NULL, NULL, &c), 0);
  return c;
}

/* Duplicated extensions cannot be built directly (the builder refuses them): build with a
 * stand-in OID of the same encoded size and rename it in the DER. The signature breaks, which
 * extraction does not look at. */
#define STANDIN_OID "1.3.6.1.4.1.62397.1.99"
static X509 *cert_rename_oid(X509 *c, const char *from, const char *to) {
  _cleanup_buf_ struct buf der = BUF_INIT(4 << 20);
  assert_int_equal(x509_cert_to_der(c, &der), 0);
  uint8_t a[32], b[32];
  _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *oa = OBJ_txt2obj(from, 1);
  _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *ob = OBJ_txt2obj(to, 1);
  uint8_t *pa = a, *pb = b;
  int na = i2d_ASN1_OBJECT(oa, &pa), nb = i2d_ASN1_OBJECT(ob, &pb);
  assert_true(na > 0 && na == nb);
  int renamed = 0;
  for (size_t i = 0; i + (size_t)na <= der.len; i++)
    if (memcmp(der.data + i, a, (size_t)na) == 0) {
      memcpy(der.data + i, b, (size_t)na);
      renamed++;
    }
  assert_int_equal(renamed, 1);
  X509 *out = NULL;
  assert_int_equal(x509_cert_from_der(der.data, der.len, &out), 0);
  return out;
}

/* Adds an extension with OpenSSL directly (the builder caps extension sizes) and re-signs. */
static void cert_add_raw_ext(X509 *c, EVP_PKEY *key, const char *oid, const uint8_t *v,
                             size_t len) {
  _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
  _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
  assert_non_null(obj);
  assert_non_null(os);
  assert_int_equal(ASN1_OCTET_STRING_set(os, v, (int)len), 1);
  _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext =
      X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
  assert_non_null(ext);
  assert_int_equal(X509_add_ext(c, ext, -1), 1);
  assert_true(X509_sign(c, key, EVP_sha256()) > 0);
}

static void test_extract_rejects(void **state) {
  (void)state;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  assert_int_equal(key_p256_generate(&key), 0);
  struct ratls_attestation a;

  /* No extensions at all: no attestation. Event log alone: still none. */
  {
    _cleanup_(X509_freep) X509 *c = cert_with_exts(NULL, 0, key);
    assert_int_equal(ratls_cert_attestation(c, &a), -ENOENT);
    static const uint8_t ev[] = {0x04, 0x00};
    struct x509_ext e = {.oid = RATLS_OID_EVENT_LOG, .value = ev, .len = sizeof(ev)};
    _cleanup_(X509_freep) X509 *c2 = cert_with_exts(&e, 1, key);
    assert_int_equal(ratls_cert_attestation(c2, &a), -ENOENT);
  }
  /* Not double-wrapped: the raw bytes directly in extnValue. */
  {
    static const uint8_t raw[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    struct x509_ext e = {.oid = RATLS_OID_QUOTE, .value = raw, .len = sizeof(raw)};
    _cleanup_(X509_freep) X509 *c = cert_with_exts(&e, 1, key);
    assert_int_equal(ratls_cert_attestation(c, &a), -EBADMSG);
  }
  /* Trailing bytes after the inner OCTET STRING. */
  {
    static const uint8_t v[] = {0x04, 0x01, 0x41, 0x00};
    struct x509_ext e = {.oid = RATLS_OID_QUOTE, .value = v, .len = sizeof(v)};
    _cleanup_(X509_freep) X509 *c = cert_with_exts(&e, 1, key);
    assert_int_equal(ratls_cert_attestation(c, &a), -EBADMSG);
  }
  /* Duplicated quote extension. */
  {
    static const uint8_t v[] = {0x04, 0x01, 0x41};
    struct x509_ext e[2] = {{.oid = RATLS_OID_QUOTE, .value = v, .len = sizeof(v)},
                            {.oid = STANDIN_OID, .value = v, .len = sizeof(v)}};
    _cleanup_(X509_freep) X509 *c0 = cert_with_exts(e, 2, key);
    assert_int_equal(ratls_cert_attestation(c0, &a), 0); /* sanity: fine before renaming */
    ratls_attestation_free(&a);
    _cleanup_(X509_freep) X509 *c = cert_rename_oid(c0, STANDIN_OID, RATLS_OID_QUOTE);
    assert_int_equal(ratls_cert_attestation(c, &a), -EBADMSG);
  }
  /* Duplicated event log, malformed app info: the whole extraction fails. */
  {
    static const uint8_t v[] = {0x04, 0x01, 0x41};
    static const uint8_t bad[] = {0x04, 0x05, 0x41};
    struct x509_ext e[3] = {{.oid = RATLS_OID_QUOTE, .value = v, .len = sizeof(v)},
                            {.oid = RATLS_OID_EVENT_LOG, .value = v, .len = sizeof(v)},
                            {.oid = STANDIN_OID, .value = v, .len = sizeof(v)}};
    _cleanup_(X509_freep) X509 *c0 = cert_with_exts(e, 3, key);
    _cleanup_(X509_freep) X509 *c = cert_rename_oid(c0, STANDIN_OID, RATLS_OID_EVENT_LOG);
    assert_int_equal(ratls_cert_attestation(c, &a), -EBADMSG);
    e[2] = (struct x509_ext){.oid = RATLS_OID_APP_INFO, .value = bad, .len = sizeof(bad)};
    _cleanup_(X509_freep) X509 *c2 = cert_with_exts(e, 3, key);
    assert_int_equal(ratls_cert_attestation(c2, &a), -EBADMSG);
  }
  /* Caps: quote 64 KiB, event log 1 MiB, app info 64 KiB; exactly the cap is fine, one byte
   * more is refused. */
  {
    static const struct {
      const char *oid;
      size_t cap;
    } caps[] = {{RATLS_OID_QUOTE, RATLS_MAX_QUOTE},
                {RATLS_OID_EVENT_LOG, RATLS_MAX_EVENT_LOG},
                {RATLS_OID_APP_INFO, RATLS_MAX_APP_INFO}};
    static const uint8_t q[] = {0x04, 0x01, 0x41};
    for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
      for (size_t extra = 0; extra <= 1; extra++) {
        _cleanup_buf_ struct buf data = BUF_INIT(RATLS_MAX_EVENT_LOG + 2);
        _cleanup_buf_ struct buf w = BUF_INIT(RATLS_MAX_EVENT_LOG + 16);
        assert_int_equal(buf_append_zero(&data, caps[i].cap + extra), 0);
        assert_int_equal(ratls_ext_wrap(data.data, data.len, &w), 0);
        bool is_quote = strcmp(caps[i].oid, RATLS_OID_QUOTE) == 0;
        struct x509_ext e = {.oid = RATLS_OID_QUOTE, .value = q, .len = sizeof(q)};
        _cleanup_(X509_freep) X509 *c =
            cert_with_exts(is_quote ? NULL : &e, is_quote ? 0 : 1, key);
        cert_add_raw_ext(c, key, caps[i].oid, w.data, w.len);
        if (extra) {
          assert_int_equal(ratls_cert_attestation(c, &a), -ENOBUFS);
        } else {
          assert_int_equal(ratls_cert_attestation(c, &a), 0);
          size_t got = is_quote ? a.quote.len
                       : strcmp(caps[i].oid, RATLS_OID_EVENT_LOG) == 0 ? a.event_log.len
                                                                      : a.app_info.len;
          assert_int_equal(got, caps[i].cap);
          ratls_attestation_free(&a);
        }
      }
  }

}

static void test_app_id_bad_log(void **state) {
  (void)state;
  _cleanup_ratls_attestation_ struct ratls_attestation a = {0};
  ratls_attestation_init(&a);
  struct ratls_app_identity id;
  assert_int_equal(buf_append_str(&a.event_log, seed_log), 0);
  assert_int_equal(buf_append_str(&a.event_log, "not json\n"), 0);
  /* one bad line fails the lookup */
  assert_int_equal(ratls_attestation_identity(&a, RATLS_ID_ALLOW_SEED, &id, NULL, 0),
                   RATLS_R_BAD_EVENT_LOG);
  buf_reset(&a.event_log);
  /* app-id on another IMR does not count. */
  assert_int_equal(buf_append_str(&a.event_log,
                                  "{\"imr\":2,\"event_type\":1,\"digest\":\"aa\","
                                  "\"associated_data\":\"app-id\"}\n"),
                   0);
  assert_int_equal(ratls_attestation_identity(&a, RATLS_ID_ALLOW_SEED, &id, NULL, 0),
                   RATLS_R_MISSING_EVENT);
}

/* --- with the simulator -------------------------------------------------------------------- */

static void test_generate_with_simulator(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  assert_int_equal(sim_platform_init(dir, NULL), 0);
  struct tee *tee = NULL;
  assert_int_equal(setenv(TEE_ENV_SIM_DIR, dir, 1), 0);
  assert_int_equal(tee_open("sim", &tee), 0);

  uint8_t d[48] = {0};
  assert_int_equal(tee_extend_event(tee, 3, 1, d, "rootfs-hash"), 0);
  memset(d, 0xab, 32);
  assert_int_equal(tee_extend_event(tee, 3, 1, d, "app-id"), 0);
  assert_int_equal(tee_extend_event(tee, 3, 1, d, "ca-cert-hash"), 0);

  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL, *key = NULL;
  _cleanup_(X509_freep) X509 *ca = NULL, *cert = NULL;
  make_ca(&ca, &ca_key);
  assert_int_equal(ratls_cert_generate(NULL, tee, ca, ca_key, &cert, &key), 0);
  assert_int_equal(key_get_type(key), KEY_TYPE_P256);
  assert_int_equal(x509_cert_verify_signed_by(cert, ca_key), 0);
  _cleanup_buf_ struct buf cn = BUF_INIT(256);
  assert_int_equal(x509_cert_subject_cn(cert, &cn), 0);
  assert_int_equal(buf_terminate(&cn), 0);
  assert_string_equal((char *)cn.data, RATLS_DEFAULT_CN);

  _cleanup_ratls_attestation_ struct ratls_attestation a = {0};
  assert_int_equal(ratls_cert_attestation(cert, &a), 0);
  assert_int_equal(ratls_report_data_binds_key(cert, &a), 0);
  struct quote q;
  assert_int_equal(quote_parse(a.quote.data, a.quote.len, &q), 0);
  assert_int_equal(q.version, 4);

  /* The event log is the simulator's file, byte for byte, and replays to the quote's RTMRs. */
  char *path = NULL;
  assert_int_equal(tee_eventlog_path(tee, &path), 0);
  _cleanup_buf_ struct buf file = BUF_INIT(RATLS_MAX_EVENT_LOG);
  tu_read_file(path, &file);
  free(path);
  assert_int_equal(a.event_log.len, file.len);
  assert_memory_equal(a.event_log.data, file.data, file.len);
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  assert_int_equal(
      eventlog_parse_json((const char *)a.event_log.data, a.event_log.len, &log), 0);
  uint8_t rtmr[4][48];
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  for (int i = 0; i < 4; i++)
    assert_memory_equal(rtmr[i], q.td.rt_mr[i], 48);

  struct ratls_app_identity id;
  assert_int_equal(ratls_attestation_identity(&a, RATLS_ID_ALLOW_SEED, &id, NULL, 0), RATLS_OK);
  assert_string_equal(id.app_id_hex, "abababababababababababababababababababab");

  /* Self-signed variant. */
  _cleanup_(X509_freep) X509 *self = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key2 = NULL;
  assert_int_equal(ratls_cert_generate(NULL, tee, NULL, NULL, &self, &key2), 0);
  assert_int_equal(x509_cert_verify_signed_by(self, key2), 0);

  tee_free(tee);
  unsetenv(TEE_ENV_SIM_DIR);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wrap_unwrap_roundtrip),
      cmocka_unit_test(test_unwrap_malformed),
      cmocka_unit_test(test_cert_fake_quote_roundtrip),
      cmocka_unit_test(test_cert_signed_by_ca_and_binding),
      cmocka_unit_test(test_cert_build_rejects),
      cmocka_unit_test(test_extract_rejects),
      cmocka_unit_test(test_app_id_bad_log),
      cmocka_unit_test(test_generate_with_simulator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
