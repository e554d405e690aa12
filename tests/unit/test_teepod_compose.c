/* Compose files: the YAML check and the app-compose.json document teepod makes from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/app_compose.h"
#include "base/buf.h"
#include "base/hex.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "teepod_compose.h"

#define COMPOSE "services:\n  web:\n    image: nginx:1.27\n    ports:\n      - \"80:80\"\n"

static int yaml(const char *t, char **why) {
  return teepod_compose_yaml_check(t, strlen(t), why);
}

static void test_yaml_check(void **state) {
  (void)state;
  char *why = NULL;
  static const char *const good[] = {
      COMPOSE,
      "{\"services\":{\"web\":{\"image\":\"nginx\"}}}", /* JSON is YAML */
      "---\nservices: {}\n...\n",
      "# a comment\nservices:\n  a: &x {image: busybox}\n  b: *x\n",
      "{}",
      "version: '3'\n",
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    why = NULL;
    if (yaml(good[i], &why) != 0)
      fail_msg("case %zu refused: %s", i, why ? why : "");
    assert_null(why);
  }
  static const struct {
    const char *text, *needle;
  } bad[] = {
      {"just a scalar\n", "mapping"},
      {"42", "mapping"},
      {"- a\n- b\n", "mapping"},
      {"[1, 2]", "mapping"},
      {"", "empty"},
      {"# only a comment\n", "empty"},
      {"---\n", "mapping"}, /* an empty document is a null scalar */
      {"services:\n  web: [unclosed\n", "not valid YAML"},
      {"services: {\n", "not valid YAML"},
      {"a: b\n  c: d\n", "not valid YAML"},
      {"a: \"unterminated\n", "not valid YAML"},
      {"\t- tab\n", "not valid YAML"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    why = NULL;
    int r = yaml(bad[i].text, &why);
    if (r != -EINVAL || !why || !strstr(why, bad[i].needle))
      fail_msg("case %zu (%s): r=%d why=%s", i, bad[i].text, r, why ? why : "(none)");
    free(why);
  }
  /* a NUL byte inside the text */
  static const char nul[] = "services:\n  web:\0\n    image: x\n";
  why = NULL;
  assert_int_equal(teepod_compose_yaml_check(nul, sizeof(nul) - 1, &why), -EINVAL);
  assert_non_null(why);
  free(why);
  /* invalid UTF-8 */
  why = NULL;
  assert_int_equal(yaml("a: \xff\xfe\n", &why), -EINVAL);
  free(why);
  /* a document after the first one that is broken fails the whole text */
  why = NULL;
  assert_int_equal(yaml("a: 1\n---\nb: [\n", &why), -EINVAL);
  free(why);
  /* why may be NULL */
  assert_int_equal(yaml("- a\n", NULL), -EINVAL);
  assert_int_equal(yaml("a: [\n", NULL), -EINVAL);
  assert_int_equal(yaml("", NULL), -EINVAL);
  assert_int_equal(yaml("a: b\n", NULL), 0);
}

static void test_build_document(void **state) {
  (void)state;
  /* an app-compose.json document is kept byte for byte (spacing, key order, unknown keys) */
  const char *doc = "{ \"runner\" : \"docker-compose\",\n  \"manifest_version\": 2,"
                    "\"docker_compose_file\": \"services: {}\",\"kms_enabled\":true,"
                    "\"x-extra\": [1, 2.50, {\"z\":null}] }\n";
  struct buf out = BUF_INIT(1 << 21);
  struct app_compose_info info;
  bool wrapped = true;
  char *why = NULL;
  assert_int_equal(teepod_compose_build(doc, strlen(doc), "ignored", &out, &info, &wrapped, &why),
                   0);
  assert_null(why);
  assert_false(wrapped);
  assert_int_equal(out.len, strlen(doc));
  assert_memory_equal(out.data, doc, out.len);
  uint8_t h[32];
  sha256(doc, strlen(doc), h);
  assert_memory_equal(info.compose_hash, h, 32);
  assert_memory_equal(info.app_id, h, 20);
  assert_true(info.kms_enabled);
  assert_false(info.gateway_enabled);
  assert_string_equal(info.runner, "docker-compose");
  buf_free(&out);

  /* a document that fails the check is refused, not wrapped */
  const char *badoc = "{\"runner\":\"podman\",\"docker_compose_file\":\"a: 1\"}";
  out = BUF_INIT(1 << 21);
  assert_int_equal(
      teepod_compose_build(badoc, strlen(badoc), "n", &out, &info, &wrapped, &why), -EINVAL);
  assert_non_null(strstr(why, "runner"));
  assert_int_equal(out.len, 0);
  free(why);
  why = NULL;
  buf_free(&out);
}

static void test_build_wrapped(void **state) {
  (void)state;
  struct buf out = BUF_INIT(1 << 21), want = BUF_INIT(1 << 21);
  struct app_compose_info info;
  bool wrapped = false;
  char *why = NULL;
  assert_int_equal(
      teepod_compose_build(COMPOSE, strlen(COMPOSE), "web", &out, &info, &wrapped, &why), 0);
  assert_null(why);
  assert_true(wrapped);
  /* the document is the one app_compose_wrap makes */
  assert_int_equal(app_compose_wrap(COMPOSE, strlen(COMPOSE), "web", &want), 0);
  assert_int_equal(out.len, want.len);
  assert_memory_equal(out.data, want.data, out.len);
  /* spelled out: keys sorted, the compose text as a JSON string */
  const char *expect =
      "{\"allowed_envs\":[],\"docker_compose_file\":\"services:\\n  web:\\n    image: "
      "nginx:1.27\\n    ports:\\n      - \\\"80:80\\\"\\n\",\"gateway_enabled\":true,"
      "\"kms_enabled\":true,\"local_key_provider_enabled\":false,\"manifest_version\":2,"
      "\"name\":\"web\",\"no_instance_id\":false,\"public_logs\":true,\"public_sysinfo\":true,"
      "\"public_tcbinfo\":true,\"runner\":\"docker-compose\",\"secure_time\":false}";
  assert_int_equal(out.len, strlen(expect));
  assert_memory_equal(out.data, expect, out.len);
  /* its hash is SHA-256 of exactly those bytes, the app id its first 20 */
  uint8_t h[32];
  sha256(expect, strlen(expect), h);
  assert_memory_equal(info.compose_hash, h, 32);
  assert_memory_equal(info.app_id, h, 20);
  assert_true(info.kms_enabled);
  assert_true(info.gateway_enabled);
  assert_true(info.public_logs);
  assert_false(info.no_instance_id);
  /* another name, another hash */
  struct buf other = BUF_INIT(1 << 21);
  struct app_compose_info info2;
  assert_int_equal(
      teepod_compose_build(COMPOSE, strlen(COMPOSE), "web2", &other, &info2, &wrapped, &why), 0);
  assert_memory_not_equal(info.compose_hash, info2.compose_hash, 32);
  buf_free(&other);
  buf_free(&out);
  buf_free(&want);

  /* a JSON compose file (no runner / manifest_version) is wrapped as text */
  const char *jc = "{\"services\":{\"web\":{\"image\":\"nginx\"}}}";
  out = BUF_INIT(1 << 21);
  assert_int_equal(teepod_compose_build(jc, strlen(jc), "j", &out, &info, &wrapped, &why), 0);
  assert_true(wrapped);
  assert_int_equal(buf_terminate(&out), 0);
  assert_non_null(strstr((const char *)out.data,
                         "\"docker_compose_file\":\"{\\\"services\\\":{\\\"web\\\":"));
  buf_free(&out);
}

static void test_build_refusals(void **state) {
  (void)state;
  static const struct {
    const char *text;
    size_t len;
    const char *needle;
  } bad[] = {
      {"", 0, "empty"},
      {"services:\0x: 1\n", 15, "NUL"},
      {"- a\n- b\n", 8, "mapping"},
      {"scalar", 6, "mapping"},
      {"services: [\n", 12, "YAML"},
      {"a: \xff\n", 5, NULL},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct buf out = BUF_INIT(1 << 21);
    struct app_compose_info info;
    bool wrapped = true;
    char *why = NULL;
    int r = teepod_compose_build(bad[i].text, bad[i].len, "n", &out, &info, &wrapped, &why);
    if (r != -EINVAL || !why || (bad[i].needle && !strstr(why, bad[i].needle)))
      fail_msg("case %zu: r=%d why=%s", i, r, why ? why : "(none)");
    assert_int_equal(out.len, 0);
    free(why);
    buf_free(&out);
  }
  /* over 1 MiB */
  size_t n = APP_COMPOSE_MAX + 1;
  char *big = malloc(n);
  assert_non_null(big);
  memcpy(big, "a: |\n", 5);
  memset(big + 5, 'x', n - 5);
  struct buf out = BUF_INIT(1 << 22);
  struct app_compose_info info;
  bool wrapped;
  char *why = NULL;
  assert_int_equal(teepod_compose_build(big, n, "n", &out, &info, &wrapped, &why), -EINVAL);
  assert_non_null(strstr(why, "1 MiB"));
  free(why);
  free(big);
  buf_free(&out);
  /* a name that is not valid UTF-8 */
  why = NULL;
  out = BUF_INIT(1 << 21);
  assert_int_equal(teepod_compose_build(COMPOSE, strlen(COMPOSE), "\xc3", &out, &info, &wrapped,
                                        &why),
                   -EINVAL);
  assert_non_null(why);
  free(why);
  buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_yaml_check),    cmocka_unit_test(test_build_document),
      cmocka_unit_test(test_build_wrapped), cmocka_unit_test(test_build_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
