#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "attest/dcap_collateral.h"
#include "attest/quote.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "crypto/ossl.h"
#include "testutil.h"

static void load_qvl(const char *rel, struct dcap_collateral *c) {
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector(rel, false, &b);
  assert_int_equal(dcap_collateral_from_qvl_json((const char *)b.data, b.len, c), 0);
}

static void assert_coll_equal(const struct dcap_collateral *a, const struct dcap_collateral *b) {
  assert_string_equal(a->pck_crl_issuer_chain, b->pck_crl_issuer_chain);
  assert_string_equal(a->tcb_info_issuer_chain, b->tcb_info_issuer_chain);
  assert_string_equal(a->qe_identity_issuer_chain, b->qe_identity_issuer_chain);
  assert_string_equal(a->tcb_info, b->tcb_info);
  assert_string_equal(a->qe_identity, b->qe_identity);
  assert_int_equal(a->root_ca_crl.len, b->root_ca_crl.len);
  assert_memory_equal(a->root_ca_crl.data, b->root_ca_crl.data, a->root_ca_crl.len);
  assert_int_equal(a->pck_crl.len, b->pck_crl.len);
  assert_memory_equal(a->pck_crl.data, b->pck_crl.data, a->pck_crl.len);
  assert_memory_equal(a->tcb_info_signature, b->tcb_info_signature, 64);
  assert_memory_equal(a->qe_identity_signature, b->qe_identity_signature, 64);
}

static void test_qvl_json(void **state) {
  (void)state;
  struct dcap_collateral c;
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &c);
  assert_true(str_startswith(c.tcb_info, "{\"id\":\"TDX\",\"version\":3"));
  assert_true(str_startswith(c.qe_identity, "{\"id\":\"TD_QE\",\"version\":2"));
  assert_non_null(strstr(c.tcb_info_issuer_chain, "-----BEGIN CERTIFICATE-----"));
  assert_non_null(strstr(c.pck_crl_issuer_chain, "-----BEGIN CERTIFICATE-----"));
  assert_int_equal(c.root_ca_crl.data[0], 0x30);
  assert_int_equal(c.pck_crl.data[0], 0x30);

  /* the signature is the hex in the file */
  _cleanup_buf_ struct buf raw = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector("dcap-qvl/tdx_quote_collateral.json", false, &raw);
  _cleanup_json_ json_t *j = NULL;
  assert_int_equal(json_parse_buf((const char *)raw.data, raw.len, raw.len, &j), 0);
  uint8_t sig[64];
  assert_int_equal(json_get_hex(j, "tcb_info_signature", sig, 64), 0);
  assert_memory_equal(sig, c.tcb_info_signature, 64);

  /* to JSON and back */
  _cleanup_buf_ struct buf out = BUF_INIT(BUF_MAX_FILE);
  assert_int_equal(dcap_collateral_to_qvl_json(&c, &out), 0);
  struct dcap_collateral c2;
  assert_int_equal(dcap_collateral_from_qvl_json((const char *)out.data, out.len, &c2), 0);
  assert_coll_equal(&c, &c2);

  /* deep copy */
  struct dcap_collateral c3;
  assert_int_equal(dcap_collateral_copy(&c, &c3), 0);
  assert_coll_equal(&c, &c3);
  assert_ptr_not_equal(c3.tcb_info, c.tcb_info);
  dcap_collateral_free(&c);
  dcap_collateral_free(&c2);
  dcap_collateral_free(&c3);
  dcap_collateral_free(NULL);
}

/* Rewrites one key of the dcap-qvl JSON (value NULL = delete) and parses it. */
static int qvl_with(const char *key, json_t *value) {
  _cleanup_buf_ struct buf raw = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector("dcap-qvl/sgx_quote_collateral.json", false, &raw);
  _cleanup_json_ json_t *j = NULL;
  assert_int_equal(json_parse_buf((const char *)raw.data, raw.len, raw.len, &j), 0);
  if (value)
    assert_int_equal(json_object_set_new(j, key, value), 0);
  else
    assert_int_equal(json_object_del(j, key), 0);
  _cleanup_free_ char *s = json_dump_compact(j);
  struct dcap_collateral c;
  int r = dcap_collateral_from_qvl_json(s, strlen(s), &c);
  if (r == 0)
    dcap_collateral_free(&c);
  return r;
}

static void test_qvl_json_bad(void **state) {
  (void)state;
  struct dcap_collateral c;
  assert_int_equal(dcap_collateral_from_qvl_json("", 0, &c), -EBADMSG);
  assert_int_equal(dcap_collateral_from_qvl_json("[]", 2, &c), -EBADMSG);
  assert_int_equal(dcap_collateral_from_qvl_json("{\"a\":", 5, &c), -EBADMSG);
  assert_int_equal(dcap_collateral_from_qvl_json(NULL, 0, &c), -EINVAL);

  _cleanup_buf_ struct buf raw = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector("dcap-qvl/sgx_quote_collateral.json", false, &raw);
  for (size_t cut = 1; cut < raw.len; cut += raw.len / 13)
    assert_int_equal(dcap_collateral_from_qvl_json((const char *)raw.data, cut, &c), -EBADMSG);

  assert_int_equal(qvl_with("tcb_info", NULL), -ENOENT);
  assert_int_equal(qvl_with("pck_crl", NULL), -ENOENT);
  assert_int_equal(qvl_with("qe_identity_signature", NULL), -ENOENT);
  assert_int_equal(qvl_with("tcb_info", json_integer(3)), -EBADMSG);
  assert_int_equal(qvl_with("tcb_info_signature", json_string("abcd")), -EBADMSG);
  assert_int_equal(qvl_with("qe_identity_signature", json_string("zz")), -EBADMSG);
  assert_int_equal(qvl_with("pck_crl", json_string("3082")), -EBADMSG);
  assert_int_equal(qvl_with("root_ca_crl", json_string("not a crl")), -EBADMSG);
  assert_int_equal(qvl_with("root_ca_crl", json_string("")), -EBADMSG);
  assert_int_equal(qvl_with("unknown_key", json_string("ignored")), 0);

  /* over the cap */
  size_t big = (size_t)64 * 1024 * 1024;
  assert_int_equal(dcap_collateral_from_qvl_json((const char *)raw.data, big, &c), -ENOBUFS);
}

static char *vec_dup(const char *rel) {
  char *p = strdup(tu_vector_path(rel));
  assert_non_null(p);
  return p;
}

static void read_vec(const char *rel, struct buf *b) {
  *b = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector(rel, false, b);
  assert_int_equal(buf_terminate(b), 0);
}

static void test_pcs(void **state) {
  (void)state;
  _cleanup_buf_ struct buf tcb, qe, tchain, qchain, pchain, rcrl, pcrl;
  read_vec("go-tdx-guest/sample_tcbInfo_response", &tcb);
  read_vec("go-tdx-guest/sample_qeIdentity_response", &qe);
  read_vec("go-tdx-guest/tcbInfoIssuerChain.pem", &tchain);
  read_vec("go-tdx-guest/qeIdentityIssuerChain.pem", &qchain);
  read_vec("go-tdx-guest/pckCrlIssuerChain.pem", &pchain);
  read_vec("go-tdx-guest/rootcrl.der", &rcrl);
  read_vec("go-tdx-guest/pckcrl", &pcrl);
  struct dcap_collateral c;
  assert_int_equal(dcap_collateral_from_pcs((char *)tcb.data, tcb.len, (char *)tchain.data,
                                            (char *)qe.data, qe.len, (char *)qchain.data, rcrl.data,
                                            rcrl.len, pcrl.data, pcrl.len, (char *)pchain.data, &c),
                   0);
  /* the signed text is the exact tcbInfo member */
  assert_true(str_startswith(c.tcb_info, "{\"id\":\"TDX\""));
  const char *inner = strstr((char *)tcb.data, c.tcb_info);
  assert_non_null(inner);
  assert_int_equal(inner - (char *)tcb.data, strlen("{\"tcbInfo\":"));
  assert_true(str_startswith(c.qe_identity, "{\"id\":\"TD_QE\""));
  assert_string_equal(c.tcb_info_issuer_chain, (char *)tchain.data);
  assert_memory_equal(c.pck_crl.data, pcrl.data, pcrl.len);

  /* CRLs as PEM and as hex give the same DER; URL-encoded chains are decoded */
  _cleanup_buf_ struct buf pem = BUF_INIT(BUF_MAX_SMALL), hex = BUF_INIT(BUF_MAX_SMALL),
                           enc = BUF_INIT(BUF_MAX_SMALL);
  {
    const unsigned char *p = rcrl.data;
    _cleanup_(X509_CRL_freep) X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)rcrl.len);
    assert_non_null(crl);
    _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_CRL(bio, crl), 1);
    char *d;
    long n = BIO_get_mem_data(bio, &d);
    assert_int_equal(buf_append(&pem, d, (size_t)n), 0);
  }
  assert_int_equal(hex_append(&hex, pcrl.data, pcrl.len), 0);
  for (size_t i = 0; i < tchain.len; i++) {
    char ch = (char)tchain.data[i];
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
      assert_int_equal(buf_append(&enc, &ch, 1), 0);
    else
      assert_int_equal(buf_printf(&enc, "%%%02X", (unsigned char)ch), 0);
  }
  assert_int_equal(buf_terminate(&enc), 0);
  struct dcap_collateral c2;
  assert_int_equal(dcap_collateral_from_pcs((char *)tcb.data, tcb.len, (char *)enc.data,
                                            (char *)qe.data, qe.len, NULL, pem.data, pem.len,
                                            hex.data, hex.len, NULL, &c2),
                   0);
  assert_string_equal(c2.tcb_info_issuer_chain, c.tcb_info_issuer_chain);
  assert_string_equal(c2.qe_identity_issuer_chain, c.tcb_info_issuer_chain);
  assert_string_equal(c2.pck_crl_issuer_chain, "");
  assert_int_equal(c2.root_ca_crl.len, c.root_ca_crl.len);
  assert_memory_equal(c2.root_ca_crl.data, c.root_ca_crl.data, c.root_ca_crl.len);
  assert_memory_equal(c2.pck_crl.data, c.pck_crl.data, c.pck_crl.len);
  dcap_collateral_free(&c2);

  /* bad bodies */
  static const char *const bad[] = {
      "{\"tcbInfo\":{\"id\":\"TDX\"}}",                      /* no signature */
      "{\"tcbInfo\":{\"id\":\"TDX\"},\"signature\":\"00\"}", /* short signature */
      "{\"tcbInfo\":\"x\",\"signature\":\"00\"}",            /* not an object */
      "{\"enclaveIdentity\":{},\"signature\":\"" /* wrong key */,
      "garbage",
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_int_equal(dcap_collateral_from_pcs(bad[i], strlen(bad[i]), (char *)tchain.data,
                                              (char *)qe.data, qe.len, NULL, rcrl.data, rcrl.len,
                                              pcrl.data, pcrl.len, NULL, &c2),
                     -EBADMSG);
  assert_int_equal(dcap_collateral_from_pcs((char *)tcb.data, tcb.len, (char *)tchain.data,
                                            (char *)qe.data, qe.len, NULL, rcrl.data, rcrl.len / 2,
                                            pcrl.data, pcrl.len, NULL, &c2),
                   -EBADMSG);
  dcap_collateral_free(&c);
}

static void test_from_dir(void **state) {
  (void)state;
  struct dcap_collateral c;
  _cleanup_free_ char *go = vec_dup("go-tdx-guest");
  assert_int_equal(dcap_collateral_from_dir(go, &c), 0);
  assert_true(str_startswith(c.tcb_info, "{\"id\":\"TDX\""));
  assert_non_null(strstr(c.pck_crl_issuer_chain, "BEGIN CERTIFICATE"));
  dcap_collateral_free(&c);

  /* zkdcap has two TCB info files: ambiguous without a quote, picked by FMSPC with one */
  _cleanup_free_ char *zk = vec_dup("zkdcap");
  assert_int_equal(dcap_collateral_from_dir(zk, &c), -EBADMSG);
  _cleanup_buf_ struct buf qb = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector("zkdcap/quote_tdx_00806f050000.dat", false, &qb);
  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  assert_int_equal(dcap_collateral_from_dir_quote(zk, &q, &c), 0);
  assert_non_null(strstr(c.tcb_info, "\"fmspc\":\"00806f050000\""));
  assert_string_equal(c.pck_crl_issuer_chain, ""); /* zkdcap has none */
  assert_non_null(strstr(c.qe_identity, "\"id\":\"TD_QE\""));
  _cleanup_buf_ struct buf plat = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector("zkdcap/pck_platform_crl.der", false, &plat);
  assert_int_equal(c.pck_crl.len, plat.len);
  dcap_collateral_free(&c);
  _cleanup_buf_ struct buf proc = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector("zkdcap/pck_processor_crl.der", false, &proc);
  assert_int_equal(dcap_collateral_from_dir_ca(zk, "processor", &c), -EBADMSG); /* 2 tcbinfos */
  assert_int_equal(dcap_collateral_from_dir_ca(zk, "bogus", &c), -EINVAL);

  /* dcap-qvl collateral.json in a directory wins */
  _cleanup_free_ char *tmp = tu_mkdtemp();
  _cleanup_buf_ struct buf j = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector("dcap-qvl/tdx_quote_collateral.json", false, &j);
  _cleanup_free_ char *p = str_printf("%s/collateral.json", tmp);
  assert_int_equal(file_write_atomic(p, j.data, j.len, 0644), 0);
  assert_int_equal(dcap_collateral_from_dir(tmp, &c), 0);
  assert_non_null(strstr(c.tcb_info, "B0C06F000000"));
  dcap_collateral_free(&c);
  /* a broken one is an error, not a fallback */
  assert_int_equal(file_write_atomic(p, "{", 1, 0644), 0);
  assert_int_equal(dcap_collateral_from_dir(tmp, &c), -EBADMSG);
  unlink(p);
  /* empty directory */
  assert_int_equal(dcap_collateral_from_dir(tmp, &c), -ENOENT);
  tu_rm_rf(tmp);
  assert_int_equal(dcap_collateral_from_dir("/nonexistent/dcap", &c), -ENOENT);
}

static void test_member_raw(void **state) {
  (void)state;
  const char *p;
  size_t n;
  const char *s = " { \"a\" : [1,{\"}\":\"{\"}], \"sig\\\"\":\"x\", \"tcbInfo\" : "
                  "{\"k\":\"v}\\\"\",\"n\":[{}]} ,"
                  "\"z\":null}";
  assert_int_equal(dcap_json_member_raw(s, strlen(s), "tcbInfo", &p, &n), 0);
  assert_int_equal(n, strlen("{\"k\":\"v}\\\"\",\"n\":[{}]}"));
  assert_memory_equal(p, "{\"k\":\"v}\\\"\",\"n\":[{}]}", n);
  assert_int_equal(dcap_json_member_raw(s, strlen(s), "missing", &p, &n), -ENOENT);
  assert_int_equal(dcap_json_member_raw(s, strlen(s), "a", &p, &n), -EBADMSG); /* not an object */
  assert_int_equal(dcap_json_member_raw("{}", 2, "a", &p, &n), -ENOENT);
  static const char *const bad[] = {"",
                                    "[]",
                                    "{",
                                    "{\"a\"",
                                    "{\"a\":",
                                    "{\"a\":{",
                                    "{\"a\":1",
                                    "{\"a\":1 x",
                                    "{a:1}",
                                    "{\"a\":}",
                                    "{\"x\":\"\x01\"}",
                                    "{\"tcbInfo\":{]}",
                                    "{\"q\":[}], \"tcbInfo\":{}}"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_int_equal(dcap_json_member_raw(bad[i], strlen(bad[i]), "tcbInfo", &p, &n), -EBADMSG);
  /* deep nesting is refused, not recursed */
  _cleanup_buf_ struct buf deep = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(buf_append_str(&deep, "{\"tcbInfo\":"), 0);
  for (int i = 0; i < 2000; i++)
    assert_int_equal(buf_append_str(&deep, "["), 0);
  assert_int_equal(dcap_json_member_raw((char *)deep.data, deep.len, "tcbInfo", &p, &n), -EBADMSG);
}

static void test_dates(void **state) {
  (void)state;
  int64_t t;
  assert_int_equal(dcap_parse_date("2025-07-19T09:00:53Z", &t), 0);
  assert_int_equal(t, 1752915653);
  assert_int_equal(dcap_parse_date("1970-01-01T00:00:00Z", &t), 0);
  assert_int_equal(t, 0);
  assert_int_equal(dcap_parse_date("2024-02-29T23:59:59.123Z", &t), 0);
  assert_int_equal(t, 1709251199);
  assert_int_equal(dcap_parse_date("2024-02-29T23:59:59+00:00", &t), 0);
  assert_int_equal(t, 1709251199);
  static const char *const bad[] = {"",
                                    "2025-07-19",
                                    "2025-07-19T09:00:53",
                                    "2025-07-19T09:00:53+01:00",
                                    "2025-13-19T09:00:53Z",
                                    "2025-02-29T09:00:53Z",
                                    "2025-04-31T09:00:53Z",
                                    "2025-07-19T24:00:53Z",
                                    "2025-07-19 09:00:53Z",
                                    "1969-12-31T23:59:59Z",
                                    "2025-07-19T09:00:53.Z",
                                    "2025-07-1aT09:00:53Z",
                                    "2025-07-19T09:00:53Zjunk"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_int_equal(dcap_parse_date(bad[i], &t), -EBADMSG);
  char out[32];
  dcap_format_date(1752915653, out);
  assert_string_equal(out, "2025-07-19T09:00:53Z");
}

static void test_next_update(void **state) {
  (void)state;
  struct dcap_collateral c;
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &c);
  int64_t t;
  assert_int_equal(dcap_collateral_next_update(&c, &t), 0);
  assert_int_equal(t, 1752919235); /* 2025-07-19T10:00:35Z: the PCK CRL */
  free(c.qe_identity);
  c.qe_identity = strdup("{\"nextUpdate\":\"2020-01-01T00:00:00Z\"}");
  assert_int_equal(dcap_collateral_next_update(&c, &t), 0);
  assert_int_equal(t, 1577836800);
  c.pck_crl.len = 3;
  assert_int_equal(dcap_collateral_next_update(&c, &t), -EBADMSG);
  dcap_collateral_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_qvl_json),    cmocka_unit_test(test_qvl_json_bad),
      cmocka_unit_test(test_pcs),         cmocka_unit_test(test_from_dir),
      cmocka_unit_test(test_member_raw),  cmocka_unit_test(test_dates),
      cmocka_unit_test(test_next_update),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
