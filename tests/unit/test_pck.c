#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "attest/pck.h"
#include "attest/quote.h"
#include "base/hex.h"
#include "testutil.h"

struct vec {
  const char *path;
  bool hex;
  const char *collateral; /* dcap-qvl collateral JSON with the matching TCB info, or NULL */
  bool platform;          /* issued by the PCK Platform CA (instance id + configuration) */
};

static const struct vec vecs[] = {
    {"dcap-qvl/tdx_quote", false, "dcap-qvl/tdx_quote_collateral.json", true},
    {"dcap-qvl/sgx_quote", false, "dcap-qvl/sgx_quote_collateral.json", false},
    {"dcap-qvl/tdx_quote_outdated", false, "dcap-qvl/tdx_quote_outdated_collateral.json", true},
    {"dcap-qvl/tdx-quote.hex", true, NULL, true},
    {"dcap-qvl/quote-from-tappd.hex", true, NULL, true},
    {"dstack/ra-tls_tdx_quote", false, NULL, true},
    {"zkdcap/quote_tdx_00806f050000.dat", false, NULL, true},
    {"go-tdx-guest/tdx_prod_quote_SPR_E4.dat", false, NULL, true},
    {"go-tdx-guest/ccel/cos-113-tdx-quote.dat", false, NULL, true},
};

/* The raw extension value of the PCK leaf of a vector quote (and the leaf itself). */
static void leaf_ext(const struct vec *v, struct buf *ext, X509 **ret_leaf) {
  _cleanup_buf_ struct buf in = BUF_INIT(BUF_MAX_FILE);
  struct quote q;
  tu_read_vector(v->path, v->hex, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  BIO *bio = BIO_new_mem_buf(q.pck_chain_pem.ptr, (int)q.pck_chain_pem.len);
  assert_non_null(bio);
  X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  assert_non_null(leaf);
  ASN1_OBJECT *obj = OBJ_txt2obj(PCK_EXT_OID, 1);
  int idx = X509_get_ext_by_OBJ(leaf, obj, -1);
  ASN1_OBJECT_free(obj);
  assert_true(idx >= 0);
  const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
  *ext = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(buf_append(ext, ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os)), 0);
  if (ret_leaf)
    *ret_leaf = leaf;
  else
    X509_free(leaf);
}

static void tcbinfo_ids(const char *rel, char fmspc[13], char pceid[5]) {
  _cleanup_buf_ struct buf text = BUF_INIT(BUF_MAX_FILE);
  json_error_t err;
  tu_read_vector(rel, false, &text);
  json_t *c = json_loadb((const char *)text.data, text.len, 0, &err);
  assert_non_null(c);
  json_t *t = json_loads(json_string_value(json_object_get(c, "tcb_info")), 0, &err);
  assert_non_null(t);
  snprintf(fmspc, 13, "%s", json_string_value(json_object_get(t, "fmspc")));
  snprintf(pceid, 5, "%s", json_string_value(json_object_get(t, "pceId")));
  for (char *p = fmspc; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  for (char *p = pceid; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  json_decref(t);
  json_decref(c);
}

static void test_pck_vectors_roundtrip(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(vecs); i++) {
    _cleanup_buf_ struct buf ext, out = BUF_INIT(BUF_MAX_SMALL);
    struct pck_ext e, e2;
    X509 *leaf;
    leaf_ext(&vecs[i], &ext, &leaf);
    assert_int_equal(pck_ext_parse(ext.data, ext.len, &e), 0);
    assert_int_equal(pck_ext_encode(&e, &out), 0);
    if (out.len != ext.len || memcmp(out.data, ext.data, ext.len) != 0)
      fail_msg("%s: re-encoded extension differs (%zu vs %zu bytes)", vecs[i].path, out.len,
               ext.len);
    assert_int_equal(pck_cert_ext(leaf, &e2), 0);
    assert_memory_equal(&e, &e2, sizeof(e));
    X509_free(leaf);

    assert_int_equal(e.has_platform_instance_id, vecs[i].platform);
    assert_int_equal(e.has_configuration, vecs[i].platform);
    assert_int_equal(e.sgx_type, vecs[i].platform ? PCK_SGX_TYPE_SCALABLE : PCK_SGX_TYPE_STANDARD);
    /* In Intel's PCK certificates the CPUSVN is the 16 SGX TCB components. */
    assert_memory_equal(e.cpusvn, e.tcb_comp, 16);
    if (vecs[i].collateral) {
      char fmspc[13], pceid[5], h[13];
      tcbinfo_ids(vecs[i].collateral, fmspc, pceid);
      hex_encode(e.fmspc, 6, h);
      assert_string_equal(h, fmspc);
      hex_encode(e.pceid, 2, h);
      assert_string_equal(h, pceid);
    }
  }
}

/* Vectors README: the outdated quote's PCK has SGX component 7 (0-based: SEAMLDR ACM, comp 08) = 3,
 * below the 5 every TCB level of its collateral asks for. */
static void test_pck_outdated_comp7(void **state) {
  (void)state;
  _cleanup_buf_ struct buf ext;
  struct pck_ext e;
  leaf_ext(&vecs[2], &ext, NULL);
  assert_int_equal(pck_ext_parse(ext.data, ext.len, &e), 0);
  assert_int_equal(e.tcb_comp[7], 3);
}

static void test_pck_chain_leaf(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in = BUF_INIT(BUF_MAX_FILE);
  struct quote q;
  struct pck_ext e;
  tu_read_vector("dcap-qvl/tdx_quote", false, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  assert_int_equal(pck_chain_leaf_ext(q.pck_chain_pem.ptr, q.pck_chain_pem.len, &e), 0);
  assert_int_equal(pck_chain_leaf_ext((const uint8_t *)"nope", 4, &e), -EBADMSG);
  assert_int_equal(pck_chain_leaf_ext(NULL, 0, &e), -EINVAL);
  /* The second certificate (PCK Platform CA) has no SGX extension. */
  BIO *bio = BIO_new_mem_buf(q.pck_chain_pem.ptr, (int)q.pck_chain_pem.len);
  X509 *c1 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  X509 *c2 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  assert_non_null(c2);
  assert_int_equal(pck_cert_ext(c2, &e), -ENOENT);
  assert_int_equal(pck_cert_ext(NULL, &e), -EINVAL);
  X509_free(c1);
  X509_free(c2);
}

static void test_pck_truncated_and_flips(void **state) {
  (void)state;
  for (size_t v = 0; v < 2; v++) { /* one platform, one processor cert */
    _cleanup_buf_ struct buf ext, out = BUF_INIT(BUF_MAX_SMALL);
    struct pck_ext e;
    leaf_ext(&vecs[v], &ext, NULL);
    for (size_t n = 0; n < ext.len; n++) {
      uint8_t *c = malloc(n ? n : 1);
      memcpy(c, ext.data, n);
      assert_int_equal(pck_ext_parse(c, n, &e), -EBADMSG);
      free(c);
    }
    /* Any accepted mutation re-encodes to the mutated bytes (DER is canonical). */
    static const uint8_t vals[] = {0x00, 0x01, 0x02, 0x04, 0x06, 0x0a,
                                   0x30, 0x7f, 0x80, 0x81, 0x82, 0xff};
    size_t accepted = 0;
    for (size_t pos = 0; pos < ext.len; pos++) {
      uint8_t old = ext.data[pos];
      for (size_t k = 0; k < ARRAY_SIZE(vals); k++) {
        if (vals[k] == old)
          continue;
        ext.data[pos] = vals[k];
        if (pck_ext_parse(ext.data, ext.len, &e) == 0) {
          accepted++;
          buf_reset(&out);
          assert_int_equal(pck_ext_encode(&e, &out), 0);
          assert_int_equal(out.len, ext.len);
          assert_memory_equal(out.data, ext.data, ext.len);
        }
      }
      ext.data[pos] = old;
    }
    assert_true(accepted > 0); /* value bytes (PPID, FMSPC, ...) are free */
    /* Trailing byte after the outer SEQUENCE. */
    assert_int_equal(buf_append_u8(&ext, 0), 0);
    assert_int_equal(pck_ext_parse(ext.data, ext.len, &e), -EBADMSG);
  }
}

/* Finds needle in hay; -1 when absent. */
static ssize_t find(const struct buf *hay, const void *needle, size_t n) {
  for (size_t i = 0; i + n <= hay->len; i++)
    if (memcmp(hay->data + i, needle, n) == 0)
      return (ssize_t)i;
  return -1;
}

static void sample(struct pck_ext *e) {
  memset(e, 0, sizeof(*e));
  for (int i = 0; i < 16; i++) {
    e->ppid[i] = (uint8_t)(0xa0 + i);
    e->tcb_comp[i] = (uint8_t)i;
    e->cpusvn[i] = (uint8_t)i;
  }
  e->tcb_comp[0] = 0x80; /* needs a leading zero in DER */
  e->pcesvn = 13;
  e->pceid[1] = 0;
  memcpy(e->fmspc, "\x00\x90\x6e\xd5\x00\x00", 6);
  e->sgx_type = PCK_SGX_TYPE_SCALABLE;
  e->has_platform_instance_id = true;
  memset(e->platform_instance_id, 0x5a, 16);
  e->has_configuration = true;
  e->has_dynamic_platform = e->has_cached_keys = e->has_smt_enabled = true;
  e->dynamic_platform = true;
  e->smt_enabled = true;
}

static void test_pck_synthetic(void **state) {
  (void)state;
  struct pck_ext e, p;
  sample(&e);
  /* Every combination of the optional parts round-trips. */
  for (unsigned mask = 0; mask < 32; mask++) {
    _cleanup_buf_ struct buf out = BUF_INIT(BUF_MAX_SMALL), again = BUF_INIT(BUF_MAX_SMALL);
    struct pck_ext x = e;
    x.has_platform_instance_id = mask & 1;
    if (!x.has_platform_instance_id)
      memset(x.platform_instance_id, 0, 16);
    x.has_configuration = mask & 2;
    x.has_dynamic_platform = x.has_configuration && (mask & 4);
    x.has_cached_keys = x.has_configuration && (mask & 8);
    x.has_smt_enabled = x.has_configuration && (mask & 16);
    x.dynamic_platform = x.has_dynamic_platform;
    x.cached_keys = false;
    x.smt_enabled = x.has_smt_enabled;
    x.pcesvn = (uint16_t)(mask * 2000);
    assert_int_equal(pck_ext_encode(&x, &out), 0);
    assert_int_equal(pck_ext_parse(out.data, out.len, &p), 0);
    assert_memory_equal(&p, &x, sizeof(x));
    assert_int_equal(pck_ext_encode(&p, &again), 0);
    assert_memory_equal(again.data, out.data, out.len);
  }
  /* Values at the edges. */
  e.pcesvn = 0xffff;
  e.sgx_type = 255;
  _cleanup_buf_ struct buf out = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(pck_ext_encode(&e, &out), 0);
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), 0);
  assert_int_equal(p.pcesvn, 0xffff);
  assert_true(find(&out, "\x02\x03\x00\xff\xff", 5) >= 0);
  e.sgx_type = 256;
  buf_reset(&out);
  assert_int_equal(pck_ext_encode(&e, &out), -EINVAL);
  e.sgx_type = -1;
  assert_int_equal(pck_ext_encode(&e, &out), -EINVAL);
}

static void test_pck_strict(void **state) {
  (void)state;
  struct pck_ext e, p;
  _cleanup_buf_ struct buf out = BUF_INIT(BUF_MAX_SMALL);
  sample(&e);
  assert_int_equal(pck_ext_encode(&e, &out), 0);
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), 0);

  /* comp 1 = 0x80 is 02 02 00 80: make it a non-minimal 02 02 00 05. */
  ssize_t at = find(&out, "\x02\x02\x00\x80", 4);
  assert_true(at >= 0);
  out.data[at + 3] = 0x05;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), -EBADMSG);
  /* Negative: 02 02 80 80 */
  out.data[at + 2] = 0x80;
  out.data[at + 3] = 0x80;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), -EBADMSG);
  out.data[at + 2] = 0x00;
  /* Over 255 for a component: 02 02 01 00 */
  out.data[at + 2] = 0x01;
  out.data[at + 3] = 0x00;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), -EBADMSG);
  out.data[at + 2] = 0x00;
  out.data[at + 3] = 0x80;
  /* Wrong tag for the component. */
  out.data[at] = 0x0a;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), -EBADMSG);
  out.data[at] = 0x02;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), 0);

  /* BOOLEAN must be 00 or ff. */
  at = find(&out, "\x01\x01\xff", 3);
  assert_true(at >= 0);
  out.data[at + 2] = 0x01;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), -EBADMSG);
  out.data[at + 2] = 0xff;

  /* Components out of order: OID ...2.1 renamed ...2.2. */
  static const uint8_t comp1[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf8,
                                  0x4d, 0x01, 0x0d, 0x01, 0x02, 0x01};
  at = find(&out, comp1, sizeof(comp1));
  assert_true(at >= 0);
  out.data[at + sizeof(comp1) - 1] = 0x02;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), -EBADMSG);
  out.data[at + sizeof(comp1) - 1] = 0x01;

  /* PCE-ID and FMSPC swapped (rename the OIDs; sizes then mismatch too). */
  static const uint8_t pceid_oid[] = {0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86,
                                      0xf8, 0x4d, 0x01, 0x0d, 0x01, 0x03};
  at = find(&out, pceid_oid, sizeof(pceid_oid));
  assert_true(at >= 0);
  out.data[at + sizeof(pceid_oid) - 1] = 0x04;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), -EBADMSG);
  out.data[at + sizeof(pceid_oid) - 1] = 0x03;
  assert_int_equal(pck_ext_parse(out.data, out.len, &p), 0);

  /* Length forms on the outer SEQUENCE. */
  static const uint8_t indefinite[] = {0x30, 0x80, 0x00, 0x00};
  static const uint8_t long_short[] = {0x30, 0x81, 0x02, 0x05, 0x00};
  static const uint8_t lead_zero[] = {0x30, 0x82, 0x00, 0x02, 0x05, 0x00};
  static const uint8_t huge[] = {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff};
  static const uint8_t empty_seq[] = {0x30, 0x00};
  static const uint8_t not_seq[] = {0x31, 0x00};
  assert_int_equal(pck_ext_parse(indefinite, sizeof(indefinite), &p), -EBADMSG);
  assert_int_equal(pck_ext_parse(long_short, sizeof(long_short), &p), -EBADMSG);
  assert_int_equal(pck_ext_parse(lead_zero, sizeof(lead_zero), &p), -EBADMSG);
  assert_int_equal(pck_ext_parse(huge, sizeof(huge), &p), -EBADMSG);
  assert_int_equal(pck_ext_parse(empty_seq, sizeof(empty_seq), &p), -EBADMSG);
  assert_int_equal(pck_ext_parse(not_seq, sizeof(not_seq), &p), -EBADMSG);
  assert_int_equal(pck_ext_parse(NULL, 0, &p), -EBADMSG);
  assert_int_equal(pck_ext_parse(NULL, 1, &p), -EINVAL);
  assert_int_equal(pck_ext_parse(not_seq, sizeof(not_seq), NULL), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pck_vectors_roundtrip), cmocka_unit_test(test_pck_outdated_comp7),
      cmocka_unit_test(test_pck_chain_leaf),        cmocka_unit_test(test_pck_truncated_and_flips),
      cmocka_unit_test(test_pck_synthetic),         cmocka_unit_test(test_pck_strict),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
