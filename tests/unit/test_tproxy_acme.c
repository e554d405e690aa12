#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tproxy_acme.h"
#include "base/fileio.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "testutil.h"

static void put(const char *dir, const char *rel, const void *data, size_t len) {
  char *p = str_printf("%s/%s", dir, rel);
  assert_non_null(p);
  assert_int_equal(mkdir_parents(p, 0700), 0);
  assert_int_equal(file_write_atomic(p, data, len, 0600), 0);
  free(p);
}

/* A certificate PEM for key k; its SPKI DER into spki. */
static void cert_pem(EVP_PKEY *k, struct buf *pem, struct buf *spki) {
  struct x509_params p = {.subject_cn = "*.example.com"};
  X509 *c = NULL;
  assert_int_equal(x509_cert_build(&p, k, NULL, NULL, &c), 0);
  assert_int_equal(x509_cert_to_pem(c, pem), 0);
  assert_int_equal(x509_cert_spki_der(c, spki), 0);
  X509_free(c);
}

static void test_empty_workdir(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  struct acme_info a;
  assert_int_equal(acme_info_read(dir, &a), 0);
  assert_string_equal(a.account_uri, "");
  assert_string_equal(a.account_quote, "");
  assert_int_equal(a.n_keys, 0);
  assert_int_equal(a.n_quoted, 0);
  acme_info_free(&a);
  char *missing = str_printf("%s/nope", dir);
  assert_int_equal(acme_info_read(missing, &a), 0);
  assert_string_equal(a.account_uri, "");
  acme_info_free(&a);
  free(missing);
  tu_rm_rf(dir);
  free(dir);
}

static void test_account_and_keys(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  const char cred[] = "{\"account_id\":\"https://acme.example/acct/42\",\"credentials\":{}}";
  put(dir, "credentials.json", cred, strlen(cred));
  EVP_PKEY *k1 = NULL, *k2 = NULL;
  assert_int_equal(key_p256_generate(&k1), 0);
  assert_int_equal(key_p256_generate(&k2), 0);
  struct buf pem1 = BUF_INIT(1 << 20), spki1 = BUF_INIT(4096);
  struct buf pem1b = BUF_INIT(1 << 20), spki1b = BUF_INIT(4096);
  struct buf pem2 = BUF_INIT(1 << 20), spki2 = BUF_INIT(4096);
  cert_pem(k1, &pem1, &spki1);
  cert_pem(k1, &pem1b, &spki1b); /* same key, another certificate: one entry */
  cert_pem(k2, &pem2, &spki2);
  put(dir, "backup/1/cert.pem", pem1.data, pem1.len);
  put(dir, "backup/2/cert.pem", pem2.data, pem2.len);
  put(dir, "backup/3/cert.pem", pem1b.data, pem1b.len);
  put(dir, "backup/4/cert.pem", "garbage", 7);         /* skipped */
  put(dir, "backup/5/other.pem", pem2.data, pem2.len); /* not cert.pem */
  struct acme_info a;
  assert_int_equal(acme_info_read(dir, &a), 0);
  assert_string_equal(a.account_uri, "https://acme.example/acct/42");
  assert_int_equal(a.n_keys, 2);
  /* sorted by bytes */
  const struct buf *lo = memcmp(spki1.data, spki2.data, spki1.len) < 0 ? &spki1 : &spki2;
  const struct buf *hi = lo == &spki1 ? &spki2 : &spki1;
  assert_int_equal(a.keys[0].len, lo->len);
  assert_memory_equal(a.keys[0].der, lo->data, lo->len);
  assert_memory_equal(a.keys[1].der, hi->data, hi->len);
  acme_info_free(&a);
  buf_free(&pem1), buf_free(&spki1), buf_free(&pem1b), buf_free(&spki1b);
  buf_free(&pem2), buf_free(&spki2);
  EVP_PKEY_free(k1);
  EVP_PKEY_free(k2);
  tu_rm_rf(dir);
  free(dir);
}

static void test_bad_credentials(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  const char *bad[] = {"not json", "{\"account_id\":42}", "[]", "{}"};
  for (size_t i = 0; i < 4; i++) {
    put(dir, "credentials.json", bad[i], strlen(bad[i]));
    struct acme_info a;
    assert_int_equal(acme_info_read(dir, &a), 0);
    assert_string_equal(a.account_uri, "");
    acme_info_free(&a);
  }
  tu_rm_rf(dir);
  free(dir);
}

static void test_quotes(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  const char q1[] = "{\"quote\":\"00ab\",\"event_log\":\"[]\"}";
  const char q2[] = "{\"quote\":\"0x01\"}\n";
  const char qa[] = "{\"quote\":\"cafe\",\"event_log\":\"\",\"report_data\":\"00\"}";
  /* an account quote without an account is not served */
  put(dir, "acme-account.quote", qa, strlen(qa));
  struct acme_info a;
  assert_int_equal(acme_info_read(dir, &a), 0);
  assert_string_equal(a.account_quote, "");
  acme_info_free(&a);
  const char cred[] = "{\"account_id\":\"https://acme.example/acct/42\"}";
  put(dir, "credentials.json", cred, strlen(cred));

  EVP_PKEY *k1 = NULL, *k2 = NULL;
  assert_int_equal(key_p256_generate(&k1), 0);
  assert_int_equal(key_p256_generate(&k2), 0);
  struct buf pem1 = BUF_INIT(1 << 20), spki1 = BUF_INIT(4096);
  struct buf pem2 = BUF_INIT(1 << 20), spki2 = BUF_INIT(4096);
  cert_pem(k1, &pem1, &spki1);
  cert_pem(k2, &pem2, &spki2);
  put(dir, "backup/a/cert.pem", pem1.data, pem1.len);
  put(dir, "backup/a/cert.quote", q1, strlen(q1));
  put(dir, "backup/b/cert.pem", pem1.data, pem1.len); /* the same pair again: once */
  put(dir, "backup/b/cert.quote", q1, strlen(q1));
  put(dir, "backup/c/cert.pem", pem1.data, pem1.len); /* the same key, another quote */
  put(dir, "backup/c/cert.quote", q2, strlen(q2));
  put(dir, "backup/d/cert.pem", pem2.data, pem2.len); /* a malformed quote: key unquoted */
  put(dir, "backup/d/cert.quote", "{\"quote\":\"zz\"}", 14);
  put(dir, "backup/e/cert.quote", q1, strlen(q1)); /* a quote without a certificate */
  put(dir, "backup/f/cert.pem", "garbage", 7);     /* and with a bad one */
  put(dir, "backup/f/cert.quote", q1, strlen(q1));
  assert_int_equal(acme_info_read(dir, &a), 0);
  assert_string_equal(a.account_quote, qa); /* served as certbot wrote it */
  assert_int_equal(a.n_keys, 2);
  assert_int_equal(a.n_quoted, 2);
  for (size_t i = 0; i < a.n_quoted; i++) {
    assert_int_equal(a.quoted[i].len, spki1.len);
    assert_memory_equal(a.quoted[i].der, spki1.data, spki1.len);
  }
  /* sorted by key, then text: q1 ("{\"quote\":\"00ab...") before q2 ("{\"quote\":\"0x01") */
  assert_string_equal(a.quoted[0].quote, q1);
  assert_string_equal(a.quoted[1].quote, q2);
  acme_info_free(&a);

  /* a malformed account quote is not served */
  put(dir, "acme-account.quote", "not json", 8);
  assert_int_equal(acme_info_read(dir, &a), 0);
  assert_string_equal(a.account_quote, "");
  assert_string_equal(a.account_uri, "https://acme.example/acct/42");
  acme_info_free(&a);
  buf_free(&pem1), buf_free(&spki1), buf_free(&pem2), buf_free(&spki2);
  EVP_PKEY_free(k1);
  EVP_PKEY_free(k2);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_workdir),
      cmocka_unit_test(test_account_and_keys),
      cmocka_unit_test(test_bad_credentials),
      cmocka_unit_test(test_quotes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
