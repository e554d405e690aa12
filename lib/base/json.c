#include "base/json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/base64.h"
#include "base/hex.h"

static void json_err_set(json_error_t *e, size_t pos, const char *msg) {
  if (!e)
    return;
  *e = (json_error_t){.line = -1, .column = -1, .position = (int)MIN(pos, (size_t)INT32_MAX)};
  snprintf(e->text, sizeof(e->text), "%s", msg);
}

int json_parse_buf_full(const char *s, size_t len, size_t max_len, size_t flags, json_t **ret,
                        json_error_t *ret_err) {
  if (len > max_len) {
    json_err_set(ret_err, max_len, "JSON text too large");
    return -ENOBUFS;
  }
  if (!s && len)
    return -EINVAL;
  const char *nul = len ? memchr(s, 0, len) : NULL;
  if (nul) {
    json_err_set(ret_err, (size_t)(nul - s), "NUL byte in JSON text");
    return -EBADMSG;
  }
  json_error_t e;
  json_t *j = json_loadb(s ? s : "", len, flags | JSON_REJECT_DUPLICATES, &e);
  if (!j) {
    if (ret_err)
      *ret_err = e;
    return -EBADMSG;
  }
  *ret = j;
  return 0;
}

int json_parse_buf(const char *s, size_t len, size_t max_len, json_t **ret) {
  return json_parse_buf_full(s, len, max_len, 0, ret, NULL);
}

struct dump_ctx {
  struct buf *out;
  int err;
};

static int dump_cb(const char *p, size_t n, void *data) {
  struct dump_ctx *c = data;
  int r = buf_append(c->out, p, n);
  if (r < 0) {
    c->err = r;
    return -1;
  }
  return 0;
}

int json_dump_buf(const json_t *j, size_t flags, struct buf *out) {
  if (!j)
    return -EINVAL;
  size_t start = out->len;
  struct dump_ctx c = {.out = out};
  if (json_dump_callback(j, dump_cb, &c, flags) < 0) {
    if (out->secret)
      secure_wipe(out->data + start, out->len - start);
    out->len = start;
    return c.err ? c.err : -EINVAL;
  }
  return 0;
}

char *json_dump_compact(const json_t *j) {
  return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The value of key: -EINVAL when obj is not an object, -ENOENT when absent or null. */
static int json_lookup(const json_t *obj, const char *key, json_t **ret) {
  if (!json_is_object(obj) || !key)
    return -EINVAL;
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v))
    return -ENOENT;
  *ret = v;
  return 0;
}

static int json_lookup_str(const json_t *obj, const char *key, const char **ret,
                           size_t *ret_len) {
  json_t *v;
  int r = json_lookup(obj, key, &v);
  if (r < 0)
    return r;
  if (!json_is_string(v))
    return -EINVAL;
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  if (strlen(s) != n)
    return -EINVAL; /* embedded NUL */
  *ret = s;
  if (ret_len)
    *ret_len = n;
  return 0;
}

int json_get_str(const json_t *obj, const char *key, const char **ret) {
  return json_lookup_str(obj, key, ret, NULL);
}

int json_get_i64(const json_t *obj, const char *key, int64_t *ret) {
  json_t *v;
  int r = json_lookup(obj, key, &v);
  if (r < 0)
    return r;
  if (!json_is_integer(v))
    return -EINVAL;
  *ret = (int64_t)json_integer_value(v);
  return 0;
}

int json_get_u64(const json_t *obj, const char *key, uint64_t *ret) {
  int64_t v;
  int r = json_get_i64(obj, key, &v);
  if (r < 0)
    return r;
  if (v < 0)
    return -ERANGE;
  *ret = (uint64_t)v;
  return 0;
}

int json_get_u32(const json_t *obj, const char *key, uint32_t *ret) {
  int64_t v;
  int r = json_get_i64(obj, key, &v);
  if (r < 0)
    return r;
  if (v < 0 || v > UINT32_MAX)
    return -ERANGE;
  *ret = (uint32_t)v;
  return 0;
}

int json_get_bool(const json_t *obj, const char *key, bool *ret) {
  json_t *v;
  int r = json_lookup(obj, key, &v);
  if (r < 0)
    return r;
  if (!json_is_boolean(v))
    return -EINVAL;
  *ret = json_is_true(v);
  return 0;
}

int json_get_object(const json_t *obj, const char *key, json_t **ret) {
  json_t *v;
  int r = json_lookup(obj, key, &v);
  if (r < 0)
    return r;
  if (!json_is_object(v))
    return -EINVAL;
  *ret = v;
  return 0;
}

int json_get_array(const json_t *obj, const char *key, json_t **ret) {
  json_t *v;
  int r = json_lookup(obj, key, &v);
  if (r < 0)
    return r;
  if (!json_is_array(v))
    return -EINVAL;
  *ret = v;
  return 0;
}

int json_get_hex(const json_t *obj, const char *key, uint8_t *out, size_t len) {
  const char *s;
  size_t n;
  int r = json_lookup_str(obj, key, &s, &n);
  if (r < 0)
    return r;
  return hex_decode_exact(s, n, out, len);
}

int json_get_hex_buf(const json_t *obj, const char *key, struct buf *out) {
  const char *s;
  size_t n;
  int r = json_lookup_str(obj, key, &s, &n);
  if (r < 0)
    return r;
  size_t start = out->len;
  r = hex_decode_buf(s, n, false, out);
  if (r < 0)
    out->len = start;
  return r;
}

int json_get_base64_buf(const json_t *obj, const char *key, struct buf *out) {
  const char *s;
  size_t n;
  int r = json_lookup_str(obj, key, &s, &n);
  if (r < 0)
    return r;
  return base64_decode_buf(s, n, out);
}

int json_set_new(json_t *obj, const char *key, json_t *value) {
  if (!json_is_object(obj) || !key) {
    json_decref(value);
    return -EINVAL;
  }
  if (!value)
    return -ENOMEM;
  return json_object_set_new(obj, key, value) < 0 ? -ENOMEM : 0;
}

int json_set_str(json_t *obj, const char *key, const char *value) {
  if (!value)
    return -EINVAL;
  return json_set_new(obj, key, json_string(value));
}

int json_set_strn(json_t *obj, const char *key, const char *value, size_t len) {
  if (!value && len)
    return -EINVAL;
  return json_set_new(obj, key, json_stringn(value ? value : "", len));
}

int json_set_hex(json_t *obj, const char *key, const void *data, size_t len) {
  char *s = hex_encode_alloc(data, len);
  if (!s)
    return -ENOMEM;
  int r = json_set_new(obj, key, json_stringn_nocheck(s, 2 * len));
  free(s);
  return r;
}

int json_set_base64(json_t *obj, const char *key, const void *data, size_t len) {
  char *s = base64_encode_alloc(data, len);
  if (!s)
    return -ENOMEM;
  int r = json_set_new(obj, key, json_string_nocheck(s));
  free(s);
  return r;
}

int json_set_u64(json_t *obj, const char *key, uint64_t value) {
  if (value > INT64_MAX)
    return -ERANGE;
  return json_set_new(obj, key, json_integer((json_int_t)value));
}

int json_set_i64(json_t *obj, const char *key, int64_t value) {
  return json_set_new(obj, key, json_integer((json_int_t)value));
}

int json_set_bool(json_t *obj, const char *key, bool value) {
  return json_set_new(obj, key, json_boolean(value));
}
