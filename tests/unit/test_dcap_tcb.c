#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "attest/dcap_collateral.h"
#include "attest/dcap_tcb.h"
#include "attest/pck.h"
#include "attest/quote.h"
#include "base/json.h"
#include "base/str.h"
#include "testutil.h"

/* The tcb_info / qe_identity text of a dcap-qvl collateral vector (allocated). */
static char *qvl_text(const char *rel, const char *key) {
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector(rel, false, &b);
  struct dcap_collateral c;
  assert_int_equal(dcap_collateral_from_qvl_json((const char *)b.data, b.len, &c), 0);
  char *s = strdup(str_eq(key, "tcb_info") ? c.tcb_info : c.qe_identity);
  dcap_collateral_free(&c);
  assert_non_null(s);
  return s;
}

static void test_parse_real(void **state) {
  (void)state;
  _cleanup_free_ char *t = qvl_text("dcap-qvl/tdx_quote_collateral.json", "tcb_info");
  struct dcap_tcb_info ti;
  assert_int_equal(dcap_tcb_info_parse(t, strlen(t), &ti), 0);
  assert_int_equal(ti.id, DCAP_TCB_ID_TDX);
  assert_int_equal(ti.version, 3);
  static const uint8_t fmspc[6] = {0xb0, 0xc0, 0x6f, 0, 0, 0};
  assert_memory_equal(ti.fmspc, fmspc, 6);
  assert_int_equal(ti.tcb_eval_num, 17);
  assert_int_equal(ti.issue_date, 1750328163); /* 2025-06-19T10:16:03Z */
  assert_int_equal(ti.next_update, 1752920163);
  assert_true(ti.n_levels >= 2);
  assert_int_equal(ti.levels[0].status, DCAP_STATUS_UP_TO_DATE);
  assert_int_equal(ti.levels[0].sgx_comp[7], 5);
  assert_int_equal(ti.levels[0].pcesvn, 11);
  assert_int_equal(ti.levels[0].tdx_comp[0], 5);
  assert_int_equal(ti.levels[0].tdx_comp[2], 2);
  assert_true(ti.n_modules >= 2);
  assert_string_equal(ti.modules[0].id, "TDX_03");
  assert_int_equal(ti.modules[0].levels[0].isvsvn, 3);
  uint8_t ones[8];
  memset(ones, 0xff, 8);
  assert_memory_equal(ti.module_attributes_mask, ones, 8);
  dcap_tcb_info_free(&ti);
  dcap_tcb_info_free(&ti); /* zeroed: a second free is harmless */

  _cleanup_free_ char *s = qvl_text("dcap-qvl/sgx_quote_collateral.json", "tcb_info");
  assert_int_equal(dcap_tcb_info_parse(s, strlen(s), &ti), 0);
  assert_int_equal(ti.id, DCAP_TCB_ID_SGX);
  assert_int_equal(ti.n_levels, 11);
  assert_int_equal(ti.n_modules, 0);
  assert_int_equal(ti.levels[0].status, DCAP_STATUS_SW_HARDENING_NEEDED);
  assert_int_equal(ti.levels[0].n_advisory_ids, 1);
  assert_string_equal(ti.levels[0].advisory_ids[0], "INTEL-SA-00615");
  assert_null(ti.levels[0].advisory_ids[1]);
  dcap_tcb_info_free(&ti);

  /* PCS files */
  static const char *const pcs[] = {"zkdcap/tcbinfov3_00806f050000.json",
                                    "zkdcap/tcbinfov3_00906ED50000.json",
                                    "go-tdx-guest/sample_tcbInfo_response"};
  for (size_t i = 0; i < ARRAY_SIZE(pcs); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_FILE);
    tu_read_vector(pcs[i], false, &b);
    const char *raw;
    size_t n;
    assert_int_equal(dcap_json_member_raw((char *)b.data, b.len, "tcbInfo", &raw, &n), 0);
    assert_int_equal(dcap_tcb_info_parse(raw, n, &ti), 0);
    assert_true(ti.n_levels > 0);
    dcap_tcb_info_free(&ti);
  }

  _cleanup_free_ char *q = qvl_text("dcap-qvl/sgx_quote_collateral.json", "qe_identity");
  struct dcap_qe_identity qi;
  assert_int_equal(dcap_qe_identity_parse(q, strlen(q), &qi), 0);
  assert_int_equal(qi.id, DCAP_ENCLAVE_QE);
  assert_int_equal(qi.isvprodid, 1);
  assert_int_equal(qi.mrsigner[0], 0x8c);
  assert_int_equal(qi.attributes[0], 0x11);
  assert_int_equal(qi.attributes_mask[0], 0xfb);
  assert_int_equal(qi.n_levels, 6);
  assert_int_equal(qi.levels[1].isvsvn, 6);
  assert_int_equal(qi.levels[1].status, DCAP_STATUS_OUT_OF_DATE);
  assert_string_equal(qi.levels[1].advisory_ids[0], "INTEL-SA-00615");
  dcap_qe_identity_free(&qi);
  static const char *const qpcs[] = {"zkdcap/qeidentityv2_tdx.json", "zkdcap/qeidentityv2_sgx.json",
                                     "go-tdx-guest/sample_qeIdentity_response"};
  for (size_t i = 0; i < ARRAY_SIZE(qpcs); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_FILE);
    tu_read_vector(qpcs[i], false, &b);
    const char *raw;
    size_t n;
    assert_int_equal(dcap_json_member_raw((char *)b.data, b.len, "enclaveIdentity", &raw, &n), 0);
    assert_int_equal(dcap_qe_identity_parse(raw, n, &qi), 0);
    dcap_qe_identity_free(&qi);
  }
}

/* Applies edit to the parsed real TCB info (or QE identity) and parses the result again. */
typedef void (*edit_fn)(json_t *j);
static int reparse(const char *key, edit_fn edit) {
  _cleanup_free_ char *t = qvl_text("dcap-qvl/tdx_quote_collateral.json", key);
  _cleanup_json_ json_t *j = NULL;
  assert_int_equal(json_parse_buf(t, strlen(t), BUF_MAX_FILE, &j), 0);
  edit(j);
  _cleanup_free_ char *s = json_dump_compact(j);
  int r;
  if (str_eq(key, "tcb_info")) {
    struct dcap_tcb_info ti;
    r = dcap_tcb_info_parse(s, strlen(s), &ti);
    if (r == 0)
      dcap_tcb_info_free(&ti);
  } else {
    struct dcap_qe_identity qi;
    r = dcap_qe_identity_parse(s, strlen(s), &qi);
    if (r == 0)
      dcap_qe_identity_free(&qi);
  }
  return r;
}

static json_t *level0(json_t *j) { return json_array_get(json_object_get(j, "tcbLevels"), 0); }
static void e_none(json_t *j) { (void)j; }
static void e_v2(json_t *j) { json_object_set_new(j, "version", json_integer(2)); }
static void e_id(json_t *j) { json_object_set_new(j, "id", json_string("XYZ")); }
static void e_no_fmspc(json_t *j) { json_object_del(j, "fmspc"); }
static void e_short_fmspc(json_t *j) { json_object_set_new(j, "fmspc", json_string("00112233")); }
static void e_no_module(json_t *j) { json_object_del(j, "tdxModule"); }
static void e_bad_date(json_t *j) { json_object_set_new(j, "nextUpdate", json_string("tomorrow")); }
static void e_status(json_t *j) {
  json_object_set_new(level0(j), "tcbStatus", json_string("Fine"));
}
static void e_svn256(json_t *j) {
  json_t *c =
      json_array_get(json_object_get(json_object_get(level0(j), "tcb"), "sgxtcbcomponents"), 3);
  json_object_set_new(c, "svn", json_integer(256));
}
static void e_15comps(json_t *j) {
  json_array_remove(json_object_get(json_object_get(level0(j), "tcb"), "tdxtcbcomponents"), 15);
}
static void e_pcesvn_str(json_t *j) {
  json_object_set_new(json_object_get(level0(j), "tcb"), "pcesvn", json_string("11"));
}
static void e_adv_int(json_t *j) {
  json_object_set_new(level0(j), "advisoryIDs", json_pack("[i]", 5));
}
static void e_adv_ok(json_t *j) {
  json_object_set_new(level0(j), "advisoryIDs", json_pack("[ss]", "INTEL-SA-1", "INTEL-SA-2"));
}
static void e_no_levels(json_t *j) { json_object_set_new(j, "tcbLevels", json_array()); }
static void e_many_levels(json_t *j) {
  json_t *a = json_object_get(j, "tcbLevels");
  json_t *l = json_deep_copy(level0(j));
  for (int i = 0; i < DCAP_TCB_MAX_LEVELS; i++)
    json_array_append(a, l);
  json_decref(l);
}
static void e_module_bad(json_t *j) {
  json_t *m = json_array_get(json_object_get(j, "tdxModuleIdentities"), 0);
  json_object_set_new(m, "mrsigner", json_string("00"));
}
static void e_module_status(json_t *j) {
  json_t *m = json_array_get(json_object_get(j, "tdxModuleIdentities"), 0);
  json_object_set_new(json_array_get(json_object_get(m, "tcbLevels"), 0), "tcbStatus",
                      json_string("ConfigurationNeeded"));
}
static void e_qe_status(json_t *j) {
  json_object_set_new(level0(j), "tcbStatus", json_string("SWHardeningNeeded"));
}
static void e_qe_prodid(json_t *j) { json_object_set_new(j, "isvprodid", json_integer(65536)); }
static void e_qe_v3(json_t *j) { json_object_set_new(j, "version", json_integer(3)); }
static void e_qe_mask(json_t *j) { json_object_set_new(j, "attributesMask", json_string("FF")); }

static void test_parse_bad(void **state) {
  (void)state;
  assert_int_equal(reparse("tcb_info", e_none), 0);
  assert_int_equal(reparse("tcb_info", e_adv_ok), 0);
  assert_int_equal(reparse("tcb_info", e_v2), -ENOTSUP);
  assert_int_equal(reparse("tcb_info", e_id), -ENOTSUP);
  assert_int_equal(reparse("tcb_info", e_no_fmspc), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_short_fmspc), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_no_module), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_bad_date), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_status), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_svn256), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_15comps), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_pcesvn_str), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_adv_int), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_no_levels), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_many_levels), -ENOBUFS);
  assert_int_equal(reparse("tcb_info", e_module_bad), -EBADMSG);
  assert_int_equal(reparse("tcb_info", e_module_status), -EBADMSG);
  assert_int_equal(reparse("qe_identity", e_none), 0);
  assert_int_equal(reparse("qe_identity", e_qe_status), -EBADMSG);
  assert_int_equal(reparse("qe_identity", e_qe_prodid), -EBADMSG);
  assert_int_equal(reparse("qe_identity", e_qe_v3), -ENOTSUP);
  assert_int_equal(reparse("qe_identity", e_id), -ENOTSUP);
  assert_int_equal(reparse("qe_identity", e_qe_mask), -EBADMSG);
  assert_int_equal(reparse("qe_identity", e_no_levels), -EBADMSG);

  struct dcap_tcb_info ti;
  struct dcap_qe_identity qi;
  _cleanup_free_ char *t = qvl_text("dcap-qvl/tdx_quote_collateral.json", "tcb_info");
  for (size_t cut = 0; cut < strlen(t); cut += 97)
    assert_int_equal(dcap_tcb_info_parse(t, cut, &ti), -EBADMSG);
  assert_int_equal(dcap_tcb_info_parse("[]", 2, &ti), -EBADMSG);
  assert_int_equal(dcap_tcb_info_parse("{}", 2, &ti), -EBADMSG);
  assert_int_equal(dcap_qe_identity_parse("{\"id\":1}", 8, &qi), -EBADMSG);
  assert_int_equal(dcap_tcb_info_parse(NULL, 0, &ti), -EINVAL);
}

static void test_status(void **state) {
  (void)state;
  for (int s = 0; s < _DCAP_STATUS_MAX; s++) {
    enum dcap_status x;
    assert_int_equal(dcap_status_from_name(dcap_status_name((enum dcap_status)s), &x), 0);
    assert_int_equal(x, s);
  }
  assert_string_equal(dcap_status_name(_DCAP_STATUS_MAX), "?");
  enum dcap_status x;
  assert_int_equal(dcap_status_from_name("uptodate", &x), -EINVAL);

  /* Intel's convergence with the QE (and TDX module) status */
  static const struct {
    enum dcap_status platform, other, want;
  } t[] = {
      {DCAP_STATUS_UP_TO_DATE, DCAP_STATUS_UP_TO_DATE, DCAP_STATUS_UP_TO_DATE},
      {DCAP_STATUS_UP_TO_DATE, DCAP_STATUS_OUT_OF_DATE, DCAP_STATUS_OUT_OF_DATE},
      {DCAP_STATUS_SW_HARDENING_NEEDED, DCAP_STATUS_OUT_OF_DATE, DCAP_STATUS_OUT_OF_DATE},
      {DCAP_STATUS_SW_HARDENING_NEEDED, DCAP_STATUS_UP_TO_DATE, DCAP_STATUS_SW_HARDENING_NEEDED},
      {DCAP_STATUS_CONFIGURATION_NEEDED, DCAP_STATUS_OUT_OF_DATE,
       DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED},
      {DCAP_STATUS_CONFIGURATION_AND_SW_HARDENING_NEEDED, DCAP_STATUS_OUT_OF_DATE,
       DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED},
      {DCAP_STATUS_CONFIGURATION_AND_SW_HARDENING_NEEDED, DCAP_STATUS_UP_TO_DATE,
       DCAP_STATUS_CONFIGURATION_AND_SW_HARDENING_NEEDED},
      {DCAP_STATUS_OUT_OF_DATE, DCAP_STATUS_OUT_OF_DATE, DCAP_STATUS_OUT_OF_DATE},
      {DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED, DCAP_STATUS_OUT_OF_DATE,
       DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED},
      {DCAP_STATUS_UP_TO_DATE, DCAP_STATUS_REVOKED, DCAP_STATUS_REVOKED},
      {DCAP_STATUS_CONFIGURATION_NEEDED, DCAP_STATUS_REVOKED, DCAP_STATUS_REVOKED},
      {DCAP_STATUS_REVOKED, DCAP_STATUS_UP_TO_DATE, DCAP_STATUS_REVOKED},
      {DCAP_STATUS_REVOKED, DCAP_STATUS_OUT_OF_DATE, DCAP_STATUS_REVOKED},
  };
  for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
    assert_int_equal(dcap_status_merge_qe(t[i].platform, t[i].other), t[i].want);
    assert_int_equal(dcap_status_merge_module(t[i].platform, t[i].other), t[i].want);
  }
}

/* ---- synthetic TCB info for the matching rules ---- */

struct lvl {
  uint8_t sgx[16];
  uint16_t pcesvn;
  uint8_t tdx[16];
  const char *status;
  const char *adv; /* JSON array text or NULL */
};

static void comps(struct buf *b, const char *key, const uint8_t v[16]) {
  assert_int_equal(buf_printf(b, "\"%s\":[", key), 0);
  for (int i = 0; i < 16; i++)
    assert_int_equal(buf_printf(b, "%s{\"svn\":%u}", i ? "," : "", v[i]), 0);
  assert_int_equal(buf_append_str(b, "]"), 0);
}

#define MRSIGNER_HEX                                                                               \
  "AA000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"   \
  "0000"

static char *mk_tcb(bool tdx, const struct lvl *l, size_t n, const char *modules) {
  struct buf b = BUF_INIT(BUF_MAX_FILE);
  assert_int_equal(buf_printf(&b,
                              "{\"id\":\"%s\",\"version\":3,\"issueDate\":\"2025-01-01T00:00:00Z\","
                              "\"nextUpdate\":\"2025-02-01T00:00:00Z\",\"fmspc\":\"00806F050000\","
                              "\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,",
                              tdx ? "TDX" : "SGX"),
                   0);
  if (tdx) {
    assert_int_equal(buf_printf(&b, "\"tdxModule\":{\"mrsigner\":\"" MRSIGNER_HEX
                                    "\",\"attributes\":\"0000000000000000\","
                                    "\"attributesMask\":\"FFFFFFFFFFFFFFFF\"},"),
                     0);
    if (modules)
      assert_int_equal(buf_printf(&b, "\"tdxModuleIdentities\":%s,", modules), 0);
  }
  assert_int_equal(buf_append_str(&b, "\"tcbLevels\":["), 0);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(buf_printf(&b, "%s{\"tcb\":{", i ? "," : ""), 0);
    comps(&b, "sgxtcbcomponents", l[i].sgx);
    assert_int_equal(buf_printf(&b, ",\"pcesvn\":%u", l[i].pcesvn), 0);
    if (tdx) {
      assert_int_equal(buf_append_str(&b, ","), 0);
      comps(&b, "tdxtcbcomponents", l[i].tdx);
    }
    assert_int_equal(
        buf_printf(&b, "},\"tcbDate\":\"2024-01-01T00:00:00Z\",\"tcbStatus\":\"%s\"", l[i].status),
        0);
    if (l[i].adv)
      assert_int_equal(buf_printf(&b, ",\"advisoryIDs\":%s", l[i].adv), 0);
    assert_int_equal(buf_append_str(&b, "}"), 0);
  }
  assert_int_equal(buf_append_str(&b, "]}"), 0);
  assert_int_equal(buf_terminate(&b), 0);
  return (char *)buf_steal(&b, NULL);
}

static void parse_tcb(char *text, struct dcap_tcb_info *ti) {
  int r = dcap_tcb_info_parse(text, strlen(text), ti);
  if (r < 0)
    fail_msg("parse: %d: %s", r, text);
  free(text);
}

static void td_quote(struct quote *q, const uint8_t tee[16]) {
  *q = (struct quote){.version = 4, .tee_type = QUOTE_TEE_TDX, .body_type = QUOTE_BODY_TD10};
  memcpy(q->td.tee_tcb_svn, tee, 16);
  q->td.mr_signer_seam[0] = 0xaa;
}

static void pck_for(struct pck_ext *p, const uint8_t sgx[16], uint16_t pcesvn) {
  *p = (struct pck_ext){.fmspc = {0x00, 0x80, 0x6f, 0x05, 0, 0}, .pcesvn = pcesvn};
  memcpy(p->tcb_comp, sgx, 16);
}

static const struct dcap_isv_level qe_ok = {.isvsvn = 4, .status = DCAP_STATUS_UP_TO_DATE};
static const struct dcap_isv_level qe_old = {.isvsvn = 3, .status = DCAP_STATUS_OUT_OF_DATE};

static void test_match_sgx(void **state) {
  (void)state;
  static const struct lvl l[] = {
      {{3, 3, 2, 2, 4, 1, 0, 5}, 13, {0}, "UpToDate", NULL},
      {{2, 2, 2, 2, 3, 1, 0, 5}, 11, {0}, "ConfigurationNeeded", "[\"INTEL-SA-A\"]"},
      {{1, 1, 1, 1, 1, 1, 0, 1}, 5, {0}, "OutOfDate", "[\"INTEL-SA-B\",\"INTEL-SA-C\"]"},
  };
  struct dcap_tcb_info ti;
  parse_tcb(mk_tcb(false, l, 3, NULL), &ti);
  struct quote q = {.version = 3, .tee_type = QUOTE_TEE_SGX, .body_type = QUOTE_BODY_SGX};
  struct pck_ext p;
  struct dcap_tcb_outcome o;
  char msg[200];

  static const struct {
    uint8_t sgx[16];
    uint16_t pcesvn;
    const struct dcap_isv_level *qe;
    int want_r;
    enum dcap_status want;
    size_t level;
  } cases[] = {
      {{3, 3, 2, 2, 4, 1, 0, 5}, 13, &qe_ok, 0, DCAP_STATUS_UP_TO_DATE, 0},
      {{9, 9, 9, 9, 9, 9, 9, 9}, 99, &qe_ok, 0, DCAP_STATUS_UP_TO_DATE, 0},
      {{3, 3, 2, 2, 4, 1, 0, 5}, 12, &qe_ok, 0, DCAP_STATUS_CONFIGURATION_NEEDED, 1}, /* pcesvn */
      {{3, 3, 2, 2, 4, 1, 0, 4}, 13, &qe_ok, 0, DCAP_STATUS_OUT_OF_DATE, 2},          /* comp 7 */
      {{2, 2, 2, 2, 3, 1, 0, 5}, 11, &qe_old, 0, DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED, 1},
      {{3, 3, 2, 2, 4, 1, 0, 5}, 13, &qe_old, 0, DCAP_STATUS_OUT_OF_DATE, 0},
      {{0, 1, 1, 1, 1, 1, 0, 1}, 5, &qe_ok, -ENOENT, 0, 0}, /* comp 0 below every level */
      {{1, 1, 1, 1, 1, 1, 0, 1}, 4, &qe_ok, -ENOENT, 0, 0}, /* PCESVN below every level */
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    pck_for(&p, cases[i].sgx, cases[i].pcesvn);
    msg[0] = 0;
    int r = dcap_tcb_evaluate(&ti, &q, &p, cases[i].qe, &o, msg, sizeof(msg));
    assert_int_equal(r, cases[i].want_r);
    if (r < 0) {
      assert_true(str_startswith(msg, "no matching TCB level"));
      continue;
    }
    assert_int_equal(o.status, cases[i].want);
    assert_ptr_equal(o.platform_level, &ti.levels[cases[i].level]);
    assert_null(o.module_level);
  }
  /* FMSPC / PCE-ID / TEE type mismatches */
  pck_for(&p, cases[0].sgx, 13);
  p.fmspc[5] = 1;
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -EPERM);
  assert_non_null(strstr(msg, "FMSPC"));
  pck_for(&p, cases[0].sgx, 13);
  p.pceid[1] = 1;
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -EPERM);
  assert_non_null(strstr(msg, "PCE ID"));
  pck_for(&p, cases[0].sgx, 13);
  uint8_t tee[16] = {0};
  td_quote(&q, tee);
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -EPERM);
  assert_non_null(strstr(msg, "TCB info is for SGX"));
  dcap_tcb_info_free(&ti);
}

static void test_match_tdx(void **state) {
  (void)state;
  static const uint8_t sgx[16] = {2, 2, 2, 2, 3, 1, 0, 5};
  static const struct lvl l[] = {
      {{2, 2, 2, 2, 3, 1, 0, 5}, 11, {5, 0, 3}, "UpToDate", NULL},
      {{2, 2, 2, 2, 3, 1, 0, 5}, 11, {3, 0, 2}, "SWHardeningNeeded", "[\"INTEL-SA-X\"]"},
      {{1, 1, 1, 1, 1, 1, 0, 1}, 5, {0, 0, 0}, "OutOfDate", "[\"INTEL-SA-Y\"]"},
  };
  const char *modules =
      "[{\"id\":\"TDX_03\",\"mrsigner\":\"" MRSIGNER_HEX "\",\"attributes\":\"0000000000000000\","
      "\"attributesMask\":\"FFFFFFFFFFFFFFFF\",\"tcbLevels\":["
      "{\"tcb\":{\"isvsvn\":3},\"tcbDate\":\"2024-01-01T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"
      "{\"tcb\":{\"isvsvn\":1},\"tcbDate\":\"2023-01-01T00:00:00Z\",\"tcbStatus\":\"OutOfDate\","
      "\"advisoryIDs\":[\"INTEL-SA-M\"]}]},"
      "{\"id\":\"tdx_01\",\"mrsigner\":\"" MRSIGNER_HEX "\",\"attributes\":\"0000000000000000\","
      "\"attributesMask\":\"00000000000000FF\",\"tcbLevels\":["
      "{\"tcb\":{\"isvsvn\":6},\"tcbDate\":\"2024-01-01T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"
      "{\"tcb\":{\"isvsvn\":2},\"tcbDate\":\"2023-01-01T00:00:00Z\",\"tcbStatus\":\"Revoked\"}]}]";
  struct dcap_tcb_info ti;
  parse_tcb(mk_tcb(true, l, 3, modules), &ti);
  struct quote q;
  struct pck_ext p;
  struct dcap_tcb_outcome o;
  char msg[200];
  pck_for(&p, sgx, 11);

  /* module version 0: every component counts, tdxModule identity, no module level */
  uint8_t tee[16] = {5, 0, 3};
  td_quote(&q, tee);
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), 0);
  assert_int_equal(o.status, DCAP_STATUS_UP_TO_DATE);
  assert_null(o.module_level);
  tee[0] = 4; /* component 0 now below level 0: level 1 */
  td_quote(&q, tee);
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), 0);
  assert_int_equal(o.status, DCAP_STATUS_SW_HARDENING_NEEDED);
  assert_ptr_equal(o.platform_level, &ti.levels[1]);

  /* module version 3: components 0 and 1 are skipped; TDX_03 gives the module status */
  uint8_t tee3[16] = {1, 3, 3};
  td_quote(&q, tee3);
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), 0);
  assert_ptr_equal(o.platform_level, &ti.levels[0]); /* comp 0 = 1 < 5 ignored */
  assert_non_null(o.module_level);
  assert_int_equal(o.module_status, DCAP_STATUS_OUT_OF_DATE); /* isvsvn 1 */
  assert_int_equal(o.status, DCAP_STATUS_OUT_OF_DATE);
  tee3[0] = 3;
  td_quote(&q, tee3);
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), 0);
  assert_int_equal(o.status, DCAP_STATUS_UP_TO_DATE);
  /* QE OutOfDate on a SWHardeningNeeded platform */
  tee3[2] = 2;
  td_quote(&q, tee3);
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_old, &o, msg, sizeof(msg)), 0);
  assert_int_equal(o.platform_status, DCAP_STATUS_SW_HARDENING_NEEDED);
  assert_int_equal(o.status, DCAP_STATUS_OUT_OF_DATE);
  /* no module level for ISVSVN 0 */
  tee3[0] = 0;
  td_quote(&q, tee3);
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -ENOENT);
  assert_non_null(strstr(msg, "TDX module"));

  /* module version 1 (id matched case-insensitively); Revoked level; masked attributes */
  uint8_t tee1[16] = {2, 1, 3};
  td_quote(&q, tee1);
  q.td.seam_attributes[0] = 0x80; /* outside the mask */
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), 0);
  assert_int_equal(o.status, DCAP_STATUS_REVOKED);
  q.td.seam_attributes[7] = 0x01; /* inside the mask */
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -EPERM);
  assert_non_null(strstr(msg, "SEAM attributes"));

  /* unknown module version, wrong MRSIGNERSEAM */
  uint8_t tee7[16] = {2, 7, 3};
  td_quote(&q, tee7);
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -EPERM);
  assert_string_equal(msg, "TDX module identity TDX_07 not in TCB info");
  td_quote(&q, tee);
  q.td.mr_signer_seam[0] = 0;
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -EPERM);
  assert_non_null(strstr(msg, "MRSIGNERSEAM"));

  /* TDX components below every level with matching SGX levels */
  uint8_t low[16] = {0, 0, 0, 1};
  static const struct lvl l2[] = {{{2, 2, 2, 2, 3, 1, 0, 5}, 11, {5, 0, 3, 2}, "UpToDate", NULL}};
  struct dcap_tcb_info ti2;
  parse_tcb(mk_tcb(true, l2, 1, NULL), &ti2);
  td_quote(&q, low);
  assert_int_equal(dcap_tcb_evaluate(&ti2, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -ENOENT);
  assert_string_equal(msg, "no matching TCB level (TDX components)");
  /* module version > 0 without tdxModuleIdentities */
  uint8_t v1[16] = {5, 1, 3, 2};
  td_quote(&q, v1);
  assert_int_equal(dcap_tcb_evaluate(&ti2, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -EPERM);
  /* SGX quote against TDX TCB info */
  q = (struct quote){.version = 3, .tee_type = QUOTE_TEE_SGX, .body_type = QUOTE_BODY_SGX};
  assert_int_equal(dcap_tcb_evaluate(&ti2, &q, &p, &qe_ok, &o, msg, sizeof(msg)), -EPERM);
  dcap_tcb_info_free(&ti2);
  dcap_tcb_info_free(&ti);
}

/* The real dcap-qvl TDX quote against its own TCB info. */
static void test_match_real(void **state) {
  (void)state;
  _cleanup_buf_ struct buf qb = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector("dcap-qvl/tdx_quote", false, &qb);
  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  struct pck_ext p;
  assert_int_equal(pck_chain_leaf_ext(q.pck_chain_pem.ptr, q.pck_chain_pem.len, &p), 0);
  _cleanup_free_ char *t = qvl_text("dcap-qvl/tdx_quote_collateral.json", "tcb_info");
  _cleanup_free_ char *qt = qvl_text("dcap-qvl/tdx_quote_collateral.json", "qe_identity");
  struct dcap_tcb_info ti;
  struct dcap_qe_identity qi;
  assert_int_equal(dcap_tcb_info_parse(t, strlen(t), &ti), 0);
  assert_int_equal(dcap_qe_identity_parse(qt, strlen(qt), &qi), 0);
  const struct dcap_isv_level *ql;
  char msg[200] = "";
  assert_int_equal(dcap_qe_identity_check(&qi, q.tee_type, &q.qe_report, &ql, msg, sizeof(msg)), 0);
  assert_int_equal(ql->status, DCAP_STATUS_UP_TO_DATE);
  struct dcap_tcb_outcome o;
  assert_int_equal(dcap_tcb_evaluate(&ti, &q, &p, ql, &o, msg, sizeof(msg)), 0);
  assert_int_equal(o.status, DCAP_STATUS_UP_TO_DATE);
  assert_ptr_equal(o.platform_level, &ti.levels[0]);

  /* QE identity mismatches, each on its own */
  struct sgx_report_body r;
  r = q.qe_report;
  r.misc_select = 1;
  assert_int_equal(dcap_qe_identity_check(&qi, q.tee_type, &r, &ql, msg, sizeof(msg)), -EPERM);
  assert_string_equal(msg, "QE identity mismatch: MISCSELECT");
  r = q.qe_report;
  r.attributes[0] ^= 0x04; /* masked out: still fine */
  assert_int_equal(dcap_qe_identity_check(&qi, q.tee_type, &r, &ql, msg, sizeof(msg)), 0);
  r.attributes[0] ^= 0x01;
  assert_int_equal(dcap_qe_identity_check(&qi, q.tee_type, &r, &ql, msg, sizeof(msg)), -EPERM);
  assert_string_equal(msg, "QE identity mismatch: ATTRIBUTES");
  r = q.qe_report;
  r.mr_signer[31] ^= 1;
  assert_int_equal(dcap_qe_identity_check(&qi, q.tee_type, &r, &ql, msg, sizeof(msg)), -EPERM);
  assert_string_equal(msg, "QE identity mismatch: MRSIGNER");
  r = q.qe_report;
  r.isv_prod_id = 1;
  assert_int_equal(dcap_qe_identity_check(&qi, q.tee_type, &r, &ql, msg, sizeof(msg)), -EPERM);
  assert_true(str_startswith(msg, "QE identity mismatch: ISVPRODID"));
  r = q.qe_report;
  r.isv_svn = 3;
  assert_int_equal(dcap_qe_identity_check(&qi, q.tee_type, &r, &ql, msg, sizeof(msg)), -ENOENT);
  assert_non_null(strstr(msg, "ISVSVN 3"));
  assert_int_equal(dcap_qe_identity_check(&qi, QUOTE_TEE_SGX, &q.qe_report, &ql, msg, sizeof(msg)),
                   -EPERM);
  assert_string_equal(msg, "QE identity is for TD_QE, the quote needs QE");
  dcap_qe_identity_free(&qi);
  dcap_tcb_info_free(&ti);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_real), cmocka_unit_test(test_parse_bad),
      cmocka_unit_test(test_status),     cmocka_unit_test(test_match_sgx),
      cmocka_unit_test(test_match_tdx),  cmocka_unit_test(test_match_real),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
