/* Parses arbitrary bytes as JSON with the capped parser, dumps what it accepts, and checks
 * that the dump parses back to the same dump; exercises the typed getters on objects. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void poke_getters(json_t *obj) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    const char *s;
    uint64_t u;
    uint32_t u32;
    int64_t i;
    bool b;
    json_t *o;
    uint8_t h[32];
    struct buf hb = BUF_INIT(256);
    int r = json_get_str(obj, key, &s);
    if (r == 0 && (!json_is_string(v) || strlen(s) != json_string_length(v)))
      abort();
    r = json_get_u64(obj, key, &u);
    if (r == 0 && (!json_is_integer(v) || (int64_t)u != json_integer_value(v)))
      abort();
    (void)json_get_u32(obj, key, &u32);
    r = json_get_i64(obj, key, &i);
    if ((r == 0) != json_is_integer(v))
      abort();
    (void)json_get_bool(obj, key, &b);
    (void)json_get_object(obj, key, &o);
    (void)json_get_array(obj, key, &o);
    (void)json_get_hex(obj, key, h, sizeof(h));
    (void)json_get_hex_buf(obj, key, &hb);
    buf_reset(&hb);
    (void)json_get_base64_buf(obj, key, &hb);
    buf_free(&hb);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *j = NULL;
  json_error_t e;
  size_t flags = size && (data[0] & 1) ? JSON_DECODE_ANY : 0;
  int r = json_parse_buf_full((const char *)data, size, 1 << 16, flags, &j, &e);
  if (r < 0) {
    if (r != -EBADMSG && r != -ENOBUFS)
      abort();
    return 0;
  }
  if (json_is_object(j))
    poke_getters(j);
  struct buf a = BUF_INIT(1 << 20), b = BUF_INIT(1 << 20);
  if (json_dump_buf(j, JSON_COMPACT | JSON_ENCODE_ANY, &a) == 0) {
    json_t *k = NULL;
    if (json_parse_buf_full((const char *)a.data, a.len, a.len, flags, &k, &e) < 0) {
      fprintf(stderr, "reparse failed: %s\n%.*s\n", e.text, (int)a.len, (const char *)a.data);
      abort();
    }
    if (json_dump_buf(k, JSON_COMPACT | JSON_ENCODE_ANY, &b) < 0)
      abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
      abort();
    json_decref(k);
  }
  buf_free(&a);
  buf_free(&b);
  json_decref(j);
  return 0;
}
