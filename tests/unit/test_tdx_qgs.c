#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "attest/tdx_qgs.h"
#include "testutil.h"

/* Builds a response message (no prefix) with the given fields; quote bytes are 0x51.. */
static void make_resp(struct buf *b, uint16_t major, uint32_t type, int32_t size_adjust,
                      uint32_t error_code, const uint8_t *id, uint32_t id_len, uint32_t quote_len,
                      int32_t quote_size_adjust) {
  buf_reset(b);
  uint32_t size = TDX_QGS_HEADER_SIZE + 8 + id_len + quote_len;
  assert_int_equal(buf_append_u16le(b, major), 0);
  assert_int_equal(buf_append_u16le(b, 0), 0);
  assert_int_equal(buf_append_u32le(b, type), 0);
  assert_int_equal(buf_append_u32le(b, (uint32_t)((int64_t)size + size_adjust)), 0);
  assert_int_equal(buf_append_u32le(b, error_code), 0);
  assert_int_equal(buf_append_u32le(b, id_len), 0);
  assert_int_equal(buf_append_u32le(b, (uint32_t)((int64_t)quote_len + quote_size_adjust)), 0);
  if (id_len)
    assert_int_equal(buf_append(b, id, id_len), 0);
  for (uint32_t i = 0; i < quote_len; i++)
    assert_int_equal(buf_append_u8(b, (uint8_t)(0x51 + i)), 0);
}

static void test_encode_request(void **state) {
  (void)state;
  uint8_t report[TDX_REPORT_SIZE];
  for (size_t i = 0; i < sizeof report; i++)
    report[i] = (uint8_t)i;
  _cleanup_buf_ struct buf b = BUF_INIT(4096);
  assert_int_equal(buf_append_str(&b, "xy"), 0); /* appends after existing content */
  assert_int_equal(tdx_qgs_encode_request(report, &b), 0);
  assert_int_equal(b.len, 2 + 4 + 1048);
  const uint8_t *m = b.data + 2;
  static const uint8_t want_hdr[] = {
      0x00, 0x00, 0x04, 0x18,             /* BE length 1048 */
      0x01, 0x00, 0x00, 0x00,             /* major 1, minor 0 */
      0x00, 0x00, 0x00, 0x00,             /* type 0 */
      0x18, 0x04, 0x00, 0x00,             /* size 1048 LE */
      0x00, 0x00, 0x00, 0x00,             /* error_code */
      0x00, 0x04, 0x00, 0x00,             /* report_size 1024 */
      0x00, 0x00, 0x00, 0x00,             /* id_list_size */
  };
  assert_memory_equal(m, want_hdr, sizeof want_hdr);
  assert_memory_equal(m + sizeof want_hdr, report, sizeof report);

  /* cap respected */
  struct buf small = BUF_INIT(100);
  assert_int_equal(tdx_qgs_encode_request(report, &small), -ENOBUFS);
  buf_free(&small);
  assert_int_equal(tdx_qgs_encode_request(NULL, &b), -EINVAL);
}

static void test_decode_ok(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_QUOTE * 2);
  struct slice q;
  /* no id */
  make_resp(&b, 1, 1, 0, 0, NULL, 0, 2000, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), 0);
  assert_int_equal(q.len, 2000);
  assert_ptr_equal(q.ptr, b.data + 24);
  assert_int_equal(q.ptr[0], 0x51);
  /* TDQE id */
  make_resp(&b, 1, 1, 0, 0, tdx_qgs_tdqe_uuid, 16, 5, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), 0);
  assert_int_equal(q.len, 5);
  assert_ptr_equal(q.ptr, b.data + 24 + 16);
  /* the UUID's bytes are in textual order */
  assert_int_equal(tdx_qgs_tdqe_uuid[0], 0xe8);
  assert_int_equal(tdx_qgs_tdqe_uuid[15], 0x3f);
  /* minor version other than 0 is fine */
  b.data[2] = 1;
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), 0);
}

static void test_decode_bad(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_QUOTE * 2);
  struct slice q;
  /* short header: every truncation fails */
  make_resp(&b, 1, 1, 0, 0, tdx_qgs_tdqe_uuid, 16, 40, 0);
  for (size_t n = 0; n < b.len; n++)
    assert_int_equal(tdx_qgs_decode_response(b.data, n, &q), -EBADMSG);
  /* wrong major */
  make_resp(&b, 2, 1, 0, 0, NULL, 0, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  make_resp(&b, 0, 1, 0, 0, NULL, 0, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  /* request type in a response */
  make_resp(&b, 1, 0, 0, 0, NULL, 0, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  make_resp(&b, 1, 7, 0, 0, NULL, 0, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  /* size field disagrees with the message */
  make_resp(&b, 1, 1, 1, 0, NULL, 0, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  make_resp(&b, 1, 1, -1, 0, NULL, 0, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  /* QGS error code */
  make_resp(&b, 1, 1, 0, 0x12, NULL, 0, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EIO);
  /* quote_size beyond the buffer, and short of it (trailing bytes) */
  make_resp(&b, 1, 1, 0, 0, NULL, 0, 40, 1);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  make_resp(&b, 1, 1, 0, 0, NULL, 0, 40, -1);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  /* huge quote_size and id_size must not wrap */
  make_resp(&b, 1, 1, 0, 0, NULL, 0, 40, 0);
  le32_write(b.data + 20, 0xffffffffu);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  make_resp(&b, 1, 1, 0, 0, NULL, 0, 40, 0);
  le32_write(b.data + 16, 0xfffffff0u);
  le32_write(b.data + 20, 0x20u);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  /* empty quote */
  make_resp(&b, 1, 1, 0, 0, NULL, 0, 0, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EBADMSG);
  /* wrong id: other bytes, other length */
  uint8_t other[16];
  memcpy(other, tdx_qgs_tdqe_uuid, 16);
  other[15] ^= 1;
  make_resp(&b, 1, 1, 0, 0, other, 16, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EPERM);
  make_resp(&b, 1, 1, 0, 0, tdx_qgs_tdqe_uuid, 15, 40, 0);
  assert_int_equal(tdx_qgs_decode_response(b.data, b.len, &q), -EPERM);
  assert_int_equal(tdx_qgs_decode_response(NULL, 0, &q), -EINVAL);
}

static void test_length_prefix(void **state) {
  (void)state;
  uint32_t n;
  assert_int_equal(tdx_qgs_parse_length((const uint8_t[]){0, 0, 0x04, 0x18}, 0, &n), 0);
  assert_int_equal(n, 1048);
  /* huge prefix */
  assert_int_equal(tdx_qgs_parse_length((const uint8_t[]){0xff, 0xff, 0xff, 0xff}, 0, &n),
                   -ENOBUFS);
  assert_int_equal(tdx_qgs_parse_length((const uint8_t[]){0, 0x02, 0, 0}, 0, &n), -ENOBUFS);
  /* explicit cap */
  assert_int_equal(tdx_qgs_parse_length((const uint8_t[]){0, 0, 0x04, 0x18}, 1047, &n), -ENOBUFS);
  assert_int_equal(tdx_qgs_parse_length((const uint8_t[]){0, 0, 0x04, 0x18}, 1048, &n), 0);
  /* shorter than a header */
  assert_int_equal(tdx_qgs_parse_length((const uint8_t[]){0, 0, 0, 15}, 0, &n), -EBADMSG);
  assert_int_equal(tdx_qgs_parse_length((const uint8_t[]){0, 0, 0, 0}, 0, &n), -EBADMSG);
}

static void test_framed(void **state) {
  (void)state;
  _cleanup_buf_ struct buf m = BUF_INIT(BUF_MAX_QUOTE);
  _cleanup_buf_ struct buf f = BUF_INIT(BUF_MAX_QUOTE);
  make_resp(&m, 1, 1, 0, 0, tdx_qgs_tdqe_uuid, 16, 100, 0);
  assert_int_equal(buf_append_u32be(&f, (uint32_t)m.len), 0);
  assert_int_equal(buf_append(&f, m.data, m.len), 0);
  struct slice q;
  assert_int_equal(tdx_qgs_decode_framed_response(f.data, f.len, &q), 0);
  assert_int_equal(q.len, 100);
  /* prefix mismatches */
  assert_int_equal(tdx_qgs_decode_framed_response(f.data, f.len - 1, &q), -EBADMSG);
  assert_int_equal(tdx_qgs_decode_framed_response(f.data, 3, &q), -EBADMSG);
  f.data[3]++;
  assert_int_equal(tdx_qgs_decode_framed_response(f.data, f.len, &q), -EBADMSG);
  f.data[0] = 0x80;
  assert_int_equal(tdx_qgs_decode_framed_response(f.data, f.len, &q), -ENOBUFS);
}

static int conf(const char *s, uint32_t *port) {
  return tdx_attest_conf_parse_port(s, strlen(s), port);
}

static void test_conf_port(void **state) {
  (void)state;
  uint32_t p = 0;
  assert_int_equal(conf("port = 4050\n", &p), 0);
  assert_int_equal(p, 4050);
  assert_int_equal(conf("# The vsock port\n\n  port=4051  # host QGS\r\n", &p), 0);
  assert_int_equal(p, 4051);
  assert_int_equal(conf("other_key = x\nport\t=\t7", &p), 0);
  assert_int_equal(p, 7);
  assert_int_equal(conf("port = 4294967294", &p), 0);
  assert_int_equal(p, 4294967294u);
  /* absent */
  assert_int_equal(conf("", &p), -ENOENT);
  assert_int_equal(conf("# port = 4050\n", &p), -ENOENT);
  assert_int_equal(conf("ports = 4050\n", &p), -ENOENT);
  assert_int_equal(tdx_attest_conf_parse_port(NULL, 0, &p), -ENOENT);
  /* strict values */
  assert_int_equal(conf("port = \n", &p), -EINVAL);
  assert_int_equal(conf("port = 0\n", &p), -EINVAL);
  assert_int_equal(conf("port = 4294967295\n", &p), -EINVAL);
  assert_int_equal(conf("port = 99999999999999999999\n", &p), -EINVAL);
  assert_int_equal(conf("port = 40a\n", &p), -EINVAL);
  assert_int_equal(conf("port = -1\n", &p), -EINVAL);
  assert_int_equal(conf("port = 0x10\n", &p), -EINVAL);
  assert_int_equal(conf("port = 1 2\n", &p), -EINVAL);
  assert_int_equal(conf("port = 1\nport = 2\n", &p), -EINVAL);
  assert_int_equal(conf("port 4050\n", &p), -EINVAL);
  assert_int_equal(conf("= 4050\n", &p), -EINVAL);
  assert_int_equal(conf("garbage\n", &p), -EINVAL);
  assert_int_equal(tdx_attest_conf_parse_port("port = 4\0" "1", 10, &p), -EINVAL);
  /* the length bounds the parse */
  assert_int_equal(tdx_attest_conf_parse_port("port = 4050", 9, &p), 0);
  assert_int_equal(p, 40);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_request), cmocka_unit_test(test_decode_ok),
      cmocka_unit_test(test_decode_bad),     cmocka_unit_test(test_length_prefix),
      cmocka_unit_test(test_framed),         cmocka_unit_test(test_conf_port),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
