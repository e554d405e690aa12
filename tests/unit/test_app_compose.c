/* app-compose.json: the check's rules, compose hash and app id, JSON.stringify string escaping,
 * mrconfigid, and the wrapped document's hash against the published JS SDK's getComposeHash
 * (tests/data/teepod/compose-vectors.json, made by make-compose-vectors.mjs beside it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/app_compose.h"
#include "base/buf.h"
#include "base/hex.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "testutil.h"

static int check(const char *doc, struct app_compose_info *info, char **why) {
  return app_compose_check(doc, strlen(doc), info, why);
}

#define BASE "\"runner\":\"docker-compose\",\"docker_compose_file\":\"services: {}\""

/* doc = {BASE, extra} */
static int check_with(const char *extra, char **why) {
  struct app_compose_info info;
  _cleanup_free_ char *doc = str_printf("{" BASE "%s%s}", *extra ? "," : "", extra);
  assert_non_null(doc);
  return check(doc, &info, why);
}

static void test_minimal_and_defaults(void **state) {
  (void)state;
  struct app_compose_info info;
  char *why = NULL;
  const char *doc = "{" BASE "}";
  memset(&info, 0xaa, sizeof(info));
  assert_int_equal(check(doc, &info, &why), 0);
  assert_null(why);
  assert_string_equal(info.runner, "docker-compose");
  assert_string_equal(info.key_provider, "");
  /* upstream AppCompose's defaults */
  assert_false(info.kms_enabled);
  assert_false(info.gateway_enabled);
  assert_false(info.local_key_provider_enabled);
  assert_false(info.no_instance_id);
  assert_false(info.public_logs);
  assert_false(info.public_sysinfo);
  assert_true(info.public_tcbinfo);
  /* the hash is SHA-256 of the exact bytes, the app id its first 20 bytes */
  uint8_t h[32];
  sha256(doc, strlen(doc), h);
  assert_memory_equal(info.compose_hash, h, 32);
  assert_memory_equal(info.app_id, h, APP_ID_SIZE);
  /* one space more: another hash (never re-serialised) */
  const char *doc2 = "{ " BASE "}";
  struct app_compose_info info2;
  assert_int_equal(check(doc2, &info2, &why), 0);
  assert_memory_not_equal(info.compose_hash, info2.compose_hash, 32);
  sha256(doc2, strlen(doc2), h);
  assert_memory_equal(info2.compose_hash, h, 32);
  assert_memory_equal(info2.app_id, h, APP_ID_SIZE);
}

static void test_fields(void **state) {
  (void)state;
  struct app_compose_info info;
  char *why = NULL;
  const char *doc = "{\"runner\":\"bash\",\"bash_script\":\"echo hi\",\"kms_enabled\":true,"
                    "\"tproxy_enabled\":true,\"local_key_provider_enabled\":true,"
                    "\"no_instance_id\":true,\"public_logs\":true,\"public_sysinfo\":true,"
                    "\"public_tcbinfo\":false,\"key_provider\":\"local\","
                    "\"key_provider_id\":\"00AAff\",\"init_script\":\"x\","
                    "\"allowed_envs\":[\"A\",\"B\"],\"features\":[],\"x-unknown\":{\"k\":[1]},"
                    "\"manifest_version\":\"3\",\"name\":null,\"secure_time\":null}";
  assert_int_equal(check(doc, &info, &why), 0);
  assert_null(why);
  assert_string_equal(info.runner, "bash");
  assert_true(info.kms_enabled);
  assert_true(info.gateway_enabled); /* tproxy_enabled is its seed-era alias */
  assert_true(info.local_key_provider_enabled);
  assert_true(info.no_instance_id);
  assert_true(info.public_logs);
  assert_true(info.public_sysinfo);
  assert_false(info.public_tcbinfo);
  assert_string_equal(info.key_provider, "local");
  /* gateway_enabled alone, and false with tproxy_enabled true: either one */
  assert_int_equal(check_with("\"gateway_enabled\":true", &why), 0);
  assert_int_equal(check("{" BASE ",\"gateway_enabled\":false,\"tproxy_enabled\":true}", &info,
                         &why),
                   0);
  assert_true(info.gateway_enabled);
  /* every runner, every key provider */
  assert_int_equal(check("{\"runner\":\"nerdctl-compose\",\"docker_compose_file\":\"\"}", &info,
                         &why),
                   0);
  assert_string_equal(info.runner, "nerdctl-compose");
  static const char *const kp[] = {"none", "kms", "local", "tpm"};
  for (size_t i = 0; i < 4; i++) {
    _cleanup_free_ char *e = str_printf("\"key_provider\":\"%s\"", kp[i]);
    assert_int_equal(check_with(e, &why), 0);
  }
  /* init_script: a string or up to 5 strings */
  assert_int_equal(check_with("\"init_script\":[\"a\",\"b\",\"c\",\"d\",\"e\"]", &why), 0);
  assert_int_equal(check_with("\"init_script\":[]", &why), 0);
  assert_int_equal(check_with("\"init_script\":null", &why), 0);
  /* manifest_version forms */
  static const char *const mv_ok[] = {"1", "2", "2.0", "1.0", "1000", "\"1\"", "\"3\"",
                                      "\"10\"", "null"};
  for (size_t i = 0; i < sizeof(mv_ok) / sizeof(mv_ok[0]); i++) {
    _cleanup_free_ char *e = str_printf("\"manifest_version\":%s", mv_ok[i]);
    if (check_with(e, &why) != 0)
      fail_msg("manifest_version %s refused: %s", mv_ok[i], why);
  }
}

static void test_refusals(void **state) {
  (void)state;
  static const struct {
    const char *extra, *needle;
  } bad[] = {
      /* strings */
      {"\"name\":1", "name"},
      {"\"docker_compose_file\":{}", NULL}, /* duplicate key: BASE has it */
      {"\"bash_script\":[]", "bash_script"},
      {"\"pre_launch_script\":true", "pre_launch_script"},
      {"\"snapshotter\":1", "snapshotter"},
      {"\"storage_fs\":[\"ext4\"]", "storage_fs"},
      {"\"key_provider\":1", "key_provider"},
      {"\"key_provider\":\"KMS\"", "key_provider"},
      {"\"key_provider\":\"\"", "key_provider"},
      {"\"key_provider\":\"sgx\"", "key_provider"},
      {"\"key_provider_id\":\"abc\"", "key_provider_id"},
      {"\"key_provider_id\":\"0x00\"", "key_provider_id"},
      {"\"key_provider_id\":\"zz\"", "key_provider_id"},
      {"\"key_provider_id\":12", "key_provider_id"},
      /* booleans */
      {"\"kms_enabled\":\"true\"", "kms_enabled"},
      {"\"gateway_enabled\":1", "gateway_enabled"},
      {"\"tproxy_enabled\":0", "tproxy_enabled"},
      {"\"local_key_provider_enabled\":[]", "local_key_provider_enabled"},
      {"\"no_instance_id\":\"no\"", "no_instance_id"},
      {"\"public_logs\":{}", "public_logs"},
      {"\"public_sysinfo\":\"\"", "public_sysinfo"},
      {"\"public_tcbinfo\":1.0", "public_tcbinfo"},
      {"\"secure_time\":\"yes\"", "secure_time"},
      /* arrays of strings */
      {"\"allowed_envs\":\"A\"", "allowed_envs"},
      {"\"allowed_envs\":[\"A\",1]", "allowed_envs[1]"},
      {"\"allowed_envs\":{}", "allowed_envs"},
      {"\"features\":[null]", "features[0]"},
      {"\"init_script\":1", "init_script"},
      {"\"init_script\":{}", "init_script"},
      {"\"init_script\":[\"a\",2]", "init_script[1]"},
      {"\"init_script\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]", "more than 5"},
      /* manifest_version */
      {"\"manifest_version\":0", "manifest_version"},
      {"\"manifest_version\":-2", "manifest_version"},
      {"\"manifest_version\":1001", "manifest_version"},
      {"\"manifest_version\":2.5", "manifest_version"},
      {"\"manifest_version\":3.0", "manifest_version"},
      {"\"manifest_version\":\"03\"", "manifest_version"},
      {"\"manifest_version\":\"+3\"", "manifest_version"},
      {"\"manifest_version\":\"-3\"", "manifest_version"},
      {"\"manifest_version\":\" 3\"", "manifest_version"},
      {"\"manifest_version\":\"3 \"", "manifest_version"},
      {"\"manifest_version\":\"0\"", "manifest_version"},
      {"\"manifest_version\":\"\"", "manifest_version"},
      {"\"manifest_version\":\"2.0\"", "manifest_version"},
      {"\"manifest_version\":\"0x2\"", "manifest_version"},
      {"\"manifest_version\":\"99999999999\"", "manifest_version"},
      {"\"manifest_version\":true", "manifest_version"},
      {"\"manifest_version\":[2]", "manifest_version"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *why = NULL;
    int r = check_with(bad[i].extra, &why);
    if (r >= 0 || !why || (bad[i].needle && !strstr(why, bad[i].needle)))
      fail_msg("case %zu (%s): r=%d why=%s", i, bad[i].extra, r, why ? why : "(none)");
    free(why);
  }
  /* runners and their bodies */
  static const struct {
    const char *doc, *needle;
  } docs[] = {
      {"{\"docker_compose_file\":\"a: 1\"}", "runner is missing"},
      {"{\"runner\":null,\"docker_compose_file\":\"a: 1\"}", "runner is missing"},
      {"{\"runner\":1,\"docker_compose_file\":\"a: 1\"}", "runner"},
      {"{\"runner\":\"podman\",\"docker_compose_file\":\"a: 1\"}", "runner"},
      {"{\"runner\":\"Docker-Compose\",\"docker_compose_file\":\"a: 1\"}", "runner"},
      {"{\"runner\":\"docker-compose\"}", "docker_compose_file"},
      {"{\"runner\":\"docker-compose\",\"docker_compose_file\":null}", "docker_compose_file"},
      {"{\"runner\":\"docker-compose\",\"bash_script\":\"x\"}", "docker_compose_file"},
      {"{\"runner\":\"nerdctl-compose\"}", "docker_compose_file"},
      {"{\"runner\":\"bash\"}", "bash_script"},
      {"{\"runner\":\"bash\",\"docker_compose_file\":\"a: 1\"}", "bash_script"},
      {"{\"runner\":\"bash\",\"bash_script\":5}", "bash_script"},
      /* not an object, not JSON, duplicates */
      {"[]", "object"},
      {"\"x\"", "JSON"},
      {"null", "JSON"},
      {"", "JSON"},
      {"{", "JSON"},
      {"{\"runner\":\"bash\",\"bash_script\":\"x\"} x", "JSON"},
      {"{\"runner\":\"bash\",\"runner\":\"bash\",\"bash_script\":\"x\"}", "duplicate"},
      {"{\"runner\":\"bash\",\"bash_script\":\"a\\u0000b\"}", "JSON"},
  };
  for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
    struct app_compose_info info;
    char *why = NULL;
    int r = check(docs[i].doc, &info, &why);
    if (r >= 0 || !why || !strstr(why, docs[i].needle))
      fail_msg("doc %zu (%s): r=%d why=%s", i, docs[i].doc, r, why ? why : "(none)");
    free(why);
  }
  /* a NUL byte in the text, an oversized document; why may be NULL */
  struct app_compose_info info;
  char *why = NULL;
  static const char nul[] = "{\"runner\":\"bash\",\"bash_script\":\"x\"}\0";
  assert_true(app_compose_check(nul, sizeof(nul) - 1, &info, &why) < 0);
  free(why);
  why = NULL;
  size_t n = APP_COMPOSE_MAX + 1;
  char *big = malloc(n);
  assert_non_null(big);
  memset(big, ' ', n);
  memcpy(big, "{" BASE "}", strlen("{" BASE "}"));
  assert_int_equal(app_compose_check(big, n, &info, &why), -ENOBUFS);
  assert_non_null(why);
  free(why);
  /* exactly the limit is fine */
  assert_int_equal(app_compose_check(big, n - 1, &info, NULL), 0);
  free(big);
  assert_int_equal(check("[]", &info, NULL), -EINVAL);
}

static void test_is_document(void **state) {
  (void)state;
  static const char *const yes[] = {
      "{\"runner\":\"docker-compose\"}",
      "{\"manifest_version\":2}",
      "{\"runner\":null}", /* named, even if the check will refuse it */
      " {\"services\":{},\"runner\":1} ",
  };
  static const char *const no[] = {
      "services:\n  web: {}\n",
      "{\"services\":{\"web\":{\"image\":\"x\"}}}",
      "{\"services\":{\"runner\":\"bash\"}}", /* only at the top level */
      "[{\"runner\":\"bash\"}]",
      "",
      "{",
      "{\"runner\":1,\"runner\":2}",
      "\"runner\"",
  };
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
    if (!app_compose_is_document(yes[i], strlen(yes[i])))
      fail_msg("not a document: %s", yes[i]);
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
    if (app_compose_is_document(no[i], strlen(no[i])))
      fail_msg("a document: %s", no[i]);
  assert_false(app_compose_is_document("{\"runner\":1}\0", 13));
}

static void json_str(const char *in, size_t n, const char *want) {
  struct buf b = BUF_INIT(1 << 20);
  assert_int_equal(app_compose_json_string(in, n, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
    fail_msg("got %s, expected %s", (char *)b.data, want);
  buf_free(&b);
}

static void test_json_string(void **state) {
  (void)state;
  json_str("", 0, "\"\"");
  json_str("plain", 5, "\"plain\"");
  json_str("q\"b\\s/", 6, "\"q\\\"b\\\\s/\""); /* '/' is not escaped */
  json_str("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
  json_str("\x01\x1f\x0b\x1b\x00", 5, "\"\\u0001\\u001f\\u000b\\u001b\\u0000\"");
  json_str("\x1a\x0e", 2, "\"\\u001a\\u000e\""); /* lowercase hex */
  /* DEL, C1 and other non-ASCII as they are */
  json_str("\x7f\xc2\x80\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80", 12,
           "\"\x7f\xc2\x80\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\"");
  /* escapes between runs of plain bytes */
  json_str("ab\ncd\"ef", 8, "\"ab\\ncd\\\"ef\"");
  /* every C0 control, against the table */
  for (int c = 0; c < 0x20; c++) {
    char in[1] = {(char)c}, want[16];
    switch (c) {
    case '\b': snprintf(want, sizeof(want), "\"\\b\""); break;
    case '\f': snprintf(want, sizeof(want), "\"\\f\""); break;
    case '\n': snprintf(want, sizeof(want), "\"\\n\""); break;
    case '\r': snprintf(want, sizeof(want), "\"\\r\""); break;
    case '\t': snprintf(want, sizeof(want), "\"\\t\""); break;
    default:
      snprintf(want, sizeof(want), "\"\\u00%c%c\"", "01"[c >> 4], "0123456789abcdef"[c & 15]);
    }
    json_str(in, 1, want);
  }
  /* the output is JSON that reads back to the input */
  const char in[] = "x\"\\\x01\x7f\xc3\xa9\n";
  struct buf b = BUF_INIT(1 << 20);
  assert_int_equal(app_compose_json_string(in, sizeof(in) - 1, &b), 0);
  json_t *j = json_loadb((const char *)b.data, b.len, JSON_DECODE_ANY, NULL);
  assert_non_null(j);
  assert_int_equal(json_string_length(j), sizeof(in) - 1);
  assert_memory_equal(json_string_value(j), in, sizeof(in) - 1);
  json_decref(j);
  buf_free(&b);
  /* a full buffer is an error */
  struct buf small = BUF_INIT(4);
  assert_true(app_compose_json_string("abcdef", 6, &small) < 0);
  buf_free(&small);
}

static void test_mrconfigid(void **state) {
  (void)state;
  uint8_t h[32], m[48];
  for (int i = 0; i < 32; i++)
    h[i] = (uint8_t)(0xa0 + i);
  memset(m, 0xee, sizeof(m));
  app_compose_mrconfigid(h, m);
  assert_int_equal(m[0], 0x01);
  assert_memory_equal(m + 1, h, 32);
  for (int i = 33; i < 48; i++)
    assert_int_equal(m[i], 0);
}

static void test_wrap_refusals(void **state) {
  (void)state;
  struct buf b = BUF_INIT(1 << 20);
  assert_int_equal(buf_append_str(&b, "keep"), 0);
  assert_int_equal(app_compose_wrap("a: \xff", 4, "n", &b), -EINVAL);
  assert_int_equal(app_compose_wrap("a: \xc3", 4, "n", &b), -EINVAL);   /* cut sequence */
  assert_int_equal(app_compose_wrap("a: \xc0\x80", 5, "n", &b), -EINVAL); /* overlong NUL */
  assert_int_equal(app_compose_wrap("a: \xed\xa0\x80", 6, "n", &b), -EINVAL); /* surrogate */
  assert_int_equal(app_compose_wrap("a:\0b", 4, "n", &b), -EINVAL);
  assert_int_equal(app_compose_wrap("a: 1", 4, "\xff", &b), -EINVAL);
  assert_int_equal(app_compose_wrap(NULL, 0, "n", &b), -EINVAL);
  assert_int_equal(app_compose_wrap("a: 1", 4, NULL, &b), -EINVAL);
  assert_int_equal(b.len, 4);
  /* no room: the buffer is left as it was */
  struct buf small = BUF_INIT(64);
  assert_int_equal(buf_append_str(&small, "keep"), 0);
  assert_true(app_compose_wrap("a: 1", 4, "n", &small) < 0);
  assert_int_equal(small.len, 4);
  assert_memory_equal(small.data, "keep", 4);
  buf_free(&small);
  /* appended after what is there */
  assert_int_equal(app_compose_wrap("a: 1", 4, "n", &b), 0);
  assert_memory_equal(b.data, "keep{\"allowed_envs\":[]", 22);
  buf_free(&b);
}

/* The SDK's getComposeHash over the wrapped document equals SHA-256 of app_compose_wrap. */
static void test_sdk_vectors(void **state) {
  (void)state;
  struct buf text = BUF_INIT(1 << 22);
  tu_read_file(tu_source_path("tests/data/teepod/compose-vectors.json"), &text);
  json_error_t je;
  json_t *v = json_loadb((const char *)text.data, text.len, 0, &je);
  if (!v)
    fail_msg("compose-vectors.json: %s (line %d)", je.text, je.line);
  assert_true(json_is_array(v));
  size_t i, n_wrapped = 0, n_docs = 0;
  json_t *e;
  json_array_foreach(v, i, e) {
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *hash = json_string_value(json_object_get(e, "hash"));
    json_t *compose = json_object_get(e, "compose"), *document = json_object_get(e, "document");
    assert_non_null(name);
    assert_non_null(hash);
    assert_int_equal(strlen(hash), 64);
    struct buf doc = BUF_INIT(1 << 22);
    if (compose) {
      assert_true(json_is_string(compose));
      assert_int_equal(app_compose_wrap(json_string_value(compose), json_string_length(compose),
                                        name, &doc),
                       0);
      n_wrapped++;
    } else {
      assert_true(json_is_string(document));
      assert_int_equal(buf_append(&doc, json_string_value(document), json_string_length(document)),
                       0);
      n_docs++;
    }
    uint8_t h[32];
    sha256(doc.data, doc.len, h);
    char hex[65];
    hex_encode(h, 32, hex);
    if (strcmp(hex, hash) != 0)
      fail_msg("vector %zu (name %s): %s, the SDK has %s", i, name, hex, hash);
    /* the check passes and gives the same hash and app id */
    struct app_compose_info info;
    char *why = NULL;
    if (app_compose_check((const char *)doc.data, doc.len, &info, &why) != 0)
      fail_msg("vector %zu: %s", i, why);
    assert_memory_equal(info.compose_hash, h, 32);
    assert_memory_equal(info.app_id, h, APP_ID_SIZE);
    assert_true(app_compose_is_document((const char *)doc.data, doc.len));
    buf_free(&doc);
  }
  assert_true(n_wrapped >= 10);
  assert_int_equal(n_docs, 1);
  json_decref(v);
  buf_free(&text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_minimal_and_defaults),
      cmocka_unit_test(test_fields),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_is_document),
      cmocka_unit_test(test_json_string),
      cmocka_unit_test(test_mrconfigid),
      cmocka_unit_test(test_wrap_refusals),
      cmocka_unit_test(test_sdk_vectors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
