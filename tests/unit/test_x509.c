#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "testutil.h"

#define OID_QUOTE "1.3.6.1.4.1.62397.1.1"
#define OID_EVLOG "1.3.6.1.4.1.62397.1.2"
#define OID_PCK "1.2.840.113741.1.13.1"

/* Fixture: a CA and a leaf signed by it. */
struct fx {
  EVP_PKEY *ca_key, *leaf_key, *other_key;
  X509 *ca, *leaf;
};

/* DER OCTET STRING holding the raw bytes (the RA-TLS double wrapping). */
static const uint8_t quote_ext_value[] = {0x04, 0x06, 'q', 'u', 'o', 't', 'e', 0x00};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(key_p256_generate(&f->ca_key), 0);
  assert_int_equal(key_p256_generate(&f->leaf_key), 0);
  assert_int_equal(key_p256_generate(&f->other_key), 0);

  struct x509_params ca = {
      .subject_cn = "Test CA",
      .subject_org = "Org",
      .subject_country = "US",
      .subject_locality = "SF",
      .subject_state = "CA",
      .is_ca = true,
      .path_len = 1,
      .key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN | X509_KU_DIGITAL_SIGNATURE,
      .skid_akid = true,
  };
  assert_int_equal(x509_cert_build(&ca, f->ca_key, NULL, NULL, &f->ca), 0);

  static const char *const sans[] = {"app.example.com", "*.gw.example.com"};
  struct x509_ext exts[] = {
      {.oid = OID_QUOTE, .value = quote_ext_value, .len = sizeof(quote_ext_value)},
      {.oid = OID_EVLOG, .critical = true, .value = (const uint8_t *)"\x04\x00", .len = 2},
  };
  struct x509_params leaf = {
      .subject_cn = "app.example.com",
      .dns_sans = sans,
      .n_dns_sans = 2,
      .path_len = -1,
      .key_usage = X509_KU_DIGITAL_SIGNATURE,
      .ext_key_usage = X509_EKU_SERVER_AUTH | X509_EKU_CLIENT_AUTH,
      .not_before = 1700000000,
      .not_after = 2524608000, /* 2050-01-01: GeneralizedTime */
      .exts = exts,
      .n_exts = 2,
      .skid_akid = true,
  };
  assert_int_equal(x509_cert_build(&leaf, f->leaf_key, f->ca, f->ca_key, &f->leaf), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  EVP_PKEY_free(f->ca_key);
  EVP_PKEY_free(f->leaf_key);
  EVP_PKEY_free(f->other_key);
  X509_free(f->ca);
  X509_free(f->leaf);
  free(f);
  return 0;
}

static char *print_cert(X509 *c) {
  BIO *bio = BIO_new(BIO_s_mem());
  assert_non_null(bio);
  assert_int_equal(X509_print(bio, c), 1);
  char *p = NULL;
  long n = BIO_get_mem_data(bio, &p);
  char *s = strndup(p, (size_t)n);
  BIO_free(bio);
  return s;
}

static void test_ca_fields(void **state) {
  struct fx *f = *state;
  _cleanup_buf_ struct buf subj = BUF_INIT(1024), cn = BUF_INIT(256), serial = BUF_INIT(64);
  bool ca = false;
  int pl = -2;
  unsigned ku = 0;
  int64_t nb, na;

  assert_int_equal(X509_get_version(f->ca), X509_VERSION_3);
  assert_int_equal(x509_cert_subject_string(f->ca, &subj), 0);
  assert_int_equal(buf_terminate(&subj), 0);
  assert_string_equal((char *)subj.data, "C=US,ST=CA,L=SF,O=Org,CN=Test CA");
  buf_reset(&subj);
  assert_int_equal(x509_cert_issuer_string(f->ca, &subj), 0);
  assert_int_equal(buf_terminate(&subj), 0);
  assert_string_equal((char *)subj.data, "C=US,ST=CA,L=SF,O=Org,CN=Test CA");
  assert_int_equal(x509_cert_subject_cn(f->ca, &cn), 0);
  assert_int_equal(cn.len, 7);
  assert_memory_equal(cn.data, "Test CA", 7);

  assert_int_equal(x509_cert_basic_constraints(f->ca, &ca, &pl), 0);
  assert_true(ca);
  assert_int_equal(pl, 1);
  assert_int_equal(x509_cert_key_usage(f->ca, &ku), 0);
  assert_int_equal(ku, X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN | X509_KU_DIGITAL_SIGNATURE);
  struct slice v;
  bool crit = false;
  assert_int_equal(x509_cert_ext_find(f->ca, "2.5.29.19", &v, &crit), 0);
  assert_true(crit);
  assert_int_equal(x509_cert_ext_find(f->ca, "2.5.29.15", &v, &crit), 0);
  assert_true(crit);

  /* rcgen default validity; 4096 needs GeneralizedTime, 1975 is UTCTime */
  assert_int_equal(x509_cert_validity(f->ca, &nb, &na), 0);
  assert_true(nb == X509_RCGEN_NOT_BEFORE);
  assert_true(na == X509_RCGEN_NOT_AFTER);
  assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(f->ca)), V_ASN1_UTCTIME);
  assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(f->ca)), V_ASN1_GENERALIZEDTIME);

  /* random serial: at most 16 bytes, positive */
  assert_int_equal(x509_cert_serial(f->ca, &serial), 0);
  assert_true(serial.len >= 1 && serial.len <= 16);
  assert_true(serial.data[0] < 0x80 || serial.len < 16);

  /* self-signed; AKID = SKID */
  assert_int_equal(x509_cert_verify_signed_by(f->ca, f->ca_key), 0);
  assert_int_equal(x509_cert_verify_signed_by(f->ca, f->other_key), -EBADMSG);
  const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(f->ca);
  const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(f->ca);
  assert_non_null(skid);
  assert_non_null(akid);
  assert_int_equal(ASN1_OCTET_STRING_cmp(skid, akid), 0);

  /* text dump as openssl x509 -text shows it */
  char *text = print_cert(f->ca);
  assert_non_null(strstr(text, "CA:TRUE, pathlen:1"));
  assert_non_null(strstr(text, "Certificate Sign, CRL Sign"));
  assert_non_null(strstr(text, "ecdsa-with-SHA256"));
  assert_non_null(strstr(text, "Not After : Jan  1 00:00:00 4096 GMT"));
  free(text);
  /* the CA verifies through OpenSSL's chain verifier too (purpose checks etc.) */
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *sctx = X509_STORE_CTX_new();
  assert_int_equal(X509_STORE_add_cert(store, f->ca), 1);
  assert_int_equal(X509_STORE_CTX_init(sctx, store, f->leaf, NULL), 1);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sctx), 1800000000);
  /* the leaf's critical custom extension is unknown to OpenSSL: refused unless told */
  assert_int_equal(X509_verify_cert(sctx), 0);
  assert_int_equal(X509_STORE_CTX_get_error(sctx), X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION);
  X509_STORE_CTX_cleanup(sctx);
  assert_int_equal(X509_STORE_CTX_init(sctx, store, f->leaf, NULL), 1);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sctx), 1800000000);
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(sctx), X509_V_FLAG_IGNORE_CRITICAL);
  assert_int_equal(X509_verify_cert(sctx), 1);
  X509_STORE_CTX_free(sctx);
  X509_STORE_free(store);
}

static void test_leaf_round_trip(void **state) {
  struct fx *f = *state;
  _cleanup_buf_ struct buf pem = BUF_INIT(1 << 16), der = BUF_INIT(1 << 16), der2 = BUF_INIT(1 << 16),
                          val = BUF_INIT(1024), subj = BUF_INIT(1024), spki = BUF_INIT(1024),
                          spki2 = BUF_INIT(1024);
  _cleanup_(X509_freep) X509 *parsed = NULL, *parsed_der = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;

  assert_int_equal(x509_cert_to_pem(f->leaf, &pem), 0);
  assert_int_equal(x509_cert_from_pem(pem.data, pem.len, &parsed), 0);
  assert_int_equal(x509_cert_to_der(f->leaf, &der), 0);
  assert_int_equal(x509_cert_to_der(parsed, &der2), 0);
  assert_int_equal(der.len, der2.len);
  assert_memory_equal(der.data, der2.data, der.len);
  assert_int_equal(x509_cert_from_der(der.data, der.len, &parsed_der), 0);

  /* custom extension bytes, criticality */
  assert_int_equal(x509_cert_ext_get(parsed, OID_QUOTE, &val), 0);
  assert_int_equal(val.len, sizeof(quote_ext_value));
  assert_memory_equal(val.data, quote_ext_value, val.len);
  struct slice s;
  bool crit = true;
  assert_int_equal(x509_cert_ext_find(parsed, OID_QUOTE, &s, &crit), 0);
  assert_false(crit);
  assert_int_equal(x509_cert_ext_find(parsed, OID_EVLOG, &s, &crit), 0);
  assert_true(crit);
  assert_int_equal(s.len, 2);
  buf_reset(&val);
  assert_int_equal(x509_cert_ext_get(parsed, "1.3.6.1.4.1.62397.1.3", &val), -ENOENT);
  assert_int_equal(x509_cert_ext_get(parsed, "not an oid", &val), -EINVAL);
  assert_int_equal(val.len, 0);

  /* signature: CA key yes, any other no */
  assert_int_equal(x509_cert_verify_signed_by(parsed, f->ca_key), 0);
  assert_int_equal(x509_cert_verify_signed_by(parsed, f->other_key), -EBADMSG);
  assert_int_equal(x509_cert_verify_signed_by(parsed, f->leaf_key), -EBADMSG);

  /* public key and SPKI */
  assert_int_equal(x509_cert_public_key(parsed, &pub), 0);
  assert_int_equal(key_public_equal(pub, f->leaf_key), 0);
  assert_int_equal(x509_cert_spki_der(parsed, &spki), 0);
  assert_int_equal(key_to_spki_der(f->leaf_key, &spki2), 0);
  assert_int_equal(spki.len, spki2.len);
  assert_memory_equal(spki.data, spki2.data, spki.len);

  /* names */
  assert_int_equal(x509_cert_issuer_string(parsed, &subj), 0);
  assert_int_equal(buf_terminate(&subj), 0);
  assert_string_equal((char *)subj.data, "C=US,ST=CA,L=SF,O=Org,CN=Test CA");
  buf_reset(&subj);
  assert_int_equal(x509_cert_subject_string(parsed, &subj), 0);
  assert_int_equal(buf_terminate(&subj), 0);
  assert_string_equal((char *)subj.data, "CN=app.example.com");

  char **names = NULL;
  size_t n = 0;
  assert_int_equal(x509_cert_dns_sans(parsed, &names, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(names[0], "app.example.com");
  assert_string_equal(names[1], "*.gw.example.com");
  assert_null(names[2]);
  x509_strv_free(names);

  /* not a CA: no BasicConstraints at all (rcgen's default) */
  assert_int_equal(x509_cert_basic_constraints(parsed, NULL, NULL), -ENOENT);
  unsigned ku = 0;
  assert_int_equal(x509_cert_key_usage(parsed, &ku), 0);
  assert_int_equal(ku, X509_KU_DIGITAL_SIGNATURE);

  int64_t nb, na;
  assert_int_equal(x509_cert_validity(parsed, &nb, &na), 0);
  assert_true(nb == 1700000000);
  assert_true(na == 2524608000);
  assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(parsed)), V_ASN1_GENERALIZEDTIME);

  /* AKID of the leaf is the CA's SKID */
  assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(parsed),
                                         X509_get0_subject_key_id(f->ca)),
                   0);

  char *text = print_cert(parsed);
  assert_non_null(strstr(text, "DNS:app.example.com, DNS:*.gw.example.com"));
  assert_non_null(strstr(text, "TLS Web Server Authentication, TLS Web Client Authentication"));
  assert_non_null(strstr(text, "Not After : Jan  1 00:00:00 2050 GMT"));
  assert_null(strstr(text, "Basic Constraints"));
  free(text);
}

static void test_chain_pem(void **state) {
  struct fx *f = *state;
  _cleanup_buf_ struct buf pem = BUF_INIT(1 << 20), one = BUF_INIT(1 << 16);
  STACK_OF(X509) *chain = NULL;

  assert_int_equal(buf_append_str(&pem, "leading text\n"), 0);
  assert_int_equal(x509_cert_to_pem(f->leaf, &pem), 0);
  assert_int_equal(buf_append_str(&pem, "between\n"), 0);
  assert_int_equal(x509_cert_to_pem(f->ca, &pem), 0);
  assert_int_equal(buf_append(&pem, "\0\0", 2), 0); /* as in quotes */
  assert_int_equal(x509_chain_from_pem(pem.data, pem.len, &chain), 0);
  assert_int_equal(sk_X509_num(chain), 2);
  assert_int_equal(X509_cmp(sk_X509_value(chain, 0), f->leaf), 0);
  assert_int_equal(X509_cmp(sk_X509_value(chain, 1), f->ca), 0);
  _cleanup_buf_ struct buf back = BUF_INIT(1 << 20);
  assert_int_equal(x509_chain_to_pem(chain, &back), 0);
  x509_chain_free(chain);
  chain = NULL;
  assert_int_equal(x509_chain_from_pem(back.data, back.len, &chain), 0);
  assert_int_equal(sk_X509_num(chain), 2);
  x509_chain_free(chain);
  chain = NULL;

  /* the single-cert reader takes the first one */
  _cleanup_(X509_freep) X509 *first = NULL;
  assert_int_equal(x509_cert_from_pem(pem.data, pem.len, &first), 0);
  assert_int_equal(X509_cmp(first, f->leaf), 0);

  /* caps and errors */
  assert_int_equal(x509_cert_to_pem(f->ca, &one), 0);
  _cleanup_buf_ struct buf many = BUF_INIT(1 << 20);
  for (int i = 0; i < X509_CHAIN_MAX; i++)
    assert_int_equal(buf_append(&many, one.data, one.len), 0);
  assert_int_equal(x509_chain_from_pem(many.data, many.len, &chain), 0);
  assert_int_equal(sk_X509_num(chain), X509_CHAIN_MAX);
  x509_chain_free(chain);
  chain = NULL;
  assert_int_equal(buf_append(&many, one.data, one.len), 0);
  assert_int_equal(x509_chain_from_pem(many.data, many.len, &chain), -ENOBUFS);
  assert_null(chain);

  assert_int_equal(x509_chain_from_pem("no certs here\n", 14, &chain), -ENOENT);
  assert_int_equal(x509_chain_from_pem("", 0, &chain), -ENOENT);
  static const char *bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  assert_int_equal(x509_chain_from_pem(bad, strlen(bad), &chain), -EBADMSG);
  static const char *key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  assert_int_equal(x509_chain_from_pem(key, strlen(key), &chain), -EBADMSG);
  /* a certificate cut in the middle of its base64 */
  assert_int_equal(x509_chain_from_pem(one.data, one.len / 2, &chain), -EBADMSG);
  assert_null(chain);
}

static void test_parse_negative(void **state) {
  struct fx *f = *state;
  _cleanup_buf_ struct buf der = BUF_INIT(1 << 16), pem = BUF_INIT(1 << 16);
  X509 *c = NULL;
  static uint8_t big[X509_INPUT_MAX + 1];

  assert_int_equal(x509_cert_to_der(f->leaf, &der), 0);
  assert_int_equal(x509_cert_to_pem(f->leaf, &pem), 0);
  assert_int_equal(x509_cert_from_der(der.data, der.len - 1, &c), -EBADMSG);
  assert_int_equal(x509_cert_from_der(der.data, 20, &c), -EBADMSG);
  assert_int_equal(x509_cert_from_der(der.data, 0, &c), -EBADMSG);
  assert_int_equal(buf_append_u8(&der, 0), 0);
  assert_int_equal(x509_cert_from_der(der.data, der.len, &c), -EBADMSG);
  assert_int_equal(x509_cert_from_der("garbage", 7, &c), -EBADMSG);
  assert_int_equal(x509_cert_from_pem("garbage", 7, &c), -EBADMSG);
  assert_int_equal(x509_cert_from_pem(pem.data, pem.len - 40, &c), -EBADMSG);
  /* flipping a byte of the base64 body breaks the DER or the signature */
  pem.data[100] = pem.data[100] == 'A' ? 'B' : 'A';
  int r = x509_cert_from_pem(pem.data, pem.len, &c);
  if (r == 0) {
    assert_int_equal(x509_cert_verify_signed_by(c, f->ca_key), -EBADMSG);
    X509_free(c);
    c = NULL;
  } else
    assert_int_equal(r, -EBADMSG);
  memset(big, 'A', sizeof(big));
  assert_int_equal(x509_cert_from_der(big, sizeof(big), &c), -ENOBUFS);
  assert_int_equal(x509_cert_from_pem(big, sizeof(big), &c), -ENOBUFS);
  STACK_OF(X509) *chain = NULL;
  assert_int_equal(x509_chain_from_pem(big, sizeof(big), &chain), -ENOBUFS);
  assert_int_equal(x509_cert_from_der(NULL, 1, &c), -EINVAL);
  assert_null(c);
}

/* A certificate carrying the same extension twice is refused by the lookup. */
static void test_duplicate_extension(void **state) {
  struct fx *f = *state;
  _cleanup_(X509_freep) X509 *dup = X509_dup(f->leaf), *parsed = NULL;
  _cleanup_buf_ struct buf der = BUF_INIT(1 << 16), val = BUF_INIT(1024);
  assert_non_null(dup);
  _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(OID_QUOTE, 1);
  int idx = X509_get_ext_by_OBJ(dup, obj, -1);
  assert_true(idx >= 0);
  assert_int_equal(X509_add_ext(dup, X509_get_ext(dup, idx), -1), 1);
  assert_true(X509_sign(dup, f->ca_key, EVP_sha256()) > 0);
  assert_int_equal(x509_cert_to_der(dup, &der), 0);
  assert_int_equal(x509_cert_from_der(der.data, der.len, &parsed), 0);
  assert_int_equal(x509_cert_ext_get(parsed, OID_QUOTE, &val), -EBADMSG);
  assert_int_equal(x509_cert_ext_get(parsed, OID_EVLOG, &val), 0);

  /* the builder refuses to produce one */
  struct x509_ext twice[] = {
      {.oid = OID_QUOTE, .value = quote_ext_value, .len = sizeof(quote_ext_value)},
      {.oid = OID_QUOTE, .value = quote_ext_value, .len = sizeof(quote_ext_value)},
  };
  struct x509_params p = {.subject_cn = "x", .path_len = -1, .exts = twice, .n_exts = 2};
  X509 *c = NULL;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  /* nor a custom extension clashing with a standard one */
  struct x509_ext san[] = {{.oid = "2.5.29.17", .value = (const uint8_t *)"\x30\x00", .len = 2}};
  static const char *const names[] = {"a.example"};
  struct x509_params p2 = {
      .subject_cn = "x", .path_len = -1, .dns_sans = names, .n_dns_sans = 1, .exts = san, .n_exts = 1};
  assert_int_equal(x509_cert_build(&p2, f->leaf_key, NULL, NULL, &c), -EINVAL);
  assert_null(c);
}

static void test_build_options(void **state) {
  struct fx *f = *state;
  _cleanup_buf_ struct buf serial = BUF_INIT(64), spki = BUF_INIT(1024);
  int64_t nb, na;

  /* explicit serial, explicit CA:FALSE, validity at the UTCTime/GeneralizedTime edge */
  static const uint8_t ser[] = {0x01, 0x02, 0x03};
  struct x509_params p = {
      .subject_org = "Only Org",
      .path_len = -1,
      .explicit_no_ca = true,
      .serial = ser,
      .serial_len = sizeof(ser),
      .not_before = 2524607999, /* 2049-12-31T23:59:59Z */
      .not_after = 2524608000,
  };
  _cleanup_(X509_freep) X509 *c = NULL;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), 0);
  assert_int_equal(x509_cert_serial(c, &serial), 0);
  assert_int_equal(serial.len, 3);
  assert_memory_equal(serial.data, ser, 3);
  bool ca = true;
  int pl = 0;
  assert_int_equal(x509_cert_basic_constraints(c, &ca, &pl), 0);
  assert_false(ca);
  assert_int_equal(pl, -1);
  assert_int_equal(x509_cert_validity(c, &nb, &na), 0);
  assert_true(nb == 2524607999 && na == 2524608000);
  assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(c)), V_ASN1_UTCTIME);
  assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(c)), V_ASN1_GENERALIZEDTIME);
  _cleanup_buf_ struct buf cn = BUF_INIT(64);
  assert_int_equal(x509_cert_subject_cn(c, &cn), -ENOENT);
  char **names = NULL;
  size_t n = 9;
  assert_int_equal(x509_cert_dns_sans(c, &names, &n), 0);
  assert_int_equal(n, 0);
  assert_null(names[0]);
  x509_strv_free(names);
  assert_int_equal(x509_cert_key_usage(c, &(unsigned){0}), -ENOENT);
  /* no SKID/AKID unless asked */
  assert_null(X509_get0_subject_key_id(c));

  /* UTF-8 names come out raw; RFC 2253 specials are escaped */
  struct x509_params pu = {.subject_cn = "T\xc3\xabst, Inc", .subject_org = "a+b", .path_len = -1};
  _cleanup_(X509_freep) X509 *cu = NULL;
  assert_int_equal(x509_cert_build(&pu, f->leaf_key, NULL, NULL, &cu), 0);
  _cleanup_buf_ struct buf us = BUF_INIT(256), ucn = BUF_INIT(256);
  assert_int_equal(x509_cert_subject_string(cu, &us), 0);
  assert_int_equal(buf_terminate(&us), 0);
  assert_string_equal((char *)us.data, "O=a\\+b,CN=T\xc3\xabst\\, Inc");
  assert_int_equal(x509_cert_subject_cn(cu, &ucn), 0);
  assert_int_equal(buf_terminate(&ucn), 0);
  assert_string_equal((char *)ucn.data, "T\xc3\xabst, Inc");

  /* rcgen-style serial: SHA-256(SPKI)[0..20], top bit cleared */
  struct x509_params p2 = {.subject_cn = "derived", .path_len = -1, .serial_from_spki = true};
  _cleanup_(X509_freep) X509 *c2 = NULL;
  assert_int_equal(x509_cert_build(&p2, f->leaf_key, f->ca, f->ca_key, &c2), 0);
  assert_int_equal(key_to_spki_der(f->leaf_key, &spki), 0);
  uint8_t h[32];
  sha256(spki.data, spki.len, h);
  h[0] &= 0x7f;
  buf_reset(&serial);
  assert_int_equal(x509_cert_serial(c2, &serial), 0);
  size_t skip = 0;
  while (skip < 20 && h[skip] == 0)
    skip++;
  assert_int_equal(serial.len, 20 - skip);
  assert_memory_equal(serial.data, h + skip, serial.len);

  /* Ed25519 self-signed */
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = NULL;
  uint8_t s[32];
  memset(s, 5, sizeof(s));
  assert_int_equal(key_ed25519_from_secret(s, &ed), 0);
  _cleanup_(X509_freep) X509 *c3 = NULL;
  struct x509_params p3 = {.subject_cn = "ed", .path_len = -1, .is_ca = true, .skid_akid = true};
  assert_int_equal(x509_cert_build(&p3, ed, NULL, ed, &c3), 0);
  assert_int_equal(x509_cert_verify_signed_by(c3, ed), 0);
  assert_int_equal(X509_get_signature_nid(c3), NID_ED25519);
  assert_int_equal(x509_cert_basic_constraints(c3, &ca, &pl), 0);
  assert_true(ca);
  assert_int_equal(pl, -1);
  /* an Ed25519 CA signs a P-256 leaf; an empty subject is allowed */
  _cleanup_(X509_freep) X509 *c4 = NULL;
  struct x509_params p4 = {.path_len = -1, .skid_akid = true};
  assert_int_equal(x509_cert_build(&p4, f->leaf_key, c3, ed, &c4), 0);
  assert_int_equal(x509_cert_verify_signed_by(c4, ed), 0);
  _cleanup_buf_ struct buf subj = BUF_INIT(64);
  assert_int_equal(x509_cert_subject_string(c4, &subj), 0);
  assert_int_equal(subj.len, 0);
}

static void test_build_invalid(void **state) {
  struct fx *f = *state;
  X509 *c = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pubonly = NULL, *x = NULL;
  uint8_t pub[65], s[32];
  static const uint8_t ser21[21] = {1};
  static const char *const bad_san[] = {"has space.example"};
  static const char *const empty_san[] = {""};
  struct x509_ext bad_oid[] = {{.oid = "foo.bar", .value = (const uint8_t *)"\x05\x00", .len = 2}};
  struct x509_ext null_val[] = {{.oid = OID_QUOTE, .value = NULL, .len = 3}};

  struct x509_params ok = {.subject_cn = "x", .path_len = -1};
  struct x509_params p;

  p = ok;
  p.is_ca = true;
  p.path_len = -2;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.explicit_no_ca = true;
  p.path_len = 0;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.serial = ser21;
  p.serial_len = sizeof(ser21);
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.serial_len = 4;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.not_before = 2000000000;
  p.not_after = 1000000000;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.dns_sans = bad_san;
  p.n_dns_sans = 1;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p.dns_sans = empty_san;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p.dns_sans = NULL;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.exts = bad_oid;
  p.n_exts = 1;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p.exts = null_val;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p.exts = NULL;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.subject_cn = "";
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.key_usage = 1u << 9;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);
  p = ok;
  p.ext_key_usage = 1u << 5;
  assert_int_equal(x509_cert_build(&p, f->leaf_key, NULL, NULL, &c), -EINVAL);

  /* issuer without its key, with a key that is not its key, self-signed with a foreign key */
  assert_int_equal(x509_cert_build(&ok, f->leaf_key, f->ca, NULL, &c), -EINVAL);
  assert_int_equal(x509_cert_build(&ok, f->leaf_key, f->ca, f->other_key, &c), -EINVAL);
  assert_int_equal(x509_cert_build(&ok, f->leaf_key, NULL, f->other_key, &c), -EINVAL);
  /* a public-only key cannot self-sign; X25519 cannot sign at all */
  assert_int_equal(key_ec_public_point(f->leaf_key, pub), 0);
  assert_int_equal(key_p256_from_public_raw(pub + 1, &pubonly), 0);
  assert_int_equal(x509_cert_build(&ok, pubonly, NULL, NULL, &c), -EINVAL);
  memset(s, 9, sizeof(s));
  assert_int_equal(key_x25519_from_secret(s, &x), 0);
  assert_int_equal(x509_cert_build(&ok, x, NULL, NULL, &c), -EINVAL);
  /* ...but a public-only subject key signed by a CA is the normal case */
  assert_int_equal(x509_cert_build(&ok, pubonly, f->ca, f->ca_key, &c), 0);
  X509_free(c);
  c = NULL;
  assert_int_equal(x509_cert_build(NULL, f->leaf_key, NULL, NULL, &c), -EINVAL);
  assert_int_equal(x509_cert_build(&ok, NULL, NULL, NULL, &c), -EINVAL);
  assert_null(c);
}

/* Real certificates: the Intel SGX Root CA and the PCK chain inside a real TDX quote. */
static void test_real_intel_certs(void **state) {
  (void)state;
  _cleanup_buf_ struct buf root = BUF_INIT(1 << 16), quote = BUF_INIT(1 << 16),
                          subj = BUF_INIT(1024), ext = BUF_INIT(4096);
  _cleanup_(X509_freep) X509 *ca = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_pub = NULL;

  tu_read_vector("root-ca/Intel_SGX_Root_CA.der", false, &root);
  assert_int_equal(x509_cert_from_der(root.data, root.len, &ca), 0);
  uint8_t h[32];
  sha256(root.data, root.len, h);
  _cleanup_buf_ struct buf want = BUF_INIT(64);
  tu_hex("44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3", &want);
  assert_memory_equal(h, want.data, 32);
  assert_int_equal(x509_cert_subject_string(ca, &subj), 0);
  assert_int_equal(buf_terminate(&subj), 0);
  assert_non_null(strstr((char *)subj.data, "CN=Intel SGX Root CA"));
  assert_int_equal(x509_cert_public_key(ca, &ca_pub), 0);
  assert_int_equal(x509_cert_verify_signed_by(ca, ca_pub), 0);
  bool is_ca = false;
  assert_int_equal(x509_cert_basic_constraints(ca, &is_ca, NULL), 0);
  assert_true(is_ca);

  tu_read_vector("dcap-qvl/tdx_quote", false, &quote);
  const char *begin = memmem(quote.data, quote.len, "-----BEGIN CERTIFICATE-----", 27);
  assert_non_null(begin);
  size_t off = (size_t)((const uint8_t *)begin - quote.data);
  STACK_OF(X509) *chain = NULL;
  assert_int_equal(x509_chain_from_pem(quote.data + off, quote.len - off, &chain), 0);
  assert_int_equal(sk_X509_num(chain), 3);
  X509 *pck = sk_X509_value(chain, 0), *inter = sk_X509_value(chain, 1),
       *qroot = sk_X509_value(chain, 2);
  assert_int_equal(X509_cmp(qroot, ca), 0);
  assert_int_equal(x509_cert_verify_signed_by(pck, X509_get0_pubkey(inter)), 0);
  assert_int_equal(x509_cert_verify_signed_by(inter, X509_get0_pubkey(qroot)), 0);
  assert_int_equal(x509_cert_verify_signed_by(pck, X509_get0_pubkey(qroot)), -EBADMSG);
  assert_int_equal(x509_cert_ext_get(pck, OID_PCK, &ext), 0);
  assert_true(ext.len > 100);
  assert_int_equal(ext.data[0], 0x30); /* SEQUENCE of the SGX extensions */
  assert_int_equal(x509_cert_ext_get(inter, OID_PCK, &ext), -ENOENT);
  int64_t nb, na;
  assert_int_equal(x509_cert_validity(pck, &nb, &na), 0);
  assert_true(nb < na);
  uint8_t pub[65];
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pck_pub = NULL;
  assert_int_equal(x509_cert_public_key(pck, &pck_pub), 0);
  assert_int_equal(key_get_type(pck_pub), KEY_TYPE_P256);
  assert_int_equal(key_ec_public_point(pck_pub, pub), 0);
  x509_chain_free(chain);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ca_fields),         cmocka_unit_test(test_leaf_round_trip),
      cmocka_unit_test(test_chain_pem),         cmocka_unit_test(test_parse_negative),
      cmocka_unit_test(test_duplicate_extension), cmocka_unit_test(test_build_options),
      cmocka_unit_test(test_build_invalid),     cmocka_unit_test(test_real_intel_certs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
