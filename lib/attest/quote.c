/* DCAP quote codec: TDX v4/v5, SGX v3. Parse checks every length against what is left before
 * reading; encode recomputes every length from the content, so encode(parse(q)) == q. */
#include "attest/quote.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"

_Static_assert(QUOTE_TD10_BODY_SIZE == 16 + 48 * 2 + 8 * 3 + 48 * 4 + 48 * 4 + 64, "TD10 body");
_Static_assert(QUOTE_TD15_BODY_SIZE == QUOTE_TD10_BODY_SIZE + 16 + 48, "TD15 body");

void sgx_report_body_parse(const uint8_t in[QUOTE_SGX_BODY_SIZE], struct sgx_report_body *ret) {
  const uint8_t *p = in;
#define TAKE(field)                                                                                \
  do {                                                                                             \
    memcpy(ret->field, p, sizeof(ret->field));                                                     \
    p += sizeof(ret->field);                                                                       \
  } while (0)
  TAKE(cpu_svn);
  ret->misc_select = le32_read(p);
  p += 4;
  TAKE(reserved1);
  TAKE(attributes);
  TAKE(mr_enclave);
  TAKE(reserved2);
  TAKE(mr_signer);
  TAKE(reserved3);
  ret->isv_prod_id = le16_read(p);
  p += 2;
  ret->isv_svn = le16_read(p);
  p += 2;
  TAKE(reserved4);
  TAKE(report_data);
#undef TAKE
}

void sgx_report_body_encode(const struct sgx_report_body *b, uint8_t out[QUOTE_SGX_BODY_SIZE]) {
  uint8_t *p = out;
#define PUT(field)                                                                                 \
  do {                                                                                             \
    memcpy(p, b->field, sizeof(b->field));                                                         \
    p += sizeof(b->field);                                                                         \
  } while (0)
  PUT(cpu_svn);
  le32_write(p, b->misc_select);
  p += 4;
  PUT(reserved1);
  PUT(attributes);
  PUT(mr_enclave);
  PUT(reserved2);
  PUT(mr_signer);
  PUT(reserved3);
  le16_write(p, b->isv_prod_id);
  p += 2;
  le16_write(p, b->isv_svn);
  p += 2;
  PUT(reserved4);
  PUT(report_data);
#undef PUT
}

/* TD body fields in wire order; TD 1.0 stops after report_data. */
#define TD_FIELDS(X)                                                                               \
  X(tee_tcb_svn)                                                                                   \
  X(mr_seam)                                                                                       \
  X(mr_signer_seam)                                                                                \
  X(seam_attributes)                                                                               \
  X(td_attributes)                                                                                 \
  X(xfam)                                                                                          \
  X(mr_td)                                                                                         \
  X(mr_config_id)                                                                                  \
  X(mr_owner)                                                                                      \
  X(mr_owner_config)                                                                               \
  X(rt_mr)                                                                                         \
  X(report_data)
#define TD15_FIELDS(X)                                                                             \
  X(tee_tcb_svn2)                                                                                  \
  X(mr_service_td)

static void td_body_parse(const uint8_t *p, bool td15, struct td_report_body *ret) {
  memset(ret, 0, sizeof(*ret));
#define TAKE(field)                                                                                \
  memcpy(ret->field, p, sizeof(ret->field));                                                       \
  p += sizeof(ret->field);
  TD_FIELDS(TAKE)
  if (td15) {
    TD15_FIELDS(TAKE)
  }
#undef TAKE
}

static int td_body_encode(const struct td_report_body *b, bool td15, struct buf *out) {
  int r = 0;
#define PUT(field)                                                                                 \
  if (r >= 0)                                                                                      \
    r = buf_append(out, b->field, sizeof(b->field));
  TD_FIELDS(PUT)
  if (td15) {
    TD15_FIELDS(PUT)
  }
#undef PUT
  return r;
}

const char *quote_body_type_name(enum quote_body_type t) {
  switch (t) {
  case QUOTE_BODY_SGX:
    return "sgx";
  case QUOTE_BODY_TD10:
    return "td10";
  case QUOTE_BODY_TD15:
    return "td15";
  }
  return "unknown";
}

static size_t body_size_of(enum quote_body_type t) {
  switch (t) {
  case QUOTE_BODY_SGX:
    return QUOTE_SGX_BODY_SIZE;
  case QUOTE_BODY_TD10:
    return QUOTE_TD10_BODY_SIZE;
  case QUOTE_BODY_TD15:
    return QUOTE_TD15_BODY_SIZE;
  }
  return 0;
}

const uint8_t *quote_report_data(const struct quote *q) {
  return q->body_type == QUOTE_BODY_SGX ? q->sgx.report_data : q->td.report_data;
}

_printf_(4, 5) static int fail(int err, char *msg, size_t msg_size, const char *fmt, ...) {
  char tmp[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (msg && msg_size)
    snprintf(msg, msg_size, "%s", tmp);
  return log_debug_errno(err, "quote: %s", tmp);
}

#define FAIL(err, ...) fail((err), msg, msg_size, __VA_ARGS__)

/* {u16 type, u32 size, data}; the size must fit in what the cursor has left. */
static int cert_data_read(struct cursor *c, const char *what, uint16_t *ret_type,
                          struct slice *ret_data, char *msg, size_t msg_size) {
  uint32_t size;
  if (cursor_u16le(c, ret_type) < 0 || cursor_u32le(c, &size) < 0)
    return FAIL(-EBADMSG, "%s: truncated certification data header", what);
  if (size > cursor_left(c))
    return FAIL(-EBADMSG,
                "%s: certification data size %" PRIu32 " beyond signature data (%zu left)", what,
                size, cursor_left(c));
  (void)cursor_slice(c, size, ret_data);
  return 0;
}

/* QE report, its signature, QE auth data; shared by the v3 and v4 layouts. */
static int qe_part_read(struct cursor *c, struct quote *q, char *msg, size_t msg_size) {
  uint16_t auth_len;
  if (cursor_read(c, q->qe_report_raw, sizeof(q->qe_report_raw)) < 0 ||
      cursor_read(c, q->qe_report_sig, sizeof(q->qe_report_sig)) < 0)
    return FAIL(-EBADMSG, "truncated QE report");
  sgx_report_body_parse(q->qe_report_raw, &q->qe_report);
  if (cursor_u16le(c, &auth_len) < 0)
    return FAIL(-EBADMSG, "truncated QE auth data size");
  if (auth_len > cursor_left(c))
    return FAIL(-EBADMSG, "QE auth data size %u beyond certification data", auth_len);
  (void)cursor_slice(c, auth_len, &q->qe_auth_data);
  return 0;
}

int quote_parse_msg(const uint8_t *data, size_t len, struct quote *ret, char *msg,
                    size_t msg_size) {
  struct quote q = {0};
  struct cursor c, sc, cc;
  int r;

  if (msg && msg_size)
    msg[0] = 0;
  if (!ret || (!data && len))
    return -EINVAL;
  if (len > QUOTE_MAX_SIZE)
    return FAIL(-ENOBUFS, "quote of %zu bytes over the %zu byte limit", len, QUOTE_MAX_SIZE);
  cursor_init(&c, data, len);

  /* Header. */
  if (cursor_u16le(&c, &q.version) < 0)
    return FAIL(-EBADMSG, "truncated quote header");
  if (q.version < 3 || q.version > 5)
    return FAIL(-ENOTSUP, "unsupported quote version %u", q.version);
  if (cursor_u16le(&c, &q.att_key_type) < 0 || cursor_u32le(&c, &q.tee_type) < 0 ||
      cursor_u16le(&c, &q.qe_svn) < 0 || cursor_u16le(&c, &q.pce_svn) < 0 ||
      cursor_read(&c, q.qe_vendor_id, sizeof(q.qe_vendor_id)) < 0 ||
      cursor_read(&c, q.user_data, sizeof(q.user_data)) < 0)
    return FAIL(-EBADMSG, "truncated quote header");
  if (q.att_key_type != QUOTE_ATT_KEY_ECDSA_P256)
    return FAIL(-ENOTSUP, "unsupported attestation key type %u", q.att_key_type);
  if (q.tee_type != QUOTE_TEE_SGX && q.tee_type != QUOTE_TEE_TDX)
    return FAIL(-ENOTSUP, "unsupported TEE type 0x%" PRIx32, q.tee_type);
  if (q.version == 3 && q.tee_type != QUOTE_TEE_SGX)
    return FAIL(-ENOTSUP, "unsupported quote version 3 for TEE type 0x%" PRIx32, q.tee_type);

  /* Body. */
  if (q.version == 5) {
    uint16_t bt;
    uint32_t bs;
    if (cursor_u16le(&c, &bt) < 0 || cursor_u32le(&c, &bs) < 0)
      return FAIL(-EBADMSG, "truncated quote body descriptor");
    if (bt < QUOTE_BODY_SGX || bt > QUOTE_BODY_TD15)
      return FAIL(-ENOTSUP, "unsupported quote body type %u", bt);
    q.body_type = (enum quote_body_type)bt;
    if (bs != body_size_of(q.body_type))
      return FAIL(-EBADMSG, "quote body size %" PRIu32 " does not match body type %u (%zu)", bs, bt,
                  body_size_of(q.body_type));
    if ((q.body_type == QUOTE_BODY_SGX) != (q.tee_type == QUOTE_TEE_SGX))
      return FAIL(-EBADMSG, "quote body type %u does not match TEE type 0x%" PRIx32, bt,
                  q.tee_type);
  } else
    q.body_type = q.tee_type == QUOTE_TEE_TDX ? QUOTE_BODY_TD10 : QUOTE_BODY_SGX;
  q.body_size = (uint32_t)body_size_of(q.body_type);
  if (cursor_left(&c) < q.body_size)
    return FAIL(-EBADMSG, "truncated quote body");
  if (q.body_type == QUOTE_BODY_SGX)
    sgx_report_body_parse(cursor_pos(&c), &q.sgx);
  else
    td_body_parse(cursor_pos(&c), q.body_type == QUOTE_BODY_TD15, &q.td);
  (void)cursor_skip(&c, q.body_size);
  q.signed_len = c.off;
  q.signed_data = SLICE(data, q.signed_len);

  /* Signature data. */
  if (cursor_u32le(&c, &q.sig_data_len) < 0)
    return FAIL(-EBADMSG, "truncated signature data length");
  if (q.sig_data_len > cursor_left(&c))
    return FAIL(-EBADMSG, "signature data length %" PRIu32 " beyond quote end (%zu left)",
                q.sig_data_len, cursor_left(&c));
  cursor_init(&sc, cursor_pos(&c), q.sig_data_len);
  (void)cursor_skip(&c, q.sig_data_len);
  q.total_len = c.off;

  if (cursor_read(&sc, q.signature, sizeof(q.signature)) < 0 ||
      cursor_read(&sc, q.attest_key, sizeof(q.attest_key)) < 0)
    return FAIL(-EBADMSG, "truncated quote signature");
  if (q.version == 3) {
    r = qe_part_read(&sc, &q, msg, msg_size);
    if (r < 0)
      return r;
    r = cert_data_read(&sc, "certification data", &q.cert_type, &q.cert_data, msg, msg_size);
    if (r < 0)
      return r;
    q.outer_cert_type = q.cert_type;
  } else {
    struct slice outer;
    r = cert_data_read(&sc, "certification data", &q.outer_cert_type, &outer, msg, msg_size);
    if (r < 0)
      return r;
    if (q.outer_cert_type != QUOTE_CERT_QE_REPORT)
      return FAIL(-ENOTSUP, "unsupported certification data type %u (want 6)", q.outer_cert_type);
    cursor_init(&cc, outer.ptr, outer.len);
    r = qe_part_read(&cc, &q, msg, msg_size);
    if (r < 0)
      return r;
    r = cert_data_read(&cc, "QE certification data", &q.cert_type, &q.cert_data, msg, msg_size);
    if (r < 0)
      return r;
    if (cursor_left(&cc) != 0)
      return FAIL(-EBADMSG, "%zu trailing bytes in QE report certification data", cursor_left(&cc));
  }
  if (cursor_left(&sc) != 0)
    return FAIL(-EBADMSG, "%zu trailing bytes in signature data", cursor_left(&sc));
  if (q.cert_type == QUOTE_CERT_QE_REPORT)
    return FAIL(-EBADMSG, "nested QE report certification data");
  if (q.cert_type == QUOTE_CERT_PCK_CHAIN) {
    if (q.cert_data.len > QUOTE_MAX_PCK_CHAIN)
      return FAIL(-ENOBUFS, "PCK chain of %zu bytes over the %zu byte limit", q.cert_data.len,
                  QUOTE_MAX_PCK_CHAIN);
    q.pck_chain_pem = q.cert_data;
  }
  *ret = q;
  return 0;
}

int quote_parse(const uint8_t *data, size_t len, struct quote *ret) {
  return quote_parse_msg(data, len, ret, NULL, 0);
}

static int body_check(const struct quote *q) {
  if (q->version < 3 || q->version > 5)
    return -ENOTSUP;
  if (q->body_type < QUOTE_BODY_SGX || q->body_type > QUOTE_BODY_TD15)
    return -EINVAL;
  if (q->version != 5 && q->body_type == QUOTE_BODY_TD15)
    return -EINVAL;
  if (q->version == 3 && q->body_type != QUOTE_BODY_SGX)
    return -EINVAL;
  if (q->tee_type != QUOTE_TEE_SGX && q->tee_type != QUOTE_TEE_TDX)
    return -EINVAL;
  if ((q->body_type == QUOTE_BODY_SGX) != (q->tee_type == QUOTE_TEE_SGX))
    return -EINVAL;
  return 0;
}

int quote_encode_signed(const struct quote *q, struct buf *out) {
  int r = body_check(q);
  if (r < 0)
    return r;
  r = buf_append_u16le(out, q->version);
  if (r >= 0)
    r = buf_append_u16le(out, q->att_key_type);
  if (r >= 0)
    r = buf_append_u32le(out, q->tee_type);
  if (r >= 0)
    r = buf_append_u16le(out, q->qe_svn);
  if (r >= 0)
    r = buf_append_u16le(out, q->pce_svn);
  if (r >= 0)
    r = buf_append(out, q->qe_vendor_id, sizeof(q->qe_vendor_id));
  if (r >= 0)
    r = buf_append(out, q->user_data, sizeof(q->user_data));
  if (r >= 0 && q->version == 5) {
    r = buf_append_u16le(out, (uint16_t)q->body_type);
    if (r >= 0)
      r = buf_append_u32le(out, (uint32_t)body_size_of(q->body_type));
  }
  if (r < 0)
    return r;
  if (q->body_type == QUOTE_BODY_SGX) {
    uint8_t b[QUOTE_SGX_BODY_SIZE];
    sgx_report_body_encode(&q->sgx, b);
    return buf_append(out, b, sizeof(b));
  }
  return td_body_encode(&q->td, q->body_type == QUOTE_BODY_TD15, out);
}

static int qe_part_encode(const struct quote *q, struct buf *out) {
  uint8_t rep[QUOTE_QE_REPORT_SIZE];
  sgx_report_body_encode(&q->qe_report, rep);
  int r = buf_append(out, rep, sizeof(rep));
  if (r >= 0)
    r = buf_append(out, q->qe_report_sig, sizeof(q->qe_report_sig));
  if (r >= 0)
    r = buf_append_u16le(out, (uint16_t)q->qe_auth_data.len);
  if (r >= 0)
    r = buf_append(out, q->qe_auth_data.ptr, q->qe_auth_data.len);
  if (r >= 0)
    r = buf_append_u16le(out, q->cert_type);
  if (r >= 0)
    r = buf_append_u32le(out, (uint32_t)q->cert_data.len);
  if (r >= 0)
    r = buf_append(out, q->cert_data.ptr, q->cert_data.len);
  return r;
}

int quote_encode(const struct quote *q, struct buf *out) {
  size_t start = out->len, qe_len, sig_len;
  int r;

  if (q->qe_auth_data.len > UINT16_MAX || (q->qe_auth_data.len && !q->qe_auth_data.ptr) ||
      (q->cert_data.len && !q->cert_data.ptr) || q->cert_data.len > QUOTE_MAX_SIZE)
    return -EINVAL;
  if (q->version != 3 && q->outer_cert_type != QUOTE_CERT_QE_REPORT)
    return -EINVAL;
  qe_len = QUOTE_QE_REPORT_SIZE + 64 + 2 + q->qe_auth_data.len + 2 + 4 + q->cert_data.len;
  sig_len = 64 + 64 + (q->version == 3 ? 0 : 2 + 4) + qe_len;

  r = quote_encode_signed(q, out);
  if (r >= 0)
    r = buf_append_u32le(out, (uint32_t)sig_len);
  if (r >= 0)
    r = buf_append(out, q->signature, sizeof(q->signature));
  if (r >= 0)
    r = buf_append(out, q->attest_key, sizeof(q->attest_key));
  if (r >= 0 && q->version != 3) {
    r = buf_append_u16le(out, QUOTE_CERT_QE_REPORT);
    if (r >= 0)
      r = buf_append_u32le(out, (uint32_t)qe_len);
  }
  if (r >= 0)
    r = qe_part_encode(q, out);
  if (r >= 0 && out->len - start > QUOTE_MAX_SIZE)
    r = -ENOBUFS;
  if (r < 0)
    out->len = start;
  return r;
}
