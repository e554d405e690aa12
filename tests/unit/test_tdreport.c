#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "attest/quote.h"
#include "attest/tdreport.h"
#include "base/hex.h"
#include "testutil.h"

static void pattern(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 7 + (i >> 8));
}

/* Offsets from the TDX module ABI (REPORTMACSTRUCT, TEE_TCB_INFO, TDINFO). */
static void test_tdreport_offsets(void **state) {
  (void)state;
  uint8_t in[TDREPORT_SIZE], out[TDREPORT_SIZE];
  struct tdreport r;
  pattern(in, sizeof(in));
  assert_int_equal(tdreport_parse(in, sizeof(in), &r), 0);
  assert_memory_equal(r.mac.report_type, in + 0, 4);
  assert_memory_equal(r.mac.reserved1, in + 4, 12);
  assert_memory_equal(r.mac.cpusvn, in + 16, 16);
  assert_memory_equal(r.mac.tee_tcb_info_hash, in + 32, 48);
  assert_memory_equal(r.mac.tee_info_hash, in + 80, 48);
  assert_memory_equal(r.mac.report_data, in + 128, 64);
  assert_memory_equal(r.mac.reserved2, in + 192, 32);
  assert_memory_equal(r.mac.mac, in + 224, 32);
  assert_memory_equal(r.tee_tcb_info.valid, in + 256, 8);
  assert_memory_equal(r.tee_tcb_info.tee_tcb_svn, in + 264, 16);
  assert_memory_equal(r.tee_tcb_info.mrseam, in + 280, 48);
  assert_memory_equal(r.tee_tcb_info.mrsignerseam, in + 328, 48);
  assert_memory_equal(r.tee_tcb_info.attributes, in + 376, 8);
  assert_memory_equal(r.tee_tcb_info.tee_tcb_svn2, in + 384, 16);
  assert_memory_equal(r.tee_tcb_info.reserved, in + 400, 95);
  assert_memory_equal(r.reserved_tcb, in + 495, 17);
  assert_memory_equal(r.td_info.attributes, in + 512, 8);
  assert_memory_equal(r.td_info.xfam, in + 520, 8);
  assert_memory_equal(r.td_info.mrtd, in + 528, 48);
  assert_memory_equal(r.td_info.mrconfigid, in + 576, 48);
  assert_memory_equal(r.td_info.mrowner, in + 624, 48);
  assert_memory_equal(r.td_info.mrownerconfig, in + 672, 48);
  for (int i = 0; i < 4; i++)
    assert_memory_equal(r.td_info.rtmr[i], in + 720 + 48 * i, 48);
  assert_memory_equal(r.td_info.servtd_hash, in + 912, 48);
  assert_memory_equal(r.td_info.reserved, in + 960, 64);
  memset(out, 0xee, sizeof(out));
  tdreport_encode(&r, out);
  assert_memory_equal(out, in, sizeof(in));
  _cleanup_buf_ struct buf b = BUF_INIT(TDREPORT_SIZE);
  assert_int_equal(tdreport_encode_buf(&r, &b), 0);
  assert_memory_equal(b.data, in, sizeof(in));
  assert_int_equal(tdreport_encode_buf(&r, &b), -ENOBUFS);
}

static void test_tdreport_sizes(void **state) {
  (void)state;
  uint8_t in[TDREPORT_SIZE + 1] = {0};
  struct tdreport r;
  assert_int_equal(tdreport_parse(in, 0, &r), -EBADMSG);
  assert_int_equal(tdreport_parse(in, 1023, &r), -EBADMSG);
  assert_int_equal(tdreport_parse(in, 1025, &r), -EBADMSG);
  assert_int_equal(tdreport_parse(NULL, 1024, &r), -EINVAL);
  assert_int_equal(tdreport_parse(in, 1024, NULL), -EINVAL);
  assert_int_equal(tdreport_parse(in, 1024, &r), 0);
}

/* go-tdx-guest's report.dat: round trip. The file turns out to be the report shifted by 48
 * bytes (it starts inside tee_tcb_info_hash): realigned, its TEE_TCB_INFO carries the MRSEAM
 * of go-tdx-guest's SPR_E4 quote and its TDINFO the usual XFAM 0xe7. */
static void test_tdreport_go_tdx_guest(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in = BUF_INIT(BUF_MAX_FILE), qb = BUF_INIT(BUF_MAX_FILE);
  struct tdreport r;
  struct quote q;
  uint8_t out[TDREPORT_SIZE], shifted[TDREPORT_SIZE] = {0};
  tu_read_vector("go-tdx-guest/report.dat", false, &in);
  assert_int_equal(in.len, TDREPORT_SIZE);
  assert_int_equal(tdreport_parse(in.data, in.len, &r), 0);
  tdreport_encode(&r, out);
  assert_memory_equal(out, in.data, TDREPORT_SIZE);

  tu_read_vector("go-tdx-guest/tdx_prod_quote_SPR_E4.dat", false, &qb);
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  memcpy(shifted + 48, in.data, TDREPORT_SIZE - 48);
  assert_int_equal(tdreport_parse(shifted, sizeof(shifted), &r), 0);
  assert_memory_equal(r.tee_tcb_info.mrseam, q.td.mr_seam, 48);
  assert_memory_equal(r.tee_tcb_info.mrsignerseam, q.td.mr_signer_seam, 48);
  assert_memory_equal(r.tee_tcb_info.valid, "\xff\x01\x00\x00\x00\x00\x00\x00", 8);
  assert_memory_equal(r.td_info.xfam, "\xe7\x00\x00\x00\x00\x00\x00\x00", 8);
  /* Unshifted, the MRSEAM is not where the ABI puts it. */
  assert_int_equal(tdreport_parse(in.data, in.len, &r), 0);
  assert_memory_not_equal(r.tee_tcb_info.mrseam, q.td.mr_seam, 48);
}

static void test_tdreport_json(void **state) {
  (void)state;
  uint8_t in[TDREPORT_SIZE];
  struct tdreport r;
  json_t *j = NULL;
  char hex[200];
  pattern(in, sizeof(in));
  assert_int_equal(tdreport_parse(in, sizeof(in), &r), 0);
  assert_int_equal(tdreport_to_json(&r, &j), 0);
  json_t *ti = json_object_get(j, "td_info"), *tcb = json_object_get(j, "tee_tcb_info");
  assert_true(json_is_object(ti));
  assert_true(json_is_object(tcb));
  hex_encode(in + 128, 64, hex);
  assert_string_equal(json_string_value(json_object_get(j, "report_data")), hex);
  hex_encode(in + 224, 32, hex);
  assert_string_equal(json_string_value(json_object_get(j, "mac")), hex);
  hex_encode(in + 280, 48, hex);
  assert_string_equal(json_string_value(json_object_get(tcb, "mr_seam")), hex);
  hex_encode(in + 528, 48, hex);
  assert_string_equal(json_string_value(json_object_get(ti, "mrtd")), hex);
  hex_encode(in + 720 + 3 * 48, 48, hex);
  assert_string_equal(json_string_value(json_object_get(ti, "rtmr3")), hex);
  hex_encode(in + 912, 48, hex);
  assert_string_equal(json_string_value(json_object_get(ti, "servtd_hash")), hex);
  static const char *const ti_keys[] = {"attributes", "xfam",          "mrtd",       "mrconfigid",
                                        "mrowner",    "mrownerconfig", "rtmr0",      "rtmr1",
                                        "rtmr2",      "rtmr3",         "servtd_hash"};
  for (size_t i = 0; i < ARRAY_SIZE(ti_keys); i++)
    assert_true(json_is_string(json_object_get(ti, ti_keys[i])));
  assert_int_equal(json_object_size(ti), ARRAY_SIZE(ti_keys));
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tdreport_offsets),
      cmocka_unit_test(test_tdreport_sizes),
      cmocka_unit_test(test_tdreport_go_tdx_guest),
      cmocka_unit_test(test_tdreport_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
