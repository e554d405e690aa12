/* src/certbot/certbot_config.c: defaults, loading, the checks' refusals, and the default
 * TOML that `certbot cfg` prints (it loads back). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/str.h"
#include "certbot_config.h"
#include "testutil.h"

static int load_text(struct certbot_config *c, const char *text, char *err, size_t errlen) {
  char *dir = tu_mkdtemp();
  char *p = str_printf("%s/c.toml", dir);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  int r = certbot_config_load_file(c, p, err, errlen);
  tu_rm_rf(dir);
  free(p);
  free(dir);
  return r;
}

#define RFC2136_BODY                                                                               \
  "domains = [\"*.example.test\", \"example.test\"]\n"                                             \
  "[rfc2136]\nserver = \"127.0.0.1\"\nport = 5353\nzone = \"example.test\"\n"                      \
  "tsig_key_name = \"k\"\ntsig_secret = \"c2VjcmV0\"\n"
#define RFC2136_OK "dns_provider = \"rfc2136\"\n" RFC2136_BODY

static void test_defaults(void **state) {
  (void)state;
  struct certbot_config c;
  assert_int_equal(certbot_config_init(&c), 0);
  assert_string_equal(c.workdir, ".");
  assert_string_equal(c.acme_url, "https://acme-staging-v02.api.letsencrypt.org/directory");
  assert_string_equal(c.domain, "example.com");
  assert_int_equal(c.renew_interval, 3600);
  assert_int_equal(c.renew_days_before, 10);
  assert_int_equal(c.renew_timeout, 120);
  assert_true(c.auto_set_caa);
  assert_int_equal(c.rfc2136.port, 53);
  char err[256];
  /* cloudflare without a token is refused */
  assert_int_equal(certbot_config_check(&c, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "cf_api_token"));
  certbot_config_free(&c);
}

static void test_rfc2136(void **state) {
  (void)state;
  struct certbot_config c;
  char err[256] = "";
  assert_int_equal(certbot_config_init(&c), 0);
  assert_int_equal(load_text(&c, RFC2136_OK, err, sizeof(err)), 0);
  assert_int_equal(certbot_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(c.rfc2136.port, 5353);
  assert_string_equal(c.domains[1], "example.test");
  assert_int_equal(strv_length(c.cf_name_servers), 0);
  certbot_config_free(&c);
}

static void test_cf_name_servers(void **state) {
  (void)state;
  struct certbot_config c;
  char err[256] = "";
  assert_int_equal(certbot_config_init(&c), 0);
  assert_int_equal(load_text(&c,
                             "dns_provider = \"cloudflare\"\ncf_api_token = \"t\"\n"
                             "cf_zone_id = \"z\"\n"
                             "cf_name_servers = [\"127.0.0.1:5353\", \"ns1.example.test:53\"]\n",
                             err, sizeof(err)),
                   0);
  assert_int_equal(certbot_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(strv_length(c.cf_name_servers), 2);
  assert_string_equal(c.cf_name_servers[1], "ns1.example.test:53");
  certbot_config_free(&c);
}

static void test_refusals(void **state) {
  (void)state;
  static const struct {
    const char *extra;
    const char *word;
  } bad[] = {
      {"dns_provider = \"route53\"\n", "dns_provider"},
      {"acme_url = \"ftp://x\"\n", "acme_url"},
      {"renew_timeout = 0\n", "renew_timeout"},
      {"max_dns_wait = 100000\n", "max_dns_wait"},
      {"workdir = \"\"\n", "workdir"},
      {"cf_name_servers = [\"127.0.0.1\"]\n", "cf_name_servers"},
      {"cf_name_servers = [\"127.0.0.1:0\"]\n", "cf_name_servers"},
      {"cf_name_servers = [\"127.0.0.1:65536\"]\n", "cf_name_servers"},
      {"cf_name_servers = [\":53\"]\n", "cf_name_servers"},
      {"cf_name_servers = [\"a b:53\"]\n", "cf_name_servers"},
      {"cf_name_servers = [\"ns1:53\", \"ns2:x\"]\n", "cf_name_servers"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct certbot_config c;
    char err[256] = "";
    char *text =
        str_printf("%s%s" RFC2136_BODY, bad[i].extra,
                   strstr(bad[i].extra, "dns_provider") ? "" : "dns_provider = \"rfc2136\"\n");
    assert_int_equal(certbot_config_init(&c), 0);
    /* Top-level keys must precede the [rfc2136] table: they do here. */
    assert_int_equal(load_text(&c, text, err, sizeof(err)), 0);
    assert_int_equal(certbot_config_check(&c, err, sizeof(err)), -EINVAL);
    if (!strstr(err, bad[i].word))
      fail_msg("case %zu: %s", i, err);
    free(text);
    certbot_config_free(&c);
  }
  /* rfc2136 without its secret; an unknown algorithm; unknown keys; wrong types. */
  static const char *const bad2[] = {
      "dns_provider = \"rfc2136\"\n[rfc2136]\nserver = \"a\"\nzone = \"z\"\ntsig_key_name = "
      "\"k\"\n",
      "dns_provider = \"rfc2136\"\n[rfc2136]\nserver = \"a\"\nzone = \"z\"\ntsig_key_name = \"k\"\n"
      "tsig_secret = \"c2VjcmV0\"\ntsig_algorithm = \"hmac-md5\"\n",
  };
  for (size_t i = 0; i < 2; i++) {
    struct certbot_config c;
    char err[256] = "";
    assert_int_equal(certbot_config_init(&c), 0);
    assert_int_equal(load_text(&c, bad2[i], err, sizeof(err)), 0);
    assert_int_equal(certbot_config_check(&c, err, sizeof(err)), -EINVAL);
    certbot_config_free(&c);
  }
  static const char *const bad3[] = {"nope = 1\n", "renew_interval = \"x\"\n",
                                     "[rfc2136]\nport = 70000\n", "[other]\nx = 1\n"};
  for (size_t i = 0; i < 4; i++) {
    struct certbot_config c;
    char err[256] = "";
    assert_int_equal(certbot_config_init(&c), 0);
    assert_int_equal(load_text(&c, bad3[i], err, sizeof(err)), -EINVAL);
    certbot_config_free(&c);
  }
}

static void test_default_toml_loads(void **state) {
  (void)state;
  struct buf b = BUF_INIT(65536);
  assert_int_equal(certbot_config_default_toml(&b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  struct certbot_config c;
  char err[256] = "";
  assert_int_equal(certbot_config_init(&c), 0);
  assert_int_equal(load_text(&c, (const char *)b.data, err, sizeof(err)), 0);
  assert_string_equal(c.dns_provider, "cloudflare");
  certbot_config_free(&c);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_rfc2136),
      cmocka_unit_test(test_cf_name_servers),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_default_toml_loads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
