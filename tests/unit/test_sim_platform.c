#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "attest/eventlog.h"
#include "attest/pck.h"
#include "attest/sim.h"
#include "base/hex.h"
#include "base/json.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "testutil.h"

static char *g_dir;

static int group_setup(void **state) {
  (void)state;
  g_dir = tu_mkdtemp();
  char sub[1024];
  snprintf(sub, sizeof(sub), "%s/sim", g_dir);
  return sim_platform_init(sub, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  tu_rm_rf(g_dir);
  free(g_dir);
  return 0;
}

static const char *path_in(const char *dir, const char *name) {
  static char p[4096];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  return p;
}

static const char *simdir(void) {
  static char p[1024];
  snprintf(p, sizeof(p), "%s/sim", g_dir);
  return p;
}

static void read_in(const char *dir, const char *name, struct buf *out) {
  tu_read_file(path_in(dir, name), out);
}

static X509 *load_cert(const char *dir, const char *name) {
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
  read_in(dir, name, &b);
  X509 *c = NULL;
  assert_int_equal(x509_cert_from_pem(b.data, b.len, &c), 0);
  return c;
}

static EVP_PKEY *cert_key(X509 *c) {
  EVP_PKEY *k = NULL;
  assert_int_equal(x509_cert_public_key(c, &k), 0);
  return k;
}

static void test_files_and_modes(void **state) {
  (void)state;
  const char *dir = simdir();
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0700);
  static const char *const secret[] = {SIM_FILE_ROOT_KEY, SIM_FILE_PCK_CA_KEY, SIM_FILE_PCK_KEY,
                                       SIM_FILE_TCB_SIGNING_KEY, SIM_FILE_QE_KEY,
                                       SIM_FILE_MAC_KEY, SIM_FILE_EVENTLOG};
  static const char *const public[] = {
      SIM_FILE_MARKER,     SIM_FILE_ROOT_CA,       SIM_FILE_PCK_CA,      SIM_FILE_PCK,
      SIM_FILE_PCK_CHAIN,  SIM_FILE_TCB_SIGNING,   SIM_FILE_QE_REPORT,   SIM_FILE_QE_REPORT_SIG,
      SIM_FILE_QE_AUTH,    SIM_FILE_TD,            SIM_FILE_TCB_INFO,    SIM_FILE_QE_IDENTITY,
      SIM_FILE_ROOT_CRL,   SIM_FILE_PCK_CRL,       SIM_FILE_TCB_CHAIN,   SIM_FILE_PCK_CRL_CHAIN,
      SIM_FILE_COLL_ROOT_CA, SIM_FILE_COLLATERAL};
  for (size_t i = 0; i < ARRAY_SIZE(secret); i++) {
    assert_int_equal(stat(path_in(dir, secret[i]), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    if ((st.st_mode & 07777) != 0600)
      fail_msg("%s has mode %o", secret[i], st.st_mode & 07777);
  }
  for (size_t i = 0; i < ARRAY_SIZE(public); i++) {
    assert_int_equal(stat(path_in(dir, public[i]), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_true(st.st_size > 0);
    assert_int_equal(st.st_mode & 0022, 0);
  }
  /* private keys are PKCS#8 PEM */
  static const char *const keys[] = {SIM_FILE_ROOT_KEY, SIM_FILE_PCK_CA_KEY, SIM_FILE_PCK_KEY,
                                     SIM_FILE_TCB_SIGNING_KEY, SIM_FILE_QE_KEY};
  for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
    read_in(dir, keys[i], &b);
    assert_true(b.len > 30 && memcmp(b.data, "-----BEGIN PRIVATE KEY-----", 27) == 0);
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
    assert_int_equal(key_from_pem_or_der(b.data, b.len, &k), 0);
  }
  assert_int_equal(sim_platform_check(dir), 0);
}

static void test_chain(void **state) {
  (void)state;
  const char *dir = simdir();
  _cleanup_(X509_freep) X509 *root = load_cert(dir, SIM_FILE_ROOT_CA);
  _cleanup_(X509_freep) X509 *ca = load_cert(dir, SIM_FILE_PCK_CA);
  _cleanup_(X509_freep) X509 *pck = load_cert(dir, SIM_FILE_PCK);
  _cleanup_(X509_freep) X509 *tcb = load_cert(dir, SIM_FILE_TCB_SIGNING);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *root_pub = cert_key(root);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_pub = cert_key(ca);
  assert_int_equal(x509_cert_verify_signed_by(root, root_pub), 0);
  assert_int_equal(x509_cert_verify_signed_by(ca, root_pub), 0);
  assert_int_equal(x509_cert_verify_signed_by(pck, ca_pub), 0);
  assert_int_equal(x509_cert_verify_signed_by(tcb, root_pub), 0);
  /* and not by the wrong issuer */
  assert_int_not_equal(x509_cert_verify_signed_by(pck, root_pub), 0);
  assert_int_not_equal(x509_cert_verify_signed_by(ca, ca_pub), 0);

  /* CA flags and key usage shaped like Intel's */
  bool is_ca;
  int pl;
  unsigned ku;
  assert_int_equal(x509_cert_basic_constraints(root, &is_ca, &pl), 0);
  assert_true(is_ca);
  assert_int_equal(pl, 1);
  assert_int_equal(x509_cert_basic_constraints(ca, &is_ca, &pl), 0);
  assert_true(is_ca);
  assert_int_equal(pl, 0);
  assert_int_equal(x509_cert_basic_constraints(pck, &is_ca, &pl), 0);
  assert_false(is_ca);
  assert_int_equal(x509_cert_key_usage(pck, &ku), 0);
  assert_true(ku & X509_KU_DIGITAL_SIGNATURE);
  assert_int_equal(x509_cert_key_usage(ca, &ku), 0);
  assert_true(ku & X509_KU_KEY_CERT_SIGN);

  /* names say "simulated" and never "Intel Corporation" */
  X509 *all[] = {root, ca, pck, tcb};
  for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
    _cleanup_buf_ struct buf s = BUF_INIT(4096);
    assert_int_equal(x509_cert_subject_string(all[i], &s), 0);
    assert_int_equal(buf_terminate(&s), 0);
    assert_non_null(strstr((char *)s.data, "Simulated"));
    assert_non_null(strstr((char *)s.data, "dstack simulator"));
    assert_null(strstr((char *)s.data, "Intel Corporation"));
  }

  /* the PCK leaf's SGX extension parses back to the parameters */
  struct sim_params p;
  sim_params_default(&p);
  struct pck_ext e;
  assert_int_equal(pck_cert_ext(pck, &e), 0);
  assert_memory_equal(e.fmspc, p.fmspc, 6);
  assert_memory_equal(e.pceid, p.pceid, 2);
  assert_memory_equal(e.tcb_comp, p.sgx_tcb_comp, 16);
  assert_memory_equal(e.cpusvn, p.sgx_tcb_comp, 16);
  assert_int_equal(e.pcesvn, p.pcesvn);
  assert_int_equal(e.sgx_type, PCK_SGX_TYPE_SCALABLE);

  /* pck_chain.pem = leaf, platform CA, root */
  _cleanup_buf_ struct buf chain = BUF_INIT(BUF_MAX_SMALL);
  read_in(dir, SIM_FILE_PCK_CHAIN, &chain);
  _cleanup_x509_chain_ STACK_OF(X509) *sk = NULL;
  assert_int_equal(x509_chain_from_pem(chain.data, chain.len, &sk), 0);
  assert_int_equal(sk_X509_num(sk), 3);
  assert_int_equal(X509_cmp(sk_X509_value(sk, 0), pck), 0);
  assert_int_equal(X509_cmp(sk_X509_value(sk, 1), ca), 0);
  assert_int_equal(X509_cmp(sk_X509_value(sk, 2), root), 0);
}

/* Splits {"<key>":<text>,"signature":"<hex>"} into the text and the signature. */
static void split_signed(const struct buf *file, const char *key, struct buf *text,
                         uint8_t sig[64]) {
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "{\"%s\":", key);
  size_t pl = strlen(prefix);
  const char *suffix_start = ",\"signature\":\"";
  size_t tail = strlen(suffix_start) + 128 + 2;
  assert_true(file->len > pl + tail);
  assert_memory_equal(file->data, prefix, pl);
  const char *s = (const char *)file->data + file->len - tail;
  assert_memory_equal(s, suffix_start, strlen(suffix_start));
  assert_int_equal(hex_decode_exact(s + strlen(suffix_start), 128, sig, 64), 0);
  assert_memory_equal(s + strlen(suffix_start) + 128, "\"}", 2);
  assert_int_equal(buf_append(text, file->data + pl, file->len - pl - tail), 0);
  /* the whole file is valid JSON too */
  _cleanup_json_ json_t *j = NULL;
  assert_int_equal(json_parse_buf((const char *)file->data, file->len, BUF_MAX_SMALL, &j), 0);
}

static void test_collateral_signatures(void **state) {
  (void)state;
  const char *dir = simdir();
  _cleanup_(X509_freep) X509 *tcb = load_cert(dir, SIM_FILE_TCB_SIGNING);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *tcb_pub = cert_key(tcb);
  _cleanup_(X509_freep) X509 *root = load_cert(dir, SIM_FILE_ROOT_CA);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *root_pub = cert_key(root);

  static const struct {
    const char *file, *key;
  } objs[] = {{SIM_FILE_TCB_INFO, "tcbInfo"}, {SIM_FILE_QE_IDENTITY, "enclaveIdentity"}};
  for (size_t i = 0; i < ARRAY_SIZE(objs); i++) {
    _cleanup_buf_ struct buf f = BUF_INIT(BUF_MAX_SMALL), text = BUF_INIT(BUF_MAX_SMALL);
    uint8_t sig[64];
    read_in(dir, objs[i].file, &f);
    split_signed(&f, objs[i].key, &text, sig);
    assert_int_equal(key_ecdsa_verify_raw(tcb_pub, text.data, text.len, sig), 0);
    assert_int_not_equal(key_ecdsa_verify_raw(root_pub, text.data, text.len, sig), 0);
    text.data[text.len / 2] ^= 1;
    assert_int_not_equal(key_ecdsa_verify_raw(tcb_pub, text.data, text.len, sig), 0);
  }

  /* collateral.json: same texts and signatures, chains and CRLs */
  _cleanup_buf_ struct buf cj = BUF_INIT(BUF_MAX_FILE);
  read_in(dir, SIM_FILE_COLLATERAL, &cj);
  _cleanup_json_ json_t *j = NULL;
  assert_int_equal(json_parse_buf((const char *)cj.data, cj.len, BUF_MAX_FILE, &j), 0);
  static const char *const names[][2] = {{"tcb_info", "tcb_info_signature"},
                                         {"qe_identity", "qe_identity_signature"}};
  static const char *const chains[] = {"tcb_info_issuer_chain", "qe_identity_issuer_chain"};
  for (size_t i = 0; i < 2; i++) {
    const char *text;
    uint8_t sig[64];
    assert_int_equal(json_get_str(j, names[i][0], &text), 0);
    assert_int_equal(json_get_hex(j, names[i][1], sig, 64), 0);
    const char *chain;
    assert_int_equal(json_get_str(j, chains[i], &chain), 0);
    _cleanup_x509_chain_ STACK_OF(X509) *sk = NULL;
    assert_int_equal(x509_chain_from_pem(chain, strlen(chain), &sk), 0);
    assert_int_equal(sk_X509_num(sk), 2);
    assert_int_equal(X509_cmp(sk_X509_value(sk, 0), tcb), 0);
    assert_int_equal(X509_cmp(sk_X509_value(sk, 1), root), 0);
    assert_int_equal(key_ecdsa_verify_raw(tcb_pub, text, strlen(text), sig), 0);
  }
  _cleanup_buf_ struct buf crl_hex = BUF_INIT(BUF_MAX_SMALL), crl_file = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(json_get_hex_buf(j, "root_ca_crl", &crl_hex), 0);
  read_in(dir, SIM_FILE_ROOT_CRL, &crl_file);
  assert_int_equal(crl_hex.len, crl_file.len);
  assert_memory_equal(crl_hex.data, crl_file.data, crl_file.len);
  buf_reset(&crl_hex);
  buf_reset(&crl_file);
  assert_int_equal(json_get_hex_buf(j, "pck_crl", &crl_hex), 0);
  read_in(dir, SIM_FILE_PCK_CRL, &crl_file);
  assert_int_equal(crl_hex.len, crl_file.len);
  assert_memory_equal(crl_hex.data, crl_file.data, crl_file.len);
  const char *pcc;
  assert_int_equal(json_get_str(j, "pck_crl_issuer_chain", &pcc), 0);
  _cleanup_buf_ struct buf pcc_file = BUF_INIT(BUF_MAX_SMALL);
  read_in(dir, SIM_FILE_PCK_CRL_CHAIN, &pcc_file);
  assert_int_equal(strlen(pcc), pcc_file.len);
  assert_memory_equal(pcc, pcc_file.data, pcc_file.len);
}

static X509_CRL *load_crl(const char *dir, const char *name) {
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
  read_in(dir, name, &b);
  const uint8_t *p = b.data;
  X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)b.len);
  assert_non_null(crl);
  assert_ptr_equal(p, b.data + b.len);
  return crl;
}

static void test_crls(void **state) {
  (void)state;
  const char *dir = simdir();
  _cleanup_(X509_freep) X509 *root = load_cert(dir, SIM_FILE_ROOT_CA);
  _cleanup_(X509_freep) X509 *ca = load_cert(dir, SIM_FILE_PCK_CA);
  _cleanup_(X509_freep) X509 *pck = load_cert(dir, SIM_FILE_PCK);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *root_pub = cert_key(root);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_pub = cert_key(ca);
  _cleanup_(X509_CRL_freep) X509_CRL *rc = load_crl(dir, SIM_FILE_ROOT_CRL);
  _cleanup_(X509_CRL_freep) X509_CRL *pc = load_crl(dir, SIM_FILE_PCK_CRL);
  assert_int_equal(X509_CRL_verify(rc, root_pub), 1);
  assert_int_not_equal(X509_CRL_verify(rc, ca_pub), 1);
  assert_int_equal(X509_CRL_verify(pc, ca_pub), 1);
  assert_int_not_equal(X509_CRL_verify(pc, root_pub), 1);
  assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(rc), X509_get_subject_name(root)), 0);
  assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(pc), X509_get_subject_name(ca)), 0);
  /* our certificates are not revoked */
  X509_REVOKED *rev = NULL;
  assert_int_equal(X509_CRL_get0_by_cert(pc, &rev, pck), 0);
  assert_int_equal(X509_CRL_get0_by_cert(rc, &rev, ca), 0);
  /* valid now */
  assert_true(X509_cmp_current_time(X509_CRL_get0_lastUpdate(rc)) < 0);
  assert_true(X509_cmp_current_time(X509_CRL_get0_nextUpdate(rc)) > 0);
}

static void test_tcb_levels(void **state) {
  (void)state;
  const char *dir = simdir();
  struct sim_params p;
  sim_params_default(&p);
  _cleanup_buf_ struct buf f = BUF_INIT(BUF_MAX_SMALL), text = BUF_INIT(BUF_MAX_SMALL);
  uint8_t sig[64];
  read_in(dir, SIM_FILE_TCB_INFO, &f);
  split_signed(&f, "tcbInfo", &text, sig);
  _cleanup_json_ json_t *t = NULL;
  assert_int_equal(json_parse_buf((const char *)text.data, text.len, BUF_MAX_SMALL, &t), 0);
  const char *s;
  uint32_t v;
  uint8_t fmspc[6];
  assert_int_equal(json_get_str(t, "id", &s), 0);
  assert_string_equal(s, "TDX");
  assert_int_equal(json_get_u32(t, "version", &v), 0);
  assert_int_equal(v, 3);
  assert_int_equal(json_get_hex(t, "fmspc", fmspc, 6), 0);
  assert_memory_equal(fmspc, p.fmspc, 6);
  json_t *levels = json_object_get(t, "tcbLevels");
  assert_true(json_array_size(levels) == 2);
  json_t *l0 = json_array_get(levels, 0), *l1 = json_array_get(levels, 1);
  assert_string_equal(json_string_value(json_object_get(l0, "tcbStatus")), "UpToDate");
  assert_string_equal(json_string_value(json_object_get(l1, "tcbStatus")), "OutOfDate");
  json_t *tcb0 = json_object_get(l0, "tcb");
  json_t *sgx = json_object_get(tcb0, "sgxtcbcomponents");
  json_t *tdx = json_object_get(tcb0, "tdxtcbcomponents");
  assert_true(json_array_size(sgx) == 16 && json_array_size(tdx) == 16);
  for (size_t i = 0; i < 16; i++) {
    assert_int_equal(json_integer_value(json_object_get(json_array_get(sgx, i), "svn")),
                     p.sgx_tcb_comp[i]);
    if (i != 1)
      assert_int_equal(json_integer_value(json_object_get(json_array_get(tdx, i), "svn")),
                       p.tee_tcb_svn[i]);
  }
  assert_int_equal(json_integer_value(json_object_get(tcb0, "pcesvn")), p.pcesvn);
  /* the TDX module identity for the TD's module major version */
  json_t *ids = json_object_get(t, "tdxModuleIdentities");
  assert_true(json_array_size(ids) == 1);
  char want_id[16];
  snprintf(want_id, sizeof(want_id), "TDX_%02X", p.tee_tcb_svn[1]);
  assert_string_equal(json_string_value(json_object_get(json_array_get(ids, 0), "id")), want_id);

  /* QE identity matches the QE report in the directory */
  _cleanup_buf_ struct buf qf = BUF_INIT(BUF_MAX_SMALL), qt = BUF_INIT(BUF_MAX_SMALL),
                           rep = BUF_INIT(1024);
  read_in(dir, SIM_FILE_QE_IDENTITY, &qf);
  split_signed(&qf, "enclaveIdentity", &qt, sig);
  _cleanup_json_ json_t *q = NULL;
  assert_int_equal(json_parse_buf((const char *)qt.data, qt.len, BUF_MAX_SMALL, &q), 0);
  read_in(dir, SIM_FILE_QE_REPORT, &rep);
  assert_int_equal(rep.len, QUOTE_QE_REPORT_SIZE);
  struct sgx_report_body qe;
  sgx_report_body_parse(rep.data, &qe);
  uint8_t mrsigner[32];
  assert_int_equal(json_get_hex(q, "mrsigner", mrsigner, 32), 0);
  assert_memory_equal(mrsigner, qe.mr_signer, 32);
  assert_int_equal(json_get_str(q, "id", &s), 0);
  assert_string_equal(s, "TD_QE");
  assert_int_equal(json_get_u32(q, "isvprodid", &v), 0);
  assert_int_equal(v, qe.isv_prod_id);
  json_t *ql = json_array_get(json_object_get(q, "tcbLevels"), 0);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(ql, "tcb"), "isvsvn")),
                   qe.isv_svn);
  assert_string_equal(json_string_value(json_object_get(ql, "tcbStatus")), "UpToDate");
  uint8_t attr[16], mask[16];
  assert_int_equal(json_get_hex(q, "attributes", attr, 16), 0);
  assert_int_equal(json_get_hex(q, "attributesMask", mask, 16), 0);
  for (size_t i = 0; i < 16; i++)
    assert_int_equal(qe.attributes[i] & mask[i], attr[i]);
}

static void test_params_and_determinism(void **state) {
  (void)state;
  char a[1024], b[1024], c[1024];
  snprintf(a, sizeof(a), "%s/a", g_dir);
  snprintf(b, sizeof(b), "%s/b", g_dir);
  snprintf(c, sizeof(c), "%s/c", g_dir);
  struct sim_params p;
  sim_params_default(&p);
  static const uint8_t fmspc[6] = {0x90, 0xc0, 0x6f, 0x00, 0x00, 0x00};
  memcpy(p.fmspc, fmspc, 6);
  p.sgx_tcb_comp[0] = 9;
  p.pcesvn = 13;
  p.not_before = 1700000000;
  p.not_after = 1700000000 + 86400;
  p.seed = "test-seed";
  assert_int_equal(sim_platform_init(a, &p), 0);
  assert_int_equal(sim_platform_init(b, &p), 0);
  p.seed = "other-seed";
  assert_int_equal(sim_platform_init(c, &p), 0);

  struct sim_td ta, tb, tc;
  assert_int_equal(sim_td_load(a, &ta), 0);
  assert_int_equal(sim_td_load(b, &tb), 0);
  assert_int_equal(sim_td_load(c, &tc), 0);
  assert_memory_equal(&ta, &tb, sizeof(ta));
  assert_memory_not_equal(ta.mr_td, tc.mr_td, 48);
  assert_memory_not_equal(ta.rtmr[0], tc.rtmr[0], 48);
  uint8_t zero[48] = {0};
  for (int i = 0; i < 3; i++)
    assert_memory_not_equal(ta.rtmr[i], zero, 48);
  assert_memory_equal(ta.rtmr[3], zero, 48);

  /* dates and fmspc follow the parameters */
  _cleanup_buf_ struct buf f = BUF_INIT(BUF_MAX_SMALL);
  read_in(a, SIM_FILE_TCB_INFO, &f);
  assert_int_equal(buf_terminate(&f), 0);
  assert_non_null(strstr((char *)f.data, "\"issueDate\":\"2023-11-14T22:13:20Z\""));
  assert_non_null(strstr((char *)f.data, "\"nextUpdate\":\"2023-11-15T22:13:20Z\""));
  assert_non_null(strstr((char *)f.data, "\"fmspc\":\"90C06F000000\""));
  _cleanup_(X509_freep) X509 *pck = load_cert(a, SIM_FILE_PCK);
  struct pck_ext e;
  assert_int_equal(pck_cert_ext(pck, &e), 0);
  assert_memory_equal(e.fmspc, fmspc, 6);
  assert_int_equal(e.tcb_comp[0], 9);
  assert_int_equal(e.pcesvn, 13);
  int64_t nb, na;
  assert_int_equal(x509_cert_validity(pck, &nb, &na), 0);
  assert_int_equal(nb, 1700000000);
  assert_true(na > 1700000000 + 86400);

  /* the boot events in the log replay to RTMR0..2 */
  _cleanup_buf_ struct buf log = BUF_INIT(BUF_MAX_SMALL);
  read_in(a, SIM_FILE_EVENTLOG, &log);
  _cleanup_eventlog_ struct eventlog el = EVENTLOG_INIT;
  assert_int_equal(eventlog_parse_json((const char *)log.data, log.len, &el), 0);
  uint8_t rt[4][48];
  assert_int_equal(eventlog_replay(&el, rt), 0);
  assert_memory_equal(rt, ta.rtmr, sizeof(rt));

  /* a re-init replaces keys but keeps the measurements */
  _cleanup_(X509_freep) X509 *root1 = load_cert(a, SIM_FILE_ROOT_CA);
  p.seed = "test-seed";
  assert_int_equal(sim_platform_init(a, &p), 0);
  _cleanup_(X509_freep) X509 *root2 = load_cert(a, SIM_FILE_ROOT_CA);
  assert_int_not_equal(X509_cmp(root1, root2), 0);
  assert_int_equal(sim_td_load(a, &tc), 0);
  assert_memory_equal(&ta, &tc, sizeof(ta));
}

static void test_bad_args(void **state) {
  (void)state;
  struct sim_params p;
  sim_params_default(&p);
  p.not_before = 2000;
  p.not_after = 1000;
  char d[1024];
  snprintf(d, sizeof(d), "%s/bad", g_dir);
  assert_int_equal(sim_platform_init(d, &p), -EINVAL);
  assert_int_equal(sim_platform_init(NULL, NULL), -EINVAL);
  assert_int_equal(sim_platform_init("", NULL), -EINVAL);
  assert_int_equal(sim_platform_check(d), -ENOENT);
  assert_int_equal(sim_platform_check(g_dir), -ENOENT);
  struct sim_td td;
  assert_int_not_equal(sim_td_load(g_dir, &td), 0);
  uint8_t dg[48] = {0};
  assert_int_equal(sim_td_extend(simdir(), 4, dg), -EINVAL);
  /* a corrupt td.json is an error, not a silent reset */
  char e[1024];
  snprintf(e, sizeof(e), "%s/corrupt", g_dir);
  assert_int_equal(sim_platform_init(e, NULL), 0);
  FILE *f = fopen(path_in(e, SIM_FILE_TD), "w");
  assert_non_null(f);
  fputs("{\"version\":1,\"mr_td\":\"00\"}", f);
  fclose(f);
  assert_int_equal(sim_td_load(e, &td), -EBADMSG);
  assert_int_equal(sim_td_extend(e, 3, dg), -EBADMSG);
}

/* No code path trusts the simulated root: OpenSSL's default store does not know it. */
static void test_root_not_trusted_by_default(void **state) {
  (void)state;
  const char *dir = simdir();
  _cleanup_(X509_freep) X509 *ca = load_cert(dir, SIM_FILE_PCK_CA);
  _cleanup_(X509_freep) X509 *pck = load_cert(dir, SIM_FILE_PCK);
  _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();
  assert_non_null(store);
  assert_int_equal(X509_STORE_set_default_paths(store), 1);
  _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  STACK_OF(X509) *untrusted = sk_X509_new_null();
  assert_non_null(untrusted);
  assert_true(sk_X509_push(untrusted, ca) > 0);
  assert_int_equal(X509_STORE_CTX_init(ctx, store, pck, untrusted), 1);
  assert_int_not_equal(X509_verify_cert(ctx), 1);
  sk_X509_free(untrusted);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_files_and_modes),
      cmocka_unit_test(test_chain),
      cmocka_unit_test(test_collateral_signatures),
      cmocka_unit_test(test_crls),
      cmocka_unit_test(test_tcb_levels),
      cmocka_unit_test(test_params_and_determinism),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_root_not_trusted_by_default),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
