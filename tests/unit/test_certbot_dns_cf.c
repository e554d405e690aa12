/* src/certbot/certbot_dns_cf.c: Cloudflare's envelope and record listings, with the malformed
 * and failing answers a peer can send; option checks of certbot_dns_cf_new. (The HTTP calls
 * run against a fake Cloudflare in tests/it/test_certbot_dns.py.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/str.h"
#include "certbot_dns_cf.h"
#include "testutil.h"

static int env(long status, const char *body, json_t **root, char *err, size_t errlen) {
  return certbot_dns_cf_envelope_parse(status, body, strlen(body), root, err, errlen);
}

static void test_envelope_ok(void **state) {
  (void)state;
  json_t *root = NULL;
  char err[256] = "";
  assert_int_equal(env(200, "{\"success\":true,\"errors\":[],\"result\":{\"id\":\"x\"}}", &root,
                       err, sizeof(err)),
                   0);
  assert_non_null(root);
  assert_string_equal(json_string_value(json_object_get(json_object_get(root, "result"), "id")),
                      "x");
  json_decref(root);
  /* no "errors" key at all is fine too; NULL root: only checked */
  assert_int_equal(env(201, "{\"success\":true,\"result\":null}", NULL, err, sizeof(err)), 0);
}

static void test_envelope_failures(void **state) {
  (void)state;
  char err[256] = "";
  json_t *root = (json_t *)1;
  /* Cloudflare reports its errors: code and message in the error text */
  assert_int_equal(env(400,
                       "{\"success\":false,\"errors\":[{\"code\":1004,\"message\":\"DNS "
                       "Validation Error\"},{\"code\":9005,\"message\":\"bad\"}],\"result\":null}",
                       &root, err, sizeof(err)),
                   -EREMOTEIO);
  assert_ptr_equal(root, (json_t *)1); /* untouched on failure */
  assert_non_null(strstr(err, "HTTP 400"));
  assert_non_null(strstr(err, "[1004] DNS Validation Error"));
  assert_non_null(strstr(err, "[9005] bad"));
  /* success false with 200 */
  assert_int_equal(env(200, "{\"success\":false,\"errors\":[]}", NULL, err, sizeof(err)),
                   -EREMOTEIO);
  assert_non_null(strstr(err, "without a message"));
  /* success true but a non-2xx status */
  assert_int_equal(env(500, "{\"success\":true,\"result\":{}}", NULL, err, sizeof(err)),
                   -EREMOTEIO);
  /* success true but errors listed */
  assert_int_equal(env(200, "{\"success\":true,\"errors\":[{\"code\":1,\"message\":\"m\"}]}",
                       NULL, err, sizeof(err)),
                   -EREMOTEIO);
  /* errors of odd shapes still give a message, never a crash */
  assert_int_equal(env(403, "{\"success\":false,\"errors\":[1,\"x\",{\"code\":\"a\"}]}", NULL,
                       err, sizeof(err)),
                   -EREMOTEIO);
}

static void test_envelope_malformed(void **state) {
  (void)state;
  char err[256];
  const char *bad[] = {
      "",
      "not json",
      "[]",
      "\"s\"",
      "{}",                                /* no success */
      "{\"success\":\"true\"}",            /* wrong type */
      "{\"success\":1}",
      "{\"success\":true",                 /* truncated */
      "{\"success\":true}{}",              /* trailing data */
      "{\"success\":true,\"success\":true}", /* duplicate key */
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    err[0] = '\0';
    assert_int_equal(env(200, bad[i], NULL, err, sizeof(err)), -EBADMSG);
    assert_true(err[0] != '\0');
  }
  /* an HTML error page from a proxy */
  assert_int_equal(env(502, "<html>Bad gateway</html>", NULL, err, sizeof(err)), -EBADMSG);
  assert_non_null(strstr(err, "HTTP 502"));
  /* embedded NUL */
  assert_int_equal(certbot_dns_cf_envelope_parse(200, "{\"success\":true}\0x", 18, NULL, err,
                                                 sizeof(err)),
                   -EBADMSG);
  assert_int_equal(certbot_dns_cf_envelope_parse(200, NULL, 5, NULL, err, sizeof(err)), -EINVAL);
}

static void test_envelope_too_long(void **state) {
  (void)state;
  size_t n = CERTBOT_DNS_CF_MAX_BODY + 16;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, ' ', n);
  memcpy(big, "{\"success\":true}", 16);
  big[n] = '\0';
  char err[128];
  assert_int_equal(certbot_dns_cf_envelope_parse(200, big, n, NULL, err, sizeof(err)), -ENOBUFS);
  free(big);
}

static int records(const char *body, const char *name, const char *type,
                   struct certbot_dns_record **recs, size_t *n, unsigned *pages) {
  json_t *root = NULL;
  char err[256];
  int r = certbot_dns_cf_envelope_parse(200, body, strlen(body), &root, err, sizeof(err));
  if (r < 0)
    return r;
  r = certbot_dns_cf_records_parse(root, name, type, recs, n, pages);
  json_decref(root);
  return r;
}

static void test_records_filter(void **state) {
  (void)state;
  const char *body =
      "{\"success\":true,\"errors\":[],\"result\":["
      "{\"id\":\"a1\",\"type\":\"TXT\",\"name\":\"_acme-challenge.example.com\","
      "\"content\":\"v1\"},"
      "{\"id\":\"a2\",\"type\":\"TXT\",\"name\":\"x._acme-challenge.example.com\","
      "\"content\":\"v2\"},"
      "{\"id\":\"a3\",\"type\":\"CAA\",\"name\":\"_ACME-challenge.Example.com\",\"content\":\"0 "
      "issue \\\"x\\\"\",\"data\":{\"flags\":0,\"tag\":\"issue\",\"value\":\"ca;a=\\\"q\\\"\"}},"
      "{\"id\":\"a4\",\"type\":\"CAA\",\"name\":\"_acme-challenge.example.com\",\"content\":\"128 "
      "iodef \\\"mailto:a@b\\\"\"}"
      "],\"result_info\":{\"page\":1,\"per_page\":100,\"total_pages\":3,\"count\":4}}";
  struct certbot_dns_record *recs = NULL;
  size_t n = 0;
  unsigned pages = 0;
  /* exact name only (case and final dot ignored), every type */
  assert_int_equal(records(body, "_acme-challenge.example.com.", NULL, &recs, &n, &pages), 0);
  assert_int_equal(pages, 3);
  assert_int_equal(n, 3);
  assert_string_equal(recs[0].id, "a1");
  assert_string_equal(recs[0].value, "v1");
  assert_string_equal(recs[1].id, "a3");
  /* CAA from "data", quotes escaped */
  assert_string_equal(recs[1].value, "0 issue \"ca;a=\\\"q\\\"\"");
  /* CAA without data: content as given */
  assert_string_equal(recs[2].value, "128 iodef \"mailto:a@b\"");
  /* appending to the same array with a type filter */
  assert_int_equal(records(body, "_acme-challenge.example.com", "txt", &recs, &n, NULL), 0);
  assert_int_equal(n, 4);
  assert_string_equal(recs[3].id, "a1");
  certbot_dns_records_free(recs, n);
}

static void test_records_pages(void **state) {
  (void)state;
  struct certbot_dns_record *recs = NULL;
  size_t n = 0;
  unsigned pages = 7;
  assert_int_equal(records("{\"success\":true,\"result\":[]}", "a.b", NULL, &recs, &n, &pages),
                   0);
  assert_int_equal(pages, 1);
  assert_int_equal(records("{\"success\":true,\"result\":[],\"result_info\":null}", "a.b", NULL,
                           &recs, &n, &pages),
                   0);
  assert_int_equal(pages, 1);
  assert_int_equal(records("{\"success\":true,\"result\":[],\"result_info\":{\"total_pages\":0}}",
                           "a.b", NULL, &recs, &n, &pages),
                   0);
  assert_int_equal(pages, 1);
  assert_int_equal(n, 0);
  certbot_dns_records_free(recs, n);
}

static void test_records_malformed(void **state) {
  (void)state;
  const char *bad[] = {
      "{\"success\":true}",                            /* no result */
      "{\"success\":true,\"result\":{}}",              /* not a list */
      "{\"success\":true,\"result\":[1]}",             /* not an object */
      "{\"success\":true,\"result\":[{\"type\":\"TXT\",\"name\":\"a.b\"}]}", /* no id */
      "{\"success\":true,\"result\":[{\"id\":\"\",\"type\":\"TXT\",\"name\":\"a.b\"}]}",
      "{\"success\":true,\"result\":[{\"id\":1,\"type\":\"TXT\",\"name\":\"a.b\"}]}",
      "{\"success\":true,\"result\":[{\"id\":\"i\",\"name\":\"a.b\"}]}",   /* no type */
      "{\"success\":true,\"result\":[{\"id\":\"i\",\"type\":\"TXT\"}]}",   /* no name */
      "{\"success\":true,\"result\":[{\"id\":\"i\",\"type\":\"TXT\",\"name\":\"a.b\","
      "\"content\":5}]}",
      "{\"success\":true,\"result\":[{\"id\":\"i\",\"type\":\"CAA\",\"name\":\"a.b\","
      "\"data\":{\"flags\":256,\"tag\":\"issue\",\"value\":\"x\"}}]}",
      "{\"success\":true,\"result\":[{\"id\":\"i\",\"type\":\"CAA\",\"name\":\"a.b\","
      "\"data\":{\"flags\":-1,\"tag\":\"issue\",\"value\":\"x\"}}]}",
      "{\"success\":true,\"result\":[{\"id\":\"i\",\"type\":\"CAA\",\"name\":\"a.b\","
      "\"data\":{\"flags\":0,\"value\":\"x\"}}]}",
      "{\"success\":true,\"result\":[{\"id\":\"i\",\"type\":\"CAA\",\"name\":\"a.b\","
      "\"data\":{\"flags\":0,\"tag\":\"issue\",\"value\":7}}]}",
      "{\"success\":true,\"result\":[],\"result_info\":{\"total_pages\":\"2\"}}",
      "{\"success\":true,\"result\":[],\"result_info\":{\"total_pages\":-2}}",
      "{\"success\":true,\"result\":[],\"result_info\":{\"total_pages\":99999999999}}",
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    struct certbot_dns_record *recs = NULL;
    size_t n = 0;
    unsigned pages;
    int r = records(bad[i], "a.b", NULL, &recs, &n, &pages);
    if (r != -EBADMSG)
      fail_msg("case %zu: %d", i, r);
    certbot_dns_records_free(recs, n);
  }
}

static void test_new_options(void **state) {
  (void)state;
  struct certbot_dns *d = NULL;
  char err[256];
  struct certbot_dns_cf_opts o = {.api_token = "tok"};
  assert_int_equal(certbot_dns_cf_new(&o, &d, err, sizeof(err)), 0);
  assert_string_equal(d->ops->name, "cloudflare");
  d->ops->free(d);
  const char *bad_tokens[] = {"", "has space", "tab\t", "nl\n"};
  for (size_t i = 0; i < ARRAY_SIZE(bad_tokens); i++) {
    o.api_token = bad_tokens[i];
    err[0] = '\0';
    assert_int_equal(certbot_dns_cf_new(&o, &d, err, sizeof(err)), -EINVAL);
    assert_null(strstr(err, bad_tokens[i][0] ? bad_tokens[i] : "\x01")); /* never echoed */
  }
  o.api_token = NULL;
  assert_int_equal(certbot_dns_cf_new(&o, &d, err, sizeof(err)), -EINVAL);
  o.api_token = "tok";
  o.api_url = "ftp://x";
  assert_int_equal(certbot_dns_cf_new(&o, &d, err, sizeof(err)), -EINVAL);
  o.api_url = NULL;
  o.zone_id = "../x";
  assert_int_equal(certbot_dns_cf_new(&o, &d, err, sizeof(err)), -EINVAL);
  o.zone_id = "023e105f4ecef8ad9ca31a8372d0c353";
  char *ns[] = {"127.0.0.1:5353", NULL};
  o.name_servers = ns;
  assert_int_equal(certbot_dns_cf_new(&o, &d, err, sizeof(err)), 0);
  char **l = NULL;
  assert_int_equal(d->ops->authoritative(d, "a.example.com", &l, err, sizeof(err)), 0);
  assert_string_equal(l[0], "127.0.0.1:5353");
  assert_null(l[1]);
  strv_free(l);
  /* bad names and ids are refused before any network call */
  char *id = NULL;
  assert_int_equal(d->ops->txt_add(d, "", "v", &id, err, sizeof(err)), -EINVAL);
  assert_int_equal(d->ops->txt_add(d, "a b.example", "v", &id, err, sizeof(err)), -EINVAL);
  assert_int_equal(d->ops->del(d, "a.example", "../../zones", err, sizeof(err)), -EINVAL);
  assert_int_equal(d->ops->del(d, "a.example", "", err, sizeof(err)), -EINVAL);
  assert_int_equal(d->ops->caa_add(d, "a.example", 256, "issue", "x", &id, err, sizeof(err)),
                   -EINVAL);
  assert_int_equal(d->ops->caa_add(d, "a.example", 0, "", "x", &id, err, sizeof(err)), -EINVAL);
  d->ops->free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_envelope_ok),       cmocka_unit_test(test_envelope_failures),
      cmocka_unit_test(test_envelope_malformed), cmocka_unit_test(test_envelope_too_long),
      cmocka_unit_test(test_records_filter),    cmocka_unit_test(test_records_pages),
      cmocka_unit_test(test_records_malformed), cmocka_unit_test(test_new_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
