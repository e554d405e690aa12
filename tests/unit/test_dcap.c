#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "attest/dcap.h"
#include "attest/dcap_collateral.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/tee.h"
#include "base/json.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "testutil.h"

/* ---- helpers ---- */

static void read_quote(const char *rel, struct buf *b) {
  *b = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector(rel, str_endswith(rel, ".hex"), b);
}

static void load_coll(const char *rel, const char *quote_rel, struct dcap_collateral *c) {
  if (str_endswith(rel, ".json")) {
    _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_FILE);
    tu_read_vector(rel, false, &b);
    assert_int_equal(dcap_collateral_from_qvl_json((const char *)b.data, b.len, c), 0);
    return;
  }
  _cleanup_free_ char *dir = strdup(tu_vector_path(rel));
  _cleanup_buf_ struct buf qb;
  read_quote(quote_rel, &qb);
  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  assert_int_equal(dcap_collateral_from_dir_quote(dir, &q, c), 0);
}

static struct dcap_verifier *intel_verifier(void) {
  struct dcap_verifier *v = NULL;
  assert_int_equal(dcap_verifier_new(NULL, &v), 0);
  return v;
}

/* Verifies and returns r; err gets the message. */
static int verify(struct dcap_verifier *v, const struct buf *q, const struct dcap_collateral *c,
                  int64_t now, struct dcap_result *res, char err[512]) {
  err[0] = 0;
  int r = dcap_verify(v, q->data, q->len, c, now, res, err, 512);
  if (r < 0) {
    assert_true(err[0] != 0); /* every failure says why */
  }
  return r;
}

static void expect_error(struct dcap_verifier *v, const struct buf *q,
                         const struct dcap_collateral *c, int64_t now, const char *substr) {
  struct dcap_result res;
  char err[512];
  int r = verify(v, q, c, now, &res, err);
  if (r >= 0)
    fail_msg("verification succeeded, expected \"%s\"", substr);
  if (!strstr(err, substr))
    fail_msg("error \"%s\" does not contain \"%s\"", err, substr);
  assert_int_equal(res.quote_data, NULL);
  assert_int_equal(res.n_advisory_ids, 0);
}

/* ---- the verification table of tests/vectors/README.md ---- */

struct row {
  const char *quote;
  const char *collateral;
  int64_t now;
  const char *status; /* NULL: an error containing `error` */
  const char *advisories[4];
  const char *error;
  const char *fmspc;
  uint32_t tee;
};

static const struct row rows[] = {
    {"dcap-qvl/tdx_quote",
     "dcap-qvl/tdx_quote_collateral.json",
     1752919234,
     "UpToDate",
     {NULL},
     NULL,
     "b0c06f000000",
     QUOTE_TEE_TDX},
    {"dcap-qvl/sgx_quote",
     "dcap-qvl/sgx_quote_collateral.json",
     1752919277,
     "ConfigurationAndSWHardeningNeeded",
     {"INTEL-SA-00289", "INTEL-SA-00615"},
     NULL,
     "00a067110000",
     QUOTE_TEE_SGX},
    {"zkdcap/quote_tdx_00806f050000.dat",
     "zkdcap",
     1737467060,
     "OutOfDate",
     {"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"},
     NULL,
     "00806f050000",
     QUOTE_TEE_TDX},
    {"dcap-qvl/tdx_quote_outdated",
     "dcap-qvl/tdx_quote_outdated_collateral.json",
     1774003274,
     NULL,
     {NULL},
     "no matching TCB level",
     NULL,
     0},
    {"go-tdx-guest/tdx_prod_quote_SPR_E4.dat",
     "go-tdx-guest",
     1688173200,
     NULL,
     {NULL},
     "no matching TCB level",
     NULL,
     0},
    {"go-tdx-guest/tdx_prod_quote_SPR_E4.dat",
     "go-tdx-guest",
     2619302400 /* 2053-01-01 */,
     NULL,
     {NULL},
     "TCB info expired at 2023-07-18T08:42:58Z",
     NULL,
     0},
};

static void check_row(struct dcap_verifier *v, const struct row *w) {
  _cleanup_buf_ struct buf q;
  read_quote(w->quote, &q);
  struct dcap_collateral c;
  load_coll(w->collateral, w->quote, &c);
  if (!w->status) {
    expect_error(v, &q, &c, w->now, w->error);
    dcap_collateral_free(&c);
    return;
  }
  struct dcap_result res;
  char err[512];
  int r = verify(v, &q, &c, w->now, &res, err);
  if (r < 0)
    fail_msg("%s: %s", w->quote, err);
  assert_string_equal(dcap_status_name(res.status), w->status);
  size_t n = 0;
  while (n < ARRAY_SIZE(w->advisories) && w->advisories[n])
    n++;
  assert_int_equal(res.n_advisory_ids, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(res.advisory_ids[i], w->advisories[i]);
  if (n)
    assert_null(res.advisory_ids[n]);
  char fm[13];
  for (int i = 0; i < 6; i++)
    snprintf(fm + 2 * i, 3, "%02x", res.fmspc[i]);
  assert_string_equal(fm, w->fmspc);
  assert_int_equal(res.tee_type, w->tee);
  assert_false(res.simulated);
  assert_true(res.collateral_expiry >= w->now);
  /* the verified body is the quote's */
  struct quote pq;
  assert_int_equal(quote_parse(q.data, q.len, &pq), 0);
  assert_int_equal(res.quote.version, pq.version);
  assert_memory_equal(quote_report_data(&res.quote), quote_report_data(&pq), 64);
  assert_ptr_not_equal(res.quote_data, q.data);

  /* collateral expiry: fine at the earliest nextUpdate, an error one second later */
  int64_t exp = res.collateral_expiry;
  int64_t nu;
  assert_int_equal(dcap_collateral_next_update(&c, &nu), 0);
  assert_int_equal(nu, exp);
  dcap_result_free(&res);
  assert_int_equal(verify(v, &q, &c, exp, &res, err), 0);
  dcap_result_free(&res);
  char date[32], want[80];
  dcap_format_date(exp, date);
  snprintf(want, sizeof(want), "expired at %s", date);
  expect_error(v, &q, &c, exp + 1, want);
  dcap_collateral_free(&c);
}

static void test_table(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
    check_row(v, &rows[i]);
  /* twice: now everything comes from the caches */
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
    check_row(v, &rows[i]);
  dcap_verifier_free(v);
  /* a tiny cache that evicts all the time gives the same answers */
  struct dcap_verifier_opts o = {.cache_max_entries = 1};
  assert_int_equal(dcap_verifier_new(&o, &v), 0);
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
    check_row(v, &rows[i]);
  dcap_verifier_free(v);
}

/* The rows that end in an error: also expired collateral one second past its nextUpdate. */
static void test_error_rows_expired(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  static const struct {
    const char *quote, *coll, *what;
  } t[] = {
      {"dcap-qvl/tdx_quote_outdated", "dcap-qvl/tdx_quote_outdated_collateral.json",
       "PCK CRL expired at 2026-03-20T10:41:15Z"},
      {"go-tdx-guest/tdx_prod_quote_SPR_E4.dat", "go-tdx-guest", "expired at"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
    _cleanup_buf_ struct buf q;
    read_quote(t[i].quote, &q);
    struct dcap_collateral c;
    load_coll(t[i].coll, t[i].quote, &c);
    int64_t nu;
    assert_int_equal(dcap_collateral_next_update(&c, &nu), 0);
    expect_error(v, &q, &c, nu, "no matching TCB level");
    expect_error(v, &q, &c, nu + 1, t[i].what);
    dcap_collateral_free(&c);
  }
  /* before the issue date */
  _cleanup_buf_ struct buf q;
  read_quote("dcap-qvl/tdx_quote", &q);
  struct dcap_collateral c;
  load_coll("dcap-qvl/tdx_quote_collateral.json", NULL, &c);
  expect_error(v, &q, &c, 1700000000, "TCB info not yet valid (issueDate 2025-06-19T10:16:03Z)");
  dcap_collateral_free(&c);
  dcap_verifier_free(v);
}

/* ---- go-tdx-guest byte flips ---- */

static void test_byte_flips(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  _cleanup_buf_ struct buf orig;
  read_quote("go-tdx-guest/tdx_prod_quote_SPR_E4.dat", &orig);
  struct dcap_collateral c;
  load_coll("go-tdx-guest", "go-tdx-guest/tdx_prod_quote_SPR_E4.dat", &c);
  static const struct {
    size_t off;
    int set; /* -1: xor 1 */
    const char *err;
  } flips[] = {
      {0x00, 3, "unsupported quote version"},
      {0x278, 0x10, "certification data size"},
      {0x1329, -1, "PCK chain: root CA not trusted"},
      {0xF5F, -1, "PCK chain: certificate signature invalid"},
      {0xB77, -1, "PCK chain: certificate signature invalid"},
      {0x1343, -1, "PCK chain: malformed certificate"},
      {0x1E, 0x32, "quote signature invalid"},
      {0x3C, 0x32, "quote signature invalid"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(flips); i++) {
    _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_FILE);
    assert_int_equal(buf_append(&q, orig.data, orig.len), 0);
    assert_true(flips[i].off < q.len);
    if (flips[i].set < 0)
      q.data[flips[i].off] ^= 1;
    else
      q.data[flips[i].off] = (uint8_t)flips[i].set;
    assert_int_not_equal(memcmp(q.data, orig.data, q.len), 0);
    expect_error(v, &q, &c, 1688173200, flips[i].err);
  }
  /* other values at the chain offsets fail too */
  static const size_t chain_offs[] = {0x1329, 0xF5F, 0xB77, 0x1343};
  for (size_t i = 0; i < ARRAY_SIZE(chain_offs); i++)
    for (int val = 0; val < 256; val += 51) {
      _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_FILE);
      assert_int_equal(buf_append(&q, orig.data, orig.len), 0);
      if (q.data[chain_offs[i]] == val)
        continue;
      q.data[chain_offs[i]] = (uint8_t)val;
      struct dcap_result res;
      char err[512];
      assert_true(verify(v, &q, &c, 1688173200, &res, err) < 0);
      assert_true(str_startswith(err, "PCK chain") || str_startswith(err, "quote:"));
    }
  /* truncated and garbage quotes */
  for (size_t cut = 0; cut < 1000; cut += 97) {
    _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_FILE);
    assert_int_equal(buf_append(&q, orig.data, cut), 0);
    expect_error(v, &q, &c, 1688173200, "quote:");
  }
  dcap_collateral_free(&c);
  dcap_verifier_free(v);
}

/* ---- every single-bit flip of the certification data ----
 * dcap-qvl/tdx_quote (= dstack's ra-tls/assets/tdx_quote format: v4, 70 zero bytes after the
 * signature data) carries its certification data (type 6: QE report, its signature, QE auth
 * data, then type 5: the PCK chain as PEM text ending in one NUL) from byte 764 to the end of
 * the signature data. Every one of its bits matters: the QE report and auth data are signed or
 * bound, the chain text must be exactly its PEM certificates (and the NUL), the leaf and
 * platform CA are signed, and the root must be the pinned Intel root byte for byte. Before, 550
 * of these 33376 flips were accepted: flips in the root certificate (then dropped from the
 * chain, which was anchored by issuer name and key), in the platform CA's END line (which took
 * the root block with it), and in the final "\n" and NUL of the chain text. */

struct flip_job {
  struct dcap_verifier *v;
  const struct buf *orig;
  const struct dcap_collateral *c;
  size_t from, to; /* byte range */
  size_t refused;
  size_t accepted[16]; /* bit positions (byte * 8 + bit) of the first accepted flips */
  size_t n_accepted;
};

static void *flip_run(void *arg) {
  struct flip_job *j = arg;
  struct buf q = BUF_INIT(BUF_MAX_FILE);
  if (buf_append(&q, j->orig->data, j->orig->len) < 0)
    return NULL;
  for (size_t off = j->from; off < j->to; off++)
    for (unsigned bit = 0; bit < 8; bit++) {
      q.data[off] ^= (uint8_t)(1u << bit);
      struct dcap_result res;
      char err[512] = "";
      int r = dcap_verify(j->v, q.data, q.len, j->c, 1752919234, &res, err, sizeof(err));
      if (r >= 0) {
        if (j->n_accepted < ARRAY_SIZE(j->accepted))
          j->accepted[j->n_accepted] = off * 8 + bit;
        j->n_accepted++;
        dcap_result_free(&res);
      } else if (err[0]) {
        j->refused++;
      }
      q.data[off] ^= (uint8_t)(1u << bit);
    }
  buf_free(&q);
  return NULL;
}

static void test_cert_data_bit_flips(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  _cleanup_buf_ struct buf orig;
  read_quote("dcap-qvl/tdx_quote", &orig);
  struct dcap_collateral c;
  load_coll("dcap-qvl/tdx_quote_collateral.json", NULL, &c);
  struct quote q;
  assert_int_equal(quote_parse(orig.data, orig.len, &q), 0);
  const size_t from = q.signed_len + 4 + 64 + 64, to = q.total_len; /* certification data */
  assert_int_equal(from, 764);
  assert_int_equal(to - from, 6 + 4166);
  assert_int_equal(orig.data[to - 1], 0); /* the chain's final NUL */
  struct dcap_result res;
  char err[512];
  assert_int_equal(verify(v, &orig, &c, 1752919234, &res, err), 0);
  assert_int_equal(dcap_result_trailing_bytes(&res), 70);
  dcap_result_free(&res);
  /* two threads on one verifier, as a server would */
  struct flip_job jobs[2];
  pthread_t th[2];
  size_t mid = from + (to - from) / 2;
  for (int i = 0; i < 2; i++) {
    jobs[i] = (struct flip_job){.v = v, .orig = &orig, .c = &c, .from = i ? mid : from,
                                .to = i ? to : mid};
    assert_int_equal(pthread_create(&th[i], NULL, flip_run, &jobs[i]), 0);
  }
  size_t refused = 0, accepted = 0;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    for (size_t k = 0; k < jobs[i].n_accepted && k < ARRAY_SIZE(jobs[i].accepted); k++)
      print_message("accepted: byte %zu bit %zu\n", jobs[i].accepted[k] / 8,
                    jobs[i].accepted[k] % 8);
    refused += jobs[i].refused;
    accepted += jobs[i].n_accepted;
  }
  assert_int_equal(accepted, 0);
  assert_int_equal(refused, (to - from) * 8); /* each with a reason */
  /* the untouched quote still verifies (nothing bad was cached) */
  assert_int_equal(verify(v, &orig, &c, 1752919234, &res, err), 0);
  dcap_result_free(&res);
  dcap_collateral_free(&c);
  dcap_verifier_free(v);
}

/* The quote's PCK chain text: exactly the certificates, all on the chain, ending in the pinned
 * root byte for byte. */
static void test_pck_chain_strict(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  _cleanup_buf_ struct buf orig;
  read_quote("dcap-qvl/tdx_quote", &orig);
  struct dcap_collateral c;
  load_coll("dcap-qvl/tdx_quote_collateral.json", NULL, &c);
  struct quote q;
  assert_int_equal(quote_parse(orig.data, orig.len, &q), 0);
  const char *pem = (const char *)q.pck_chain_pem.ptr;
  size_t len = q.pck_chain_pem.len;
  /* the three blocks */
  const char *b[3];
  size_t bl[3];
  const char *p = pem;
  for (int i = 0; i < 3; i++) {
    b[i] = strstr(p, "-----BEGIN CERTIFICATE-----");
    const char *e = strstr(b[i], "-----END CERTIFICATE-----\n");
    assert_non_null(b[i]);
    assert_non_null(e);
    bl[i] = (size_t)(e + 26 - b[i]);
    p = e + 26;
  }
  assert_int_equal((size_t)(p - pem), len - 1);
  static const struct {
    const char *layout; /* L leaf, P platform CA, R root, 0 a NUL byte, n '\n', others as is */
    const char *err;    /* NULL: verifies */
  } t[] = {
      {"LPR0", NULL},
      {"LPR", NULL},  /* without the NUL */
      {"LRP0", NULL}, /* any order after the leaf */
      {"LP0", "PCK chain: root CA not trusted"},
      {"LPRR0", "PCK chain: a certificate is not on the chain"},
      {"LPRP0", "PCK chain: a certificate is not on the chain"},
      {"LPRn0", "PCK chain: malformed certificate"},
      {"LPR00", "PCK chain: malformed certificate"},
      {"LPR 0", "PCK chain: malformed certificate"},
      {"nLPR0", "PCK chain: malformed certificate"},
      {"LnPR0", "PCK chain: malformed certificate"},
      {"LPRx", "PCK chain: malformed certificate"},
      {"PLR0", "PCK chain: a certificate is not on the chain"}, /* the first is the leaf */
  };
  for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
    _cleanup_buf_ struct buf chain = BUF_INIT(BUF_MAX_FILE);
    for (const char *l = t[i].layout; *l; l++) {
      int k = *l == 'L' ? 0 : *l == 'P' ? 1 : *l == 'R' ? 2 : -1;
      char ch = *l == '0' ? '\0' : *l == 'n' ? '\n' : *l;
      assert_int_equal(k >= 0 ? buf_append(&chain, b[k], bl[k]) : buf_append(&chain, &ch, 1), 0);
    }
    struct quote mq = q;
    mq.pck_chain_pem = mq.cert_data = buf_slice(&chain);
    _cleanup_buf_ struct buf enc = BUF_INIT(BUF_MAX_FILE);
    assert_int_equal(quote_encode(&mq, &enc), 0);
    if (!t[i].err) {
      struct dcap_result res;
      char err[512];
      if (verify(v, &enc, &c, 1752919234, &res, err) < 0)
        fail_msg("layout %zu: %s", i, err);
      dcap_result_free(&res);
    } else {
      expect_error(v, &enc, &c, 1752919234, t[i].err);
    }
  }
  dcap_collateral_free(&c);
  dcap_verifier_free(v);
}

/* Byte changes in the signature data of the dcap-qvl quote. */
static void test_quote_parts(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  _cleanup_buf_ struct buf orig;
  read_quote("dcap-qvl/tdx_quote", &orig);
  struct dcap_collateral c;
  load_coll("dcap-qvl/tdx_quote_collateral.json", NULL, &c);
  struct quote pq;
  assert_int_equal(quote_parse(orig.data, orig.len, &pq), 0);
  size_t sig_off = pq.signed_len + 4;
  size_t key_off = sig_off + 64;
  size_t auth_off = (size_t)(pq.qe_auth_data.ptr - orig.data);
  size_t qe_off = auth_off - 2 - 64 - QUOTE_QE_REPORT_SIZE;
  assert_memory_equal(orig.data + qe_off, pq.qe_report_raw, QUOTE_QE_REPORT_SIZE);
  static const struct {
    int which;
    const char *err;
  } t[] = {
      {0, "quote signature invalid"},
      {1, "QE report data does not bind the attestation key"},
      {2, "QE report data does not bind the attestation key"},
      {3, "QE report signature invalid"},
      {4, "quote signature invalid"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
    _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_FILE);
    assert_int_equal(buf_append(&q, orig.data, orig.len), 0);
    size_t off = t[i].which == 0   ? sig_off + 10
                 : t[i].which == 1 ? key_off + 5
                 : t[i].which == 2 ? auth_off + 3
                 : t[i].which == 3 ? qe_off + 100
                                   : 200; /* RTMR bytes in the body */
    q.data[off] ^= 0x40;
    expect_error(v, &q, &c, 1752919234, t[i].err);
  }
  /* the QE vendor ID is Intel's */
  {
    _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_FILE);
    assert_int_equal(buf_append(&q, orig.data, orig.len), 0);
    q.data[12] ^= 1;
    expect_error(v, &q, &c, 1752919234, "QE vendor ID");
  }
  /* collateral for another platform / TEE */
  struct dcap_collateral other;
  load_coll("dcap-qvl/tdx_quote_outdated_collateral.json", NULL, &other);
  expect_error(v, &orig, &other, 1774003274, "TCB info FMSPC 90c06f000000 does not match");
  dcap_collateral_free(&other);
  load_coll("dcap-qvl/sgx_quote_collateral.json", NULL, &other);
  expect_error(v, &orig, &other, 1752919200, "PCK CRL: issuer is not the PCK certificate's issuer");
  dcap_collateral_free(&other);
  /* the processor CRL for a platform-CA PCK */
  {
    _cleanup_buf_ struct buf zq;
    read_quote("zkdcap/quote_tdx_00806f050000.dat", &zq);
    load_coll("zkdcap", "zkdcap/quote_tdx_00806f050000.dat", &other);
    _cleanup_buf_ struct buf proc = BUF_INIT(BUF_MAX_FILE);
    tu_read_vector("zkdcap/pck_processor_crl.der", false, &proc);
    buf_reset(&other.pck_crl);
    assert_int_equal(buf_append(&other.pck_crl, proc.data, proc.len), 0);
    expect_error(v, &zq, &other, 1737467060, "issuer is not the PCK certificate's issuer");
    dcap_collateral_free(&other);
  }
  dcap_collateral_free(&c);
  dcap_verifier_free(v);
}

/* Collateral tampering: signatures over the exact text, broken CRLs, chains. */
static void test_collateral_tamper(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  _cleanup_buf_ struct buf q;
  read_quote("dcap-qvl/tdx_quote", &q);
  struct dcap_collateral good;
  load_coll("dcap-qvl/tdx_quote_collateral.json", NULL, &good);
  struct dcap_result res;
  char err[512];
  assert_int_equal(verify(v, &q, &good, 1752919234, &res, err), 0); /* now cached */
  dcap_result_free(&res);
  const int64_t now = 1752919234;

  struct dcap_collateral c;
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  c.tcb_info_signature[7] ^= 1;
  expect_error(v, &q, &c, now, "TCB info signature invalid");
  dcap_collateral_free(&c);

  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  c.qe_identity_signature[63] ^= 1;
  expect_error(v, &q, &c, now, "QE identity signature invalid");
  dcap_collateral_free(&c);

  /* one more space in the signed text */
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  char *t = str_printf(" %s", c.tcb_info);
  free(c.tcb_info);
  c.tcb_info = t;
  expect_error(v, &q, &c, now, "TCB info signature invalid");
  dcap_collateral_free(&c);

  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  c.pck_crl.data[c.pck_crl.len - 5] ^= 1;
  expect_error(v, &q, &c, now, "PCK CRL");
  dcap_collateral_free(&c);

  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  c.root_ca_crl.data[c.root_ca_crl.len - 5] ^= 1;
  expect_error(v, &q, &c, now, "root CA CRL");
  dcap_collateral_free(&c);

  /* the root CRL where the PCK CRL belongs */
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  buf_reset(&c.pck_crl);
  assert_int_equal(buf_append(&c.pck_crl, good.root_ca_crl.data, good.root_ca_crl.len), 0);
  expect_error(v, &q, &c, now, "PCK CRL");
  dcap_collateral_free(&c);

  /* chains: empty, garbage, the PCK CRL chain instead of the TCB signing chain */
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  free(c.tcb_info_issuer_chain);
  c.tcb_info_issuer_chain = strdup("");
  expect_error(v, &q, &c, now, "TCB info signing chain: no certificates");
  free(c.tcb_info_issuer_chain);
  c.tcb_info_issuer_chain = strdup(good.pck_crl_issuer_chain);
  expect_error(v, &q, &c, now, "not an SGX TCB Signing certificate");
  dcap_collateral_free(&c);

  /* TCB info for another version */
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  free(c.tcb_info);
  c.tcb_info = strdup("{\"id\":\"TDX\",\"version\":2}");
  expect_error(v, &q, &c, now, "TCB info: unsupported");
  dcap_collateral_free(&c);

  /* the cached good collateral is unaffected */
  assert_int_equal(verify(v, &q, &good, now, &res, err), 0);
  dcap_result_free(&res);
  dcap_collateral_free(&good);
  dcap_verifier_free(v);
}

/* ---- Intel test roots ---- */

static void test_intel_test_roots(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  _cleanup_buf_ struct buf orig;
  read_quote("dcap-qvl/tdx_quote", &orig);
  struct dcap_collateral c;
  load_coll("dcap-qvl/tdx_quote_collateral.json", NULL, &c);
  static const char *const samples[] = {"dstack-teekit/intel-sample-tdx",
                                        "dstack-teekit/intel-sample-sgx"};
  for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
    char rel[128];
    /* the quote with its PCK chain replaced by the sample's (test root at the end) */
    _cleanup_buf_ struct buf chain = BUF_INIT(BUF_MAX_FILE), leaf = BUF_INIT(BUF_MAX_FILE);
    snprintf(rel, sizeof(rel), "%s/pckCert.pem", samples[i]);
    tu_read_vector(rel, false, &leaf);
    snprintf(rel, sizeof(rel), "%s/pckSignChain.pem", samples[i]);
    tu_read_vector(rel, false, &chain);
    _cleanup_buf_ struct buf pem = BUF_INIT(BUF_MAX_FILE);
    assert_int_equal(buf_append(&pem, leaf.data, leaf.len), 0);
    assert_int_equal(buf_append(&pem, chain.data, chain.len), 0);
    struct quote q;
    assert_int_equal(quote_parse(orig.data, orig.len, &q), 0);
    q.pck_chain_pem = q.cert_data = buf_slice(&pem);
    _cleanup_buf_ struct buf enc = BUF_INIT(BUF_MAX_FILE);
    assert_int_equal(quote_encode(&q, &enc), 0);
    expect_error(v, &enc, &c, 1752919234, "PCK chain: root CA not trusted (Intel test root?)");
    /* a leaf-only chain whose issuer is not a trusted root */
    q.pck_chain_pem = q.cert_data = buf_slice(&leaf);
    _cleanup_buf_ struct buf enc2 = BUF_INIT(BUF_MAX_FILE);
    assert_int_equal(quote_encode(&q, &enc2), 0);
    expect_error(v, &enc2, &c, 1752919234, "PCK chain:");

    /* TCB info signed under the test root */
    struct dcap_collateral t;
    assert_int_equal(dcap_collateral_copy(&c, &t), 0);
    _cleanup_buf_ struct buf tcb_chain = BUF_INIT(BUF_MAX_FILE);
    snprintf(rel, sizeof(rel), "%s/tcbSignChain.pem", samples[i]);
    tu_read_vector(rel, false, &tcb_chain);
    assert_int_equal(buf_terminate(&tcb_chain), 0);
    free(t.tcb_info_issuer_chain);
    t.tcb_info_issuer_chain = strdup((char *)tcb_chain.data);
    expect_error(v, &orig, &t, 1752919234,
                 "TCB info signing chain: root CA not trusted (Intel test root?)");
    dcap_collateral_free(&t);
  }
  dcap_collateral_free(&c);
  dcap_verifier_free(v);
}

/* ---- simulator ---- */

static char *sim_dir(void) {
  char *d = tu_mkdtemp();
  assert_int_equal(sim_platform_init(d, NULL), 0);
  return d;
}

static void sim_quote(const char *dir, struct buf *out) {
  struct tee *t = NULL;
  assert_int_equal(tee_sim_new(dir, &t), 0);
  uint8_t rd[64];
  memset(rd, 0x5a, sizeof(rd));
  *out = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(tee_get_quote(t, rd, out), 0);
  tee_free(t);
}

static void sim_coll(const char *dir, struct dcap_collateral *c) {
  _cleanup_free_ char *p = str_printf("%s/collateral", dir);
  assert_int_equal(dcap_collateral_from_dir(p, c), 0);
}

static struct dcap_verifier *sim_verifier(const char *dir) {
  _cleanup_free_ char *root = str_printf("%s/root_ca.pem", dir);
  struct dcap_verifier_opts o = {.allow_simulator = true, .simulator_root_pem = root};
  struct dcap_verifier *v = NULL;
  assert_int_equal(dcap_verifier_new(&o, &v), 0);
  return v;
}

static void test_simulator(void **state) {
  (void)state;
  _cleanup_free_ char *d = sim_dir();
  _cleanup_free_ char *d2 = sim_dir();
  _cleanup_buf_ struct buf q;
  sim_quote(d, &q);
  struct dcap_collateral c;
  sim_coll(d, &c);
  int64_t now = time(NULL);

  /* not without the flag */
  struct dcap_verifier *v = intel_verifier();
  expect_error(v, &q, &c, now, "root CA not trusted");
  dcap_verifier_free(v);
  /* the flag needs a root */
  struct dcap_verifier_opts o = {.allow_simulator = true};
  assert_int_equal(dcap_verifier_new(&o, &v), -EINVAL);
  o.simulator_root_pem = "/nonexistent/root_ca.pem";
  assert_int_equal(dcap_verifier_new(&o, &v), -ENOENT);
  /* another simulator's root is not this one */
  v = sim_verifier(d2);
  expect_error(v, &q, &c, now, "root CA not trusted");
  dcap_verifier_free(v);

  v = sim_verifier(d);
  struct dcap_result res;
  char err[512];
  if (verify(v, &q, &c, now, &res, err) < 0)
    fail_msg("%s", err);
  assert_int_equal(res.status, DCAP_STATUS_UP_TO_DATE);
  assert_true(res.simulated);
  assert_int_equal(res.n_advisory_ids, 0);
  assert_int_equal(res.tee_type, QUOTE_TEE_TDX);
  uint8_t rd[64];
  memset(rd, 0x5a, sizeof(rd));
  assert_memory_equal(res.quote.td.report_data, rd, 64);
  _cleanup_json_ json_t *j = NULL;
  assert_int_equal(dcap_result_to_json(&res, true, &j), 0);
  assert_true(json_is_true(json_object_get(j, "simulated")));
  assert_string_equal(json_string_value(json_object_get(j, "status")), "UpToDate");
  assert_string_equal(json_string_value(json_object_get(j, "tee_type")), "TDX");
  assert_string_equal(json_string_value(json_object_get(j, "fmspc")), "00806f050000");
  assert_true(json_is_array(json_object_get(j, "advisory_ids")));
  assert_true(json_is_object(json_object_get(j, "body")));
  dcap_result_free(&res);
  dcap_result_free(&res);

  /* PCS file names of the simulator's collateral directory load and verify too */
  struct dcap_collateral pcs;
  _cleanup_free_ char *cdir = str_printf("%s/collateral", d);
  _cleanup_free_ char *cj = str_printf("%s/collateral/collateral.json", d);
  assert_int_equal(unlink(cj), 0);
  assert_int_equal(dcap_collateral_from_dir(cdir, &pcs), 0);
  assert_int_equal(verify(v, &q, &pcs, now, &res, err), 0);
  assert_true(res.simulated);
  dcap_result_free(&res);
  dcap_collateral_free(&pcs);

  /* Intel quotes still verify with a simulator-trusting verifier, and are not simulated */
  _cleanup_buf_ struct buf iq;
  read_quote("dcap-qvl/tdx_quote", &iq);
  struct dcap_collateral ic;
  load_coll("dcap-qvl/tdx_quote_collateral.json", NULL, &ic);
  assert_int_equal(verify(v, &iq, &ic, 1752919234, &res, err), 0);
  assert_false(res.simulated);
  dcap_result_free(&res);
  /* but not mixed with the other root's collateral */
  expect_error(v, &q, &ic, 1752919234, "different roots");
  expect_error(v, &iq, &c, now, "different roots");
  dcap_collateral_free(&ic);

  /* collateral expired by one second */
  int64_t nu;
  assert_int_equal(dcap_collateral_next_update(&c, &nu), 0);
  assert_int_equal(verify(v, &q, &c, nu, &res, err), 0);
  dcap_result_free(&res);
  expect_error(v, &q, &c, nu + 1, "expired at");
  dcap_verifier_free(v);
  dcap_collateral_free(&c);
  tu_rm_rf(d);
  tu_rm_rf(d2);
}

/* A CRL by issuer listing the serial of `revoked`. */
static void make_crl(X509 *issuer, EVP_PKEY *key, X509 *revoked, struct buf *out) {
  X509_CRL *crl = X509_CRL_new();
  assert_non_null(crl);
  time_t now = time(NULL);
  ASN1_TIME *t1 = ASN1_TIME_set(NULL, now - 3600), *t2 = ASN1_TIME_set(NULL, now + 86400);
  assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
  assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
  assert_int_equal(X509_CRL_set1_lastUpdate(crl, t1), 1);
  assert_int_equal(X509_CRL_set1_nextUpdate(crl, t2), 1);
  X509_REVOKED *rev = X509_REVOKED_new();
  assert_int_equal(X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(revoked)), 1);
  assert_int_equal(X509_REVOKED_set_revocationDate(rev, t1), 1);
  assert_int_equal(X509_CRL_add0_revoked(crl, rev), 1);
  assert_int_equal(X509_CRL_sort(crl), 1);
  assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
  unsigned char *p = NULL;
  int n = i2d_X509_CRL(crl, &p);
  assert_true(n > 0);
  buf_reset(out);
  assert_int_equal(buf_append(out, p, (size_t)n), 0);
  OPENSSL_free(p);
  ASN1_TIME_free(t1);
  ASN1_TIME_free(t2);
  X509_CRL_free(crl);
}

static X509 *load_cert(const char *dir, const char *name) {
  _cleanup_free_ char *p = str_printf("%s/%s", dir, name);
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_FILE);
  tu_read_file(p, &b);
  X509 *c = NULL;
  assert_int_equal(x509_cert_from_pem(b.data, b.len, &c), 0);
  return c;
}

static EVP_PKEY *load_key(const char *dir, const char *name) {
  _cleanup_free_ char *p = str_printf("%s/%s", dir, name);
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_FILE);
  tu_read_file(p, &b);
  EVP_PKEY *k = NULL;
  assert_int_equal(key_from_pem_or_der(b.data, b.len, &k), 0);
  return k;
}

static void test_revoked(void **state) {
  (void)state;
  _cleanup_free_ char *d = sim_dir();
  _cleanup_buf_ struct buf q;
  sim_quote(d, &q);
  struct dcap_collateral good;
  sim_coll(d, &good);
  struct dcap_verifier *v = sim_verifier(d);
  int64_t now = time(NULL);
  X509 *root = load_cert(d, SIM_FILE_ROOT_CA), *pck_ca = load_cert(d, SIM_FILE_PCK_CA),
       *pck = load_cert(d, SIM_FILE_PCK), *tcb = load_cert(d, SIM_FILE_TCB_SIGNING);
  EVP_PKEY *root_key = load_key(d, SIM_FILE_ROOT_KEY),
           *pck_ca_key = load_key(d, SIM_FILE_PCK_CA_KEY);

  struct dcap_collateral c;
  /* the PCK leaf in the PCK CRL */
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  make_crl(pck_ca, pck_ca_key, pck, &c.pck_crl);
  expect_error(v, &q, &c, now, "PCK chain: certificate revoked");
  /* a CRL of another serial is fine */
  make_crl(pck_ca, pck_ca_key, tcb, &c.pck_crl);
  struct dcap_result res;
  char err[512];
  assert_int_equal(verify(v, &q, &c, now, &res, err), 0);
  dcap_result_free(&res);
  /* a PCK CRL signed by the wrong key */
  make_crl(pck_ca, root_key, tcb, &c.pck_crl);
  expect_error(v, &q, &c, now, "PCK CRL: signature invalid");
  dcap_collateral_free(&c);

  /* the PCK CA in the root CA CRL */
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  make_crl(root, root_key, pck_ca, &c.root_ca_crl);
  expect_error(v, &q, &c, now, "certificate revoked");
  dcap_collateral_free(&c);
  /* the TCB signing cert in the root CA CRL */
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  make_crl(root, root_key, tcb, &c.root_ca_crl);
  expect_error(v, &q, &c, now, "TCB info signing chain: certificate revoked");
  /* a root CRL not signed by the root */
  make_crl(root, pck_ca_key, pck, &c.root_ca_crl);
  expect_error(v, &q, &c, now, "root CA CRL: not signed by the root CA");
  dcap_collateral_free(&c);

  /* without the collateral's PCK CRL issuer chain the quote's PCK CA checks the CRL */
  assert_int_equal(dcap_collateral_copy(&good, &c), 0);
  free(c.pck_crl_issuer_chain);
  c.pck_crl_issuer_chain = strdup("");
  assert_int_equal(verify(v, &q, &c, now, &res, err), 0);
  dcap_result_free(&res);
  make_crl(pck_ca, pck_ca_key, pck, &c.pck_crl);
  expect_error(v, &q, &c, now, "PCK chain: certificate revoked");
  make_crl(pck_ca, root_key, tcb, &c.pck_crl);
  expect_error(v, &q, &c, now, "PCK CRL: signature invalid");
  dcap_collateral_free(&c);

  X509_free(root);
  X509_free(pck_ca);
  X509_free(pck);
  X509_free(tcb);
  EVP_PKEY_free(root_key);
  EVP_PKEY_free(pck_ca_key);
  dcap_collateral_free(&good);
  dcap_verifier_free(v);
  tu_rm_rf(d);
}

/* ---- certificate rules: path length, key usage, basic constraints, critical extensions ----
 * The simulator's PKI with certificates re-signed to break one rule at a time. The keys stay the
 * same, so the quote's QE report and signature still verify and only the broken rule can be why
 * a chain is refused; an unbroken re-signed chain verifies (the helpers make valid certificates).
 */

struct pki {
  char *dir;
  X509 *root, *pck_ca, *pck, *tcb;
  EVP_PKEY *root_key, *pck_ca_key, *pck_key, *tcb_key;
  struct buf quote;
  struct dcap_collateral coll;
};

static void pki_load(struct pki *p) {
  p->dir = sim_dir();
  p->root = load_cert(p->dir, SIM_FILE_ROOT_CA);
  p->pck_ca = load_cert(p->dir, SIM_FILE_PCK_CA);
  p->pck = load_cert(p->dir, SIM_FILE_PCK);
  p->tcb = load_cert(p->dir, SIM_FILE_TCB_SIGNING);
  p->root_key = load_key(p->dir, SIM_FILE_ROOT_KEY);
  p->pck_ca_key = load_key(p->dir, SIM_FILE_PCK_CA_KEY);
  p->pck_key = load_key(p->dir, SIM_FILE_PCK_KEY);
  p->tcb_key = load_key(p->dir, SIM_FILE_TCB_SIGNING_KEY);
  sim_quote(p->dir, &p->quote);
  sim_coll(p->dir, &p->coll);
}

static void pki_free(struct pki *p) {
  X509_free(p->root);
  X509_free(p->pck_ca);
  X509_free(p->pck);
  X509_free(p->tcb);
  EVP_PKEY_free(p->root_key);
  EVP_PKEY_free(p->pck_ca_key);
  EVP_PKEY_free(p->pck_key);
  EVP_PKEY_free(p->tcb_key);
  buf_free(&p->quote);
  dcap_collateral_free(&p->coll);
  tu_rm_rf(p->dir);
  free(p->dir);
}

/* Sets c's extension nid to value (OpenSSL's config syntax), or removes it (value NULL). */
static void ext_set(X509 *c, X509 *issuer, int nid, const char *value) {
  int i;
  while ((i = X509_get_ext_by_NID(c, nid, -1)) >= 0)
    X509_EXTENSION_free(X509_delete_ext(c, i));
  if (!value)
    return;
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  assert_non_null(e);
  assert_int_equal(X509_add_ext(c, e, -1), 1);
  X509_EXTENSION_free(e);
}

/* An extension nobody knows: a NULL under a private OID. */
static void ext_add_unknown(X509 *c, bool critical) {
  static const unsigned char null_der[] = {0x05, 0x00};
  ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.62397.99.1", 1);
  ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
  assert_non_null(o);
  assert_non_null(v);
  assert_int_equal(ASN1_OCTET_STRING_set(v, null_der, sizeof(null_der)), 1);
  X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, critical, v);
  assert_non_null(e);
  assert_int_equal(X509_add_ext(c, e, -1), 1);
  X509_EXTENSION_free(e);
  ASN1_OCTET_STRING_free(v);
  ASN1_OBJECT_free(o);
}

/* A copy of c to change and sign again with cert_sign. */
static X509 *cert_copy(X509 *c) {
  X509 *d = X509_dup(c);
  assert_non_null(d);
  return d;
}

/* c issued by issuer: its issuer name and authority key id, signed with key. */
static void cert_sign(X509 *c, X509 *issuer, EVP_PKEY *key) {
  assert_int_equal(X509_set_issuer_name(c, X509_get_subject_name(issuer)), 1);
  ext_set(c, issuer, NID_authority_key_identifier, "keyid:always");
  assert_true(X509_sign(c, key, EVP_sha256()) > 0);
}

/* A simulated CA under issuer, named cn (path length: none). */
static X509 *ca_make(const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int64_t nb, int64_t na,
                     EVP_PKEY **ret_key) {
  assert_int_equal(key_p256_generate(ret_key), 0);
  struct x509_params xp = {
      .subject_cn = cn,
      .subject_org = SIM_ORG,
      .is_ca = true,
      .path_len = -1,
      .key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN,
      .skid_akid = true,
      .not_before = nb,
      .not_after = na,
  };
  X509 *c = NULL;
  assert_int_equal(x509_cert_build(&xp, *ret_key, issuer, issuer_key, &c), 0);
  return c;
}

static void chain_pem(X509 *const *certs, size_t n, struct buf *out) {
  for (size_t i = 0; i < n; i++)
    assert_int_equal(x509_cert_to_pem(certs[i], out), 0);
}

/* The simulator's quote with its PCK chain replaced by certs (PEM text and a NUL). */
static void quote_with_chain(const struct buf *q, X509 *const *certs, size_t n, struct buf *out) {
  _cleanup_buf_ struct buf pem = BUF_INIT(BUF_MAX_FILE);
  chain_pem(certs, n, &pem);
  assert_int_equal(buf_append(&pem, "", 1), 0);
  struct quote pq;
  assert_int_equal(quote_parse(q->data, q->len, &pq), 0);
  pq.pck_chain_pem = pq.cert_data = buf_slice(&pem);
  *out = BUF_INIT(BUF_MAX_FILE);
  assert_int_equal(quote_encode(&pq, out), 0);
}

/* The PCK chain certs (leaf first) in the simulator's quote: refused with a message containing
 * why by dcap_verify and dcap_verify_no_collateral, or verified by both when why is NULL. */
static void chain_expect(struct pki *p, struct dcap_verifier *v, X509 *const *certs, size_t n,
                         const char *why) {
  _cleanup_buf_ struct buf q;
  quote_with_chain(&p->quote, certs, n, &q);
  int64_t now = time(NULL);
  struct quote pq;
  assert_int_equal(quote_parse(q.data, q.len, &pq), 0);
  char err[512] = "";
  int r = dcap_verify_no_collateral(v, &pq, now, NULL, err, sizeof(err));
  if (!why) {
    if (r < 0)
      fail_msg("no collateral: %s", err);
    struct dcap_result res;
    if (verify(v, &q, &p->coll, now, &res, err) < 0)
      fail_msg("%s", err);
    dcap_result_free(&res);
    return;
  }
  if (r >= 0)
    fail_msg("no collateral: verification succeeded, expected \"%s\"", why);
  if (!strstr(err, why))
    fail_msg("no collateral: error \"%s\" does not contain \"%s\"", err, why);
  expect_error(v, &q, &p->coll, now, why);
}

static void test_chain_path_length(void **state) {
  (void)state;
  struct pki p = {};
  pki_load(&p);
  struct dcap_verifier *v = sim_verifier(p.dir);
  int64_t now = time(NULL);
  /* one more CA below the PCK CA (pathLen 0) */
  EVP_PKEY *sub_key = NULL;
  X509 *sub = ca_make("Simulated SGX PCK Platform CA (sub)", p.pck_ca, p.pck_ca_key, now - 3600,
                      now + 86400, &sub_key);
  X509 *leaf = cert_copy(p.pck);
  cert_sign(leaf, sub, sub_key);
  X509 *c1[] = {leaf, sub, p.pck_ca, p.root};
  chain_expect(&p, v, c1, 4, "PCK chain: path length constraint exceeded");
  /* the PCK CA without pathLen: now the root's (1) is exceeded (the sub CA has the same
   * issuer name and key) */
  X509 *ca = cert_copy(p.pck_ca);
  ext_set(ca, p.root, NID_basic_constraints, "critical,CA:TRUE");
  cert_sign(ca, p.root, p.root_key);
  X509 *c2[] = {leaf, sub, ca, p.root};
  chain_expect(&p, v, c2, 4, "PCK chain: path length constraint exceeded");
  /* the same PCK CA re-signed, without the extra CA: fine */
  X509 *leaf2 = cert_copy(p.pck);
  cert_sign(leaf2, ca, p.pck_ca_key);
  X509 *c3[] = {leaf2, ca, p.root};
  chain_expect(&p, v, c3, 3, NULL);
  X509_free(leaf);
  X509_free(leaf2);
  X509_free(sub);
  X509_free(ca);
  EVP_PKEY_free(sub_key);
  dcap_verifier_free(v);
  pki_free(&p);
}

static void test_chain_key_usage(void **state) {
  (void)state;
  struct pki p = {};
  pki_load(&p);
  struct dcap_verifier *v = sim_verifier(p.dir);
  /* a PCK CA that may not sign certificates */
  X509 *ca = cert_copy(p.pck_ca);
  ext_set(ca, p.root, NID_key_usage, "critical,digitalSignature,cRLSign");
  cert_sign(ca, p.root, p.root_key);
  X509 *c1[] = {p.pck, ca, p.root};
  chain_expect(&p, v, c1, 3, "PCK chain: issuer key usage does not allow certificate signing");
  /* a PCK leaf that may not sign */
  static const char *const leaf_usages[] = {"critical,keyCertSign", NULL};
  for (size_t i = 0; i < ARRAY_SIZE(leaf_usages); i++) {
    X509 *leaf = cert_copy(p.pck);
    ext_set(leaf, p.pck_ca, NID_key_usage, leaf_usages[i]);
    cert_sign(leaf, p.pck_ca, p.pck_ca_key);
    X509 *c[] = {leaf, p.pck_ca, p.root};
    chain_expect(&p, v, c, 3, "PCK chain:");
    X509_free(leaf);
  }
  X509 *leaf = cert_copy(p.pck);
  ext_set(leaf, p.pck_ca, NID_key_usage, "critical,keyAgreement");
  cert_sign(leaf, p.pck_ca, p.pck_ca_key);
  X509 *c2[] = {leaf, p.pck_ca, p.root};
  chain_expect(&p, v, c2, 3, "PCK chain: leaf key usage does not allow digital signatures");
  X509_free(leaf);
  /* re-signed with the simulator's own key usage: fine */
  leaf = cert_copy(p.pck);
  ext_set(leaf, p.pck_ca, NID_key_usage, "critical,digitalSignature,nonRepudiation");
  cert_sign(leaf, p.pck_ca, p.pck_ca_key);
  X509 *c3[] = {leaf, p.pck_ca, p.root};
  chain_expect(&p, v, c3, 3, NULL);
  X509_free(leaf);
  X509_free(ca);
  dcap_verifier_free(v);
  pki_free(&p);
}

static void test_chain_basic_constraints(void **state) {
  (void)state;
  struct pki p = {};
  pki_load(&p);
  struct dcap_verifier *v = sim_verifier(p.dir);
  /* a PCK CA that is not a CA: CA:FALSE, or no basic constraints */
  static const char *const ca_bc[] = {"critical,CA:FALSE", NULL};
  for (size_t i = 0; i < ARRAY_SIZE(ca_bc); i++) {
    X509 *ca = cert_copy(p.pck_ca);
    ext_set(ca, p.root, NID_basic_constraints, ca_bc[i]);
    cert_sign(ca, p.root, p.root_key);
    X509 *c[] = {p.pck, ca, p.root};
    chain_expect(&p, v, c, 3, "PCK chain: issuer is not a CA");
    X509_free(ca);
  }
  /* a PCK leaf that is a CA */
  X509 *leaf = cert_copy(p.pck);
  ext_set(leaf, p.pck_ca, NID_basic_constraints, "critical,CA:TRUE");
  cert_sign(leaf, p.pck_ca, p.pck_ca_key);
  X509 *c1[] = {leaf, p.pck_ca, p.root};
  chain_expect(&p, v, c1, 3, "PCK chain: leaf certificate is a CA");
  X509_free(leaf);
  /* a TCB signing certificate that is a CA */
  X509 *tcb = cert_copy(p.tcb);
  ext_set(tcb, p.root, NID_basic_constraints, "critical,CA:TRUE");
  cert_sign(tcb, p.root, p.root_key);
  struct dcap_collateral c;
  assert_int_equal(dcap_collateral_copy(&p.coll, &c), 0);
  _cleanup_buf_ struct buf pem = BUF_INIT(BUF_MAX_FILE);
  X509 *tc[] = {tcb, p.root};
  chain_pem(tc, 2, &pem);
  assert_int_equal(buf_terminate(&pem), 0);
  free(c.tcb_info_issuer_chain);
  c.tcb_info_issuer_chain = strdup((const char *)pem.data);
  expect_error(v, &p.quote, &c, time(NULL), "TCB info signing chain: leaf certificate is a CA");
  dcap_collateral_free(&c);
  X509_free(tcb);
  dcap_verifier_free(v);
  pki_free(&p);
}

static void test_chain_critical_extension(void **state) {
  (void)state;
  struct pki p = {};
  pki_load(&p);
  struct dcap_verifier *v = sim_verifier(p.dir);
  /* unknown and critical: refused, in the leaf or the CA */
  X509 *leaf = cert_copy(p.pck);
  ext_add_unknown(leaf, true);
  cert_sign(leaf, p.pck_ca, p.pck_ca_key);
  X509 *c1[] = {leaf, p.pck_ca, p.root};
  chain_expect(&p, v, c1, 3, "PCK chain: certificate has an unknown critical extension");
  X509_free(leaf);
  X509 *ca = cert_copy(p.pck_ca);
  ext_add_unknown(ca, true);
  cert_sign(ca, p.root, p.root_key);
  X509 *c2[] = {p.pck, ca, p.root};
  chain_expect(&p, v, c2, 3, "PCK chain: certificate has an unknown critical extension");
  X509_free(ca);
  /* unknown and not critical (as the SGX extension itself): fine */
  leaf = cert_copy(p.pck);
  ext_add_unknown(leaf, false);
  cert_sign(leaf, p.pck_ca, p.pck_ca_key);
  X509 *c3[] = {leaf, p.pck_ca, p.root};
  chain_expect(&p, v, c3, 3, NULL);
  X509_free(leaf);
  dcap_verifier_free(v);
  pki_free(&p);
}

/* A CRL with an extension nobody knows, marked critical: refused, the PCK CRL and the root's. */
static void test_crl_critical_extension(void **state) {
  (void)state;
  struct pki p = {};
  pki_load(&p);
  struct dcap_verifier *v = sim_verifier(p.dir);
  int64_t now = time(NULL);
  for (int which = 0; which < 2; which++) {
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    X509 *issuer = which ? p.root : p.pck_ca;
    EVP_PKEY *key = which ? p.root_key : p.pck_ca_key;
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, now - 3600), *t2 = ASN1_TIME_set(NULL, now + 86400);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t1), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t2), 1);
    static const unsigned char null_der[] = {0x05, 0x00};
    ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.62397.99.2", 1);
    ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
    assert_int_equal(ASN1_OCTET_STRING_set(val, null_der, 2), 1);
    X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 1, val);
    assert_int_equal(X509_CRL_add_ext(crl, e, -1), 1);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_CRL(crl, &der);
    assert_true(n > 0);
    struct dcap_collateral c;
    assert_int_equal(dcap_collateral_copy(&p.coll, &c), 0);
    struct buf *slot = which ? &c.root_ca_crl : &c.pck_crl;
    buf_reset(slot);
    assert_int_equal(buf_append(slot, der, (size_t)n), 0);
    expect_error(v, &p.quote, &c, now,
                 which ? "root CA CRL: unknown critical extension"
                       : "PCK CRL: unknown critical extension");
    dcap_collateral_free(&c);
    OPENSSL_free(der);
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(val);
    ASN1_OBJECT_free(o);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    X509_CRL_free(crl);
  }
  dcap_verifier_free(v);
  pki_free(&p);
}

/* Validity windows are kept per cache entry, at most a fixed number: collateral with more
 * certificates than that is refused, never checked in part. Here the simulator's root without
 * its path length (so long chains are not refused for that first), and TCB info and QE identity
 * signing chains of 16 certificates each, one of them expired. */
static void test_window_cap(void **state) {
  (void)state;
  struct pki p = {};
  pki_load(&p);
  int64_t now = time(NULL);
  X509 *root = cert_copy(p.root);
  ext_set(root, NULL, NID_basic_constraints, "critical,CA:TRUE");
  assert_true(X509_sign(root, p.root_key, EVP_sha256()) > 0);
  _cleanup_buf_ struct buf root_pem = BUF_INIT(BUF_MAX_FILE);
  assert_int_equal(x509_cert_to_pem(root, &root_pem), 0);
  assert_int_equal(buf_terminate(&root_pem), 0);
  struct dcap_verifier_opts o = {.allow_simulator = true,
                                 .simulator_root_pem_data = (const char *)root_pem.data};
  struct dcap_verifier *v = NULL;
  assert_int_equal(dcap_verifier_new(&o, &v), 0);

  _cleanup_buf_ struct buf q;
  X509 *pck_chain[] = {p.pck, p.pck_ca, root};
  quote_with_chain(&p.quote, pck_chain, 3, &q);
  struct dcap_collateral c;
  assert_int_equal(dcap_collateral_copy(&p.coll, &c), 0);
  _cleanup_buf_ struct buf crl_chain = BUF_INIT(BUF_MAX_FILE);
  X509 *cc[] = {p.pck_ca, root};
  chain_pem(cc, 2, &crl_chain);
  assert_int_equal(buf_terminate(&crl_chain), 0);
  free(c.pck_crl_issuer_chain);
  c.pck_crl_issuer_chain = strdup((const char *)crl_chain.data);
  _cleanup_buf_ struct buf tcb_chain = BUF_INIT(BUF_MAX_FILE);
  X509 *tc[] = {p.tcb, root};
  chain_pem(tc, 2, &tcb_chain);
  assert_int_equal(buf_terminate(&tcb_chain), 0);
  free(c.tcb_info_issuer_chain);
  c.tcb_info_issuer_chain = strdup((const char *)tcb_chain.data);
  free(c.qe_identity_issuer_chain);
  c.qe_identity_issuer_chain = strdup((const char *)tcb_chain.data);
  /* with the new root the simulator's collateral verifies */
  struct dcap_result res;
  char err[512];
  if (verify(v, &q, &c, now, &res, err) < 0)
    fail_msg("%s", err);
  dcap_result_free(&res);

  /* TCB signing leaf, 14 CAs, root: 16 certificates (X509_CHAIN_MAX) per chain */
  for (int chain = 0; chain < 2; chain++) {
    X509 *certs[16];
    EVP_PKEY *keys[16] = {};
    certs[15] = root;
    X509 *issuer = root;
    EVP_PKEY *issuer_key = p.root_key;
    for (int i = 14; i >= 1; i--) {
      char cn[64];
      snprintf(cn, sizeof(cn), "Simulated CA %d.%d", chain, i);
      bool expired = chain == 1 && i == 14; /* the one nearest the root */
      certs[i] = ca_make(cn, issuer, issuer_key, now - 7200, expired ? now - 3600 : now + 86400,
                         &keys[i]);
      issuer = certs[i];
      issuer_key = keys[i];
    }
    certs[0] = cert_copy(p.tcb);
    cert_sign(certs[0], issuer, issuer_key);
    _cleanup_buf_ struct buf pem = BUF_INIT(BUF_MAX_FILE);
    chain_pem(certs, 16, &pem);
    assert_int_equal(buf_terminate(&pem), 0);
    char **slot = chain ? &c.qe_identity_issuer_chain : &c.tcb_info_issuer_chain;
    free(*slot);
    *slot = strdup((const char *)pem.data);
    for (int i = 0; i < 15; i++) {
      X509_free(certs[i]);
      EVP_PKEY_free(keys[i]);
    }
  }
  expect_error(v, &q, &c, now, "too many validity windows");
  dcap_collateral_free(&c);
  X509_free(root);
  dcap_verifier_free(v);
  pki_free(&p);
}

/* ---- threads ---- */

struct worker {
  struct dcap_verifier *v;
  const struct buf *q;
  const struct dcap_collateral *c;
  int64_t now;
  enum dcap_status want;
  int fails;
};

static void *worker_run(void *arg) {
  struct worker *w = arg;
  for (int i = 0; i < 40; i++) {
    struct dcap_result res;
    char err[256];
    if (dcap_verify(w->v, w->q->data, w->q->len, w->c, w->now, &res, err, sizeof(err)) < 0 ||
        res.status != w->want)
      w->fails++;
    dcap_result_free(&res);
    if (i % 10 == 9)
      dcap_verifier_flush(w->v);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  struct dcap_verifier_opts o = {.cache_max_entries = 2};
  struct dcap_verifier *v;
  assert_int_equal(dcap_verifier_new(&o, &v), 0);
  _cleanup_buf_ struct buf tq, sq;
  read_quote("dcap-qvl/tdx_quote", &tq);
  read_quote("dcap-qvl/sgx_quote", &sq);
  struct dcap_collateral tc, sc;
  load_coll("dcap-qvl/tdx_quote_collateral.json", NULL, &tc);
  load_coll("dcap-qvl/sgx_quote_collateral.json", NULL, &sc);
  struct worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    bool tdx = i % 2 == 0;
    w[i] = (struct worker){.v = v,
                           .q = tdx ? &tq : &sq,
                           .c = tdx ? &tc : &sc,
                           .now = tdx ? 1752919234 : 1752919200,
                           .want = tdx ? DCAP_STATUS_UP_TO_DATE
                                       : DCAP_STATUS_CONFIGURATION_AND_SW_HARDENING_NEEDED};
    assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].fails, 0);
  }
  dcap_collateral_free(&tc);
  dcap_collateral_free(&sc);
  dcap_verifier_free(v);
}

/* dcap_verify_no_collateral: the chain alone, before any collateral exists. */
static void test_no_collateral(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  _cleanup_buf_ struct buf orig;
  read_quote("dcap-qvl/tdx_quote", &orig);
  struct quote q;
  char err[256];
  bool sim = true;
  assert_int_equal(quote_parse(orig.data, orig.len, &q), 0);
  assert_int_equal(dcap_verify_no_collateral(v, &q, 1752919234, &sim, err, sizeof(err)), 0);
  assert_false(sim);
  /* the PCK leaf expires on 2032-02-06 */
  assert_int_equal(dcap_verify_no_collateral(v, &q, 1960000000, NULL, err, sizeof(err)), -EACCES);
  assert_non_null(strstr(err, "expired"));
  /* a changed byte in the leaf's signed part (FMSPC and the rest): the chain breaks */
  _cleanup_buf_ struct buf bad = BUF_INIT(BUF_MAX_FILE);
  assert_int_equal(buf_append(&bad, orig.data, orig.len), 0);
  assert_int_equal(quote_parse(bad.data, bad.len, &q), 0);
  size_t at = (size_t)(q.pck_chain_pem.ptr - bad.data) + 200; /* inside the leaf's base64 */
  bad.data[at] = bad.data[at] == 'A' ? 'B' : 'A';
  assert_int_equal(quote_parse(bad.data, bad.len, &q), 0);
  assert_true(dcap_verify_no_collateral(v, &q, 1752919234, NULL, err, sizeof(err)) < 0);
  /* another QE vendor, no chain at all */
  assert_int_equal(quote_parse(orig.data, orig.len, &q), 0);
  q.qe_vendor_id[0] ^= 1;
  assert_int_equal(dcap_verify_no_collateral(v, &q, 1752919234, NULL, err, sizeof(err)), -ENOTSUP);
  assert_int_equal(quote_parse(orig.data, orig.len, &q), 0);
  q.pck_chain_pem.len = 0;
  assert_int_equal(dcap_verify_no_collateral(v, &q, 1752919234, NULL, err, sizeof(err)), -ENOTSUP);
  assert_int_equal(dcap_verify_no_collateral(NULL, &q, 0, NULL, err, sizeof(err)), -EINVAL);
  dcap_verifier_free(v);
}

static void test_args(void **state) {
  (void)state;
  struct dcap_verifier *v = intel_verifier();
  struct dcap_collateral c = {};
  struct dcap_result res;
  char err[64];
  uint8_t b[8] = {0};
  assert_int_equal(dcap_verify(NULL, b, 8, &c, 0, &res, err, sizeof(err)), -EINVAL);
  assert_int_equal(dcap_verify(v, NULL, 8, &c, 0, &res, err, sizeof(err)), -EINVAL);
  assert_int_equal(dcap_verify(v, b, 8, NULL, 0, &res, err, sizeof(err)), -EINVAL);
  assert_true(dcap_verify(v, b, 8, &c, 0, &res, NULL, 0) < 0);
  /* a valid quote with empty collateral */
  _cleanup_buf_ struct buf q;
  read_quote("dcap-qvl/tdx_quote", &q);
  assert_int_equal(dcap_verify(v, q.data, q.len, &c, 1752919234, &res, err, sizeof(err)), -EBADMSG);
  assert_string_equal(err, "collateral: TCB info or QE identity missing");
  dcap_verifier_free(v);
  dcap_verifier_free(NULL);
  dcap_verifier_flush(NULL);
  dcap_result_free(NULL);
  assert_int_equal(dcap_verifier_new(NULL, NULL), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_error_rows_expired),
      cmocka_unit_test(test_byte_flips),
      cmocka_unit_test(test_quote_parts),
      cmocka_unit_test(test_cert_data_bit_flips),
      cmocka_unit_test(test_pck_chain_strict),
      cmocka_unit_test(test_collateral_tamper),
      cmocka_unit_test(test_intel_test_roots),
      cmocka_unit_test(test_simulator),
      cmocka_unit_test(test_revoked),
      cmocka_unit_test(test_chain_path_length),
      cmocka_unit_test(test_chain_key_usage),
      cmocka_unit_test(test_chain_basic_constraints),
      cmocka_unit_test(test_chain_critical_extension),
      cmocka_unit_test(test_crl_critical_extension),
      cmocka_unit_test(test_window_cap),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_no_collateral),
      cmocka_unit_test(test_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
