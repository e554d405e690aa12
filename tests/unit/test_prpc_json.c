#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "dstack_guest.pb-c.h"
#include "net/prpc_json.h"
#include "prpc_test.pb-c.h"
#include "prpc_test2.pb-c.h"
#include "tappd_rpc.pb-c.h"
#include "testutil.h"

static const ProtobufCMessageDescriptor *const all_d = &prpctest__all_types__descriptor;

static json_t *parse(const char *s) {
  json_t *j = NULL;
  assert_int_equal(json_parse_buf_full(s, strlen(s), 1 << 24, JSON_DECODE_ANY, &j, NULL), 0);
  return j;
}

static ProtobufCMessage *decode_ok(const ProtobufCMessageDescriptor *d, const char *text) {
  ProtobufCMessage *m = NULL;
  char err[256];
  int r = prpc_json_text_to_message(d, text, strlen(text), 1 << 24, 0, &m, err, sizeof(err));
  if (r < 0)
    fail_msg("decode failed (%d): %s", r, err);
  assert_non_null(m);
  return m;
}

/* Decoding must fail with r and an error naming `field`. */
static void decode_bad(const ProtobufCMessageDescriptor *d, const char *text, int r,
                       const char *field) {
  ProtobufCMessage *m = NULL;
  char err[256];
  int got = prpc_json_text_to_message(d, text, strlen(text), 1 << 24, 0, &m, err, sizeof(err));
  if (got != r)
    fail_msg("%s: expected %d, got %d (%s)", text, r, got, err);
  assert_null(m);
  if (field) {
    char want[128];
    snprintf(want, sizeof(want), "field '%s'", field);
    if (!strstr(err, want))
      fail_msg("%s: error '%s' does not name %s", text, err, want);
  }
}

static void assert_json_eq(const json_t *got, const char *want_text) {
  _cleanup_json_ json_t *want = parse(want_text);
  if (!json_equal(got, want)) {
    _cleanup_free_ char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
    _cleanup_free_ char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
    fail_msg("JSON mismatch\n got:  %s\n want: %s", g, w);
  }
}

static const char full_in[] =
    "{\"i32\":-2147483648,\"s32\":-7,\"sf32\":2147483647,\"u32\":4294967295,\"f32\":123,"
    "\"i64\":-9223372036854775808,\"s64\":-1,\"sf64\":9223372036854775807,"
    "\"u64\":9223372036854775807,\"f64\":42,\"fl\":1.5,\"db\":-2.25,\"b\":true,"
    "\"s\":\"h\\u00e9llo \\\"q\\\"\",\"by\":\"0xDEADbeef\",\"color\":\"GREEN\","
    "\"inner\":{\"name\":\"a\",\"n\":1,\"child\":{\"name\":\"b\",\"n\":2,\"child\":null,\"kids\":[]},"
    "\"kids\":[{\"name\":\"k\"}]},"
    "\"r_i32\":[1,-2,3],\"r_u64\":[0,18],\"r_db\":[0.5,2],\"r_b\":[true,false],"
    "\"r_s\":[\"x\",\"\",\"z\"],\"r_by\":[\"00ff\",\"0x\",\"\"],\"r_color\":[1,\"GREEN\",-1],"
    "\"r_inner\":[{\"n\":5},{\"name\":\"q\"}],\"r_s64\":[-5,5],\"r_fl\":[0.25],\"r_f32\":[7],"
    "\"o_m\":{\"name\":\"one\"},\"unknown_key\":{\"deep\":[1,2,3]}}";

/* What full_in encodes to: every field, bytes as plain lowercase hex, enums as numbers. */
static const char full_out[] =
    "{\"i32\":-2147483648,\"s32\":-7,\"sf32\":2147483647,\"u32\":4294967295,\"f32\":123,"
    "\"i64\":-9223372036854775808,\"s64\":-1,\"sf64\":9223372036854775807,"
    "\"u64\":9223372036854775807,\"f64\":42,\"fl\":1.5,\"db\":-2.25,\"b\":true,"
    "\"s\":\"h\\u00e9llo \\\"q\\\"\",\"by\":\"deadbeef\",\"color\":2,"
    "\"inner\":{\"name\":\"a\",\"n\":1,\"child\":{\"name\":\"b\",\"n\":2,\"child\":null,\"kids\":[]},"
    "\"kids\":[{\"name\":\"k\",\"n\":0,\"child\":null,\"kids\":[]}]},"
    "\"r_i32\":[1,-2,3],\"r_u64\":[0,18],\"r_db\":[0.5,2.0],\"r_b\":[true,false],"
    "\"r_s\":[\"x\",\"\",\"z\"],\"r_by\":[\"00ff\",\"\",\"\"],\"r_color\":[1,2,-1],"
    "\"r_inner\":[{\"name\":\"\",\"n\":5,\"child\":null,\"kids\":[]},"
    "{\"name\":\"q\",\"n\":0,\"child\":null,\"kids\":[]}],\"r_s64\":[-5,5],\"r_fl\":[0.25],"
    "\"r_f32\":[7],\"o_m\":{\"name\":\"one\",\"n\":0,\"child\":null,\"kids\":[]}}";

static void test_all_types_roundtrip(void **state) {
  (void)state;
  ProtobufCMessage *m = decode_ok(all_d, full_in);
  Prpctest__AllTypes *a = (Prpctest__AllTypes *)m;
  assert_int_equal(a->i32, INT32_MIN);
  assert_int_equal(a->s32, -7);
  assert_int_equal(a->sf32, INT32_MAX);
  assert_true(a->u32 == UINT32_MAX);
  assert_true(a->i64 == INT64_MIN);
  assert_true(a->sf64 == INT64_MAX);
  assert_true(a->u64 == (uint64_t)INT64_MAX);
  assert_true(a->fl == 1.5f);
  assert_true(a->db == -2.25);
  assert_true(a->b);
  assert_string_equal(a->s, "h\xc3\xa9llo \"q\"");
  assert_int_equal(a->by.len, 4);
  assert_memory_equal(a->by.data, "\xde\xad\xbe\xef", 4);
  assert_int_equal(a->color, PRPCTEST__COLOR__GREEN);
  assert_non_null(a->inner);
  assert_string_equal(a->inner->child->name, "b");
  assert_int_equal(a->inner->n_kids, 1);
  assert_int_equal(a->n_r_s, 3);
  assert_string_equal(a->r_s[2], "z");
  assert_int_equal(a->n_r_by, 3);
  assert_int_equal(a->r_by[0].len, 2);
  assert_int_equal(a->r_by[1].len, 0);
  assert_int_equal(a->r_color[2], PRPCTEST__COLOR__NEGATIVE);
  assert_int_equal(a->choice_case, PRPCTEST__ALL_TYPES__CHOICE_O_M);
  assert_string_equal(a->o_m->name, "one");

  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json(m, &j), 0);
  assert_json_eq(j, full_out);
  /* Emission follows the descriptor order. */
  assert_string_equal(json_object_iter_key(json_object_iter(j)), "i32");
  json_decref(j);

  /* Through the protobuf wire format and back: the same JSON. */
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *wire = malloc(n);
  assert_non_null(wire);
  assert_int_equal(protobuf_c_message_pack(m, wire), n);
  ProtobufCMessage *back = protobuf_c_message_unpack(all_d, NULL, n, wire);
  free(wire);
  assert_non_null(back);
  assert_int_equal(prpc_message_to_json(back, &j), 0);
  assert_json_eq(j, full_out);
  json_decref(j);

  /* JSON -> message -> JSON -> message: the re-decoded message packs identically. */
  assert_int_equal(prpc_message_to_json(m, &j), 0);
  ProtobufCMessage *again = NULL;
  char err[128];
  assert_int_equal(prpc_json_to_message(all_d, j, &again, err, sizeof(err)), 0);
  json_decref(j);
  assert_int_equal(protobuf_c_message_get_packed_size(again), n);

  prpc_message_free(again);
  prpc_message_free(back);
  prpc_message_free(m);
}

static void test_defaults_all_emitted(void **state) {
  (void)state;
  ProtobufCMessage *m = decode_ok(all_d, "{}");
  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json(m, &j), 0);
  assert_json_eq(j,
                 "{\"i32\":0,\"s32\":0,\"sf32\":0,\"u32\":0,\"f32\":0,\"i64\":0,\"s64\":0,"
                 "\"sf64\":0,\"u64\":0,\"f64\":0,\"fl\":0.0,\"db\":0.0,\"b\":false,\"s\":\"\","
                 "\"by\":\"\",\"color\":0,\"inner\":null,\"r_i32\":[],\"r_u64\":[],\"r_db\":[],"
                 "\"r_b\":[],\"r_s\":[],\"r_by\":[],\"r_color\":[],\"r_inner\":[],\"r_s64\":[],"
                 "\"r_fl\":[],\"r_f32\":[]}");
  json_decref(j);
  prpc_message_free(m);

  /* null fields and unknown keys are the same as missing ones. */
  m = decode_ok(all_d, "{\"i32\":null,\"s\":null,\"inner\":null,\"r_s\":null,\"zzz\":5,"
                       "\"I32\":7}");
  assert_int_equal(((Prpctest__AllTypes *)m)->i32, 0);
  assert_int_equal(((Prpctest__AllTypes *)m)->n_r_s, 0);
  prpc_message_free(m);

  /* Empty text, whitespace and null are the default message. */
  const char *empties[] = {"", "  \n\t", "null"};
  for (size_t k = 0; k < ARRAY_SIZE(empties); k++) {
    m = decode_ok(all_d, empties[k]);
    assert_int_equal(protobuf_c_message_get_packed_size(m), 0);
    prpc_message_free(m);
  }
}

static void test_bytes_hex(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t len;
    const char *data;
  } ok[] = {
      {"\"\"", 0, ""},           {"\"0x\"", 0, ""},
      {"\"00\"", 1, "\0"},       {"\"0xABcd\"", 2, "\xab\xcd"},
      {"\"0XABcd\"", 2, "\xab\xcd"}, {"\"1234deadbeef\"", 6, "\x12\x34\xde\xad\xbe\xef"},
  };
  for (size_t k = 0; k < ARRAY_SIZE(ok); k++) {
    char text[64];
    snprintf(text, sizeof(text), "{\"by\":%s}", ok[k].in);
    ProtobufCMessage *m = decode_ok(all_d, text);
    Prpctest__AllTypes *a = (Prpctest__AllTypes *)m;
    assert_int_equal(a->by.len, ok[k].len);
    if (ok[k].len)
      assert_memory_equal(a->by.data, ok[k].data, ok[k].len);
    prpc_message_free(m);
  }
  const char *bad[] = {"\"0\"", "\"abc\"", "\"0x1\"", "\"zz\"", "\"0x0x12\"", "\"12 34\"",
                       "\"x0\"", "12", "true", "[\"00\"]"};
  for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
    char text[64];
    snprintf(text, sizeof(text), "{\"by\":%s}", bad[k]);
    decode_bad(all_d, text, -EINVAL, "by");
  }
  decode_bad(all_d, "{\"r_by\":[\"00\",\"0g\"]}", -EINVAL, "r_by[1]");

  /* Output: plain hex, or 0x-prefixed on request. */
  Prpctest__AllTypes a = PRPCTEST__ALL_TYPES__INIT;
  uint8_t raw[] = {0x00, 0x12, 0xab};
  ProtobufCBinaryData rb[2] = {{3, raw}, {0, NULL}};
  a.by = (ProtobufCBinaryData){3, raw};
  a.n_r_by = 2;
  a.r_by = rb;
  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json(&a.base, &j), 0);
  assert_string_equal(json_string_value(json_object_get(j, "by")), "0012ab");
  json_decref(j);
  assert_int_equal(prpc_message_to_json_full(&a.base, PRPC_JSON_BYTES_0X, &j), 0);
  assert_string_equal(json_string_value(json_object_get(j, "by")), "0x0012ab");
  assert_string_equal(json_string_value(json_array_get(json_object_get(j, "r_by"), 0)), "0x0012ab");
  assert_string_equal(json_string_value(json_array_get(json_object_get(j, "r_by"), 1)), "0x");
  json_decref(j);
}

static void test_wrong_types(void **state) {
  (void)state;
  static const struct {
    const char *text;
    const char *field;
  } cases[] = {
      {"{\"i32\":\"1\"}", "i32"},
      {"{\"i32\":1.5}", "i32"},
      {"{\"i32\":2147483648}", "i32"},
      {"{\"i32\":-2147483649}", "i32"},
      {"{\"s32\":true}", "s32"},
      {"{\"sf32\":[1]}", "sf32"},
      {"{\"u32\":-1}", "u32"},
      {"{\"u32\":4294967296}", "u32"},
      {"{\"f32\":-1}", "f32"},
      {"{\"i64\":\"5\"}", "i64"},
      {"{\"i64\":1e3}", "i64"},
      {"{\"u64\":-1}", "u64"},
      {"{\"f64\":{}}", "f64"},
      {"{\"fl\":\"x\"}", "fl"},
      {"{\"fl\":1e300}", "fl"},
      {"{\"db\":false}", "db"},
      {"{\"b\":1}", "b"},
      {"{\"b\":\"true\"}", "b"},
      {"{\"s\":5}", "s"},
      {"{\"s\":[\"a\"]}", "s"},
      {"{\"color\":\"BLUE\"}", "color"},
      {"{\"color\":2147483648}", "color"},
      {"{\"color\":true}", "color"},
      {"{\"inner\":\"x\"}", "inner"},
      {"{\"inner\":[]}", "inner"},
      {"{\"inner\":{\"n\":\"1\"}}", "inner.n"},
      {"{\"inner\":{\"child\":{\"child\":{\"name\":1}}}}", "inner.child.child.name"},
      {"{\"r_i32\":1}", "r_i32"},
      {"{\"r_i32\":{}}", "r_i32"},
      {"{\"r_i32\":[1,\"2\"]}", "r_i32[1]"},
      {"{\"r_u64\":[-1]}", "r_u64[0]"},
      {"{\"r_s\":[\"a\",null]}", "r_s[1]"},
      {"{\"r_s\":[\"a\",\"b\",3]}", "r_s[2]"},
      {"{\"r_b\":[true,0]}", "r_b[1]"},
      {"{\"r_color\":[\"RED\",\"NOPE\"]}", "r_color[1]"},
      {"{\"r_inner\":[{\"name\":\"a\"},{\"kids\":[{\"n\":true}]}]}", "r_inner[1].kids[0].n"},
      {"{\"r_fl\":[1e39]}", "r_fl[0]"},
      {"{\"o_s\":\"a\",\"o_i\":1}", "o_i"},
      {"{\"o_m\":{\"name\":\"a\"},\"o_by\":\"00\"}", "o_by"},
      {"{\"o_i\":\"1\"}", "o_i"},
  };
  for (size_t k = 0; k < ARRAY_SIZE(cases); k++)
    decode_bad(all_d, cases[k].text, -EINVAL, cases[k].field);

  /* Not an object at the top. */
  decode_bad(all_d, "[]", -EINVAL, NULL);
  decode_bad(all_d, "5", -EINVAL, NULL);
  decode_bad(all_d, "\"x\"", -EINVAL, NULL);
  /* Syntax errors, trailing data, duplicate keys. */
  decode_bad(all_d, "{", -EINVAL, NULL);
  decode_bad(all_d, "{\"i32\":1} x", -EINVAL, NULL);
  decode_bad(all_d, "{\"i32\":1,\"i32\":2}", -EINVAL, NULL);
  decode_bad(all_d, "{\"i64\":99999999999999999999}", -EINVAL, NULL);
  /* A string with NUL inside never reaches the message. */
  decode_bad(all_d, "{\"s\":\"a\\u0000b\"}", -EINVAL, NULL);

  /* A json_t built by the caller with a NUL inside a string is rejected too. */
  _cleanup_json_ json_t *obj = json_object();
  json_object_set_new(obj, "s", json_stringn("a\0b", 3));
  ProtobufCMessage *m = NULL;
  char err[128];
  assert_int_equal(prpc_json_to_message(all_d, obj, &m, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "field 's'"));
  assert_null(m);

  /* A body over the cap. */
  assert_int_equal(prpc_json_text_to_message(all_d, "{}   ", 5, 4, 0, &m, err, sizeof(err)),
                   -ENOBUFS);
}

static void test_enums(void **state) {
  (void)state;
  ProtobufCMessage *m = decode_ok(all_d, "{\"color\":\"NEGATIVE\",\"r_color\":[7,\"RED\"]}");
  Prpctest__AllTypes *a = (Prpctest__AllTypes *)m;
  assert_int_equal(a->color, -1);
  assert_int_equal(a->r_color[0], 7); /* proto3 enums are open */
  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json(m, &j), 0);
  assert_int_equal(json_integer_value(json_object_get(j, "color")), -1);
  json_decref(j);
  prpc_message_free(m);
}

static void test_oneof(void **state) {
  (void)state;
  ProtobufCMessage *m = decode_ok(all_d, "{\"o_s\":\"text\"}");
  Prpctest__AllTypes *a = (Prpctest__AllTypes *)m;
  assert_int_equal(a->choice_case, PRPCTEST__ALL_TYPES__CHOICE_O_S);
  assert_string_equal(a->o_s, "text");
  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json(m, &j), 0);
  assert_string_equal(json_string_value(json_object_get(j, "o_s")), "text");
  assert_null(json_object_get(j, "o_i"));
  assert_null(json_object_get(j, "o_m"));
  json_decref(j);
  prpc_message_free(m);

  m = decode_ok(all_d, "{\"o_by\":\"0xff00\",\"o_s\":null}");
  a = (Prpctest__AllTypes *)m;
  assert_int_equal(a->choice_case, PRPCTEST__ALL_TYPES__CHOICE_O_BY);
  assert_int_equal(a->o_by.len, 2);
  prpc_message_free(m);

  m = decode_ok(all_d, "{\"o_i\":-9}");
  assert_true(((Prpctest__AllTypes *)m)->o_i == -9);
  prpc_message_free(m);
}

static char *nested_json(unsigned depth) {
  struct buf b = BUF_INIT(1 << 20);
  assert_int_equal(buf_append_str(&b, "{\"inner\":"), 0);
  for (unsigned k = 0; k < depth; k++)
    assert_int_equal(buf_append_str(&b, "{\"child\":"), 0);
  assert_int_equal(buf_append_str(&b, "{\"n\":1}"), 0);
  for (unsigned k = 0; k <= depth; k++)
    assert_int_equal(buf_append_str(&b, "}"), 0);
  assert_int_equal(buf_terminate(&b), 0);
  return (char *)buf_steal(&b, NULL);
}

static void test_limits(void **state) {
  (void)state;
  /* inner is depth 1, each child one more. */
  _cleanup_free_ char *ok = nested_json(PRPC_JSON_MAX_DEPTH - 2);
  ProtobufCMessage *m = decode_ok(all_d, ok);
  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json(m, &j), 0);
  json_decref(j);
  prpc_message_free(m);
  _cleanup_free_ char *deep = nested_json(PRPC_JSON_MAX_DEPTH);
  decode_bad(all_d, deep, -ENOBUFS, NULL);
  _cleanup_free_ char *deeper = nested_json(1000);
  decode_bad(all_d, deeper, -ENOBUFS, NULL);

  /* Array at the cap, and one over. */
  struct buf b = BUF_INIT(1 << 22);
  assert_int_equal(buf_append_str(&b, "{\"r_s\":[\"a\""), 0);
  for (unsigned k = 1; k < PRPC_JSON_MAX_REPEATED; k++)
    assert_int_equal(buf_append_str(&b, ",\"a\""), 0);
  size_t mark = b.len;
  assert_int_equal(buf_append_str(&b, "]}"), 0);
  assert_int_equal(buf_terminate(&b), 0);
  m = decode_ok(all_d, (char *)b.data);
  assert_int_equal(((Prpctest__AllTypes *)m)->n_r_s, PRPC_JSON_MAX_REPEATED);
  prpc_message_free(m);
  b.len = mark;
  assert_int_equal(buf_append_str(&b, ",\"a\"]}"), 0);
  assert_int_equal(buf_terminate(&b), 0);
  decode_bad(all_d, (char *)b.data, -ENOBUFS, "r_s");
  buf_free(&b);
}

static void test_encode_errors(void **state) {
  (void)state;
  Prpctest__AllTypes a = PRPCTEST__ALL_TYPES__INIT;
  json_t *j = NULL;
  a.u64 = (uint64_t)INT64_MAX + 1;
  assert_int_equal(prpc_message_to_json(&a.base, &j), -ERANGE);
  a.u64 = 0;
  a.s = (char *)"\xff\xfe";
  assert_int_equal(prpc_message_to_json(&a.base, &j), -EBADMSG);
  a.s = (char *)"";
  a.db = NAN;
  a.fl = INFINITY;
  assert_int_equal(prpc_message_to_json(&a.base, &j), 0);
  assert_true(json_is_null(json_object_get(j, "db")));
  assert_true(json_is_null(json_object_get(j, "fl")));
  json_decref(j);
  assert_int_equal(prpc_message_to_json(NULL, &j), -EINVAL);
}

/* prpc_message_to_json_text gives byte for byte what the jansson tree dumped compactly gives. */
static void assert_text_same(const ProtobufCMessage *m, unsigned flags) {
  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json_full(m, flags, &j), 0);
  _cleanup_buf_ struct buf want = BUF_INIT(1 << 20), got = BUF_INIT(1 << 20);
  assert_int_equal(json_dump_buf(j, JSON_COMPACT, &want), 0);
  json_decref(j);
  assert_int_equal(buf_append_str(&got, "x"), 0); /* appends after what is there */
  assert_int_equal(prpc_message_to_json_text(m, flags, &got), 0);
  if (got.len != want.len + 1 || memcmp(got.data + 1, want.data, want.len) != 0)
    fail_msg("text encoder differs\n got:  %.*s\n want: %.*s", (int)got.len - 1,
             (const char *)got.data + 1, (int)want.len, (const char *)want.data);
}

static void test_text_encoder(void **state) {
  (void)state;
  static const char *const inputs[] = {
      full_in,
      "{}",
      "{\"o_s\":\"text\"}",
      "{\"o_by\":\"0xff00\"}",
      "{\"o_i\":-9,\"r_db\":[0.1,1e300,-0.0,3,5e-324,123456789.125],\"fl\":0.1}",
      "{\"s\":\"ctl \\u0001\\u001f\\b\\f\\n\\r\\t\\u007f \\\\ / \\\" \\u00e9\\u20ac"
      "\\ud83d\\ude00 \\u2028\"}",
      "{\"color\":\"NEGATIVE\",\"r_color\":[7,\"RED\"],\"i64\":-9223372036854775808}",
  };
  for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
    ProtobufCMessage *m = decode_ok(all_d, inputs[i]);
    assert_text_same(m, 0);
    assert_text_same(m, PRPC_JSON_BYTES_0X);
    prpc_message_free(m);
  }
  ProtobufCMessage *m = decode_ok(&dstack__get_tls_key_args__descriptor,
                                  "{\"subject\":\"s\",\"alt_names\":[\"a\",\"b\"]}");
  assert_text_same(m, 0);
  prpc_message_free(m);

  /* Strings scanned 8 bytes at a time: every special byte at every offset of a word. */
  Prpctest__AllTypes a = PRPCTEST__ALL_TYPES__INIT;
  static const char *const specials[] = {"\"",   "\\",         "\n",         "\x01", "\x1f", "\x7f", " ",
                                         "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "~"};
  for (size_t sp = 0; sp < sizeof(specials) / sizeof(specials[0]); sp++)
    for (size_t pos = 0; pos < 20; pos++)
      for (size_t len = pos; len < 26; len += 5) {
        char str[64];
        memset(str, 'a', sizeof(str));
        size_t k = strlen(specials[sp]);
        memcpy(str + pos, specials[sp], k);
        str[len + k] = 0;
        a.s = str;
        assert_text_same(&a.base, 0);
        /* a broken sequence there instead (a lead byte, then no continuation) */
        if (pos + 1 < len + k) {
          str[pos] = (char)0xc3;
          str[pos + 1] = 'a';
          json_t *j = NULL;
          _cleanup_buf_ struct buf t = BUF_INIT(1024);
          assert_int_equal(prpc_message_to_json_full(&a.base, 0, &j), -EBADMSG);
          assert_int_equal(prpc_message_to_json_text(&a.base, 0, &t), -EBADMSG);
        }
      }
  a.s = (char *)"";

  /* Non-finite reals are null, as in the tree. */
  a.db = NAN;
  a.fl = -INFINITY;
  assert_text_same(&a.base, 0);

  /* The same errors, and out is left as it was. */
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 20);
  assert_int_equal(buf_append_str(&b, "keep"), 0);
  a.db = 0;
  a.fl = 0;
  a.u64 = (uint64_t)INT64_MAX + 1;
  assert_int_equal(prpc_message_to_json_text(&a.base, 0, &b), -ERANGE);
  a.u64 = 0;
  static const char *const bad_utf8[] = {"\xff\xfe", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                         "ok\xe2\x82", "\x80"};
  for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
    json_t *j = NULL;
    a.s = (char *)bad_utf8[i];
    assert_int_equal(prpc_message_to_json_full(&a.base, 0, &j), -EBADMSG);
    assert_int_equal(prpc_message_to_json_text(&a.base, 0, &b), -EBADMSG);
  }
  assert_int_equal(b.len, 4);
  a.s = (char *)"";
  /* A buffer cap is honoured. */
  struct buf small = BUF_INIT(16);
  assert_int_equal(prpc_message_to_json_text(&a.base, 0, &small), -ENOBUFS);
  assert_int_equal(small.len, 0);
  buf_free(&small);
  assert_int_equal(prpc_message_to_json_text(NULL, 0, &b), -EINVAL);
}

/* Text decoding takes a shortcut for flat objects of plain values; whatever it accepts must
 * give the message the jansson tree gives, and whatever the tree rejects it must reject. */
static void assert_decode_same(const ProtobufCMessageDescriptor *d, const char *text) {
  ProtobufCMessage *m1 = NULL, *m2 = NULL;
  char err[256];
  size_t len = strlen(text);
  int r1 = prpc_json_text_to_message(d, text, len, 1 << 20, 0, &m1, err, sizeof(err));
  json_t *j = NULL;
  int r2 = -1;
  size_t k = 0;
  while (k < len && strchr(" \t\r\n", text[k]))
    k++;
  if (k == len)
    r2 = prpc_json_to_message_full(d, NULL, 0, &m2, err, sizeof(err));
  else if (json_parse_buf_full(text, len, 1 << 20, JSON_DECODE_ANY, &j, NULL) == 0)
    r2 = prpc_json_to_message_full(d, j, 0, &m2, err, sizeof(err));
  json_decref(j);
  if ((r1 == 0) != (r2 == 0))
    fail_msg("%s: text path %d, tree path %d", text, r1, r2);
  if (r1 == 0) {
    size_t n1 = protobuf_c_message_get_packed_size(m1), n2 = protobuf_c_message_get_packed_size(m2);
    uint8_t *b1 = malloc(n1 + 1), *b2 = malloc(n2 + 1);
    assert_int_equal(protobuf_c_message_pack(m1, b1), n1);
    assert_int_equal(protobuf_c_message_pack(m2, b2), n2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0)
      fail_msg("%s: messages differ", text);
    free(b1);
    free(b2);
  }
  prpc_message_free(m1);
  prpc_message_free(m2);
}

static size_t rnd(uint32_t *seed, size_t n) {
  *seed = *seed * 1103515245u + 12345u;
  return (*seed >> 16) % n;
}

static void test_text_decode_shortcut(void **state) {
  (void)state;
  static const char *const fixed[] = {
      "{\"path\":\"bench/key\",\"purpose\":\"bench\"}",
      " {\"path\" : \"a\" ,\n\t\"purpose\":\"b\", \"algorithm\":\"ed25519\"}\r\n",
      "{}", "{ }", "{\"path\":null}", "{\"unknown\":1,\"path\":\"p\"}",
      "{\"path\":\"a\",\"path\":\"b\"}", "{\"x\":1,\"x\":2}", "{\"path\":\"a\",}", "{,}",
      "{\"path\":\"a\"", "{\"path\":\"a\"}x", "{\"path\":\"a\"} {}", "[]", "\"s\"", "1", "null",
      "{\"path\":1}", "{\"path\":true}", "{\"path\":\"\\u0041\"}", "{\"path\":\"\xc3\xa9\"}",
      "{\"path\":\"tab\there\"}", "{\"pa\\\"th\":\"x\"}", "{path:\"x\"}", "{\"path\":'x'}",
  };
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    assert_decode_same(&dstack__get_key_args__descriptor, fixed[i]);

  static const char *const keys[] = {"i32", "u32", "i64", "u64", "s32", "sf64", "f32", "f64",
                                     "b", "s", "by", "color", "fl", "db", "inner", "r_i32",
                                     "o_s", "o_i", "zz", "S"};
  static const char *const vals[] = {
      "\"x\"", "\"\"", "\"0xdeadBEEF\"", "\"0X00\"", "\"abc\"", "\"a1\"", "\"GREEN\"",
      "\"NEGATIVE\"", "\"nope\"", "1", "-1", "0", "-0", "007", "2147483647", "2147483648",
      "-2147483648", "-2147483649", "4294967295", "4294967296", "9223372036854775807",
      "-9223372036854775808", "123456789012345678", "1234567890123456789", "true", "false",
      "null", "1.5", "1e3", "-", "[]", "[1]", "{}", "\"\\u0041\"", "\"\\n\"", "\"\xc3\xa9\"",
      "tru", "nul", "\"unterminated"};
  static const char *const ws[] = {"", " ", "\n", "\t ", "\r\n"};
  uint32_t seed = 12345;
#define RND(n) rnd(&seed, (n))
  char text[1024];
  for (int iter = 0; iter < 6000; iter++) {
    size_t o = 0, members = RND(5);
    o += (size_t)snprintf(text + o, sizeof(text) - o, "%s{", ws[RND(5)]);
    for (size_t m = 0; m < members; m++) {
      const char *w1 = ws[RND(5)], *key = keys[RND(sizeof(keys) / sizeof(keys[0]))];
      const char *w2 = ws[RND(5)], *w3 = ws[RND(5)];
      const char *val = vals[RND(sizeof(vals) / sizeof(vals[0]))], *w4 = ws[RND(5)];
      o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s\"%s\"%s:%s%s%s", m ? "," : "", w1,
                            key, w2, w3, val, w4);
    }
    o += (size_t)snprintf(text + o, sizeof(text) - o, "}%s", ws[RND(5)]);
    if (RND(10) == 0 && o > 1) { /* cut somewhere */
      text[RND(o)] = 0;
    } else if (RND(10) == 0) { /* or break one byte */
      size_t at = RND(o);
      text[at] = "{}[],:\"x0 "[RND(10)];
    }
    assert_decode_same(all_d, text);
  }
#undef RND
}

static void test_query(void **state) {
  (void)state;
  ProtobufCMessage *m = NULL;
  char err[256];
  int r = prpc_query_to_message(all_d,
                                "i32=-5&u32=7&b&s=a+b%21%2B&by=0xAB&r_s[]=x&r_s[]=y%20z&r_i32=1"
                                "&r_i32[5]=2&color=RED&json&unknown=1&&fl=0.5&i64=-9&r_b=false"
                                "&r_color=2&inner[name]=ignored&=v",
                                &m, err, sizeof(err));
  if (r < 0)
    fail_msg("query: %s", err);
  Prpctest__AllTypes *a = (Prpctest__AllTypes *)m;
  assert_int_equal(a->i32, -5);
  assert_int_equal(a->u32, 7);
  assert_true(a->b);
  assert_string_equal(a->s, "a b!+");
  assert_int_equal(a->by.len, 1);
  assert_int_equal(a->by.data[0], 0xab);
  assert_int_equal(a->n_r_s, 2);
  assert_string_equal(a->r_s[1], "y z");
  assert_int_equal(a->n_r_i32, 2);
  assert_int_equal(a->r_i32[1], 2);
  assert_int_equal(a->color, PRPCTEST__COLOR__RED);
  assert_true(a->fl == 0.5f);
  assert_true(a->i64 == -9);
  assert_int_equal(a->n_r_b, 1);
  assert_false(a->r_b[0]);
  assert_int_equal(a->r_color[0], 2);
  assert_null(a->inner);
  prpc_message_free(m);

  /* NULL and "" are the default message; the last of repeated scalar keys wins. */
  assert_int_equal(prpc_query_to_message(all_d, NULL, &m, err, sizeof(err)), 0);
  prpc_message_free(m);
  assert_int_equal(prpc_query_to_message(all_d, "i32=1&i32=2", &m, err, sizeof(err)), 0);
  assert_int_equal(((Prpctest__AllTypes *)m)->i32, 2);
  prpc_message_free(m);

  static const struct {
    const char *q;
    int r;
    const char *field;
  } bad[] = {
      {"i32=abc", -EINVAL, "i32"},        {"i32=", -EINVAL, "i32"},
      {"i32=1x", -EINVAL, "i32"},         {"i32=99999999999", -EINVAL, "i32"},
      {"u32=-1", -EINVAL, "u32"},         {"u32=4294967296", -EINVAL, "u32"},
      {"i64=99999999999999999999", -EINVAL, "i64"},
      {"u64=18446744073709551616", -EINVAL, "u64"},
      {"b=maybe", -EINVAL, "b"},          {"fl=abc", -EINVAL, "fl"},
      {"by=abc", -EINVAL, "by"},          {"color=BLUE", -EINVAL, "color"},
      {"inner=1", -EINVAL, "inner"},      {"s[]=a", -EINVAL, "s"},
      {"s=%zz", -EINVAL, NULL},           {"s=%4", -EINVAL, NULL},
      {"s=%00", -EINVAL, NULL},           {"s=%ff", -EINVAL, NULL},
      {"r_i32[]=1&r_i32[]=x", -EINVAL, "r_i32[1]"},
  };
  for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
    m = NULL;
    r = prpc_query_to_message(all_d, bad[k].q, &m, err, sizeof(err));
    if (r != bad[k].r)
      fail_msg("%s: expected %d got %d (%s)", bad[k].q, bad[k].r, r, err);
    assert_null(m);
    if (bad[k].field) {
      char want[64];
      snprintf(want, sizeof(want), "field '%s'", bad[k].field);
      if (!strstr(err, want))
        fail_msg("%s: '%s' does not name %s", bad[k].q, err, want);
    }
  }

  /* Too many list elements from a query. */
  struct buf b = BUF_INIT(1 << 22);
  for (unsigned k = 0; k <= PRPC_JSON_MAX_REPEATED; k++)
    assert_int_equal(buf_append_str(&b, "r_b=1&"), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_int_equal(prpc_query_to_message(all_d, (char *)b.data, &m, err, sizeof(err)), -ENOBUFS);
  buf_free(&b);
}

static void test_proto2(void **state) {
  (void)state;
  const ProtobufCMessageDescriptor *d = &prpctest2__legacy__descriptor;
  ProtobufCMessage *m = decode_ok(d, "{\"r\":3}");
  Prpctest2__Legacy *l = (Prpctest2__Legacy *)m;
  assert_false(l->has_a);
  assert_false(l->has_b);
  assert_string_equal(l->s, "dflt");
  assert_true(l->f);
  assert_int_equal(l->r, 3);
  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json(m, &j), 0);
  assert_json_eq(j, "{\"a\":0,\"s\":\"dflt\",\"b\":\"\",\"r\":3,\"f\":true}");
  json_decref(j);
  prpc_message_free(m);

  m = decode_ok(d, "{\"a\":-4,\"s\":\"x\",\"b\":\"0x01\",\"r\":1,\"f\":false}");
  l = (Prpctest2__Legacy *)m;
  assert_true(l->has_a);
  assert_int_equal(l->a, -4);
  assert_true(l->has_b);
  assert_true(l->has_f);
  assert_false(l->f);
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t buf[64];
  assert_true(n <= sizeof(buf));
  protobuf_c_message_pack(m, buf);
  ProtobufCMessage *back = protobuf_c_message_unpack(d, NULL, n, buf);
  assert_non_null(back);
  assert_int_equal(prpc_message_to_json(back, &j), 0);
  assert_json_eq(j, "{\"a\":-4,\"s\":\"x\",\"b\":\"01\",\"r\":1,\"f\":false}");
  json_decref(j);
  prpc_message_free(back);
  prpc_message_free(m);
}

static void test_service_messages(void **state) {
  (void)state;
  /* The seed-era tappd example request. */
  ProtobufCMessage *m = decode_ok(&tappd__tdx_quote_args__descriptor,
                                  "{\"report_data\":\"0x1234deadbeef\"}");
  Tappd__TdxQuoteArgs *qa = (Tappd__TdxQuoteArgs *)m;
  assert_int_equal(qa->report_data.len, 6);
  assert_string_equal(qa->hash_algorithm, "");
  prpc_message_free(m);

  m = decode_ok(&tappd__derive_key_args__descriptor,
                "{\"path\":\"/a\",\"subject\":\"s\",\"alt_names\":[\"x.y\"],\"usage_ra_tls\":true,"
                "\"random_seed\":false}");
  Tappd__DeriveKeyArgs *dk = (Tappd__DeriveKeyArgs *)m;
  assert_string_equal(dk->path, "/a");
  assert_int_equal(dk->n_alt_names, 1);
  assert_true(dk->usage_ra_tls);
  prpc_message_free(m);

  /* Seed-era reply: bytes with 0x. */
  Tappd__TdxQuoteResponse qr = TAPPD__TDX_QUOTE_RESPONSE__INIT;
  uint8_t q[] = {4, 0, 2, 0};
  qr.quote = (ProtobufCBinaryData){sizeof(q), q};
  json_t *j = NULL;
  assert_int_equal(prpc_message_to_json_full(&qr.base, PRPC_JSON_BYTES_0X, &j), 0);
  assert_json_eq(j, "{\"quote\":\"0x04000200\",\"event_log\":\"\",\"hash_algorithm\":\"\","
                    "\"prefix\":\"\"}");
  json_decref(j);

  /* Current API reply: plain hex, keys in proto order. */
  Dstack__GetQuoteResponse gq = DSTACK__GET_QUOTE_RESPONSE__INIT;
  gq.quote = (ProtobufCBinaryData){sizeof(q), q};
  gq.event_log = (char *)"[]";
  assert_int_equal(prpc_message_to_json(&gq.base, &j), 0);
  _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
  assert_string_equal(text, "{\"quote\":\"04000200\",\"event_log\":\"[]\",\"report_data\":\"\","
                            "\"vm_config\":\"\",\"attestation\":\"\"}");
  json_decref(j);

  m = decode_ok(&dstack__get_tls_key_args__descriptor,
                "{\"subject\":\"s\",\"alt_names\":[\"a\",\"b\"],\"usage_ra_tls\":true,"
                "\"not_before\":null,\"not_after\":1700000000,\"with_app_info\":true}");
  Dstack__GetTlsKeyArgs *tk = (Dstack__GetTlsKeyArgs *)m;
  assert_int_equal(tk->n_alt_names, 2);
  assert_true(tk->not_before == 0);
  assert_true(tk->not_after == 1700000000);
  assert_true(tk->with_app_info);
  prpc_message_free(m);

  Dstack__AppInfo ai = DSTACK__APP_INFO__INIT;
  assert_int_equal(prpc_message_to_json(&ai.base, &j), 0);
  assert_json_eq(j, "{\"app_id\":\"\",\"instance_id\":\"\",\"app_cert\":\"\",\"tcb_info\":\"\","
                    "\"app_name\":\"\",\"device_id\":\"\",\"mr_aggregated\":\"\","
                    "\"os_image_hash\":\"\",\"key_provider_info\":\"\",\"compose_hash\":\"\","
                    "\"vm_config\":\"\",\"cloud_vendor\":\"\",\"cloud_product\":\"\"}");
  json_decref(j);

  assert_true(prpc_descriptor_is_empty(&tappd__empty__descriptor));
  assert_true(prpc_descriptor_is_empty(&dstack__empty__descriptor));
  assert_false(prpc_descriptor_is_empty(&dstack__app_info__descriptor));
  assert_false(prpc_descriptor_is_empty(NULL));
}

static void test_bad_args(void **state) {
  (void)state;
  ProtobufCMessage *m = NULL;
  char err[64];
  assert_int_equal(prpc_json_to_message(NULL, NULL, &m, err, sizeof(err)), -EINVAL);
  assert_int_equal(prpc_message_new(NULL, &m), -EINVAL);
  assert_int_equal(prpc_query_to_message(NULL, "", &m, err, sizeof(err)), -EINVAL);
  /* err may be NULL. */
  assert_int_equal(prpc_json_text_to_message(all_d, "{\"i32\":\"x\"}", 11, 100, 0, &m, NULL, 0),
                   -EINVAL);
  /* A tiny error buffer truncates, never overflows. */
  char small[8];
  assert_int_equal(prpc_json_text_to_message(all_d, "{\"i32\":\"x\"}", 11, 100, 0, &m, small,
                                             sizeof(small)),
                   -EINVAL);
  assert_int_equal(strlen(small), sizeof(small) - 1);
  prpc_message_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_types_roundtrip), cmocka_unit_test(test_defaults_all_emitted),
      cmocka_unit_test(test_bytes_hex),           cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_enums),               cmocka_unit_test(test_oneof),
      cmocka_unit_test(test_limits),              cmocka_unit_test(test_encode_errors),
      cmocka_unit_test(test_query),               cmocka_unit_test(test_proto2),
      cmocka_unit_test(test_service_messages),    cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_text_encoder),        cmocka_unit_test(test_text_decode_shortcut),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
