/* tappd key derivation and certificates: DeriveKey (newest: HKDF over the k256 app key; seed:
 * over the app CA's P-256 scalar), GetTlsKey, GetKey/DeriveK256Key, Sign, Verify.
 * Expected keys were computed independently with Python's cryptography (HKDF-SHA256, salt
 * "RATLS") from the same app keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attest/quote.h"
#include "attest/sim.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/keccak.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "tappd_dev.h"
#include "ratls/ratls.h"
#include "tappd.h"
#include "testutil.h"

/* Upstream's test k256 key (guest-agent rpc_service tests). */
static const char K256_HEX[] = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";
static const char K256_PUB[] = "0375427ab8309aad26beea8142edf427674e4544604ae4dc5045108ad21fc8a0db";

struct fx {
  char *dir;
  struct tappd_config cfg;
  struct tappd *t;
};

/* A dev directory whose appkeys.json carries K256_HEX (seed = false) or, seed = true, no
 * appkeys.json but a seed-era app CA (scalar 01 02 .. 20) in cert_file / key_file. */
static struct fx *fx_new(bool seed) {
  struct fx *f = calloc(1, sizeof(*f));
  char err[256] = "";
  f->dir = tu_mkdtemp();
  assert_int_equal(tappd_dev_prepare(f->dir, err, sizeof(err)), 0);
  assert_int_equal(tappd_config_init_dev(&f->cfg, f->dir, NULL, 0), 0);
  if (seed) {
    uint8_t s[32];
    for (int i = 0; i < 32; i++)
      s[i] = (uint8_t)(i + 1);
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    assert_int_equal(key_p256_from_scalar(s, &k), 0);
    struct x509_params p = {.subject_cn = "Seed App CA", .subject_org = "Test", .is_ca = true,
                            .path_len = -1, .serial_from_spki = true};
    assert_int_equal(x509_cert_build(&p, k, NULL, k, &c), 0);
    struct buf cp = BUF_INIT(16384), kp = BUF_INIT(16384);
    assert_int_equal(x509_cert_to_pem(c, &cp), 0);
    assert_int_equal(key_to_pkcs8_pem(k, &kp), 0);
    assert_int_equal(file_write_atomic(f->cfg.cert_file, cp.data, cp.len, 0644), 0);
    assert_int_equal(file_write_atomic(f->cfg.key_file, kp.data, kp.len, 0600), 0);
    assert_int_equal(unlink(f->cfg.keys_file), 0);
    buf_free(&cp);
    buf_free(&kp);
    X509_free(c);
    EVP_PKEY_free(k);
  } else {
    struct buf b = BUF_INIT(1 << 20);
    tu_read_file(f->cfg.keys_file, &b);
    json_t *j = NULL;
    assert_int_equal(json_parse_buf((const char *)b.data, b.len, 1 << 20, &j), 0);
    assert_int_equal(json_set_str(j, "k256_key", K256_HEX), 0);
    buf_reset(&b);
    assert_int_equal(json_dump_buf(j, JSON_INDENT(2), &b), 0);
    assert_int_equal(file_write_atomic(f->cfg.keys_file, b.data, b.len, 0600), 0);
    json_decref(j);
    buf_free(&b);
  }
  assert_int_equal(tappd_new(&f->cfg, &f->t, err, sizeof(err)), 0);
  return f;
}

static void fx_free(struct fx *f) {
  tappd_free(f->t);
  tappd_config_free(&f->cfg);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
}

static void assert_hex(const uint8_t *p, size_t n, const char *want) {
  char *h = hex_encode_alloc(p, n);
  assert_string_equal(h, want);
  free(h);
}

static X509 *pem_cert(const char *pem) {
  X509 *c = NULL;
  assert_int_equal(x509_cert_from_pem(pem, strlen(pem), &c), 0);
  return c;
}

static void assert_cert_key(X509 *c, const char *want_point_hex) {
  EVP_PKEY *pub = NULL;
  uint8_t pt[65];
  assert_int_equal(x509_cert_public_key(c, &pub), 0);
  assert_int_equal(key_ec_public_point(pub, pt), 0);
  assert_hex(pt, 65, want_point_hex);
  EVP_PKEY_free(pub);
}

static void assert_issued_by_ca(struct fx *f, X509 *leaf, const char *ca_pem) {
  assert_string_equal(ca_pem, f->t->keys.ca_pem);
  EVP_PKEY *ca_pub = NULL;
  assert_int_equal(x509_cert_public_key(f->t->keys.ca_cert, &ca_pub), 0);
  assert_int_equal(x509_cert_verify_signed_by(leaf, ca_pub), 0);
  EVP_PKEY_free(ca_pub);
  struct buf a = BUF_INIT(4096), b = BUF_INIT(4096);
  assert_int_equal(x509_cert_issuer_string(leaf, &a), 0);
  assert_int_equal(x509_cert_subject_string(f->t->keys.ca_cert, &b), 0);
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.data, b.data, a.len);
  buf_free(&a);
  buf_free(&b);
}

static void test_derive_key_k256(void **state) {
  (void)state;
  struct fx *f = fx_new(false);
  char *alt[] = {"app.example.com", "*.example.com"};
  struct tappd_cert_req req = {.subject = "my-app", .alt_names = alt, .n_alt_names = 2,
                               .usage_server_auth = true};
  struct tappd_tls_key k;
  char *err = NULL;
  assert_int_equal(tappd_derive_key(f->t, "/test", false, &req, &k, &err), 0);
  assert_null(err);
  assert_true(str_startswith(k.key_pem, "-----BEGIN PRIVATE KEY-----\n"));
  EVP_PKEY *key = NULL;
  uint8_t scalar[32];
  assert_int_equal(key_from_pem_or_der(k.key_pem, strlen(k.key_pem), &key), 0);
  assert_int_equal(key_ec_private_scalar(key, scalar), 0);
  assert_hex(scalar, 32, "91218f609963e4f304f8bffcc902288319d03f45d81e3359248f42b6d5dc5b20");
  EVP_PKEY_free(key);
  assert_int_equal(strv_length(k.chain), 2);
  X509 *leaf = pem_cert(k.chain[0]);
  assert_cert_key(leaf, "04aa85bbbd33f9c2f4ac6f1cc4ca87ee6e3ca72491b6b846a0fa0f5ae6a1695bee9e24a3701414"
                        "a18d0ed662a8d5b80fd9a69224a5bc12be38cbbec6518138c76e");
  assert_issued_by_ca(f, leaf, k.chain[1]);
  /* Newest shape: CN, SANs, KeyUsage digitalSignature, EKU serverAuth, usage extension,
   * ten-year validity, no quote. */
  struct buf cn = BUF_INIT(256);
  assert_int_equal(x509_cert_subject_cn(leaf, &cn), 0);
  assert_int_equal(cn.len, 6);
  assert_memory_equal(cn.data, "my-app", 6);
  char **sans = NULL;
  size_t n = 0;
  assert_int_equal(x509_cert_dns_sans(leaf, &sans, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(sans[0], "app.example.com");
  assert_string_equal(sans[1], "*.example.com");
  x509_strv_free(sans);
  unsigned ku;
  assert_int_equal(x509_cert_key_usage(leaf, &ku), 0);
  assert_int_equal(ku, X509_KU_DIGITAL_SIGNATURE);
  assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
  assert_false(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT);
  struct buf usage = BUF_INIT(256);
  assert_int_equal(x509_cert_ext_get(leaf, "1.3.6.1.4.1.62397.1.4", &usage), 0);
  struct slice u;
  assert_int_equal(ratls_ext_unwrap(usage.data, usage.len, 256, &u), 0);
  assert_true(slice_eq_str(u, "app:custom"));
  struct buf q = BUF_INIT(1 << 16);
  assert_int_equal(x509_cert_ext_get(leaf, RATLS_OID_QUOTE, &q), -ENOENT);
  int64_t nb, na;
  assert_int_equal(x509_cert_validity(leaf, &nb, &na), 0);
  assert_int_equal(nb, X509_RCGEN_NOT_BEFORE);
  int64_t ten = (int64_t)time(NULL) + 86400LL * 3650;
  assert_true(na > ten - 120 && na < ten + 120);
  buf_free(&cn);
  buf_free(&usage);
  buf_free(&q);
  X509_free(leaf);
  tappd_tls_key_free(&k);

  /* Deterministic per path; different paths, different keys. */
  struct tappd_tls_key k2, k3;
  assert_int_equal(tappd_derive_key(f->t, "/test", false, &req, &k2, &err), 0);
  assert_int_equal(tappd_derive_key(f->t, "", false, &req, &k3, &err), 0);
  assert_string_equal(k2.key_pem, k2.key_pem);
  X509 *c2 = pem_cert(k2.chain[0]), *c3 = pem_cert(k3.chain[0]);
  assert_cert_key(c2, "04aa85bbbd33f9c2f4ac6f1cc4ca87ee6e3ca72491b6b846a0fa0f5ae6a1695bee9e24a3701414"
                      "a18d0ed662a8d5b80fd9a69224a5bc12be38cbbec6518138c76e");
  assert_cert_key(c3, "041cbac351a32771542c7a4c649987d3cdfdce8ef2583d3847d8c7cccb48afc0f518f6b6378c61"
                      "a05643a8598872740f90b4208882092ecec262e792d9bf5d8bcc");
  X509_free(c2);
  X509_free(c3);
  tappd_tls_key_free(&k2);
  tappd_tls_key_free(&k3);

  /* random_seed: a fresh key every time. */
  struct tappd_tls_key r1, r2;
  assert_int_equal(tappd_derive_key(f->t, "/test", true, &req, &r1, &err), 0);
  assert_int_equal(tappd_derive_key(f->t, "/test", true, &req, &r2, &err), 0);
  assert_string_not_equal(r1.key_pem, r2.key_pem);
  tappd_tls_key_free(&r1);
  tappd_tls_key_free(&r2);
  fx_free(f);
}

static void test_derive_key_seed_era(void **state) {
  (void)state;
  struct fx *f = fx_new(true);
  assert_false(f->t->keys.has_k256);
  struct tappd_cert_req req = {.subject = "seed"};
  struct tappd_tls_key k;
  char *err = NULL;
  assert_int_equal(tappd_derive_key(f->t, "/seed", false, &req, &k, &err), 0);
  X509 *leaf = pem_cert(k.chain[0]);
  assert_cert_key(leaf, "04009fe472979f31bd5542bc3b64655b83b5df9ab2e05993ba631649e30d124e5d65b6842ccd"
                        "35fc5f456f612bed19cd72c5819ff60e9bf9abebb474b16fa80813");
  assert_issued_by_ca(f, leaf, k.chain[1]);
  /* rcgen defaults: 1975..4096, no KeyUsage, no SAN, serial = SHA-256(SPKI)[0..20]. */
  int64_t nb, na;
  assert_int_equal(x509_cert_validity(leaf, &nb, &na), 0);
  assert_int_equal(nb, X509_RCGEN_NOT_BEFORE);
  assert_int_equal(na, X509_RCGEN_NOT_AFTER);
  unsigned ku;
  assert_int_equal(x509_cert_key_usage(leaf, &ku), -ENOENT);
  char **sans = NULL;
  size_t n = 9;
  assert_int_equal(x509_cert_dns_sans(leaf, &sans, &n), 0);
  assert_int_equal(n, 0);
  x509_strv_free(sans);
  struct buf serial = BUF_INIT(64);
  assert_int_equal(x509_cert_serial(leaf, &serial), 0);
  assert_true(serial.len >= 19 && serial.len <= 20);
  X509_free(leaf);
  tappd_tls_key_free(&k);
  buf_free(&serial);

  /* No k256 key: GetKey and Sign fail cleanly. */
  struct tappd_key gk;
  assert_int_equal(tappd_get_key(f->t, "/x", "p", "", &gk, &err), -ENOKEY);
  assert_non_null(err);
  free(err);
  fx_free(f);
}

static void test_ra_tls_cert(void **state) {
  (void)state;
  struct fx *f = fx_new(false);
  struct tappd_cert_req req = {.subject = "ra", .usage_ra_tls = true, .usage_client_auth = true};
  struct tappd_tls_key k;
  char *err = NULL;
  assert_int_equal(tappd_get_tls_key(f->t, &req, &k, &err), 0);
  X509 *leaf = pem_cert(k.chain[0]);
  struct ratls_attestation a;
  assert_int_equal(ratls_cert_attestation(leaf, &a), 0);
  struct quote q;
  assert_int_equal(quote_parse(a.quote.data, a.quote.len, &q), 0);
  /* report_data = SHA-512("ratls-cert:" || SPKI DER) */
  struct buf m = BUF_INIT(4096);
  assert_int_equal(buf_append_str(&m, "ratls-cert:"), 0);
  assert_int_equal(x509_cert_spki_der(leaf, &m), 0);
  uint8_t want[64];
  sha512(m.data, m.len, want);
  assert_memory_equal(quote_report_data(&q), want, 64);
  /* The event log in the certificate replays to the quote's RTMRs. */
  struct eventlog log;
  uint8_t rtmr[4][48];
  assert_int_equal(eventlog_parse_json((const char *)a.event_log.data, a.event_log.len, &log), 0);
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  assert_memory_equal(rtmr, q.td.rt_mr, sizeof(rtmr));
  assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT);
  eventlog_free(&log);
  ratls_attestation_free(&a);
  buf_free(&m);
  X509_free(leaf);
  tappd_tls_key_free(&k);

  /* GetTlsKey: random keys, explicit validity. */
  struct tappd_cert_req req2 = {.subject = "v", .has_not_before = true, .not_before = 1700000000,
                                .has_not_after = true, .not_after = 1800000000};
  assert_int_equal(tappd_get_tls_key(f->t, &req2, &k, &err), 0);
  leaf = pem_cert(k.chain[0]);
  int64_t nb, na;
  assert_int_equal(x509_cert_validity(leaf, &nb, &na), 0);
  assert_int_equal(nb, 1700000000);
  assert_int_equal(na, 1800000000);
  X509_free(leaf);
  tappd_tls_key_free(&k);
  fx_free(f);
}

static void test_cert_request_rejects(void **state) {
  (void)state;
  struct fx *f = fx_new(false);
  struct tappd_tls_key k;
  char *err = NULL;
  char *bad_alt[] = {"has space.example"};
  struct tappd_cert_req req = {.subject = "x", .alt_names = bad_alt, .n_alt_names = 1};
  assert_int_equal(tappd_derive_key(f->t, "/p", false, &req, &k, &err), -EINVAL);
  assert_non_null(err);
  free(err);
  err = NULL;
  char longsubj[400];
  memset(longsubj, 'a', sizeof(longsubj) - 1);
  longsubj[sizeof(longsubj) - 1] = 0;
  struct tappd_cert_req req2 = {.subject = longsubj};
  assert_int_equal(tappd_get_tls_key(f->t, &req2, &k, &err), -EINVAL);
  free(err);
  err = NULL;
  char *longpath = malloc(TAPPD_MAX_PATH + 2);
  memset(longpath, 'p', TAPPD_MAX_PATH + 1);
  longpath[TAPPD_MAX_PATH + 1] = 0;
  struct tappd_cert_req req3 = {.subject = "x"};
  assert_int_equal(tappd_derive_key(f->t, longpath, false, &req3, &k, &err), -EINVAL);
  free(err);
  free(longpath);
  err = NULL;
  struct tappd_cert_req req4 = {.subject = "x", .has_not_before = true, .not_before = 20,
                                .has_not_after = true, .not_after = 10};
  assert_int_equal(tappd_get_tls_key(f->t, &req4, &k, &err), -EINVAL);
  free(err);
  fx_free(f);
}

static void test_get_key(void **state) {
  (void)state;
  struct fx *f = fx_new(false);
  struct tappd_key k;
  char *err = NULL;
  assert_int_equal(tappd_get_key(f->t, "/test", "sign", "", &k, &err), 0);
  assert_hex(k.key, 32, "91218f609963e4f304f8bffcc902288319d03f45d81e3359248f42b6d5dc5b20");
  assert_int_equal(k.pub_len, 33);
  assert_hex(k.pub, 33, "02723a0e20d7a509f3e94713cceb811ba026d474ea9123a3b11b9b1b6bec6c9620");
  /* sig[0] recovers to the app k256 key over Keccak256("sign:<pub hex>"). */
  char msg[128];
  snprintf(msg, sizeof(msg), "sign:%s", "02723a0e20d7a509f3e94713cceb811ba026d474ea9123a3b11b9b1b6bec6c9620");
  uint8_t h[32], rec[33];
  keccak256(msg, strlen(msg), h);
  assert_int_equal(key_secp256k1_recover(h, k.sig, rec), 0);
  assert_hex(rec, 33, K256_PUB);
  /* sig[1] is the KMS signature from appkeys.json: the demo KMS over app_id || app pubkey. */
  assert_int_equal(k.kms_sig.len, 65);
  tappd_key_free(&k);

  assert_int_equal(tappd_get_key(f->t, "/test", "sign", "k256", &k, &err), 0);
  assert_hex(k.key, 32, "91218f609963e4f304f8bffcc902288319d03f45d81e3359248f42b6d5dc5b20");
  tappd_key_free(&k);
  assert_int_equal(tappd_get_key(f->t, "/test", "", "ed25519", &k, &err), 0);
  assert_int_equal(k.pub_len, 32);
  assert_hex(k.pub, 32, "acde3eec6851011c3e3b1ff637821e7cf58be69ee73c7723dba47c5cc29a7293");
  tappd_key_free(&k);
  assert_int_equal(tappd_get_key(f->t, "/test", "", "rsa", &k, &err), -EINVAL);
  assert_non_null(err);
  free(err);
  fx_free(f);
}

/* Results come from a bounded cache on repeated requests: they must equal freshly computed
 * ones, also after their entries were evicted (more distinct requests than the cache holds),
 * and requests differing in any field must not share an entry. */
static void test_key_cache(void **state) {
  (void)state;
  struct fx *f = fx_new(false);
  char *err = NULL;
  struct tappd_key k0, k;
  assert_int_equal(tappd_get_key(f->t, "/test", "sign", "", &k0, &err), 0);
  assert_hex(k0.key, 32, "91218f609963e4f304f8bffcc902288319d03f45d81e3359248f42b6d5dc5b20");
  /* Field boundaries are part of the name: ("/test","sign") vs ("/tes","tsign"). */
  assert_int_equal(tappd_get_key(f->t, "/tes", "tsign", "", &k, &err), 0);
  assert_memory_not_equal(k.key, k0.key, 32);
  tappd_key_free(&k);
  assert_int_equal(tappd_get_key(f->t, "/test", "sign2", "", &k, &err), 0);
  assert_memory_equal(k.key, k0.key, 32);
  assert_memory_not_equal(k.sig, k0.sig, 65); /* the purpose is signed */
  tappd_key_free(&k);
  assert_int_equal(tappd_get_key(f->t, "/test", "sign", "ed25519", &k, &err), 0);
  assert_int_equal(k.pub_len, 32);
  tappd_key_free(&k);

  struct tappd_cert_req req = {.subject = "c"};
  struct tappd_tls_key d0, d;
  assert_int_equal(tappd_derive_key(f->t, "/test", false, &req, &d0, &err), 0);
  /* Far more distinct requests than the cache holds. */
  for (int i = 0; i < 1500; i++) {
    char path[32];
    snprintf(path, sizeof(path), "/p%d", i);
    assert_int_equal(tappd_get_key(f->t, path, "sign", "", &k, &err), 0);
    tappd_key_free(&k);
    if (i % 3 == 0) {
      assert_int_equal(tappd_derive_key(f->t, path, false, &req, &d, &err), 0);
      tappd_tls_key_free(&d);
    }
  }
  for (int pass = 0; pass < 2; pass++) { /* evicted, then cached again */
    assert_int_equal(tappd_get_key(f->t, "/test", "sign", "", &k, &err), 0);
    assert_memory_equal(k.key, k0.key, 32);
    assert_memory_equal(k.pub, k0.pub, 33);
    assert_memory_equal(k.sig, k0.sig, 65);
    assert_int_equal(k.kms_sig.len, k0.kms_sig.len);
    tappd_key_free(&k);
    assert_int_equal(tappd_derive_key(f->t, "/test", false, &req, &d, &err), 0);
    assert_string_equal(d.key_pem, d0.key_pem);
    X509 *c = pem_cert(d.chain[0]);
    assert_cert_key(c, "04aa85bbbd33f9c2f4ac6f1cc4ca87ee6e3ca72491b6b846a0fa0f5ae6a1695bee9e24a3701414"
                       "a18d0ed662a8d5b80fd9a69224a5bc12be38cbbec6518138c76e");
    assert_issued_by_ca(f, c, d.chain[1]);
    X509_free(c);
    tappd_tls_key_free(&d);
  }
  /* Requests too long to be kept: computed every time, the same result. */
  char longpath[600];
  memset(longpath, 'q', sizeof(longpath) - 1);
  longpath[sizeof(longpath) - 1] = 0;
  struct tappd_key l1, l2;
  assert_int_equal(tappd_get_key(f->t, longpath, "sign", "", &l1, &err), 0);
  assert_int_equal(tappd_get_key(f->t, longpath, "sign", "", &l2, &err), 0);
  assert_memory_equal(l1.key, l2.key, 32);
  assert_memory_equal(l1.sig, l2.sig, 65);
  assert_memory_not_equal(l1.key, k0.key, 32);
  tappd_key_free(&l1);
  tappd_key_free(&l2);
  assert_int_equal(tappd_derive_key(f->t, longpath, false, &req, &d, &err), 0);
  struct tappd_tls_key d2;
  assert_int_equal(tappd_derive_key(f->t, longpath, false, &req, &d2, &err), 0);
  assert_string_equal(d.key_pem, d2.key_pem);
  tappd_tls_key_free(&d);
  tappd_tls_key_free(&d2);
  /* A DeriveKey path and a GetKey path of the same text are different entries. */
  assert_int_equal(tappd_derive_key(f->t, "/p3", false, &req, &d, &err), 0);
  assert_int_equal(tappd_get_key(f->t, "/p3", "", "", &k, &err), 0);
  assert_true(str_startswith(d.key_pem, "-----BEGIN PRIVATE KEY-----"));
  tappd_key_free(&k);
  tappd_tls_key_free(&d);
  tappd_key_free(&k0);
  tappd_tls_key_free(&d0);
  assert_null(err);
  fx_free(f);
}

/* GetTlsKey with_app_info: the app-info extension holds the MessagePack map upstream writes
 * (field name -> bytes), with the values Info reports. */
static const uint8_t *mp_get(const uint8_t *p, size_t n, const char *name, size_t *ret_len) {
  size_t i = 1; /* after the fixmap byte */
  while (i < n) {
    size_t kl = p[i] & 0x1f;
    const uint8_t *k = p + i + 1;
    i += 1 + kl;
    size_t vl;
    if (p[i] == 0xc4) {
      vl = p[i + 1];
      i += 2;
    } else {
      assert_int_equal(p[i], 0xc5);
      vl = ((size_t)p[i + 1] << 8) | p[i + 2];
      i += 3;
    }
    if (kl == strlen(name) && memcmp(k, name, kl) == 0) {
      *ret_len = vl;
      return p + i;
    }
    i += vl;
  }
  return NULL;
}

static void test_tls_key_app_info(void **state) {
  (void)state;
  struct fx *f = fx_new(false);
  char *err = NULL;
  struct tappd_cert_req req = {.subject = "with-info", .with_app_info = true};
  struct tappd_tls_key k;
  assert_int_equal(tappd_get_tls_key(f->t, &req, &k, &err), 0);
  X509 *leaf = pem_cert(k.chain[0]);
  assert_issued_by_ca(f, leaf, k.chain[1]);
  struct buf ext = BUF_INIT(1 << 16);
  assert_int_equal(x509_cert_ext_get(leaf, "1.3.6.1.4.1.62397.1.9", &ext), 0);
  struct slice v;
  assert_int_equal(ratls_ext_unwrap(ext.data, ext.len, 1 << 16, &v), 0);
  assert_int_equal(v.ptr[0], 0x88);
  struct tappd_info info;
  assert_int_equal(tappd_info(f->t, false, &info, &err), 0);
  size_t n;
  const uint8_t *p = mp_get(v.ptr, v.len, "app_id", &n);
  assert_non_null(p);
  assert_int_equal(n, info.app_id.len);
  assert_memory_equal(p, info.app_id.data, n);
  p = mp_get(v.ptr, v.len, "mr_aggregated", &n);
  assert_non_null(p);
  assert_int_equal(n, 32);
  assert_memory_equal(p, info.mr_aggregated.data, 32);
  p = mp_get(v.ptr, v.len, "key_provider_info", &n);
  assert_non_null(p);
  assert_int_equal(n, strlen(info.key_provider_info));
  assert_memory_equal(p, info.key_provider_info, n);
  /* mr_system = SHA-256(MRTD || RTMR0..2 || SHA-256(key provider info) or zeros) */
  uint8_t in[48 * 4 + 32] = {0}, want[32];
  memcpy(in, info.mrtd, 48);
  memcpy(in + 48, info.rtmr, 3 * 48);
  if (n)
    sha256(info.key_provider_info, n, in + 4 * 48);
  sha256(in, sizeof(in), want);
  p = mp_get(v.ptr, v.len, "mr_system", &n);
  assert_non_null(p);
  assert_int_equal(n, 32);
  assert_memory_equal(p, want, 32);
  for (const char *const *name = (const char *const[]){"compose_hash", "instance_id", "device_id",
                                                       "os_image_hash", NULL};
       *name; name++)
    assert_non_null(mp_get(v.ptr, v.len, *name, &n));
  tappd_info_free(&info);
  buf_free(&ext);
  X509_free(leaf);
  tappd_tls_key_free(&k);
  /* Without it: no such extension. */
  req.with_app_info = false;
  assert_int_equal(tappd_get_tls_key(f->t, &req, &k, &err), 0);
  leaf = pem_cert(k.chain[0]);
  struct buf none = BUF_INIT(1 << 16);
  assert_int_equal(x509_cert_ext_get(leaf, "1.3.6.1.4.1.62397.1.9", &none), -ENOENT);
  buf_free(&none);
  X509_free(leaf);
  tappd_tls_key_free(&k);
  assert_null(err);
  fx_free(f);
}

static void test_dev_kms_signature(void **state) {
  (void)state;
  /* The dev appkeys' k256_signature recovers to the demo KMS key over
   * Keccak256("dstack-kms-issued:" || app_id || app k256 pubkey). */
  char *dir = tu_mkdtemp(), *dir2 = tu_mkdtemp();
  char err[256], p2[4096];
  assert_int_equal(tappd_dev_prepare(dir, err, sizeof(err)), 0);
  struct tappd_config cfg;
  struct tappd *t = NULL;
  assert_int_equal(tappd_config_init_dev(&cfg, dir, NULL, 0), 0);
  assert_int_equal(tappd_new(&cfg, &t, err, sizeof(err)), 0);
  uint8_t pub[33], kms[33], h[32], rec[33], ch[32];
  assert_int_equal(key_secp256k1_public_from_secret(t->keys.k256_key, pub), 0);
  assert_int_equal(tappd_dev_kms_pubkey(kms), 0);
  sha256(t->compose_raw, strlen(t->compose_raw), ch);
  struct keccak_ctx kc;
  keccak_init(&kc, 32);
  keccak_update(&kc, "dstack-kms-issued:", 18);
  keccak_update(&kc, ch, 20);
  keccak_update(&kc, pub, 33);
  keccak_final(&kc, h);
  assert_int_equal(t->keys.k256_signature.len, 65);
  assert_int_equal(key_secp256k1_recover(h, t->keys.k256_signature.data, rec), 0);
  assert_memory_equal(rec, kms, 33);
  tappd_free(t);
  /* Demo keys are the same in every dev directory. */
  struct buf a = BUF_INIT(1 << 20), b = BUF_INIT(1 << 20);
  tu_read_file(cfg.keys_file, &a);
  tappd_config_free(&cfg);
  assert_int_equal(tappd_dev_prepare(dir2, err, sizeof(err)), 0);
  snprintf(p2, sizeof(p2), "%s/appkeys.json", dir2);
  tu_read_file(p2, &b);
  json_t *ja = NULL, *jb = NULL;
  assert_int_equal(json_parse_buf((const char *)a.data, a.len, 1 << 20, &ja), 0);
  assert_int_equal(json_parse_buf((const char *)b.data, b.len, 1 << 20, &jb), 0);
  static const char *const same[] = {"k256_key", "k256_signature", "disk_crypt_key",
                                     "env_crypt_key"};
  for (size_t i = 0; i < ARRAY_SIZE(same); i++) {
    const char *ka, *kb;
    assert_int_equal(json_get_str(ja, same[i], &ka), 0);
    assert_int_equal(json_get_str(jb, same[i], &kb), 0);
    assert_string_equal(ka, kb);
  }
  json_decref(ja);
  json_decref(jb);
  buf_free(&a);
  buf_free(&b);
  tu_rm_rf(dir);
  tu_rm_rf(dir2);
  free(dir);
  free(dir2);
}

static void test_sign_verify(void **state) {
  (void)state;
  struct fx *f = fx_new(false);
  char *err = NULL;
  bool valid;
  const uint8_t data[] = "hello dstack";
  struct tappd_signature s;
  /* secp256k1: ECDSA over SHA-256(data) with the "vms" key. */
  assert_int_equal(tappd_sign(f->t, "secp256k1", data, sizeof(data) - 1, &s, &err), 0);
  assert_hex(s.pub, 33, "03ab7f25d56455d300a1c1f77f57f6d16193e89cdd9edc5c5e2994b446b1f3373d");
  assert_int_equal(tappd_verify("secp256k1", data, sizeof(data) - 1, s.sig, 64, s.pub, 33, &valid,
                                &err),
                   0);
  assert_true(valid);
  uint8_t h[32];
  sha256(data, sizeof(data) - 1, h);
  assert_int_equal(key_secp256k1_verify_prehash(s.pub, 33, h, s.sig), 0);
  assert_int_equal(tappd_verify("secp256k1", data, 3, s.sig, 64, s.pub, 33, &valid, &err), 0);
  assert_false(valid);
  tappd_signature_free(&s);
  /* prehashed: exactly 32 bytes. */
  assert_int_equal(tappd_sign(f->t, "secp256k1_prehashed", h, 32, &s, &err), 0);
  assert_int_equal(tappd_verify("secp256k1_prehashed", h, 32, s.sig, 64, s.pub, 33, &valid, &err),
                   0);
  assert_true(valid);
  tappd_signature_free(&s);
  assert_int_equal(tappd_sign(f->t, "secp256k1_prehashed", h, 31, &s, &err), -EINVAL);
  free(err);
  err = NULL;
  /* ed25519 */
  assert_int_equal(tappd_sign(f->t, "ed25519", data, sizeof(data) - 1, &s, &err), 0);
  assert_hex(s.pub, 32, "e4f6eb7b50267f586ba765766db7ca9487f1a506f6a49026ae09a1c605681bdb");
  assert_int_equal(tappd_verify("ed25519", data, sizeof(data) - 1, s.sig, 64, s.pub, 32, &valid,
                                &err),
                   0);
  assert_true(valid);
  s.sig[0] ^= 1;
  assert_int_equal(tappd_verify("ed25519", data, sizeof(data) - 1, s.sig, 64, s.pub, 32, &valid,
                                &err),
                   0);
  assert_false(valid);
  tappd_signature_free(&s);
  /* Malformed inputs are errors, not "invalid". */
  uint8_t junk[33] = {0x05};
  assert_int_equal(tappd_verify("secp256k1", data, 3, junk, 64, junk, 33, &valid, &err), -EINVAL);
  free(err);
  err = NULL;
  assert_int_equal(tappd_verify("secp256k1", data, 3, junk, 10, junk, 33, &valid, &err), -EINVAL);
  free(err);
  err = NULL;
  assert_int_equal(tappd_verify("rsa", data, 3, junk, 64, junk, 33, &valid, &err), -EINVAL);
  free(err);
  err = NULL;
  assert_int_equal(tappd_sign(f->t, "", data, 3, &s, &err), -EINVAL);
  free(err);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_derive_key_k256),     cmocka_unit_test(test_derive_key_seed_era),
      cmocka_unit_test(test_ra_tls_cert),         cmocka_unit_test(test_cert_request_rejects),
      cmocka_unit_test(test_get_key),             cmocka_unit_test(test_dev_kms_signature),
      cmocka_unit_test(test_sign_verify),          cmocka_unit_test(test_key_cache),
      cmocka_unit_test(test_tls_key_app_info),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
