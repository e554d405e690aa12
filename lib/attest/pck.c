/* Intel SGX PCK certificate extension: a strict DER reader (definite minimal lengths, fixed
 * order, exact sizes) and a writer producing the same layout. */
#include "attest/pck.h"

#include <string.h>

#include "base/log.h"
#include "crypto/x509.h"

#define TAG_BOOLEAN 0x01
#define TAG_INTEGER 0x02
#define TAG_OCTET_STRING 0x04
#define TAG_OID 0x06
#define TAG_ENUMERATED 0x0a
#define TAG_SEQUENCE 0x30

/* DER content of OID 1.2.840.113741.1.13.1 */
static const uint8_t sgx_oid_prefix[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

/* Reads one TLV with the expected tag; ret gets the value. */
static int der_read(struct cursor *c, uint8_t tag, struct slice *ret) {
  uint8_t t, l0;
  size_t len;
  if (cursor_u8(c, &t) < 0 || t != tag || cursor_u8(c, &l0) < 0)
    return -EBADMSG;
  if (l0 < 0x80)
    len = l0;
  else {
    size_t n = l0 & 0x7f;
    if (n == 0 || n > 2) /* indefinite, or longer than anything this extension holds */
      return -EBADMSG;
    len = 0;
    for (size_t i = 0; i < n; i++) {
      uint8_t b;
      if (cursor_u8(c, &b) < 0)
        return -EBADMSG;
      if (i == 0 && b == 0)
        return -EBADMSG; /* not minimal */
      len = (len << 8) | b;
    }
    if (len < 0x80)
      return -EBADMSG; /* should have used the short form */
  }
  return cursor_slice(c, len, ret);
}

static int der_read_all(struct slice in, uint8_t tag, struct slice *ret) {
  struct cursor c;
  cursor_init(&c, in.ptr, in.len);
  int r = der_read(&c, tag, ret);
  if (r < 0)
    return r;
  return cursor_left(&c) == 0 ? 0 : -EBADMSG;
}

/* Non-negative minimal INTEGER / ENUMERATED up to max. */
static int der_read_uint(struct cursor *c, uint8_t tag, uint32_t max, uint32_t *ret) {
  struct slice v;
  if (der_read(c, tag, &v) < 0 || v.len == 0 || v.len > 5)
    return -EBADMSG;
  if (v.ptr[0] & 0x80)
    return -EBADMSG; /* negative */
  if (v.len > 1 && v.ptr[0] == 0 && !(v.ptr[1] & 0x80))
    return -EBADMSG; /* not minimal */
  uint64_t x = 0;
  for (size_t i = 0; i < v.len; i++)
    x = (x << 8) | v.ptr[i];
  if (x > max)
    return -EBADMSG;
  *ret = (uint32_t)x;
  return 0;
}

static int der_read_octets(struct cursor *c, uint8_t *out, size_t n) {
  struct slice v;
  if (der_read(c, TAG_OCTET_STRING, &v) < 0 || v.len != n)
    return -EBADMSG;
  memcpy(out, v.ptr, n);
  return 0;
}

static int der_read_bool(struct cursor *c, bool *ret) {
  struct slice v;
  if (der_read(c, TAG_BOOLEAN, &v) < 0 || v.len != 1 || (v.ptr[0] != 0 && v.ptr[0] != 0xff))
    return -EBADMSG;
  *ret = v.ptr[0] == 0xff;
  return 0;
}

/* The OID 1.2.840.113741.1.13.1.<a>[.<b>] (b = 0: absent). */
static bool oid_is(struct slice oid, uint8_t a, uint8_t b) {
  size_t n = sizeof(sgx_oid_prefix);
  if (oid.len != n + 1 + (b ? 1 : 0) || memcmp(oid.ptr, sgx_oid_prefix, n) != 0)
    return false;
  return oid.ptr[n] == a && (!b || oid.ptr[n + 1] == b);
}

/* Opens the next SEQUENCE { OID, value } pair when its OID is .a[.b]; value left in ret.
 * -ENOENT (cursor untouched) when the next pair has another OID, for optional entries. */
static int pair_open(struct cursor *c, uint8_t a, uint8_t b, struct cursor *ret) {
  struct cursor save = *c;
  struct slice seq, oid;
  if (cursor_left(c) == 0)
    return -ENOENT;
  if (der_read(c, TAG_SEQUENCE, &seq) < 0)
    return -EBADMSG;
  cursor_init(ret, seq.ptr, seq.len);
  if (der_read(ret, TAG_OID, &oid) < 0)
    return -EBADMSG;
  if (!oid_is(oid, a, b)) {
    *c = save;
    return -ENOENT;
  }
  return 0;
}

static int pair_open_required(struct cursor *c, uint8_t a, uint8_t b, struct cursor *ret) {
  int r = pair_open(c, a, b, ret);
  return r == -ENOENT ? -EBADMSG : r;
}

static int pair_close(const struct cursor *v) {
  return cursor_left(v) == 0 ? 0 : -EBADMSG;
}

static int tcb_parse(struct cursor *v, struct pck_ext *e) {
  struct slice seq;
  struct cursor tc, p;
  uint32_t x;
  if (der_read(v, TAG_SEQUENCE, &seq) < 0)
    return -EBADMSG;
  cursor_init(&tc, seq.ptr, seq.len);
  for (uint8_t i = 1; i <= 16; i++) {
    if (pair_open_required(&tc, 2, i, &p) < 0 || der_read_uint(&p, TAG_INTEGER, 255, &x) < 0 ||
        pair_close(&p) < 0)
      return -EBADMSG;
    e->tcb_comp[i - 1] = (uint8_t)x;
  }
  if (pair_open_required(&tc, 2, 17, &p) < 0 || der_read_uint(&p, TAG_INTEGER, 0xffff, &x) < 0 ||
      pair_close(&p) < 0)
    return -EBADMSG;
  e->pcesvn = (uint16_t)x;
  if (pair_open_required(&tc, 2, 18, &p) < 0 || der_read_octets(&p, e->cpusvn, 16) < 0 ||
      pair_close(&p) < 0)
    return -EBADMSG;
  return cursor_left(&tc) == 0 ? 0 : -EBADMSG;
}

static int config_parse(struct cursor *v, struct pck_ext *e) {
  struct slice seq;
  struct cursor cc, p;
  bool *has[3] = {&e->has_dynamic_platform, &e->has_cached_keys, &e->has_smt_enabled};
  bool *val[3] = {&e->dynamic_platform, &e->cached_keys, &e->smt_enabled};
  if (der_read(v, TAG_SEQUENCE, &seq) < 0)
    return -EBADMSG;
  cursor_init(&cc, seq.ptr, seq.len);
  for (uint8_t i = 0; i < 3; i++) {
    int r = pair_open(&cc, 7, (uint8_t)(i + 1), &p);
    if (r == -ENOENT)
      continue;
    if (r < 0 || der_read_bool(&p, val[i]) < 0 || pair_close(&p) < 0)
      return -EBADMSG;
    *has[i] = true;
  }
  return cursor_left(&cc) == 0 ? 0 : -EBADMSG;
}

int pck_ext_parse(const uint8_t *der, size_t len, struct pck_ext *ret) {
  struct pck_ext e = {0};
  struct slice top;
  struct cursor c, p;
  uint32_t x;
  int r;

  if (!ret || (!der && len))
    return -EINVAL;
  if (der_read_all(SLICE(der, len), TAG_SEQUENCE, &top) < 0)
    return -EBADMSG;
  cursor_init(&c, top.ptr, top.len);
  if (pair_open_required(&c, 1, 0, &p) < 0 || der_read_octets(&p, e.ppid, 16) < 0 ||
      pair_close(&p) < 0)
    return -EBADMSG;
  if (pair_open_required(&c, 2, 0, &p) < 0 || tcb_parse(&p, &e) < 0 || pair_close(&p) < 0)
    return -EBADMSG;
  if (pair_open_required(&c, 3, 0, &p) < 0 || der_read_octets(&p, e.pceid, 2) < 0 ||
      pair_close(&p) < 0)
    return -EBADMSG;
  if (pair_open_required(&c, 4, 0, &p) < 0 || der_read_octets(&p, e.fmspc, 6) < 0 ||
      pair_close(&p) < 0)
    return -EBADMSG;
  if (pair_open_required(&c, 5, 0, &p) < 0 || der_read_uint(&p, TAG_ENUMERATED, 255, &x) < 0 ||
      pair_close(&p) < 0)
    return -EBADMSG;
  e.sgx_type = (int)x;
  r = pair_open(&c, 6, 0, &p);
  if (r == 0) {
    if (der_read_octets(&p, e.platform_instance_id, 16) < 0 || pair_close(&p) < 0)
      return -EBADMSG;
    e.has_platform_instance_id = true;
  } else if (r != -ENOENT)
    return r;
  r = pair_open(&c, 7, 0, &p);
  if (r == 0) {
    if (config_parse(&p, &e) < 0 || pair_close(&p) < 0)
      return -EBADMSG;
    e.has_configuration = true;
  } else if (r != -ENOENT)
    return r;
  if (cursor_left(&c) != 0)
    return -EBADMSG;
  *ret = e;
  return 0;
}

/* --- encoding --- */

static int der_put_len(struct buf *b, size_t len) {
  if (len < 0x80)
    return buf_append_u8(b, (uint8_t)len);
  if (len <= 0xff) {
    int r = buf_append_u8(b, 0x81);
    return r < 0 ? r : buf_append_u8(b, (uint8_t)len);
  }
  if (len <= 0xffff) {
    int r = buf_append_u8(b, 0x82);
    if (r >= 0)
      r = buf_append_u8(b, (uint8_t)(len >> 8));
    return r < 0 ? r : buf_append_u8(b, (uint8_t)len);
  }
  return -EINVAL;
}

static int der_put(struct buf *b, uint8_t tag, const void *p, size_t len) {
  int r = buf_append_u8(b, tag);
  if (r >= 0)
    r = der_put_len(b, len);
  if (r >= 0)
    r = buf_append(b, p, len);
  return r;
}

static int der_put_uint(struct buf *b, uint8_t tag, uint32_t v) {
  uint8_t tmp[5];
  size_t n = 0;
  for (int i = 3; i >= 0; i--) {
    uint8_t byte = (uint8_t)(v >> (8 * i));
    if (n == 0 && byte == 0 && i > 0)
      continue;
    if (n == 0 && (byte & 0x80))
      tmp[n++] = 0;
    tmp[n++] = byte;
  }
  return der_put(b, tag, tmp, n);
}

/* Appends SEQUENCE { OID .a[.b], <value TLV> }. */
static int pair_put(struct buf *b, uint8_t a, uint8_t sub, const struct buf *value) {
  uint8_t oid[sizeof(sgx_oid_prefix) + 2];
  size_t oid_len = sizeof(sgx_oid_prefix);
  struct buf seq = BUF_INIT(4096);
  int r;
  memcpy(oid, sgx_oid_prefix, oid_len);
  oid[oid_len++] = a;
  if (sub)
    oid[oid_len++] = sub;
  r = der_put(&seq, TAG_OID, oid, oid_len);
  if (r >= 0)
    r = buf_append(&seq, value->data, value->len);
  if (r >= 0)
    r = der_put(b, TAG_SEQUENCE, seq.data, seq.len);
  buf_free(&seq);
  return r;
}

static int pair_put_octets(struct buf *b, uint8_t a, uint8_t sub, const uint8_t *p, size_t n) {
  struct buf v = BUF_INIT(64);
  int r = der_put(&v, TAG_OCTET_STRING, p, n);
  if (r >= 0)
    r = pair_put(b, a, sub, &v);
  buf_free(&v);
  return r;
}

static int pair_put_uint(struct buf *b, uint8_t a, uint8_t sub, uint8_t tag, uint32_t x) {
  struct buf v = BUF_INIT(16);
  int r = der_put_uint(&v, tag, x);
  if (r >= 0)
    r = pair_put(b, a, sub, &v);
  buf_free(&v);
  return r;
}

static int pair_put_bool(struct buf *b, uint8_t a, uint8_t sub, bool x) {
  struct buf v = BUF_INIT(16);
  uint8_t byte = x ? 0xff : 0;
  int r = der_put(&v, TAG_BOOLEAN, &byte, 1);
  if (r >= 0)
    r = pair_put(b, a, sub, &v);
  buf_free(&v);
  return r;
}

/* Wraps inner as SEQUENCE and appends it as the value of pair .a */
static int pair_put_seq(struct buf *b, uint8_t a, const struct buf *inner) {
  struct buf v = BUF_INIT(4096);
  int r = der_put(&v, TAG_SEQUENCE, inner->data, inner->len);
  if (r >= 0)
    r = pair_put(b, a, 0, &v);
  buf_free(&v);
  return r;
}

int pck_ext_encode(const struct pck_ext *e, struct buf *out) {
  struct buf body = BUF_INIT(4096), tcb = BUF_INIT(4096), cfg = BUF_INIT(256);
  int r;

  if (e->sgx_type < 0 || e->sgx_type > 255)
    return -EINVAL;
  r = pair_put_octets(&body, 1, 0, e->ppid, sizeof(e->ppid));
  for (uint8_t i = 1; r >= 0 && i <= 16; i++)
    r = pair_put_uint(&tcb, 2, i, TAG_INTEGER, e->tcb_comp[i - 1]);
  if (r >= 0)
    r = pair_put_uint(&tcb, 2, 17, TAG_INTEGER, e->pcesvn);
  if (r >= 0)
    r = pair_put_octets(&tcb, 2, 18, e->cpusvn, sizeof(e->cpusvn));
  if (r >= 0)
    r = pair_put_seq(&body, 2, &tcb);
  if (r >= 0)
    r = pair_put_octets(&body, 3, 0, e->pceid, sizeof(e->pceid));
  if (r >= 0)
    r = pair_put_octets(&body, 4, 0, e->fmspc, sizeof(e->fmspc));
  if (r >= 0)
    r = pair_put_uint(&body, 5, 0, TAG_ENUMERATED, (uint32_t)e->sgx_type);
  if (r >= 0 && e->has_platform_instance_id)
    r = pair_put_octets(&body, 6, 0, e->platform_instance_id, sizeof(e->platform_instance_id));
  if (r >= 0 && e->has_configuration) {
    if (e->has_dynamic_platform)
      r = pair_put_bool(&cfg, 7, 1, e->dynamic_platform);
    if (r >= 0 && e->has_cached_keys)
      r = pair_put_bool(&cfg, 7, 2, e->cached_keys);
    if (r >= 0 && e->has_smt_enabled)
      r = pair_put_bool(&cfg, 7, 3, e->smt_enabled);
    if (r >= 0)
      r = pair_put_seq(&body, 7, &cfg);
  }
  if (r >= 0)
    r = der_put(out, TAG_SEQUENCE, body.data, body.len);
  buf_free(&body);
  buf_free(&tcb);
  buf_free(&cfg);
  return r;
}

/* --- certificates --- */

int pck_cert_ext(X509 *pck, struct pck_ext *ret) {
  struct slice v;
  if (!pck || !ret)
    return -EINVAL;
  int r = x509_cert_ext_find(pck, PCK_EXT_OID, &v, NULL);
  if (r < 0)
    return r;
  return pck_ext_parse(v.ptr, v.len, ret);
}

int pck_chain_leaf_ext(const uint8_t *pem, size_t len, struct pck_ext *ret) {
  _cleanup_(X509_freep) X509 *leaf = NULL;
  if (!pem || !ret)
    return -EINVAL;
  int r = x509_cert_from_pem(pem, len, &leaf);
  if (r < 0)
    return log_debug_errno(r, "pck: no certificate in the PCK chain");
  return pck_cert_ext(leaf, ret);
}
