/* crt.sh's JSON answer (ct_monitor_crtsh.h): the real shape, order and repeated ids, every kind
 * of malformed input, the caps (entries, element size, nesting, body), and the first
 * certificate of a PEM answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "ct_monitor_crtsh.h"

/* As crt.sh answers (newest first), with the fields it has. */
static const char REAL[] =
    "[{\"issuer_ca_id\":295815,\"issuer_name\":\"C=US, O=Let's Encrypt, CN=R11\","
    "\"common_name\":\"*.app.example.com\",\"name_value\":\"*.app.example.com\\napp.example.com\","
    "\"id\":15187453042,\"entry_timestamp\":\"2024-10-25T08:41:40.377\","
    "\"not_before\":\"2024-10-25T07:41:40\",\"not_after\":\"2025-01-23T07:41:39\","
    "\"serial_number\":\"03a1b2\",\"result_count\":3},\n"
    " {\"issuer_ca_id\":295815,\"issuer_name\":\"C=US, O=Let's Encrypt, CN=R11\","
    "\"common_name\":null,\"name_value\":\"app.example.com\",\"id\":15187452999,"
    "\"entry_timestamp\":null,\"not_before\":\"2024-10-25T07:41:40\","
    "\"not_after\":\"2025-01-23T07:41:39\",\"serial_number\":\"03a1b2\",\"result_count\":3},"
    "{\"id\":12,\"serial_number\":\"x\\\"y\\\\}]{[\",\"extra\":{\"a\":[1,{\"b\":[]}]}}]\n";

static int parse(const char *text, size_t max, struct ct_entries *e, char *err) {
  err[0] = '\0';
  return ct_crtsh_parse(text, strlen(text), max, e, err, 256);
}

static void test_real_shape(void **state) {
  (void)state;
  struct ct_entries e;
  char err[256];
  assert_int_equal(parse(REAL, CT_CRTSH_MAX_ENTRIES, &e, err), 0);
  assert_int_equal(e.n, 3);
  assert_true(e.v[0].id == 15187453042LL);
  assert_string_equal(e.v[0].name_value, "*.app.example.com\napp.example.com");
  assert_string_equal(e.v[0].issuer_name, "C=US, O=Let's Encrypt, CN=R11");
  assert_string_equal(e.v[1].common_name, "");
  assert_string_equal(e.v[2].serial, "x\"y\\}]{[");
  assert_string_equal(e.v[2].name_value, "");
  ct_entries_sort(&e);
  assert_true(e.v[0].id == 12 && e.v[1].id == 15187452999LL && e.v[2].id == 15187453042LL);
  assert_int_equal(ct_entries_find(&e, 15187452999LL), 1);
  assert_int_equal(ct_entries_find(&e, 13), -1);
  assert_int_equal(ct_entries_find(&e, 1), -1);
  assert_int_equal(ct_entries_find(&e, 99999999999LL), -1);
  ct_entries_free(&e);

  assert_int_equal(parse(" [ ] \n", 10, &e, err), 0);
  assert_int_equal(e.n, 0);
  ct_entries_sort(&e);
  assert_int_equal(ct_entries_find(&e, 1), -1);
  ct_entries_free(&e);
}

static void test_repeated_ids(void **state) {
  (void)state;
  struct ct_entries e;
  char err[256];
  assert_int_equal(parse("[{\"id\":5},{\"id\":3},{\"id\":5},{\"id\":4},{\"id\":3},{\"id\":5}]",
                         100, &e, err),
                   0);
  ct_entries_sort(&e);
  assert_int_equal(e.n, 3);
  assert_true(e.v[0].id == 3 && e.v[1].id == 4 && e.v[2].id == 5);
  ct_entries_free(&e);
}

static void expect_err(const char *text, int want, const char *msg) {
  struct ct_entries e;
  char err[256];
  int r = parse(text, 100, &e, err);
  if (r != want)
    fail_msg("'%s': got %d (%s), want %d", text, r, err, want);
  if (msg && !strstr(err, msg))
    fail_msg("'%s': message '%s' lacks '%s'", text, err, msg);
  ct_entries_free(&e);
}

static void test_malformed(void **state) {
  (void)state;
  expect_err("", -EBADMSG, "array");
  expect_err("   ", -EBADMSG, "array");
  expect_err("{\"id\":1}", -EBADMSG, "array");
  expect_err("<html>429 Too Many Requests</html>", -EBADMSG, "array");
  expect_err("[", -EBADMSG, "element 0");
  expect_err("[1]", -EBADMSG, "element 0");
  expect_err("[\"x\"]", -EBADMSG, "element 0");
  expect_err("[[]]", -EBADMSG, "element 0");
  expect_err("[{\"id\":1}", -EBADMSG, "after element 0");
  expect_err("[{\"id\":1},]", -EBADMSG, "element 1");
  expect_err("[{\"id\":1} {\"id\":2}]", -EBADMSG, "after element 0");
  expect_err("[{\"id\":1}] x", -EBADMSG, "after the array");
  expect_err("[] []", -EBADMSG, "after the array");
  expect_err("[{\"id\":1", -EBADMSG, "cut off");
  expect_err("[{\"id\":\"1\"}]", -EBADMSG, "id");
  expect_err("[{\"id\":0}]", -EBADMSG, "id");
  expect_err("[{\"id\":-5}]", -EBADMSG, "id");
  expect_err("[{\"id\":1.5}]", -EBADMSG, "id");
  expect_err("[{\"id\":99999999999999999999}]", -EBADMSG, NULL);
  expect_err("[{\"serial_number\":\"1\"}]", -EBADMSG, "id");
  expect_err("[{\"id\":1,\"name_value\":7}]", -EBADMSG, "name_value");
  expect_err("[{\"id\":1,\"common_name\":[\"a\"]}]", -EBADMSG, "common_name");
  expect_err("[{\"id\":1,\"id\":2}]", -EBADMSG, NULL);           /* duplicate key */
  expect_err("[{\"id\":1,\"x\":\"a\\u0000b\"}]", -EBADMSG, NULL); /* NUL in a string */
  expect_err("[{\"id\":1,\"x\":\"\xff\"}]", -EBADMSG, NULL);      /* not UTF-8 */
  expect_err("[{\"id\":1,\"x\":\"\\\"}]", -EBADMSG, NULL);        /* escape eats the quote */
  expect_err("[{\"id\":1,\"x\":[}]]", -EBADMSG, NULL);            /* brackets crossed */
  expect_err("[{\"id\":1,\"x\":\"", -EBADMSG, NULL);
  expect_err("[{\"id\":1,\"x\":\"\\", -EBADMSG, NULL);
}

static void test_caps(void **state) {
  (void)state;
  struct ct_entries e;
  char err[256];
  /* entries: exactly the cap passes, one more is refused */
  assert_int_equal(parse("[{\"id\":1},{\"id\":2},{\"id\":3}]", 3, &e, err), 0);
  ct_entries_free(&e);
  assert_int_equal(parse("[{\"id\":1},{\"id\":2},{\"id\":3}]", 2, &e, err), -E2BIG);
  assert_non_null(strstr(err, "more than 2"));
  ct_entries_free(&e);
  /* nesting */
  expect_err("[{\"id\":1,\"x\":[[[[[[[[[]]]]]]]]]}]", -EBADMSG, "nested");
  assert_int_equal(parse("[{\"id\":1,\"x\":[[[[[[]]]]]]}]", 10, &e, err), 0);
  ct_entries_free(&e);
  /* one element over its cap */
  size_t big = CT_CRTSH_MAX_ENTRY_TEXT;
  char *t = malloc(big + 64);
  assert_non_null(t);
  int n = snprintf(t, 64, "[{\"id\":1,\"name_value\":\"");
  memset(t + n, 'a', big);
  strcpy(t + n + big, "\"}]");
  assert_int_equal(ct_crtsh_parse(t, strlen(t), 10, &e, err, sizeof(err)), -ENOBUFS);
  assert_non_null(strstr(err, "element 0"));
  ct_entries_free(&e);
  free(t);
  /* the body */
  assert_int_equal(ct_crtsh_parse("[]", CT_CRTSH_MAX_BODY + 1, 10, &e, err, sizeof(err)),
                   -ENOBUFS);
  ct_entries_free(&e);
  assert_int_equal(ct_crtsh_parse(NULL, 3, 10, &e, err, sizeof(err)), -EINVAL);
  ct_entries_free(&e);
}

static void test_pem_spki(void **state) {
  (void)state;
  EVP_PKEY *k1 = NULL, *k2 = NULL;
  assert_int_equal(key_p256_generate(&k1), 0);
  assert_int_equal(key_p256_generate(&k2), 0);
  struct x509_params p = {.subject_cn = "*.app.example.com"};
  X509 *c1 = NULL, *c2 = NULL;
  assert_int_equal(x509_cert_build(&p, k1, NULL, NULL, &c1), 0);
  assert_int_equal(x509_cert_build(&p, k2, NULL, NULL, &c2), 0);
  struct buf pem = BUF_INIT(1 << 20), want = BUF_INIT(4096), got = BUF_INIT(4096);
  assert_int_equal(buf_append_str(&pem, "crt.sh says hello\n"), 0);
  assert_int_equal(x509_cert_to_pem(c1, &pem), 0);
  assert_int_equal(x509_cert_to_pem(c2, &pem), 0);
  assert_int_equal(x509_cert_spki_der(c1, &want), 0);
  assert_int_equal(ct_pem_first_spki(pem.data, pem.len, &got), 0);
  assert_int_equal(got.len, want.len);
  assert_memory_equal(got.data, want.data, want.len);
  buf_reset(&got);
  assert_int_equal(ct_pem_first_spki((const uint8_t *)"<html></html>", 13, &got), -EBADMSG);
  assert_int_equal(ct_pem_first_spki(NULL, 0, &got), -EBADMSG);
  /* a cut-off PEM */
  assert_int_equal(ct_pem_first_spki(pem.data, 18 + 100, &got), -EBADMSG);
  buf_free(&pem), buf_free(&want), buf_free(&got);
  X509_free(c1), X509_free(c2);
  EVP_PKEY_free(k1), EVP_PKEY_free(k2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_shape),  cmocka_unit_test(test_repeated_ids),
      cmocka_unit_test(test_malformed),   cmocka_unit_test(test_caps),
      cmocka_unit_test(test_pem_spki),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
