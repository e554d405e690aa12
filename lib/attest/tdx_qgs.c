/* QGS GET_QUOTE messages and the tdx-attest.conf port line. */
#include "attest/tdx_qgs.h"

#include <errno.h>
#include <string.h>

#include "base/log.h"

const uint8_t tdx_qgs_tdqe_uuid[16] = {
    0xe8, 0x6c, 0x04, 0x6e, 0x8c, 0xc4, 0x4d, 0x95, 0x81, 0x73, 0xfc, 0x43, 0xc1, 0xfa, 0x4f, 0x3f,
};

_Static_assert(TDX_QGS_REQUEST_SIZE == 1048, "QGS request size");
_Static_assert(TDX_QGS_MAX_MSG < UINT32_MAX, "QGS cap fits a length prefix");

int tdx_qgs_encode_request(const uint8_t report[TDX_REPORT_SIZE], struct buf *out) {
  if (!report || !out)
    return -EINVAL;
  size_t start = out->len;
  int r = buf_reserve(out, TDX_QGS_PREFIX_SIZE + TDX_QGS_REQUEST_SIZE);
  if (r < 0)
    return r;
  /* reserve succeeded, so none of these appends can fail */
  buf_append_u32be(out, TDX_QGS_REQUEST_SIZE);
  buf_append_u16le(out, TDX_QGS_MAJOR);
  buf_append_u16le(out, TDX_QGS_MINOR);
  buf_append_u32le(out, TDX_QGS_GET_QUOTE_REQ);
  buf_append_u32le(out, TDX_QGS_REQUEST_SIZE);
  buf_append_u32le(out, 0); /* error_code */
  buf_append_u32le(out, TDX_REPORT_SIZE);
  buf_append_u32le(out, 0); /* id_list_size */
  buf_append(out, report, TDX_REPORT_SIZE);
  if (out->len - start != TDX_QGS_PREFIX_SIZE + TDX_QGS_REQUEST_SIZE)
    return -EIO;
  return 0;
}

int tdx_qgs_parse_length(const uint8_t prefix[TDX_QGS_PREFIX_SIZE], size_t max, uint32_t *ret) {
  if (!prefix || !ret)
    return -EINVAL;
  if (max == 0)
    max = TDX_QGS_MAX_MSG;
  uint32_t n = ((uint32_t)prefix[0] << 24) | ((uint32_t)prefix[1] << 16) |
               ((uint32_t)prefix[2] << 8) | (uint32_t)prefix[3];
  if (n < TDX_QGS_HEADER_SIZE)
    return -EBADMSG;
  if (n > max)
    return -ENOBUFS;
  *ret = n;
  return 0;
}

int tdx_qgs_decode_response(const uint8_t *data, size_t len, struct slice *ret_quote) {
  if (!data || !ret_quote)
    return -EINVAL;
  struct cursor c;
  cursor_init(&c, data, len);
  uint16_t major, minor;
  uint32_t type, size, error_code, id_size, quote_size;
  int r;
  if ((r = cursor_u16le(&c, &major)) < 0 || (r = cursor_u16le(&c, &minor)) < 0 ||
      (r = cursor_u32le(&c, &type)) < 0 || (r = cursor_u32le(&c, &size)) < 0 ||
      (r = cursor_u32le(&c, &error_code)) < 0)
    return r;
  if (major != TDX_QGS_MAJOR)
    return log_debug_errno(-EBADMSG, "QGS response: major version %u", major);
  if (type != TDX_QGS_GET_QUOTE_RESP)
    return log_debug_errno(-EBADMSG, "QGS response: message type %u", type);
  if (size != len)
    return log_debug_errno(-EBADMSG, "QGS response: size field %u, message has %zu bytes", size,
                           len);
  if (error_code != 0)
    return log_debug_errno(-EIO, "QGS response: error code 0x%x", error_code);
  if ((r = cursor_u32le(&c, &id_size)) < 0 || (r = cursor_u32le(&c, &quote_size)) < 0)
    return r;
  /* both sizes are checked against what is left, so their sum cannot overflow size_t */
  if (id_size > cursor_left(&c) || quote_size > cursor_left(&c) - id_size)
    return log_debug_errno(-EBADMSG, "QGS response: id %u + quote %u bytes, %zu left", id_size,
                           quote_size, cursor_left(&c));
  if ((size_t)id_size + quote_size != cursor_left(&c))
    return log_debug_errno(-EBADMSG, "QGS response: %zu trailing bytes",
                           cursor_left(&c) - id_size - quote_size);
  if (quote_size == 0)
    return log_debug_errno(-EBADMSG, "QGS response: empty quote");
  struct slice id;
  if ((r = cursor_slice(&c, id_size, &id)) < 0 || (r = cursor_slice(&c, quote_size, ret_quote)) < 0)
    return r;
  if (id.len != 0 && !slice_eq(id, SLICE(tdx_qgs_tdqe_uuid, sizeof tdx_qgs_tdqe_uuid)))
    return log_debug_errno(-EPERM, "QGS response: unexpected attestation key id (%zu bytes)",
                           id.len);
  return 0;
}

int tdx_qgs_decode_framed_response(const uint8_t *data, size_t len, struct slice *ret_quote) {
  if (!data || !ret_quote)
    return -EINVAL;
  if (len < TDX_QGS_PREFIX_SIZE)
    return -EBADMSG;
  uint32_t n;
  int r = tdx_qgs_parse_length(data, 0, &n);
  if (r < 0)
    return r;
  if (n != len - TDX_QGS_PREFIX_SIZE)
    return log_debug_errno(-EBADMSG, "QGS response: prefix says %u bytes, have %zu", n,
                           len - TDX_QGS_PREFIX_SIZE);
  return tdx_qgs_decode_response(data + TDX_QGS_PREFIX_SIZE, n, ret_quote);
}

static bool is_blank(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\r';
}

static bool is_key_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || ch == '-' || ch == '.';
}

/* Parses one decimal port value in [p, end): digits only, 1..UINT32_MAX-1. */
static int parse_port_value(const char *p, const char *end, uint32_t *ret) {
  if (p == end)
    return -EINVAL;
  uint64_t v = 0;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9')
      return -EINVAL;
    v = v * 10 + (uint64_t)(*p - '0');
    if (v >= UINT32_MAX)
      return -EINVAL;
  }
  if (v == 0)
    return -EINVAL;
  *ret = (uint32_t)v;
  return 0;
}

int tdx_attest_conf_parse_port(const char *text, size_t len, uint32_t *ret) {
  if ((!text && len) || !ret)
    return -EINVAL;
  bool found = false;
  uint32_t port = 0;
  const char *end = text + len;
  for (const char *line = text; line < end;) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol)
      eol = end;
    const char *p = line, *q = eol;
    line = eol < end ? eol + 1 : end;

    while (p < q && is_blank(*p))
      p++;
    if (p == q || *p == '#')
      continue;
    /* strip a trailing comment, then trailing blanks */
    for (const char *h = p; h < q; h++)
      if (*h == '#') {
        q = h;
        break;
      }
    while (q > p && is_blank(q[-1]))
      q--;

    const char *k = p;
    while (p < q && is_key_char(*p))
      p++;
    const char *kend = p;
    while (p < q && is_blank(*p))
      p++;
    if (kend == k || p == q || *p != '=')
      return log_debug_errno(-EINVAL, "tdx-attest.conf: line is not key = value");
    p++;
    while (p < q && is_blank(*p))
      p++;
    if ((size_t)(kend - k) != 4 || memcmp(k, "port", 4) != 0)
      continue;
    if (found)
      return log_debug_errno(-EINVAL, "tdx-attest.conf: port set twice");
    int r = parse_port_value(p, q, &port);
    if (r < 0)
      return log_debug_errno(r, "tdx-attest.conf: bad port value");
    found = true;
  }
  if (!found)
    return -ENOENT;
  *ret = port;
  return 0;
}
