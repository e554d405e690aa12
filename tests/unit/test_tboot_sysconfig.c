#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "tboot_sysconfig.h"
#include "testutil.h"

static int parse(const char *text, struct sysconfig *c, char *why, size_t whylen) {
  return sysconfig_parse(text, strlen(text), c, why, whylen);
}

static void expect_bad(const char *text, const char *needle) {
  struct sysconfig c;
  char why[256] = "";
  int r = parse(text, &c, why, sizeof(why));
  if (r != -EBADMSG || !strstr(why, needle))
    fail_msg("%s: r=%d why=\"%s\", wanted \"%s\"", text, r, why, needle);
  assert_null(c.kms_urls);
  assert_null(c.pccs_url);
}

static char *payload(const struct sysconfig *c) {
  _cleanup_buf_ struct buf b = BUF_INIT(SYSCONFIG_MAX_BYTES * 2);
  assert_int_equal(sysconfig_payload(c, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  return (char *)buf_steal(&b, NULL);
}

/* What teepod writes (src/teepod/cfgdisk.c). */
static void test_teepod_file(void **state) {
  (void)state;
  const char *t =
      "{\"docker_registry\":\"\",\"gateway_urls\":[\"https://gw.example:9010\"],"
      "\"host_api_url\":\"virtio-serial:org.dstack.host.0\",\"kms_urls\":[\"https://kms1:8000\","
      "\"https://kms2:8000/prpc\"],\"pccs_url\":\"\",\"vm_config\":\"{\\\"spec_version\\\":1,"
      "\\\"os_image_hash\\\":\\\"ab\\\",\\\"cpu_count\\\":2}\",\"future_key\":[1,2]}";
  struct sysconfig c;
  char why[256] = "";
  assert_int_equal(parse(t, &c, why, sizeof(why)), 0);
  assert_int_equal(c.n_kms_urls, 2);
  assert_string_equal(c.kms_urls[0], "https://kms1:8000");
  assert_string_equal(c.kms_urls[1], "https://kms2:8000/prpc");
  assert_null(c.kms_urls[2]);
  assert_int_equal(c.n_gateway_urls, 1);
  assert_string_equal(c.pccs_url, "");
  assert_string_equal(c.docker_registry, "");
  assert_false(c.docker_registry_insecure);
  assert_string_equal(c.host_api_url, "virtio-serial:org.dstack.host.0");
  assert_string_equal(c.vm_config, "{\"spec_version\":1,\"os_image_hash\":\"ab\",\"cpu_count\":2}");
  char *p = payload(&c);
  assert_string_equal(
      p, "{\"docker_registry\":\"\",\"docker_registry_insecure\":false,\"gateway_urls\":"
         "[\"https://gw.example:9010\"],\"host_api_url\":\"virtio-serial:org.dstack.host.0\","
         "\"kms_urls\":[\"https://kms1:8000\",\"https://kms2:8000/prpc\"],\"pccs_url\":\"\","
         "\"vm_config\":\"{\\\"spec_version\\\":1,\\\"os_image_hash\\\":\\\"ab\\\","
         "\\\"cpu_count\\\":2}\"}");
  free(p);
  sysconfig_free(&c);
  sysconfig_free(&c); /* twice is fine */
  sysconfig_free(NULL);
}

static void test_empty_and_seed(void **state) {
  (void)state;
  struct sysconfig c;
  assert_int_equal(parse("{}", &c, NULL, 0), 0);
  assert_int_equal(c.n_kms_urls, 0);
  assert_null(c.kms_urls);
  char *p = payload(&c);
  assert_string_equal(p, "{\"docker_registry\":\"\",\"docker_registry_insecure\":false,"
                         "\"gateway_urls\":[],\"host_api_url\":\"\",\"kms_urls\":[],"
                         "\"pccs_url\":\"\",\"vm_config\":\"\"}");
  free(p);
  sysconfig_free(&c);

  /* the seed's single URLs stand in for absent (or empty) lists, not next to full ones */
  assert_int_equal(parse("{\"kms_url\":\"http://10.0.2.2:8000\",\"tproxy_url\":\"https://tp\","
                         "\"gateway_urls\":[]}",
                         &c, NULL, 0),
                   0);
  assert_int_equal(c.n_kms_urls, 1);
  assert_string_equal(c.kms_urls[0], "http://10.0.2.2:8000");
  assert_int_equal(c.n_gateway_urls, 1);
  assert_string_equal(c.gateway_urls[0], "https://tp");
  sysconfig_free(&c);
  assert_int_equal(parse("{\"kms_urls\":[\"https://a\"],\"kms_url\":\"https://b\",\"kms_url2\":1,"
                         "\"pccs_url\":null}",
                         &c, NULL, 0),
                   0);
  assert_int_equal(c.n_kms_urls, 1);
  assert_string_equal(c.kms_urls[0], "https://a");
  sysconfig_free(&c);
  assert_int_equal(parse("{\"kms_url\":\"\"}", &c, NULL, 0), 0);
  assert_int_equal(c.n_kms_urls, 0);
  sysconfig_free(&c);
}

static void test_registry(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
    bool insecure;
  } ok[] = {
      {"registry.example.com", "registry.example.com", false},
      {"registry.example.com:5000", "registry.example.com:5000", false},
      {"10.0.2.2:5000", "10.0.2.2:5000", false},
      {"[fd00::1]:5000", "[fd00::1]:5000", false},
      {"https://mirror.example", "mirror.example", false},
      {"https://mirror.example/", "mirror.example", false},
      {"http://10.0.2.2:5000", "10.0.2.2:5000", true},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    char t[512];
    snprintf(t, sizeof(t), "{\"docker_registry\":\"%s\"}", ok[i].in);
    struct sysconfig c;
    char why[256] = "";
    if (parse(t, &c, why, sizeof(why)) != 0)
      fail_msg("%s: %s", ok[i].in, why);
    assert_string_equal(c.docker_registry, ok[i].out);
    assert_int_equal(c.docker_registry_insecure, ok[i].insecure);
    if (ok[i].insecure) {
      char *p = payload(&c);
      assert_non_null(strstr(p, "\"docker_registry_insecure\":true"));
      free(p);
    }
    sysconfig_free(&c);
  }
  static const char *const bad[] = {
      "registry example",     "reg/path",           "https://mirror.example/v2",
      "ftp://mirror.example", "host:0",             "host:65536",
      "host:",                "host:abc",           ":5000",
      "-host",                "https://",           "https://user@host",
      "[zz::1]",              "host:05000",         "a\\u0001b",
      "host?x",               "[]:1",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char t[512];
    snprintf(t, sizeof(t), "{\"docker_registry\":\"%s\"}", bad[i]);
    expect_bad(t, "docker_registry");
  }
}

static void test_urls(void **state) {
  (void)state;
  expect_bad("{\"kms_urls\":[\"ftp://kms\"]}", "kms_urls[0]");
  expect_bad("{\"kms_urls\":[\"https://ok\",\"https://bad url\"]}", "kms_urls[1]");
  expect_bad("{\"kms_urls\":[\"https://a\\nb\"]}", "kms_urls[0]");
  expect_bad("{\"kms_urls\":[\"https://\"]}", "kms_urls[0]");
  expect_bad("{\"kms_urls\":[\"https:///path\"]}", "kms_urls[0]");
  expect_bad("{\"kms_urls\":[\"\"]}", "kms_urls[0]");
  expect_bad("{\"kms_urls\":[\"https://k\\u00e9\"]}", "kms_urls[0]");
  expect_bad("{\"gateway_urls\":[\"gw:9010\"]}", "gateway_urls[0]");
  expect_bad("{\"kms_url\":\"kms:8000\"}", "kms_url");
  expect_bad("{\"tproxy_url\":\"tp\"}", "tproxy_url");
  expect_bad("{\"pccs_url\":\"file:///etc/passwd\"}", "pccs_url");
  expect_bad("{\"host_api_url\":\"unix:/run/x\"}", "host_api_url");
  expect_bad("{\"host_api_url\":\"vsock://\"}", "host_api_url");
  expect_bad("{\"kms_urls\":[\"https://1\",\"https://2\",\"https://3\",\"https://4\","
             "\"https://5\",\"https://6\",\"https://7\",\"https://8\",\"https://9\"]}",
             "more than 8");

  struct sysconfig c;
  assert_int_equal(parse("{\"host_api_url\":\"vsock://2:10000/api\",\"pccs_url\":"
                         "\"https://pccs:8081/sgx/certification/v4/\"}",
                         &c, NULL, 0),
                   0);
  assert_string_equal(c.host_api_url, "vsock://2:10000/api");
  sysconfig_free(&c);

  /* the URL length cap */
  char *t = malloc(4096);
  assert_non_null(t);
  int n = snprintf(t, 4096, "{\"kms_urls\":[\"https://");
  memset(t + n, 'a', SYSCONFIG_MAX_URL - 8);
  strcpy(t + n + SYSCONFIG_MAX_URL - 8, "\"]}");
  assert_int_equal(parse(t, &c, NULL, 0), 0);
  assert_int_equal(strlen(c.kms_urls[0]), SYSCONFIG_MAX_URL);
  sysconfig_free(&c);
  memset(t + n, 'a', SYSCONFIG_MAX_URL - 7);
  strcpy(t + n + SYSCONFIG_MAX_URL - 7, "\"]}");
  expect_bad(t, "kms_urls[0]");
  free(t);
}

static void test_types(void **state) {
  (void)state;
  expect_bad("{\"kms_urls\":\"https://a\"}", "not an array");
  expect_bad("{\"kms_urls\":[1]}", "not a string");
  expect_bad("{\"gateway_urls\":{}}", "not an array");
  expect_bad("{\"pccs_url\":1}", "pccs_url is not a string");
  expect_bad("{\"docker_registry\":true}", "not a string");
  expect_bad("{\"host_api_url\":[]}", "not a string");
  expect_bad("{\"vm_config\":{}}", "vm_config is not a string");
  expect_bad("{\"kms_url\":[\"https://a\"]}", "kms_url is not a string");
  expect_bad("[]", "not a JSON object");
  expect_bad("", "not a JSON object");
  expect_bad("{\"a\":1} x", "not a JSON object");
  expect_bad("{\"a\":1,\"a\":2}", "not a JSON object");
  expect_bad("{\"pccs_url\":\"https://a\\u0000b\"}", "not a JSON object");
}

static void test_vm_config(void **state) {
  (void)state;
  expect_bad("{\"vm_config\":\"[1]\"}", "vm_config");
  expect_bad("{\"vm_config\":\"{\\\"a\\\":\"}", "vm_config");
  expect_bad("{\"vm_config\":\"not json\"}", "vm_config");
  /* just over 16 KiB of object text */
  size_t cap = SYSCONFIG_MAX_VM_CONFIG + 256;
  char *t = malloc(cap);
  assert_non_null(t);
  int n = snprintf(t, cap, "{\"vm_config\":\"{\\\"x\\\":\\\"");
  memset(t + n, 'a', SYSCONFIG_MAX_VM_CONFIG);
  strcpy(t + n + SYSCONFIG_MAX_VM_CONFIG, "\\\"}\"}");
  expect_bad(t, "vm_config");
  /* the same at 16 KiB exactly */
  size_t fill = SYSCONFIG_MAX_VM_CONFIG - strlen("{\"x\":\"\"}");
  strcpy(t + n + fill, "\\\"}\"}");
  struct sysconfig c;
  assert_int_equal(parse(t, &c, NULL, 0), 0);
  assert_int_equal(strlen(c.vm_config), SYSCONFIG_MAX_VM_CONFIG);
  sysconfig_free(&c);
  free(t);
}

static void test_caps(void **state) {
  (void)state;
  struct sysconfig c;
  char why[128];
  char *t = malloc(SYSCONFIG_MAX_BYTES + 2);
  assert_non_null(t);
  memset(t, ' ', SYSCONFIG_MAX_BYTES + 1);
  t[0] = '{';
  t[SYSCONFIG_MAX_BYTES] = '}';
  assert_int_equal(sysconfig_parse(t, SYSCONFIG_MAX_BYTES + 1, &c, why, sizeof(why)), -ENOBUFS);
  t[SYSCONFIG_MAX_BYTES - 1] = '}';
  assert_int_equal(sysconfig_parse(t, SYSCONFIG_MAX_BYTES, &c, why, sizeof(why)), 0);
  sysconfig_free(&c);
  free(t);
  assert_int_equal(sysconfig_parse(NULL, 1, &c, NULL, 0), -EINVAL);
  assert_int_equal(sysconfig_parse("{}", 2, NULL, NULL, 0), -EINVAL);
  assert_int_equal(sysconfig_payload(NULL, NULL), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_teepod_file), cmocka_unit_test(test_empty_and_seed),
      cmocka_unit_test(test_registry),    cmocka_unit_test(test_urls),
      cmocka_unit_test(test_types),       cmocka_unit_test(test_vm_config),
      cmocka_unit_test(test_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
