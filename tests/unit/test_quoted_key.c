/* Quotes vouching for certbot's keys (attest/quoted_key.h, ratls_verify_quoted_key): the report-data binding (pinned
 * values, prefixes kept apart), the evidence text, and verification on a simulated platform
 * with its negative cases (another key, the account prefix, a changed quote or event log, an
 * untrusted simulator, malformed evidence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/quoted_key.h"
#include "attest/sim.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/str.h"
#include "ratls/ratls_verify.h"
#include "testutil.h"

/* Pinned with Python's hashlib, so that certbot and ct_monitor cannot drift apart. */
#define ACCOUNT "https://acme-v02.api.letsencrypt.org/acme/acct/1"
#define ACCOUNT_RD                                                                                 \
  "5f9f9373334e964f8132f52139017328136f157cd284ac27d3725036fc8d3399c7b072d04f64ccc4b91d923964f9" \
  "4d0821a4f766aa71b8f1735c46580dca8e60"
#define CERT_RD                                                                                    \
  "d9a016a278c6689f979067819179d4433d2d804cb36cd997d4d7fb8a3745cc48ae318d7f38dba554ea672993f6ed" \
  "1927e4c83e5539386f8066f26ecc4a77bdbe"

static void test_report_data_pinned(void **state) {
  (void)state;
  uint8_t rd[64], want[64];
  assert_int_equal(quoted_key_report_data_account(ACCOUNT, rd), 0);
  assert_int_equal(hex_decode_exact(ACCOUNT_RD, 128, want, 64), 0);
  assert_memory_equal(rd, want, 64);
  const uint8_t spki[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  assert_int_equal(quoted_key_report_data_cert(spki, sizeof(spki), rd), 0);
  assert_int_equal(hex_decode_exact(CERT_RD, 128, want, 64), 0);
  assert_memory_equal(rd, want, 64);
}

static void test_report_data_kinds_apart(void **state) {
  (void)state;
  /* the same bytes as an account URI and as a key give different report data */
  const char *s = "abc";
  uint8_t a[64], c[64], c2[64];
  assert_int_equal(quoted_key_report_data_account(s, a), 0);
  assert_int_equal(quoted_key_report_data_cert((const uint8_t *)s, 3, c), 0);
  assert_memory_not_equal(a, c, 64);
  /* one byte more or less of the key changes it */
  assert_int_equal(quoted_key_report_data_cert((const uint8_t *)s, 2, c2), 0);
  assert_memory_not_equal(c, c2, 64);
  /* bad arguments */
  assert_int_equal(quoted_key_report_data_cert((const uint8_t *)s, 0, c), -EINVAL);
  assert_int_equal(quoted_key_report_data_cert(NULL, 3, c), -EINVAL);
  assert_int_equal(quoted_key_report_data_cert((const uint8_t *)s, QUOTED_KEY_MAX_SPKI + 1, c),
                   -EINVAL);
  assert_int_equal(quoted_key_report_data_account(NULL, a), -EINVAL);
  /* an empty URI is still a value (the account file is only read when there is one) */
  assert_int_equal(quoted_key_report_data_account("", a), 0);
}

static void parse_ok(const char *text, size_t qlen, size_t loglen) {
  struct quoted_key_evidence e;
  assert_int_equal(quoted_key_evidence_parse(text, strlen(text), &e), 0);
  assert_int_equal(e.quote.len, qlen);
  assert_int_equal(e.event_log.len, loglen);
  quoted_key_evidence_free(&e);
}

static void parse_err(const char *text, int err) {
  struct quoted_key_evidence e;
  assert_int_equal(quoted_key_evidence_parse(text, strlen(text), &e), err);
  quoted_key_evidence_free(&e);
}

static void test_evidence_text(void **state) {
  (void)state;
  parse_ok("{\"quote\":\"0102\",\"event_log\":\"[]\"}", 2, 2);
  parse_ok("{\"quote\":\"0x0102ff\"}", 3, 0);
  /* tappd's GetQuote answer as it is: other keys ignored */
  parse_ok("{\"quote\":\"AB\",\"event_log\":\"\",\"report_data\":\"00\",\"vm_config\":\"{}\"}", 1,
           0);
  parse_err("", -EBADMSG);
  parse_err("[]", -EBADMSG);
  parse_err("{}", -EBADMSG);
  parse_err("{\"quote\":\"\"}", -EBADMSG);
  parse_err("{\"quote\":\"0g\"}", -EBADMSG);
  parse_err("{\"quote\":\"012\"}", -EBADMSG);
  parse_err("{\"quote\":12}", -EBADMSG);
  parse_err("{\"quote\":\"01\",\"event_log\":[]}", -EBADMSG);
  parse_err("{\"quote\":\"01\",\"quote\":\"02\"}", -EBADMSG);
  parse_err("{\"quote\":\"01\"} x", -EBADMSG);
  /* over the caps */
  struct buf t = BUF_INIT(4 * QUOTED_KEY_MAX_QUOTE);
  assert_int_equal(buf_append_str(&t, "{\"quote\":\""), 0);
  for (size_t i = 0; i < QUOTED_KEY_MAX_QUOTE + 1; i++)
    assert_int_equal(buf_append_str(&t, "aa"), 0);
  assert_int_equal(buf_append_str(&t, "\"}"), 0);
  assert_int_equal(buf_terminate(&t), 0);
  parse_err((const char *)t.data, -ENOBUFS);
  buf_free(&t);
  struct quoted_key_evidence e;
  assert_int_equal(quoted_key_evidence_parse("{}", QUOTED_KEY_MAX_TEXT + 1, &e), -ENOBUFS);
  quoted_key_evidence_free(&e);

  /* format, then parse back */
  struct buf out = BUF_INIT(1024);
  const uint8_t q[3] = {1, 2, 0xff};
  assert_int_equal(quoted_key_evidence_format(q, 3, "[\"x\"]", 5, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_string_equal((char *)out.data, "{\"quote\":\"0102ff\",\"event_log\":\"[\\\"x\\\"]\"}");
  assert_int_equal(quoted_key_evidence_parse((char *)out.data, out.len, &e), 0);
  assert_memory_equal(e.quote.data, q, 3);
  assert_memory_equal(e.event_log.data, "[\"x\"]", 5);
  quoted_key_evidence_free(&e);
  assert_int_equal(quoted_key_evidence_format(q, 0, NULL, 0, &out), -EINVAL);
  buf_free(&out);
}

/* ---- on the simulator ---- */

struct fx {
  char *dir;
  char sim[512];
  struct tee *tee;
  struct ratls_verifier *v;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->dir = tu_mkdtemp();
  snprintf(f->sim, sizeof(f->sim), "%s/sim", f->dir);
  assert_int_equal(sim_platform_init(f->sim, NULL), 0);
  assert_int_equal(tee_sim_new(f->sim, &f->tee), 0);
  struct ratls_verifier_opts o = {.simulator_dir = f->sim};
  char err[256] = "";
  assert_int_equal(ratls_verifier_new(&o, &f->v, err, sizeof(err)), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  ratls_verifier_free(f->v);
  tee_free(f->tee);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* Evidence for report data rd, as certbot would store it (the TD's event log as it is). */
static void evidence(struct fx *f, const uint8_t rd[64], struct buf *out) {
  struct buf quote = BUF_INIT(BUF_MAX_QUOTE), log = BUF_INIT(RATLS_MAX_EVENT_LOG);
  assert_int_equal(tee_get_quote(f->tee, rd, &quote), 0);
  char *path = str_printf("%s/%s", f->sim, SIM_FILE_EVENTLOG);
  assert_int_equal(file_read_all(path, RATLS_MAX_EVENT_LOG, &log), 0);
  free(path);
  buf_reset(out);
  assert_int_equal(
      quoted_key_evidence_format(quote.data, quote.len, (char *)log.data, log.len, out), 0);
  buf_free(&quote);
  buf_free(&log);
}

static enum ratls_reason check(struct fx *f, struct ratls_verifier *v, const struct buf *text,
                               const uint8_t want[64], char *why, size_t n) {
  struct ratls_peer p;
  ratls_peer_init(&p);
  enum ratls_reason r = ratls_verify_quoted_key(v, (const char *)text->data, text->len, want,
                                          (int64_t)time(NULL), &p, why, n);
  if (r == RATLS_OK) {
    assert_true(p.verified && p.dcap.simulated);
    assert_memory_equal(p.dcap.quote.td.report_data, want, 64);
  }
  ratls_peer_free(&p);
  (void)f;
  return r;
}

static void test_verify_binding(void **state) {
  struct fx *f = *state;
  const uint8_t k1[] = {0x30, 0x59, 1, 2, 3}, k2[] = {0x30, 0x59, 1, 2, 4};
  uint8_t rd1[64], rd2[64], rda[64];
  assert_int_equal(quoted_key_report_data_cert(k1, sizeof(k1), rd1), 0);
  assert_int_equal(quoted_key_report_data_cert(k2, sizeof(k2), rd2), 0);
  char as_uri[sizeof(k1) + 1] = {0}; /* key 1's bytes as an account URI */
  memcpy(as_uri, k1, sizeof(k1));
  assert_int_equal(quoted_key_report_data_account(as_uri, rda), 0);
  struct buf t = BUF_INIT(QUOTED_KEY_MAX_TEXT);
  char why[512];
  evidence(f, rd1, &t);
  assert_int_equal(check(f, f->v, &t, rd1, why, sizeof(why)), RATLS_OK);
  /* the same genuine quote does not vouch for another key */
  assert_int_equal(check(f, f->v, &t, rd2, why, sizeof(why)), RATLS_R_KEY_NOT_BOUND);
  assert_non_null(strstr(why, "does not bind"));
  /* a quote for the account-prefixed value of a key's bytes is not one for the key */
  evidence(f, rda, &t);
  assert_int_equal(check(f, f->v, &t, rd1, why, sizeof(why)), RATLS_R_KEY_NOT_BOUND);
  buf_free(&t);
}

static void test_verify_refusals(void **state) {
  struct fx *f = *state;
  uint8_t rd[64];
  const uint8_t k[] = {0x30, 0x59, 9};
  assert_int_equal(quoted_key_report_data_cert(k, sizeof(k), rd), 0);
  struct buf t = BUF_INIT(QUOTED_KEY_MAX_TEXT);
  char why[512];
  evidence(f, rd, &t);

  /* a verifier that does not trust this simulator */
  struct ratls_verifier *plain = NULL;
  struct ratls_verifier_opts o = {0};
  assert_int_equal(ratls_verifier_new(&o, &plain, why, sizeof(why)), 0);
  assert_int_equal(check(f, plain, &t, rd, why, sizeof(why)), RATLS_R_SIMULATOR_NOT_ALLOWED);
  ratls_verifier_free(plain);

  /* the quote's signed body changed after the report data (MRTD's first byte) */
  struct quoted_key_evidence e;
  assert_int_equal(quoted_key_evidence_parse((char *)t.data, t.len, &e), 0);
  struct buf t2 = BUF_INIT(QUOTED_KEY_MAX_TEXT);
  e.quote.data[48 + 136] ^= 1;
  assert_int_equal(quoted_key_evidence_format(e.quote.data, e.quote.len,
                                              (char *)e.event_log.data, e.event_log.len, &t2),
                   0);
  assert_int_equal(check(f, f->v, &t2, rd, why, sizeof(why)), RATLS_R_QUOTE_INVALID);
  e.quote.data[48 + 136] ^= 1;

  /* an event log with one event more than the quote measured */
  struct buf log = BUF_INIT(RATLS_MAX_EVENT_LOG);
  assert_int_equal(buf_append(&log, e.event_log.data, e.event_log.len), 0);
  assert_int_equal(buf_append_str(&log,
                                  "{\"imr\":3,\"event_type\":1,\"digest\":\"" /* 48 zero bytes */
                                  "0000000000000000000000000000000000000000000000000000000000000000"
                                  "00000000000000000000000000000000\",\"associated_data\":\"x\"}"
                                  "\n"),
                   0);
  buf_reset(&t2);
  assert_int_equal(quoted_key_evidence_format(e.quote.data, e.quote.len, (char *)log.data,
                                              log.len, &t2),
                   0);
  assert_int_equal(check(f, f->v, &t2, rd, why, sizeof(why)), RATLS_R_EVENT_LOG_MISMATCH);

  /* malformed evidence */
  buf_reset(&t2);
  assert_int_equal(buf_append_str(&t2, "{\"quote\":\"00\"}"), 0);
  assert_int_equal(check(f, f->v, &t2, rd, why, sizeof(why)), RATLS_R_BAD_ATTESTATION);
  buf_reset(&t2);
  assert_int_equal(buf_append_str(&t2, "not json"), 0);
  assert_int_equal(check(f, f->v, &t2, rd, why, sizeof(why)), RATLS_R_BAD_ATTESTATION);
  assert_non_null(strstr(why, "evidence"));

  quoted_key_evidence_free(&e);
  buf_free(&log);
  buf_free(&t2);
  buf_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_report_data_pinned),
      cmocka_unit_test(test_report_data_kinds_apart),
      cmocka_unit_test(test_evidence_text),
      cmocka_unit_test_setup_teardown(test_verify_binding, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_refusals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
