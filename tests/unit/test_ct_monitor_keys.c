/* Which keys count as tproxy's (ct_monitor_keys.h), with a stand-in quote check that accepts
 * exactly the evidence "<hex of the expected report data>": quoted keys need the report data of
 * their own key (never another key's, never the account's), unquoted keys count only under the
 * legacy rule, a check that cannot decide fails the whole answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "ct_monitor_keys.h"
#include "attest/quoted_key.h"

static int calls;

static int fake_check(void *ud, const uint8_t want[64], const char *quote, size_t len,
                      char *why, size_t whylen) {
  (void)ud;
  calls++;
  char hex[129];
  hex_encode(want, 64, hex);
  if (len == 5 && memcmp(quote, "retry", 5) == 0) {
    snprintf(why, whylen, "no collateral");
    return -EAGAIN;
  }
  if (len == 128 && memcmp(quote, hex, 128) == 0) {
    snprintf(why, whylen, "TCB UpToDate");
    return 0;
  }
  snprintf(why, whylen, "fake refusal");
  return 1;
}

static char *ev_for_key(const uint8_t *k, size_t n) {
  uint8_t rd[64];
  assert_int_equal(quoted_key_report_data_cert(k, n, rd), 0);
  return hex_encode_alloc(rd, 64);
}

static const uint8_t K1[] = {0x30, 1, 1}, K2[] = {0x30, 2, 2}, K3[] = {0x30, 3, 3},
                     K4[] = {0x30, 4, 4};

struct answer {
  Tproxy__AcmeInfoResponse a;
  ProtobufCBinaryData hist[8];
  Tproxy__QuotedPublicKey q[8], *qp[8];
};

static void answer_init(struct answer *x) {
  memset(x, 0, sizeof(*x));
  tproxy__acme_info_response__init(&x->a);
  x->a.hist_keys = x->hist;
  x->a.quoted_hist_keys = x->qp;
}

static void add_hist(struct answer *x, const uint8_t *k, size_t n) {
  x->hist[x->a.n_hist_keys++] = (ProtobufCBinaryData){n, (uint8_t *)k};
}

static void add_quoted(struct answer *x, const uint8_t *k, size_t n, char *quote) {
  size_t i = x->a.n_quoted_hist_keys++;
  tproxy__quoted_public_key__init(&x->q[i]);
  x->q[i].public_key = (ProtobufCBinaryData){n, (uint8_t *)k};
  x->q[i].quote = quote;
  x->qp[i] = &x->q[i];
}

static bool has_note(const struct ct_known *k, const char *a, const char *b) {
  for (size_t i = 0; i < k->n_notes; i++)
    if (strstr(k->notes[i], a) && (!b || strstr(k->notes[i], b)))
      return true;
  return false;
}

static void test_quoted_keys(void **state) {
  (void)state;
  struct answer x;
  answer_init(&x);
  char *e1 = ev_for_key(K1, sizeof(K1)), *e2 = ev_for_key(K2, sizeof(K2));
  add_hist(&x, K1, sizeof(K1));
  add_hist(&x, K2, sizeof(K2));
  add_hist(&x, K3, sizeof(K3));
  add_hist(&x, K4, sizeof(K4));
  add_quoted(&x, K1, sizeof(K1), e1);
  add_quoted(&x, K2, sizeof(K2), e1); /* key 2 with key 1's quote */
  add_quoted(&x, K4, sizeof(K4), "garbage");
  struct ct_known k;
  char err[512] = "";
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_true(k.quotes_seen && !k.legacy);
  assert_true(ct_known_has(&k, K1, sizeof(K1)));
  assert_false(ct_known_has(&k, K2, sizeof(K2))); /* bound to another key */
  assert_false(ct_known_has(&k, K3, sizeof(K3))); /* no quote while others have one */
  assert_false(ct_known_has(&k, K4, sizeof(K4))); /* refused */
  assert_int_equal(k.n, 1);
  char n2[65], n3[65];
  ct_key_name(K2, sizeof(K2), n2);
  ct_key_name(K3, sizeof(K3), n3);
  assert_true(has_note(&k, n2, "NOT known, its quote is refused: fake refusal"));
  assert_true(has_note(&k, n3, "without a quote"));
  assert_int_equal(k.account, 0);
  ct_known_free(&k);

  /* the same key listed twice, once with a good quote: known once */
  x.q[1].quote = e2;
  add_quoted(&x, K2, sizeof(K2), "bad");
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_true(ct_known_has(&k, K2, sizeof(K2)));
  assert_int_equal(k.n, 2);
  ct_known_free(&k);
  free(e1);
  free(e2);
}

static void test_legacy(void **state) {
  (void)state;
  struct answer x;
  answer_init(&x);
  add_hist(&x, K1, sizeof(K1));
  add_hist(&x, K2, sizeof(K2));
  struct ct_known k;
  char err[512];
  calls = 0;
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_true(k.legacy && !k.quotes_seen);
  assert_true(ct_known_has(&k, K1, sizeof(K1)) && ct_known_has(&k, K2, sizeof(K2)));
  assert_true(has_note(&k, "WITHOUT attestation", NULL));
  assert_int_equal(calls, 0);
  ct_known_free(&k);
  /* not allowed (quotes required, seen before, or the answer came over unverified TLS):
   * nothing counts, and the notes say why */
  assert_int_equal(
      ct_known_build(&x.a, "not over verified TLS", fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_true(!k.legacy && k.n == 0);
  assert_false(ct_known_has(&k, K1, sizeof(K1)) || ct_known_has(&k, K2, sizeof(K2)));
  assert_true(has_note(&k, "NOT known", "(not over verified TLS)"));
  ct_known_free(&k);
  /* nothing at all */
  answer_init(&x);
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_int_equal(k.n, 0);
  assert_false(ct_known_has(&k, K1, sizeof(K1)));
  ct_known_free(&k);
}

static void test_account(void **state) {
  (void)state;
  struct answer x;
  answer_init(&x);
  uint8_t rd[64], rdc[64];
  const char *uri = "https://acme.test/acct/7";
  assert_int_equal(quoted_key_report_data_account(uri, rd), 0);
  char *good = hex_encode_alloc(rd, 64);
  /* a quote for the URI's bytes as a key is not the account's */
  assert_int_equal(quoted_key_report_data_cert((const uint8_t *)uri, strlen(uri), rdc), 0);
  char *as_key = hex_encode_alloc(rdc, 64);
  x.a.account_uri = (char *)uri;
  x.a.account_quote = good;
  struct ct_known k;
  char err[512];
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_int_equal(k.account, 1);
  assert_true(has_note(&k, "ACME account https://acme.test/acct/7: quote verified", NULL));
  ct_known_free(&k);
  x.a.account_quote = as_key;
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_int_equal(k.account, -1);
  assert_true(has_note(&k, "REFUSED", NULL));
  ct_known_free(&k);
  /* the account quote alone does not switch off the legacy rule */
  add_hist(&x, K1, sizeof(K1));
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_true(k.legacy && ct_known_has(&k, K1, sizeof(K1)));
  ct_known_free(&k);
  free(good);
  free(as_key);
}

static void test_undecided(void **state) {
  (void)state;
  struct answer x;
  answer_init(&x);
  char *e1 = ev_for_key(K1, sizeof(K1));
  add_quoted(&x, K1, sizeof(K1), e1);
  add_quoted(&x, K2, sizeof(K2), "retry");
  struct ct_known k;
  char err[512] = "";
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), -EAGAIN);
  assert_non_null(strstr(err, "no collateral"));
  ct_known_free(&k);
  /* an empty or oversized key is ignored, not checked */
  answer_init(&x);
  static uint8_t huge[QUOTED_KEY_MAX_SPKI + 1];
  add_quoted(&x, huge, 0, e1);
  add_quoted(&x, huge, sizeof(huge), e1);
  calls = 0;
  assert_int_equal(ct_known_build(&x.a, NULL, fake_check, NULL, &k, err, sizeof(err)), 0);
  assert_int_equal(calls, 0);
  assert_int_equal(k.n, 0);
  assert_true(k.quotes_seen && !k.legacy);
  ct_known_free(&k);
  free(e1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quoted_keys),
      cmocka_unit_test(test_legacy),
      cmocka_unit_test(test_account),
      cmocka_unit_test(test_undecided),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
