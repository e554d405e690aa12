#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "attest/pck.h"
#include "attest/quote.h"
#include "attest/quote_json.h"
#include "base/hex.h"
#include "testutil.h"

struct vec {
  const char *path;
  bool hex;
  uint16_t version;
  enum quote_body_type body;
};

/* Every real quote among the vectors. */
static const struct vec vecs[] = {
    {"dcap-qvl/tdx_quote", false, 4, QUOTE_BODY_TD10},
    {"dcap-qvl/sgx_quote", false, 3, QUOTE_BODY_SGX},
    {"dcap-qvl/tdx_quote_outdated", false, 5, QUOTE_BODY_TD15},
    {"dcap-qvl/tdx-quote.hex", true, 4, QUOTE_BODY_TD10},
    {"dcap-qvl/quote-from-tappd.hex", true, 4, QUOTE_BODY_TD10},
    {"dstack/ra-tls_tdx_quote", false, 4, QUOTE_BODY_TD10},
    {"zkdcap/quote_tdx_00806f050000.dat", false, 4, QUOTE_BODY_TD10},
    {"go-tdx-guest/tdx_prod_quote_SPR_E4.dat", false, 4, QUOTE_BODY_TD10},
    {"go-tdx-guest/ccel/cos-113-tdx-quote.dat", false, 4, QUOTE_BODY_TD10},
};

static void load(const char *path, bool hex, struct buf *b) {
  *b = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector(path, hex, b);
}

/* --- round trip on every vector --- */

static void test_quote_vectors_roundtrip(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(vecs); i++) {
    _cleanup_buf_ struct buf in, out = BUF_INIT(BUF_MAX_QUOTE);
    struct quote q;
    char msg[200];
    load(vecs[i].path, vecs[i].hex, &in);
    int r = quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg));
    if (r < 0)
      fail_msg("%s: %d %s", vecs[i].path, r, msg);
    assert_int_equal(q.version, vecs[i].version);
    assert_int_equal(q.body_type, vecs[i].body);
    assert_int_equal(q.att_key_type, QUOTE_ATT_KEY_ECDSA_P256);
    assert_int_equal(q.tee_type, vecs[i].body == QUOTE_BODY_SGX ? QUOTE_TEE_SGX : QUOTE_TEE_TDX);
    char vid[33];
    hex_encode(q.qe_vendor_id, 16, vid);
    assert_string_equal(vid, "939a7233f79c4ca9940a0db3957f0607");
    size_t body = vecs[i].body == QUOTE_BODY_SGX    ? 384
                  : vecs[i].body == QUOTE_BODY_TD10 ? 584
                                                    : 648;
    assert_int_equal(q.signed_len, 48 + (q.version == 5 ? 6 : 0) + body);
    assert_ptr_equal(q.signed_data.ptr, in.data);
    assert_int_equal(q.signed_data.len, q.signed_len);
    assert_int_equal(q.total_len, q.signed_len + 4 + q.sig_data_len);
    assert_true(q.total_len <= in.len);
    /* Whatever follows the signature data is zero padding ... */
    bool continue_checks = true;
    /* ... except on SPR_E4, which go-tdx-guest ends with a text trailer. */
    if (strstr(vecs[i].path, "SPR_E4")) {
      static const char tr[] = "\nextra bytes(only for testing purpose)\n";
      assert_int_equal(in.len - q.total_len, strlen(tr));
      assert_memory_equal(in.data + q.total_len, tr, strlen(tr));
      continue_checks = false;
    }
    for (size_t k = q.total_len; continue_checks && k < in.len; k++)
      if (in.data[k] != 0)
        fail_msg("%s: byte %zu after the quote (%zu) is %#x", vecs[i].path, k, q.total_len,
                 in.data[k]);
    assert_int_equal(q.outer_cert_type, q.version == 3 ? 5 : 6);
    assert_int_equal(q.cert_type, QUOTE_CERT_PCK_CHAIN);
    assert_int_equal(q.qe_auth_data.len, 32);
    assert_ptr_equal(q.pck_chain_pem.ptr, q.cert_data.ptr);
    assert_true(q.pck_chain_pem.len > 27 &&
                memcmp(q.pck_chain_pem.ptr, "-----BEGIN CERTIFICATE-----", 27) == 0);
    /* The QE report struct and its raw bytes agree. */
    uint8_t raw[384];
    sgx_report_body_encode(&q.qe_report, raw);
    assert_memory_equal(raw, q.qe_report_raw, 384);
    /* encode(parse(q)) == q[0..total_len] */
    assert_int_equal(quote_encode(&q, &out), 0);
    assert_int_equal(out.len, q.total_len);
    assert_memory_equal(out.data, in.data, q.total_len);
    buf_reset(&out);
    assert_int_equal(quote_encode_signed(&q, &out), 0);
    assert_int_equal(out.len, q.signed_len);
    assert_memory_equal(out.data, in.data, q.signed_len);
    /* report_data accessor */
    assert_ptr_equal(quote_report_data(&q),
                     q.body_type == QUOTE_BODY_SGX ? q.sgx.report_data : q.td.report_data);
  }
}

/* Known values from upstream dstack and the vectors README. */
static void test_quote_known_fields(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in;
  struct quote q;
  load("dstack/ra-tls_tdx_quote", false, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  assert_int_equal(in.len, 5006);
  assert_int_equal(q.total_len, 4936);
  assert_int_equal(q.sig_data_len, 4300);
  assert_int_equal(q.cert_data.len, 3678);
  assert_memory_equal(q.td.td_attributes, "\x00\x00\x00\x10\x00\x00\x00\x00", 8);
  assert_memory_equal(q.td.xfam, "\xe7\x02\x06\x00\x00\x00\x00\x00", 8);
  assert_memory_equal(q.td.mr_td, "\x91\xeb\x2b\x44", 4);
  uint8_t zero[48] = {0};
  assert_memory_equal(q.td.rt_mr[3], zero, 48);
  assert_memory_equal(q.td.report_data,
                      "# ~/.bashrc: executed by bash(1) for non-login shells.\n# see /us", 64);
  assert_memory_equal(in.data + 568, q.td.report_data, 64);

  _cleanup_buf_ struct buf v5;
  load("dcap-qvl/tdx_quote_outdated", false, &v5);
  assert_int_equal(quote_parse(v5.data, v5.len, &q), 0);
  assert_int_equal(q.body_type, QUOTE_BODY_TD15);
  assert_int_equal(q.body_size, 648);
  assert_int_equal(le16_read(v5.data + 48), 3);
  assert_int_equal(le32_read(v5.data + 50), 648);
  assert_memory_equal(q.td.tee_tcb_svn2, v5.data + 54 + 584, 16);
  assert_memory_equal(q.td.mr_service_td, v5.data + 54 + 600, 48);
}

/* --- dcap-qvl snapshots: every field dcap-qvl prints, compared with ours --- */

enum snap_kind { SNAP_INT, SNAP_BYTES, SNAP_STR };

struct snap_item {
  char name[64];
  enum snap_kind kind;
  uint64_t num;
  struct buf bytes; /* SNAP_BYTES: the bytes; SNAP_STR: the decoded string as UTF-32 code points */
};

struct snap {
  struct snap_item *items;
  size_t n;
};

static void snap_free(struct snap *s) {
  for (size_t i = 0; i < s->n; i++)
    buf_free(&s->items[i].bytes);
  free(s->items);
}

static void cp_append(struct buf *b, uint32_t cp) {
  assert_int_equal(buf_append(b, &cp, sizeof(cp)), 0);
}

/* Decodes a Rust Debug string literal body (between the quotes) into code points. */
static void snap_decode_str(const char *s, size_t n, struct buf *out) {
  for (size_t i = 0; i < n;) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\\') {
      assert_true(i + 1 < n);
      char e = s[i + 1];
      i += 2;
      switch (e) {
      case 'n':
        cp_append(out, '\n');
        break;
      case 'r':
        cp_append(out, '\r');
        break;
      case 't':
        cp_append(out, '\t');
        break;
      case '0':
        cp_append(out, 0);
        break;
      case '\\':
        cp_append(out, '\\');
        break;
      case '"':
        cp_append(out, '"');
        break;
      case '\'':
        cp_append(out, '\'');
        break;
      case 'u': {
        assert_true(i < n && s[i] == '{');
        char *end;
        unsigned long v = strtoul(s + i + 1, &end, 16);
        assert_true(*end == '}');
        i = (size_t)(end - s) + 1;
        cp_append(out, (uint32_t)v);
        break;
      }
      default:
        fail_msg("unknown escape \\%c", e);
      }
      continue;
    }
    /* UTF-8 as written by the snapshot tool (valid by construction). */
    uint32_t cp;
    size_t k;
    if (ch < 0x80)
      cp = ch, k = 1;
    else if ((ch & 0xe0) == 0xc0)
      cp = ch & 0x1f, k = 2;
    else if ((ch & 0xf0) == 0xe0)
      cp = ch & 0x0f, k = 3;
    else
      cp = ch & 0x07, k = 4;
    assert_true(i + k <= n);
    for (size_t j = 1; j < k; j++)
      cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3f);
    cp_append(out, cp);
    i += k;
  }
}

/* Bytes to code points the way Rust's String::from_utf8_lossy does (U+FFFD per maximal
 * invalid subpart). */
static void utf8_lossy(const uint8_t *p, size_t n, struct buf *out) {
  for (size_t i = 0; i < n;) {
    uint8_t b = p[i];
    if (b < 0x80) {
      cp_append(out, b);
      i++;
      continue;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf;
    uint32_t cp;
    if (b >= 0xc2 && b <= 0xdf)
      need = 1, cp = b & 0x1f;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2, cp = b & 0x0f;
      if (b == 0xe0)
        lo = 0xa0;
      if (b == 0xed)
        hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3, cp = b & 0x07;
      if (b == 0xf0)
        lo = 0x90;
      if (b == 0xf4)
        hi = 0x8f;
    } else {
      cp_append(out, 0xfffd);
      i++;
      continue;
    }
    size_t j = 1;
    bool ok = true;
    for (; j <= need; j++) {
      if (i + j >= n) {
        ok = false;
        break;
      }
      uint8_t c = p[i + j];
      uint8_t l = j == 1 ? lo : 0x80, h = j == 1 ? hi : 0xbf;
      if (c < l || c > h) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (c & 0x3f);
    }
    if (ok) {
      cp_append(out, cp);
      i += need + 1;
    } else {
      cp_append(out, 0xfffd);
      i += j; /* the maximal subpart consumed so far */
    }
  }
}

static void snap_load(const char *rel, struct snap *s) {
  _cleanup_buf_ struct buf text;
  load(rel, false, &text);
  assert_int_equal(buf_terminate(&text), 0);
  char *save = NULL, *line;
  bool started = false;
  struct snap_item *cur = NULL;
  s->items = NULL;
  s->n = 0;
  for (line = strtok_r((char *)text.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    while (*line == ' ')
      line++;
    if (!started) {
      started = strncmp(line, "Quote {", 7) == 0;
      continue;
    }
    if (cur) { /* inside a byte array */
      if (strcmp(line, "],") == 0) {
        cur = NULL;
        continue;
      }
      char *end;
      unsigned long v = strtoul(line, &end, 10);
      assert_true(end != line && strcmp(end, ",") == 0 && v <= 255);
      assert_int_equal(buf_append_u8(&cur->bytes, (uint8_t)v), 0);
      continue;
    }
    char *colon = strstr(line, ": ");
    if (!colon)
      continue;
    size_t nlen = (size_t)(colon - line);
    const char *val = colon + 2;
    bool ident = nlen > 0 && nlen < 64;
    for (size_t k = 0; ident && k < nlen; k++)
      ident = islower((unsigned char)line[k]) || isdigit((unsigned char)line[k]) || line[k] == '_';
    if (!ident || strncmp(line, "_marker", 7) == 0)
      continue;
    enum snap_kind kind;
    if (strcmp(val, "[") == 0)
      kind = SNAP_BYTES;
    else if (val[0] == '"')
      kind = SNAP_STR;
    else if (isdigit((unsigned char)val[0]) && val[strlen(val) - 1] == ',')
      kind = SNAP_INT;
    else
      continue; /* a nested struct opener */
    s->items = realloc(s->items, (s->n + 1) * sizeof(*s->items));
    assert_non_null(s->items);
    struct snap_item *it = &s->items[s->n++];
    memset(it, 0, sizeof(*it));
    memcpy(it->name, line, nlen);
    it->kind = kind;
    it->bytes = BUF_INIT(BUF_MAX_FILE);
    if (kind == SNAP_BYTES)
      cur = it;
    else if (kind == SNAP_INT)
      it->num = strtoull(val, NULL, 10);
    else {
      size_t vl = strlen(val);
      assert_true(vl >= 3 && strcmp(val + vl - 2, "\",") == 0);
      snap_decode_str(val + 1, vl - 3, &it->bytes);
    }
  }
  assert_true(started);
  assert_null(cur);
}

struct expect {
  const char *name;
  enum snap_kind kind;
  uint64_t num;
  const uint8_t *p;
  size_t len;
};

#define E_INT(n, v) ((struct expect){(n), SNAP_INT, (v), NULL, 0})
#define E_BYTES(n, f) ((struct expect){(n), SNAP_BYTES, 0, (const uint8_t *)(f), sizeof(f)})
#define E_SLICE(n, s) ((struct expect){(n), SNAP_BYTES, 0, (s).ptr, (s).len})
#define E_STR(n, s) ((struct expect){(n), SNAP_STR, 0, (s).ptr, (s).len})

static void snap_compare(const struct snap *s, const struct expect *e, size_t n) {
  if (s->n != n) {
    for (size_t i = 0; i < s->n; i++)
      print_message("snap[%zu] %s\n", i, s->items[i].name);
    fail_msg("snapshot has %zu fields, we expect %zu", s->n, n);
  }
  for (size_t i = 0; i < n; i++) {
    const struct snap_item *it = &s->items[i];
    if (strcmp(it->name, e[i].name) != 0 || it->kind != e[i].kind)
      fail_msg("field %zu: snapshot has %s, we expect %s", i, it->name, e[i].name);
    switch (it->kind) {
    case SNAP_INT:
      if (it->num != e[i].num)
        fail_msg("%s: snapshot %" PRIu64 ", parsed %" PRIu64, it->name, it->num, e[i].num);
      break;
    case SNAP_BYTES:
      if (it->bytes.len != e[i].len || memcmp(it->bytes.data, e[i].p, e[i].len) != 0)
        fail_msg("%s: bytes differ (snapshot %zu, parsed %zu)", it->name, it->bytes.len, e[i].len);
      break;
    case SNAP_STR: {
      _cleanup_buf_ struct buf cps = BUF_INIT(BUF_MAX_FILE);
      utf8_lossy(e[i].p, e[i].len, &cps);
      if (cps.len != it->bytes.len || memcmp(cps.data, it->bytes.data, cps.len) != 0)
        fail_msg("%s: string differs", it->name);
      break;
    }
    }
  }
}

static void test_quote_snap_tdx(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in;
  struct quote q;
  struct snap s;
  load("dcap-qvl/tdx_quote", false, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  uint8_t qe[384];
  sgx_report_body_encode(&q.qe_report, qe);
  /* The outer (type 6) certification data as it sits in the quote. */
  size_t outer_off = q.signed_len + 4 + 128 + 6;
  struct slice outer = SLICE(in.data + outer_off, q.total_len - outer_off);
  const struct td_report_body *b = &q.td;
  struct expect e[] = {
      E_INT("version", q.version),
      E_INT("attestation_key_type", q.att_key_type),
      E_INT("tee_type", q.tee_type),
      E_INT("qe_svn", q.qe_svn),
      E_INT("pce_svn", q.pce_svn),
      E_BYTES("qe_vendor_id", q.qe_vendor_id),
      E_BYTES("user_data", q.user_data),
      E_BYTES("tee_tcb_svn", b->tee_tcb_svn),
      E_BYTES("mr_seam", b->mr_seam),
      E_BYTES("mr_signer_seam", b->mr_signer_seam),
      E_BYTES("seam_attributes", b->seam_attributes),
      E_BYTES("td_attributes", b->td_attributes),
      E_BYTES("xfam", b->xfam),
      E_BYTES("mr_td", b->mr_td),
      E_BYTES("mr_config_id", b->mr_config_id),
      E_BYTES("mr_owner", b->mr_owner),
      E_BYTES("mr_owner_config", b->mr_owner_config),
      E_BYTES("rt_mr0", b->rt_mr[0]),
      E_BYTES("rt_mr1", b->rt_mr[1]),
      E_BYTES("rt_mr2", b->rt_mr[2]),
      E_BYTES("rt_mr3", b->rt_mr[3]),
      E_BYTES("report_data", b->report_data),
      E_BYTES("ecdsa_signature", q.signature),
      E_BYTES("ecdsa_attestation_key", q.attest_key),
      E_INT("cert_type", q.outer_cert_type),
      E_STR("body", outer),
      E_BYTES("qe_report", qe),
      E_BYTES("qe_report_signature", q.qe_report_sig),
      E_SLICE("data", q.qe_auth_data),
      E_INT("cert_type", q.cert_type),
      E_STR("body", q.cert_data),
  };
  snap_load("dcap-qvl/verify_quote__could_parse_tdx_quote.snap", &s);
  snap_compare(&s, e, ARRAY_SIZE(e));
  snap_free(&s);
}

static void test_quote_snap_sgx(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in;
  struct quote q;
  struct snap s;
  load("dcap-qvl/sgx_quote", false, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  uint8_t qe[384];
  sgx_report_body_encode(&q.qe_report, qe);
  const struct sgx_report_body *b = &q.sgx;
  struct expect e[] = {
      E_INT("version", q.version),
      E_INT("attestation_key_type", q.att_key_type),
      E_INT("tee_type", q.tee_type),
      E_INT("qe_svn", q.qe_svn),
      E_INT("pce_svn", q.pce_svn),
      E_BYTES("qe_vendor_id", q.qe_vendor_id),
      E_BYTES("user_data", q.user_data),
      E_BYTES("cpu_svn", b->cpu_svn),
      E_INT("misc_select", b->misc_select),
      E_BYTES("reserved1", b->reserved1),
      E_BYTES("attributes", b->attributes),
      E_BYTES("mr_enclave", b->mr_enclave),
      E_BYTES("reserved2", b->reserved2),
      E_BYTES("mr_signer", b->mr_signer),
      E_BYTES("reserved3", b->reserved3),
      E_INT("isv_prod_id", b->isv_prod_id),
      E_INT("isv_svn", b->isv_svn),
      E_BYTES("reserved4", b->reserved4),
      E_BYTES("report_data", b->report_data),
      E_BYTES("ecdsa_signature", q.signature),
      E_BYTES("ecdsa_attestation_key", q.attest_key),
      E_BYTES("qe_report", qe),
      E_BYTES("qe_report_signature", q.qe_report_sig),
      E_SLICE("data", q.qe_auth_data),
      E_INT("cert_type", q.cert_type),
      E_STR("body", q.cert_data),
  };
  snap_load("dcap-qvl/verify_quote__could_parse_sgx_quote.snap", &s);
  snap_compare(&s, e, ARRAY_SIZE(e));
  snap_free(&s);
}

/* --- negatives --- */

static int parse_copy(const uint8_t *p, size_t n, struct quote *q, char *msg, size_t msg_size) {
  /* A fresh heap copy of exactly n bytes, so ASan sees any read past the end. */
  uint8_t *c = malloc(n ? n : 1);
  assert_non_null(c);
  memcpy(c, p, n);
  int r = quote_parse_msg(c, n, q, msg, msg_size);
  free(c);
  return r;
}

static void test_quote_truncated(void **state) {
  (void)state;
  for (size_t v = 0; v < ARRAY_SIZE(vecs); v++) {
    _cleanup_buf_ struct buf in;
    struct quote q;
    load(vecs[v].path, vecs[v].hex, &in);
    assert_int_equal(quote_parse(in.data, in.len, &q), 0);
    size_t total = q.total_len, sig_off = q.signed_len;
    /* Plain truncation anywhere. */
    for (size_t n = 0; n < total; n++)
      assert_int_equal(parse_copy(in.data, n, &q, NULL, 0), -EBADMSG);
    /* Truncation inside the signature data with its length field adjusted, so the inner
     * structure is what runs short. */
    uint8_t *c = malloc(total);
    assert_non_null(c);
    for (size_t n = sig_off + 4; n < total; n++) {
      memcpy(c, in.data, n);
      le32_write(c + sig_off, (uint32_t)(n - sig_off - 4));
      int r = parse_copy(c, n, &q, NULL, 0);
      if (r != -EBADMSG)
        fail_msg("%s: cut at %zu gave %d", vecs[v].path, n, r);
    }
    free(c);
  }
}

static void test_quote_sig_len_edges(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in;
  struct quote q;
  char msg[200];
  load("dcap-qvl/tdx_quote", false, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  size_t off = q.signed_len;
  uint32_t good = q.sig_data_len;

  le32_write(in.data + off, 0);
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -EBADMSG);
  le32_write(in.data + off, 0xffffffffu);
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -EBADMSG);
  assert_non_null(strstr(msg, "beyond quote end"));
  /* One byte more (the padding is zero): trailing bytes in the signature data. */
  le32_write(in.data + off, good + 1);
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -EBADMSG);
  assert_non_null(strstr(msg, "trailing"));
  le32_write(in.data + off, good);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  /* Outer cert size one byte larger than the signature data holds. */
  uint32_t outer = le32_read(in.data + off + 4 + 128 + 2);
  le32_write(in.data + off + 4 + 128 + 2, outer + 1);
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -EBADMSG);
  assert_non_null(strstr(msg, "certification data size"));
  le32_write(in.data + off + 4 + 128 + 2, outer);
  /* Outer type 5 instead of 6. */
  le16_write(in.data + off + 4 + 128, 5);
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -ENOTSUP);
  le16_write(in.data + off + 4 + 128, 6);
  /* QE auth data size beyond the certification data. */
  size_t auth = off + 4 + 128 + 6 + 384 + 64;
  le16_write(in.data + auth, 0xffff);
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -EBADMSG);
  assert_non_null(strstr(msg, "QE auth data size"));
  le16_write(in.data + auth, 32);
  /* Inner cert data size one larger: beyond the QE certification data. */
  size_t inner = auth + 2 + 32 + 2;
  uint32_t isz = le32_read(in.data + inner);
  le32_write(in.data + inner, isz + 1);
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -EBADMSG);
  assert_non_null(strstr(msg, "certification data size"));
  le32_write(in.data + inner, isz - 1);
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -EBADMSG);
  le32_write(in.data + inner, isz);
  /* Nested type 6. */
  le16_write(in.data + inner - 2, 6);
  assert_int_equal(quote_parse(in.data, in.len, &q), -EBADMSG);
  le16_write(in.data + inner - 2, 5);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
}

static void test_quote_header_errors(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in;
  struct quote q;
  char msg[200];
  load("dcap-qvl/tdx_quote", false, &in);
  uint16_t bad_versions[] = {0, 1, 2, 6, 0xffff};
  for (size_t i = 0; i < ARRAY_SIZE(bad_versions); i++) {
    le16_write(in.data, bad_versions[i]);
    assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -ENOTSUP);
    char want[64];
    snprintf(want, sizeof(want), "unsupported quote version %u", bad_versions[i]);
    assert_string_equal(msg, want);
  }
  le16_write(in.data, 4);
  le16_write(in.data + 2, 3); /* ECDSA-384 */
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -ENOTSUP);
  assert_non_null(strstr(msg, "attestation key type"));
  le16_write(in.data + 2, 2);
  le32_write(in.data + 4, 0x80);
  assert_int_equal(quote_parse(in.data, in.len, &q), -ENOTSUP);
  /* v4 with TEE type SGX: body read as SGX, signature data then misaligned. */
  le32_write(in.data + 4, 0);
  assert_true(quote_parse(in.data, in.len, &q) < 0);
  le32_write(in.data + 4, 0x81);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  /* NULL / empty */
  assert_int_equal(quote_parse(NULL, 0, &q), -EBADMSG);
  assert_int_equal(quote_parse(in.data, in.len, NULL), -EINVAL);
  /* Over the cap. */
  _cleanup_buf_ struct buf big = BUF_INIT(QUOTE_MAX_SIZE + 1);
  assert_int_equal(buf_append(&big, in.data, in.len), 0);
  assert_int_equal(buf_append_zero(&big, QUOTE_MAX_SIZE + 1 - in.len), 0);
  assert_int_equal(quote_parse(big.data, big.len, &q), -ENOBUFS);
  assert_int_equal(quote_parse(big.data, QUOTE_MAX_SIZE, &q), 0);
}

/* go-tdx-guest byte flips that fail at parse level (vectors README). */
static void test_quote_go_tdx_guest_flips(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in;
  struct quote q;
  char msg[200];
  load("go-tdx-guest/tdx_prod_quote_SPR_E4.dat", false, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  in.data[0] = 3;
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -ENOTSUP);
  assert_non_null(strstr(msg, "unsupported quote version 3"));
  in.data[0] = 4;
  in.data[0x278] = 0x10;
  assert_int_equal(quote_parse_msg(in.data, in.len, &q, msg, sizeof(msg)), -EBADMSG);
  assert_non_null(strstr(msg, "certification data size"));
}

static void test_quote_version_mixups(void **state) {
  (void)state;
  struct quote q;
  char msg[200];
  _cleanup_buf_ struct buf v4, v5, v3;
  load("dcap-qvl/tdx_quote", false, &v4);
  load("dcap-qvl/tdx_quote_outdated", false, &v5);
  load("dcap-qvl/sgx_quote", false, &v3);
  v4.data[0] = 5;
  assert_true(quote_parse(v4.data, v4.len, &q) < 0);
  v4.data[0] = 3;
  assert_int_equal(quote_parse_msg(v4.data, v4.len, &q, msg, sizeof(msg)), -ENOTSUP);
  assert_non_null(strstr(msg, "unsupported quote version 3"));
  v5.data[0] = 4;
  assert_true(quote_parse(v5.data, v5.len, &q) < 0);
  v5.data[0] = 3;
  assert_true(quote_parse(v5.data, v5.len, &q) < 0);
  v3.data[0] = 4;
  assert_true(quote_parse(v3.data, v3.len, &q) < 0);
  v3.data[0] = 5;
  assert_true(quote_parse(v3.data, v3.len, &q) < 0);

  /* v5 body descriptor: size mismatch, unknown type, type/TEE mismatch. */
  v5.data[0] = 5;
  assert_int_equal(quote_parse(v5.data, v5.len, &q), 0);
  le32_write(v5.data + 50, 584);
  assert_int_equal(quote_parse_msg(v5.data, v5.len, &q, msg, sizeof(msg)), -EBADMSG);
  assert_non_null(strstr(msg, "body size"));
  le16_write(v5.data + 48, 2);
  assert_true(quote_parse(v5.data, v5.len, &q) < 0); /* TD10 body, then misaligned */
  le32_write(v5.data + 50, 648);
  assert_int_equal(quote_parse(v5.data, v5.len, &q), -EBADMSG);
  le16_write(v5.data + 48, 1);
  le32_write(v5.data + 50, 384);
  assert_int_equal(quote_parse_msg(v5.data, v5.len, &q, msg, sizeof(msg)), -EBADMSG);
  assert_non_null(strstr(msg, "TEE type"));
  le16_write(v5.data + 48, 4);
  assert_int_equal(quote_parse(v5.data, v5.len, &q), -ENOTSUP);
  le16_write(v5.data + 48, 0);
  assert_int_equal(quote_parse(v5.data, v5.len, &q), -ENOTSUP);
  le16_write(v5.data + 48, 3);
  le32_write(v5.data + 50, 648);
  assert_int_equal(quote_parse(v5.data, v5.len, &q), 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint8_t rng_byte(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint8_t)rng_state;
}

static void test_quote_garbage(void **state) {
  (void)state;
  uint8_t g[6000];
  struct quote q;
  for (int round = 0; round < 200; round++) {
    size_t n = (size_t)(rng_byte() | (rng_byte() << 8)) % sizeof(g);
    for (size_t i = 0; i < n; i++)
      g[i] = rng_byte();
    if (n >= 8) {
      le16_write(g, (uint16_t)(3 + round % 3));
      le16_write(g + 2, 2);
      le32_write(g + 4, round % 2 ? 0x81 : 0);
    }
    assert_true(parse_copy(g, n, &q, NULL, 0) < 0);
  }
  /* Random single-byte flips of a real quote: parse either fails or re-encodes exactly. */
  _cleanup_buf_ struct buf in, out = BUF_INIT(BUF_MAX_QUOTE);
  load("dcap-qvl/tdx_quote", false, &in);
  for (int round = 0; round < 2000; round++) {
    size_t pos = (size_t)(rng_byte() | (rng_byte() << 8)) % in.len;
    uint8_t old = in.data[pos];
    in.data[pos] = rng_byte();
    if (parse_copy(in.data, in.len, &q, NULL, 0) == 0) {
      /* slices point into freed memory after parse_copy; parse in place to encode */
      assert_int_equal(quote_parse(in.data, in.len, &q), 0);
      buf_reset(&out);
      assert_int_equal(quote_encode(&q, &out), 0);
      assert_int_equal(out.len, q.total_len);
      assert_memory_equal(out.data, in.data, q.total_len);
    }
    in.data[pos] = old;
  }
}

/* --- building quotes from scratch (what the simulator does) --- */

static void fill(void *p, size_t n, uint8_t seed) {
  uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    b[i] = (uint8_t)(seed + i);
}

static void test_quote_build(void **state) {
  (void)state;
  static const char chain[] =
      "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n";
  uint8_t auth[32];
  fill(auth, sizeof(auth), 7);
  enum quote_body_type types[] = {QUOTE_BODY_TD10, QUOTE_BODY_TD15, QUOTE_BODY_SGX};
  uint16_t versions[] = {4, 5, 3};
  for (size_t t = 0; t < 3; t++) {
    for (uint16_t ver = 3; ver <= 5; ver++) {
      struct quote q = {0}, p;
      _cleanup_buf_ struct buf out = BUF_INIT(BUF_MAX_QUOTE), again = BUF_INIT(BUF_MAX_QUOTE);
      q.version = ver;
      q.att_key_type = 2;
      q.body_type = types[t];
      q.tee_type = types[t] == QUOTE_BODY_SGX ? QUOTE_TEE_SGX : QUOTE_TEE_TDX;
      q.outer_cert_type = ver == 3 ? 5 : 6;
      fill(q.qe_vendor_id, 16, 1);
      fill(q.user_data, 20, 2);
      fill(&q.td, sizeof(q.td), 3);
      if (types[t] != QUOTE_BODY_TD15)
        memset(q.td.tee_tcb_svn2, 0, 16 + 48);
      fill(q.sgx.cpu_svn, sizeof(q.sgx.cpu_svn), 4);
      q.sgx.misc_select = 0x12345678;
      q.sgx.isv_svn = 9;
      fill(q.signature, 64, 5);
      fill(q.attest_key, 64, 6);
      fill(q.qe_report.mr_signer, 32, 8);
      q.qe_report.isv_prod_id = 2;
      fill(q.qe_report_sig, 64, 9);
      q.qe_auth_data = SLICE(auth, sizeof(auth));
      q.cert_type = 5;
      q.cert_data = SLICE(chain, sizeof(chain));
      int r = quote_encode(&q, &out);
      bool valid = versions[t] == ver || (ver == 4 && types[t] == QUOTE_BODY_SGX) ||
                   (ver == 5 && types[t] != QUOTE_BODY_TD15);
      if (!valid) {
        assert_true(r < 0);
        assert_int_equal(out.len, 0);
        continue;
      }
      assert_int_equal(r, 0);
      assert_int_equal(quote_parse(out.data, out.len, &p), 0);
      assert_int_equal(p.total_len, out.len);
      assert_int_equal(p.body_type, q.body_type);
      assert_int_equal(p.version, ver);
      if (q.body_type == QUOTE_BODY_SGX)
        assert_memory_equal(&p.sgx, &q.sgx, sizeof(q.sgx));
      else
        assert_memory_equal(&p.td, &q.td, sizeof(q.td));
      assert_memory_equal(&p.qe_report, &q.qe_report, sizeof(q.qe_report));
      assert_int_equal(p.pck_chain_pem.len, sizeof(chain));
      assert_memory_equal(p.pck_chain_pem.ptr, chain, sizeof(chain));
      assert_int_equal(quote_encode(&p, &again), 0);
      assert_int_equal(again.len, out.len);
      assert_memory_equal(again.data, out.data, out.len);
    }
  }
}

static void test_quote_pck_chain_cap(void **state) {
  (void)state;
  _cleanup_buf_ struct buf in, out = BUF_INIT(BUF_MAX_QUOTE);
  struct quote q;
  load("dcap-qvl/tdx_quote", false, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  uint8_t *big = calloc(1, QUOTE_MAX_PCK_CHAIN + 1);
  assert_non_null(big);
  q.cert_data = SLICE(big, QUOTE_MAX_PCK_CHAIN + 1);
  assert_int_equal(quote_encode(&q, &out), 0);
  assert_int_equal(quote_parse(out.data, out.len, &q), -ENOBUFS);
  buf_reset(&out);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  q.cert_data = SLICE(big, QUOTE_MAX_PCK_CHAIN);
  assert_int_equal(quote_encode(&q, &out), 0);
  assert_int_equal(quote_parse(out.data, out.len, &q), 0);
  /* Other cert types are kept but not treated as a PCK chain. */
  le16_write(out.data + q.signed_len + 4 + 128 + 6 + 384 + 64 + 2 + 32, 3);
  assert_int_equal(quote_parse(out.data, out.len, &q), 0);
  assert_int_equal(q.cert_type, 3);
  assert_int_equal(q.pck_chain_pem.len, 0);
  free(big);
}

/* --- JSON --- */

static const char *jstr(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  if (!json_is_string(v))
    fail_msg("key %s missing or not a string", k);
  return json_string_value(v);
}

/* fmspc and pceId from the TCB info in a dcap-qvl collateral file. */
static void collateral_fmspc(const char *rel, char fmspc[13], char pceid[5]) {
  _cleanup_buf_ struct buf text;
  load(rel, false, &text);
  json_error_t err;
  json_t *c = json_loadb((const char *)text.data, text.len, 0, &err);
  assert_non_null(c);
  const char *tcb = json_string_value(json_object_get(c, "tcb_info"));
  assert_non_null(tcb);
  json_t *t = json_loads(tcb, 0, &err);
  assert_non_null(t);
  snprintf(fmspc, 13, "%s", json_string_value(json_object_get(t, "fmspc")));
  snprintf(pceid, 5, "%s", json_string_value(json_object_get(t, "pceId")));
  for (int i = 0; fmspc[i]; i++)
    fmspc[i] = (char)tolower((unsigned char)fmspc[i]);
  for (int i = 0; pceid[i]; i++)
    pceid[i] = (char)tolower((unsigned char)pceid[i]);
  json_decref(t);
  json_decref(c);
}

static void test_quote_json(void **state) {
  (void)state;
  static const struct {
    const char *quote, *collateral;
  } cases[] = {
      {"dcap-qvl/tdx_quote", "dcap-qvl/tdx_quote_collateral.json"},
      {"dcap-qvl/sgx_quote", "dcap-qvl/sgx_quote_collateral.json"},
      {"dcap-qvl/tdx_quote_outdated", "dcap-qvl/tdx_quote_outdated_collateral.json"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    _cleanup_buf_ struct buf in;
    struct quote q;
    json_t *j = NULL;
    char fmspc[13], pceid[5];
    load(cases[i].quote, false, &in);
    assert_int_equal(quote_parse(in.data, in.len, &q), 0);
    assert_int_equal(quote_to_json(&q, &j), 0);
    collateral_fmspc(cases[i].collateral, fmspc, pceid);
    assert_string_equal(jstr(j, "fmspc"), fmspc);
    assert_string_equal(jstr(j, "pce_id"), pceid);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), q.version);
    assert_int_equal(json_integer_value(json_object_get(j, "quote_size")), q.total_len);
    char *rd = hex_encode_alloc(quote_report_data(&q), 64);
    assert_string_equal(jstr(j, "report_data"), rd);
    free(rd);
    json_t *chain = json_object_get(j, "pck_chain");
    assert_true(json_is_array(chain));
    assert_int_equal(json_array_size(chain), 3);
    assert_non_null(
        strstr(json_string_value(json_array_get(chain, 0)), "CN=Intel SGX PCK Certificate"));
    assert_non_null(strstr(json_string_value(json_array_get(chain, 2)), "CN=Intel SGX Root CA"));
    json_t *qe = json_object_get(j, "qe_report");
    assert_true(json_is_object(qe));
    char *mrs = hex_encode_alloc(q.qe_report.mr_signer, 32);
    assert_string_equal(jstr(qe, "mr_signer"), mrs);
    free(mrs);
    if (q.body_type == QUOTE_BODY_SGX) {
      assert_string_equal(jstr(j, "tee_type"), "SGX");
      assert_string_equal(jstr(j, "body_type"), "sgx");
      assert_non_null(json_object_get(j, "mr_enclave"));
      assert_null(json_object_get(j, "mr_td"));
    } else {
      assert_string_equal(jstr(j, "tee_type"), "TDX");
      char *m = hex_encode_alloc(q.td.rt_mr[3], 48);
      assert_string_equal(jstr(j, "rt_mr3"), m);
      free(m);
      m = hex_encode_alloc(q.td.mr_td, 48);
      assert_string_equal(jstr(j, "mr_td"), m);
      free(m);
      bool td15 = q.body_type == QUOTE_BODY_TD15;
      assert_string_equal(jstr(j, "body_type"), td15 ? "td15" : "td10");
      assert_int_equal(json_object_get(j, "mr_service_td") != NULL, td15);
    }
    json_decref(j);
  }
  /* A chain that is not PEM: fmspc null, chain empty. */
  _cleanup_buf_ struct buf in, out = BUF_INIT(BUF_MAX_QUOTE);
  struct quote q;
  json_t *j = NULL;
  load("dcap-qvl/tdx_quote", false, &in);
  assert_int_equal(quote_parse(in.data, in.len, &q), 0);
  q.cert_data = SLICE("garbage", 7);
  assert_int_equal(quote_encode(&q, &out), 0);
  assert_int_equal(quote_parse(out.data, out.len, &q), 0);
  assert_int_equal(quote_to_json(&q, &j), 0);
  assert_true(json_is_null(json_object_get(j, "fmspc")));
  assert_int_equal(json_array_size(json_object_get(j, "pck_chain")), 0);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quote_vectors_roundtrip),
      cmocka_unit_test(test_quote_known_fields),
      cmocka_unit_test(test_quote_snap_tdx),
      cmocka_unit_test(test_quote_snap_sgx),
      cmocka_unit_test(test_quote_truncated),
      cmocka_unit_test(test_quote_sig_len_edges),
      cmocka_unit_test(test_quote_header_errors),
      cmocka_unit_test(test_quote_go_tdx_guest_flips),
      cmocka_unit_test(test_quote_version_mixups),
      cmocka_unit_test(test_quote_garbage),
      cmocka_unit_test(test_quote_build),
      cmocka_unit_test(test_quote_pck_chain_cap),
      cmocka_unit_test(test_quote_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
