/* app-compose.json: checking, the compose hash and app id, wrapping a bare compose file. */
#include "attest/app_compose.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "base/json.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/hash.h"

bool app_compose_is_document(const char *text, size_t len) {
  _cleanup_json_ json_t *j = NULL;
  if (json_parse_buf(text, len, APP_COMPOSE_MAX, &j) < 0 || !json_is_object(j))
    return false;
  return json_object_get(j, "runner") || json_object_get(j, "manifest_version");
}

static int check_bool(const json_t *doc, const char *key, bool dflt, bool *ret, char **ret_why) {
  json_t *v = json_object_get(doc, key);
  *ret = dflt;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return str_reason(ret_why, -EINVAL, "app-compose.json: %s must be true or false", key);
  *ret = json_is_true(v);
  return 0;
}

static int check_string(const json_t *doc, const char *key, const char **ret, char **ret_why) {
  json_t *v = json_object_get(doc, key);
  *ret = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return str_reason(ret_why, -EINVAL, "app-compose.json: %s must be a string", key);
  *ret = json_string_value(v);
  return 0;
}

static int check_strings(const json_t *doc, const char *key, size_t max, char **ret_why) {
  json_t *v = json_object_get(doc, key), *e;
  size_t i;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_array(v))
    return str_reason(ret_why, -EINVAL, "app-compose.json: %s must be an array of strings", key);
  if (max && json_array_size(v) > max)
    return str_reason(ret_why, -EINVAL, "app-compose.json: %s has more than %zu entries", key, max);
  json_array_foreach(v, i, e) {
    if (!json_is_string(e))
      return str_reason(ret_why, -EINVAL, "app-compose.json: %s[%zu] must be a string", key, i);
  }
  return 0;
}

static int check_manifest_version(const json_t *doc, char **ret_why) {
  json_t *v = json_object_get(doc, "manifest_version");
  if (!v || json_is_null(v))
    return 0;
  if (json_is_integer(v)) {
    json_int_t n = json_integer_value(v);
    if (n < 1 || n > 1000)
      return str_reason(ret_why, -EINVAL, "app-compose.json: manifest_version %lld is not supported",
                 (long long)n);
    return 0;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d != 1.0 && d != 2.0)
      return str_reason(ret_why, -EINVAL, "app-compose.json: manifest_version must be 1, 2 or an integer");
    return 0;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    uint32_t n;
    /* canonical integer text only: no sign, no leading zero, no spaces */
    if (str_to_u32(s, &n) < 0 || n == 0 || s[0] == '0' || s[0] == '+' ||
        strspn(s, "0123456789") != strlen(s))
      return str_reason(ret_why, -EINVAL,
                 "app-compose.json: manifest_version \"%.20s\" is not a canonical integer", s);
    return 0;
  }
  return str_reason(ret_why, -EINVAL, "app-compose.json: manifest_version must be a number");
}

int app_compose_check(const char *doc, size_t len, struct app_compose_info *ret, char **ret_why) {
  _cleanup_json_ json_t *j = NULL;
  const char *runner = NULL, *s = NULL;
  int r;
  memset(ret, 0, sizeof(*ret));
  if (len > APP_COMPOSE_MAX)
    return str_reason(ret_why, -ENOBUFS, "app-compose.json: larger than %zu bytes", APP_COMPOSE_MAX);
  if ((r = json_parse_buf(doc, len, APP_COMPOSE_MAX, &j)) < 0)
    return str_reason(ret_why, r, "app-compose.json: not valid JSON (or duplicate keys)");
  if (!json_is_object(j))
    return str_reason(ret_why, -EINVAL, "app-compose.json: must be a JSON object");
  if ((r = check_manifest_version(j, ret_why)) < 0)
    return r;
  if ((r = check_string(j, "runner", &runner, ret_why)) < 0)
    return r;
  if (!runner)
    return str_reason(ret_why, -EINVAL, "app-compose.json: runner is missing");
  if (!str_eq(runner, "docker-compose") && !str_eq(runner, "nerdctl-compose") &&
      !str_eq(runner, "bash"))
    return str_reason(ret_why, -EINVAL,
               "app-compose.json: runner must be docker-compose, nerdctl-compose or bash");
  snprintf(ret->runner, sizeof(ret->runner), "%s", runner);
  const char *body_key = str_eq(runner, "bash") ? "bash_script" : "docker_compose_file";
  if ((r = check_string(j, body_key, &s, ret_why)) < 0)
    return r;
  if (!s)
    return str_reason(ret_why, -EINVAL, "app-compose.json: runner %s needs %s", runner, body_key);
  static const char *const strings[] = {"name", "docker_compose_file", "bash_script",
                                        "pre_launch_script", "snapshotter", "storage_fs",
                                        "key_provider", "key_provider_id"};
  for (size_t i = 0; i < ARRAY_SIZE(strings); i++)
    if ((r = check_string(j, strings[i], &s, ret_why)) < 0)
      return r;
  if ((r = check_string(j, "key_provider", &s, ret_why)) < 0)
    return r;
  if (s) {
    if (!str_eq(s, "none") && !str_eq(s, "kms") && !str_eq(s, "local") && !str_eq(s, "tpm"))
      return str_reason(ret_why, -EINVAL, "app-compose.json: key_provider must be none, kms, local or tpm");
    snprintf(ret->key_provider, sizeof(ret->key_provider), "%s", s);
  }
  if ((r = check_string(j, "key_provider_id", &s, ret_why)) < 0)
    return r;
  if (s && (strlen(s) % 2 || strspn(s, "0123456789abcdefABCDEF") != strlen(s)))
    return str_reason(ret_why, -EINVAL, "app-compose.json: key_provider_id must be hex");
  json_t *init = json_object_get(j, "init_script");
  if (init && !json_is_null(init) && !json_is_string(init) &&
      (r = check_strings(j, "init_script", 5, ret_why)) < 0)
    return r;
  if ((r = check_strings(j, "allowed_envs", 0, ret_why)) < 0 ||
      (r = check_strings(j, "features", 0, ret_why)) < 0)
    return r;
  bool tproxy = false, gateway = false, secure_time;
  if ((r = check_bool(j, "kms_enabled", false, &ret->kms_enabled, ret_why)) < 0 ||
      (r = check_bool(j, "gateway_enabled", false, &gateway, ret_why)) < 0 ||
      (r = check_bool(j, "tproxy_enabled", false, &tproxy, ret_why)) < 0 ||
      (r = check_bool(j, "local_key_provider_enabled", false, &ret->local_key_provider_enabled,
                      ret_why)) < 0 ||
      (r = check_bool(j, "no_instance_id", false, &ret->no_instance_id, ret_why)) < 0 ||
      (r = check_bool(j, "public_logs", false, &ret->public_logs, ret_why)) < 0 ||
      (r = check_bool(j, "public_sysinfo", false, &ret->public_sysinfo, ret_why)) < 0 ||
      (r = check_bool(j, "public_tcbinfo", true, &ret->public_tcbinfo, ret_why)) < 0 ||
      (r = check_bool(j, "secure_time", true, &secure_time, ret_why)) < 0)
    return r;
  ret->gateway_enabled = gateway || tproxy;
  sha256(doc, len, ret->compose_hash);
  memcpy(ret->app_id, ret->compose_hash, APP_ID_SIZE);
  return 0;
}

int app_compose_json_string(const char *s, size_t len, struct buf *out) {
  int r;
  if ((r = buf_append_u8(out, '"')) < 0)
    return r;
  size_t run = 0; /* bytes copied as they are, appended in one go */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[8];
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    default:
      if (c < 0x20) {
        snprintf(u, sizeof(u), "\\u%04x", c);
        esc = u;
      }
    }
    if (!esc) {
      run++;
      continue;
    }
    if ((r = buf_append(out, s + i - run, run)) < 0 || (r = buf_append_str(out, esc)) < 0)
      return r;
    run = 0;
  }
  if ((r = buf_append(out, s + len - run, run)) < 0)
    return r;
  return buf_append_u8(out, '"');
}

int app_compose_wrap(const char *compose, size_t compose_len, const char *name, struct buf *out) {
  int r;
  if (!compose || !name || memchr(compose, 0, compose_len) ||
      !str_utf8_valid(compose, compose_len) || !str_utf8_valid(name, strlen(name)))
    return -EINVAL;
  size_t start = out->len;
  /* keys in sorted order (all ASCII, so byte order is code-unit order) */
  if ((r = buf_append_str(out, "{\"allowed_envs\":[],\"docker_compose_file\":")) < 0 ||
      (r = app_compose_json_string(compose, compose_len, out)) < 0 ||
      (r = buf_append_str(out, ",\"gateway_enabled\":true,\"kms_enabled\":true,"
                               "\"local_key_provider_enabled\":false,\"manifest_version\":2,"
                               "\"name\":")) < 0 ||
      (r = app_compose_json_string(name, strlen(name), out)) < 0 ||
      (r = buf_append_str(out, ",\"no_instance_id\":false,\"public_logs\":true,"
                               "\"public_sysinfo\":true,\"public_tcbinfo\":true,"
                               "\"runner\":\"docker-compose\",\"secure_time\":false}")) < 0) {
    out->len = start;
    return r;
  }
  return 0;
}

void app_compose_mrconfigid(const uint8_t compose_hash[32], uint8_t ret[48]) {
  memset(ret, 0, 48);
  ret[0] = 0x01;
  memcpy(ret + 1, compose_hash, 32);
}
