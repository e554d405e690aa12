#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "crypto/hash.h"
#include "tboot_luks2.h"
#include "testutil.h"

/* Headers made by tests/data/tboot/make-luks2-headers.sh. */
static void load(const char *name, struct buf *out) {
  char rel[256];
  snprintf(rel, sizeof(rel), "tests/data/tboot/%s", name);
  buf_free(out);
  out->max = LUKS2_PROBE_BYTES;
  tu_read_file(tu_source_path(rel), out);
  assert_int_equal(out->len, LUKS2_PROBE_BYTES);
}

static int probe(const struct buf *b, enum luks2_kind *kind, struct luks2_info *info, char *why,
                 size_t whylen) {
  return luks2_probe(b->data, b->len, kind, info, why, whylen);
}

/* Expects -EBADMSG with a reason that contains needle. */
static void expect_bad(const struct buf *b, const char *needle) {
  enum luks2_kind kind = 77;
  char why[256] = "";
  assert_int_equal(probe(b, &kind, NULL, why, sizeof(why)), -EBADMSG);
  assert_int_equal(kind, 77);
  if (!strstr(why, needle))
    fail_msg("reason \"%s\" lacks \"%s\"", why, needle);
}

/* Recomputes the checksum of the header copy at h. */
static void rehash(uint8_t *h) {
  memset(h + 448, 0, 64);
  uint8_t d[32];
  sha256(h, LUKS2_HDR_SIZE, d);
  memcpy(h + 448, d, 32);
}

/* Replaces the first occurrence of from by to in both copies' JSON (the text is rewritten in
 * place and NUL-padded), then rehashes both copies. */
static void json_edit(struct buf *b, const char *from, const char *to) {
  for (size_t off = 0; off <= LUKS2_HDR_SIZE; off += LUKS2_HDR_SIZE) {
    char *json = (char *)b->data + off + 4096;
    size_t area = LUKS2_HDR_SIZE - 4096;
    char *p = strstr(json, from);
    if (!p)
      fail_msg("\"%s\" not in the header JSON", from);
    size_t len = strlen(json), fl = strlen(from), tl = strlen(to);
    assert_true(len - fl + tl < area);
    char *copy = malloc(area);
    assert_non_null(copy);
    size_t pre = (size_t)(p - json);
    memcpy(copy, json, pre);
    memcpy(copy + pre, to, tl);
    memcpy(copy + pre + tl, p + fl, len - pre - fl);
    memset(copy + len - fl + tl, 0, area - (len - fl + tl));
    memcpy(json, copy, area);
    free(copy);
    rehash(b->data + off);
  }
}

static void test_good(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks2-good.bin", &b);
  enum luks2_kind kind = 77;
  struct luks2_info info;
  char why[256] = "x";
  assert_int_equal(probe(&b, &kind, &info, why, sizeof(why)), 0);
  assert_int_equal(kind, LUKS2_VALID);
  assert_string_equal(why, "");
  assert_int_equal(info.seqid, 3);
  assert_int_equal(strlen(info.uuid), 36);
  assert_int_equal(info.segment_offset, LUKS2_DATA_OFFSET);
  assert_int_equal(info.sector_size, 4096);
  assert_int_equal(info.pbkdf2_iterations, 1000);
  /* ret_info may be NULL; a longer buffer (a bigger disk read) is fine */
  assert_int_equal(luks2_probe(b.data, b.len, &kind, NULL, NULL, 0), 0);

  _cleanup_buf_ struct buf s = BUF_INIT(0);
  load("luks2-good512.bin", &s);
  assert_int_equal(probe(&s, &kind, &info, why, sizeof(why)), 0);
  assert_int_equal(info.sector_size, 512);
}

static void test_blank(void **state) {
  (void)state;
  uint8_t *z = calloc(1, LUKS2_PROBE_BYTES);
  assert_non_null(z);
  enum luks2_kind kind = 77;
  struct luks2_info info;
  memset(&info, 0xaa, sizeof(info));
  assert_int_equal(luks2_probe(z, LUKS2_PROBE_BYTES, &kind, &info, NULL, 0), 0);
  assert_int_equal(kind, LUKS2_BLANK);
  assert_int_equal(info.seqid, 0);
  /* a small disk, read whole */
  assert_int_equal(luks2_probe(z, 4096, &kind, NULL, NULL, 0), 0);
  assert_int_equal(kind, LUKS2_BLANK);
  assert_int_equal(luks2_probe(z, 0, &kind, NULL, NULL, 0), 0);
  /* one non-zero byte anywhere in the probe: not blank, and no header */
  z[LUKS2_PROBE_BYTES - 1] = 1;
  char why[256];
  assert_int_equal(luks2_probe(z, LUKS2_PROBE_BYTES, &kind, NULL, why, sizeof(why)), -EBADMSG);
  assert_non_null(strstr(why, "no LUKS header"));
  free(z);
}

static void test_garbage(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(LUKS2_PROBE_BYTES);
  for (size_t i = 0; i < LUKS2_PROBE_BYTES; i++)
    assert_int_equal(buf_append_u8(&b, (uint8_t)(i * 7 + 3)), 0);
  expect_bad(&b, "no LUKS header");
}

static void test_luks1(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks1.bin", &b);
  expect_bad(&b, "LUKS1");
}

static void test_truncated(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks2-good.bin", &b);
  enum luks2_kind kind;
  char why[256];
  /* "LUKS" without the rest of its magic is not zero, so not blank either */
  size_t lens[] = {5, 6, 4096, LUKS2_HDR_SIZE, LUKS2_HDR_SIZE + 6, 2 * LUKS2_HDR_SIZE - 1};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
    assert_int_equal(luks2_probe(b.data, lens[i], &kind, NULL, why, sizeof(why)), -EBADMSG);
  assert_non_null(strstr(why, "too short"));
  assert_int_equal(luks2_probe(b.data, 2 * LUKS2_HDR_SIZE, &kind, NULL, why, sizeof(why)), 0);
  assert_int_equal(luks2_probe(NULL, 0, &kind, NULL, why, sizeof(why)), 0);
  assert_int_equal(luks2_probe(NULL, 10, &kind, NULL, why, sizeof(why)), -EINVAL);
  assert_int_equal(luks2_probe(b.data, b.len, NULL, NULL, why, sizeof(why)), -EINVAL);
}

static void test_checksum(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks2-good.bin", &b);
  b.data[4096 + 10] ^= 1; /* JSON byte, checksum not updated */
  expect_bad(&b, "primary LUKS2 header's checksum");

  load("luks2-good.bin", &b);
  b.data[LUKS2_HDR_SIZE + 300] ^= 1; /* secondary binary area */
  expect_bad(&b, "secondary LUKS2 header's checksum");

  load("luks2-good.bin", &b);
  b.data[448 + 40] = 1; /* the unused tail of the checksum field */
  expect_bad(&b, "checksum");

  load("luks2-good.bin", &b);
  memcpy(b.data + 72, "sha1\0\0", 6);
  rehash(b.data);
  expect_bad(&b, "not sha256");
}

static void test_binary_fields(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks2-good.bin", &b);
  b.data[LUKS2_HDR_SIZE] = 'X'; /* secondary magic */
  expect_bad(&b, "secondary LUKS2 header is missing");

  load("luks2-good.bin", &b);
  b.data[0] = 'X'; /* primary magic gone, secondary still there */
  expect_bad(&b, "primary LUKS header");

  load("luks2-good.bin", &b);
  b.data[8 + 6] = 0x80; /* hdr_size 32768 */
  rehash(b.data);
  expect_bad(&b, "header size");

  load("luks2-good.bin", &b);
  b.data[LUKS2_HDR_SIZE + 256 + 6] = 0x80; /* secondary's hdr_offset */
  rehash(b.data + LUKS2_HDR_SIZE);
  expect_bad(&b, "wrong offset");

  load("luks2-good.bin", &b);
  b.data[7] = 3; /* version 3 */
  rehash(b.data);
  expect_bad(&b, "version 2");

  load("luks2-good.bin", &b);
  memset(b.data + 168, 'a', 40); /* UUID without its NUL */
  rehash(b.data);
  expect_bad(&b, "UUID");

  static const char *const bad_uuids[] = {"$(reboot)", "be140f82-2564-41a3-a9f9-4ad600eccebd0",
                                          "BE140F82-2564-41A3-A9F9-4AD600ECCEBD",
                                          "be140f82_2564-41a3-a9f9-4ad600eccebd", ""};
  for (size_t i = 0; i < sizeof(bad_uuids) / sizeof(bad_uuids[0]); i++) {
    load("luks2-good.bin", &b);
    memset(b.data + 168, 0, 40);
    memcpy(b.data + 168, bad_uuids[i], strlen(bad_uuids[i]));
    rehash(b.data);
    expect_bad(&b, "UUID");
  }
}

static void test_copies_disagree(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks2-good.bin", &b);
  b.data[LUKS2_HDR_SIZE + 16 + 7]++; /* secondary seqid */
  rehash(b.data + LUKS2_HDR_SIZE);
  expect_bad(&b, "disagree");

  load("luks2-good.bin", &b);
  b.data[LUKS2_HDR_SIZE + 168] ^= 0x01; /* secondary uuid */
  rehash(b.data + LUKS2_HDR_SIZE);
  expect_bad(&b, "disagree");

  load("luks2-good.bin", &b);
  char *json = (char *)b.data + LUKS2_HDR_SIZE + 4096;
  char *p = strstr(json, "\"iterations\":1000");
  assert_non_null(p);
  p[13] = '2'; /* secondary keyslot iterations 2000 */
  rehash(b.data + LUKS2_HDR_SIZE);
  expect_bad(&b, "disagree");

  load("luks2-good.bin", &b);
  /* primary JSON area no longer NUL-terminated: spaces after the text, then an 'x' */
  size_t tl = strlen((char *)b.data + 4096);
  memset(b.data + 4096 + tl, ' ', 12288 - tl);
  b.data[4096 + 12287] = 'x';
  rehash(b.data);
  expect_bad(&b, "NUL-terminated");
}

struct edit {
  const char *from, *to, *why;
};

static const struct edit edits[] = {
    {"\"tokens\":{}", "\"tokens\":{\"0\":{\"type\":\"luks2-keyring\",\"keyslots\":[\"0\"],"
                      "\"key_description\":\"x\"}}",
     "tokens"},
    {"\"offset\":\"16777216\"", "\"offset\":\"4194304\"", "segment starts at 4194304"},
    {"\"offset\":\"16777216\"", "\"offset\":\"016777216\"", "not a decimal"},
    {"\"offset\":\"16777216\"", "\"offset\":\"+16777216\"", "not a decimal"},
    {"\"offset\":\"16777216\"", "\"offset\":16777216", "not a decimal"},
    {"\"offset\":\"16777216\"", "\"offset\":\"99999999999999999999999\"", "not a decimal"},
    {"\"iterations\":1000,\"salt\"", "\"iterations\":4000000000,\"salt\"", "iterations"},
    {"\"iterations\":1000,\"salt\"", "\"iterations\":999,\"salt\"", "iterations"},
    {"\"iterations\":1000,\"salt\"", "\"iterations\":10000001,\"salt\"", "iterations"},
    {"\"iterations\":1000,\"salt\"", "\"iterations\":\"1000\",\"salt\"", "iterations"},
    {"\"sector_size\":4096", "\"sector_size\":4096,\"integrity\":{\"type\":\"hmac(sha256)\","
                             "\"journal_encryption\":\"none\",\"journal_integrity\":\"none\"}",
     "integrity"},
    {"\"sector_size\":4096", "\"sector_size\":1024", "sector size"},
    {"\"sector_size\":4096", "\"sector_size\":4096,\"flags\":[]", "unexpected \"flags\""},
    {"\"encryption\":\"aes-xts-plain64\",\"sector", "\"encryption\":\"cipher_null-ecb\",\"sector",
     "encryption"},
    {"\"size\":\"dynamic\"", "\"size\":\"4096\"", "size"},
    {"\"iv_tweak\":\"0\"", "\"iv_tweak\":\"8\"", "iv_tweak"},
    {"\"keyslots_size\":\"16744448\"", "\"keyslots_size\":\"16744448\",\"requirements\":"
                                       "{\"mandatory\":[\"online-reencrypt\"]}",
     "requirements"},
    {"\"json_size\":\"12288\"", "\"json_size\":\"61440\"", "json_size"},
    {"\"keyslots_size\":\"16744448\"", "\"keyslots_size\":\"16748544\"", "keyslots area"},
    {"\"keyslots_size\":\"16744448\"", "\"keyslots_size\":\"4096\"", "keyslot area lies"},
    {"\"offset\":\"32768\"", "\"offset\":\"16384\"", "keyslot area lies"},
    {"\"size\":\"258048\"", "\"size\":\"4096\"", "keyslot area lies"},
    {"\"stripes\":4000", "\"stripes\":1", "stripes"},
    {"\"key_size\":64,\"af\"", "\"key_size\":32,\"af\"", "key_size"},
    {"\"kdf\":{\"type\":\"pbkdf2\",\"hash\":\"sha256\"",
     "\"kdf\":{\"type\":\"pbkdf2\",\"hash\":\"sha1\"", "hash"},
    {"\"keyslots\":[\"0\"]", "\"keyslots\":[\"0\",\"0\"]", "bind exactly"},
    {"\"segments\":[\"0\"]", "\"segments\":[]", "bind exactly"},
    {"\"type\":\"luks2\",\"key_size\"", "\"type\":\"luks2\",\"priority\":2,\"key_size\"",
     "unexpected \"priority\""},
    {"\"config\":{", "\"extra\":1,\"config\":{", "unexpected \"extra\""},
    {"{\"keyslots\":{\"0\":", "{\"keyslots\":{\"1\":", "exactly one entry"},
    {"\"digests\":{\"0\":", "\"digests\":{\"0\":{},\"1\":", "exactly one entry"},
    {"{\"keyslots\"", "[{\"keyslots\"", "does not parse"},
};

static void test_json_policy(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(0);
    load("luks2-good.bin", &b);
    json_edit(&b, edits[i].from, edits[i].to);
    enum luks2_kind kind;
    char why[256] = "";
    int r = probe(&b, &kind, NULL, why, sizeof(why));
    if (r != -EBADMSG || !strstr(why, edits[i].why))
      fail_msg("edit %zu (%s -> %s): r=%d why=\"%s\", wanted \"%s\"", i, edits[i].from,
               edits[i].to, r, why, edits[i].why);
  }
  /* the edit helper itself keeps a header valid */
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks2-good.bin", &b);
  json_edit(&b, "\"iterations\":1000,\"salt\"", "\"iterations\":2000,\"salt\"");
  enum luks2_kind kind;
  struct luks2_info info;
  assert_int_equal(probe(&b, &kind, &info, NULL, 0), 0);
  assert_int_equal(info.pbkdf2_iterations, 2000);
  /* a duplicate key is refused by the parser */
  json_edit(&b, "\"tokens\":{}", "\"tokens\":{},\"tokens\":{}");
  assert_int_equal(probe(&b, &kind, &info, NULL, 0), -EBADMSG);
}

static void test_cryptsetup_variants(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks2-argon2.bin", &b);
  expect_bad(&b, "argon2id, not pbkdf2");
  load("luks2-twokeys.bin", &b);
  expect_bad(&b, "exactly one entry");
}

/* why is bounded by whylen and always terminated */
static void test_why_small(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  load("luks1.bin", &b);
  enum luks2_kind kind;
  char why[8];
  memset(why, 'z', sizeof(why));
  assert_int_equal(probe(&b, &kind, NULL, why, sizeof(why)), -EBADMSG);
  assert_int_equal(strlen(why), 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good),          cmocka_unit_test(test_blank),
      cmocka_unit_test(test_garbage),       cmocka_unit_test(test_luks1),
      cmocka_unit_test(test_truncated),     cmocka_unit_test(test_checksum),
      cmocka_unit_test(test_binary_fields), cmocka_unit_test(test_copies_disagree),
      cmocka_unit_test(test_json_policy),   cmocka_unit_test(test_cryptsetup_variants),
      cmocka_unit_test(test_why_small),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
