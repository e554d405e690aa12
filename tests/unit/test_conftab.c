#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/conftab.h"
#include "base/fileio.h"
#include "base/str.h"
#include "testutil.h"

struct demo {
  char *name;
  uint16_t port;
  uint32_t count;
  bool flag;
  char *tri;
  uint64_t size;
  char **list;
  char **hashes;
  char **ids;
  char *deep;
};

#define O(f) offsetof(struct demo, f)

static const struct conftab_opt opts[] = {
    {"", "name", CONFTAB_STR, O(name), "x \"q\"", 0, NULL},
    {"", "port", CONFTAB_U16, O(port), "80", 0, NULL},
    {"", "count", CONFTAB_U32, O(count), "4000000000", 0, NULL},
    {"a", "flag", CONFTAB_BOOL, O(flag), "true", 0, NULL},
    {"a", "tri", CONFTAB_TRIBOOL, O(tri), "", 0, "from elsewhere"},
    {"a", "size", CONFTAB_SIZE, O(size), "1024", 0, NULL},
    {"a", "list", CONFTAB_STRV, O(list), "p,q", 0, NULL},
    {"a.b", "hashes", CONFTAB_HEXV, O(hashes), "", 4, NULL},
    {"a.b", "ids", CONFTAB_HEXV, O(ids), "", 0, NULL},
    {"x.y.z", "deep", CONFTAB_STR, O(deep), "", 0, NULL},
};
static const struct conftab tab = {opts, ARRAY_SIZE(opts)};

/* Same options, none at the top level. */
static const struct conftab tab_tables = {opts + 3, ARRAY_SIZE(opts) - 3};

static void demo_init(struct demo *d) {
  memset(d, 0, sizeof(*d));
  assert_int_equal(conftab_defaults(&tab, d), 0);
}

static int load(struct demo *d, const char *text, char *err, size_t n) {
  return conftab_load_text(&tab, d, text, strlen(text), err, n);
}

static void test_defaults(void **state) {
  (void)state;
  struct demo d;
  demo_init(&d);
  assert_string_equal(d.name, "x \"q\"");
  assert_int_equal(d.port, 80);
  assert_int_equal(d.count, 4000000000u);
  assert_true(d.flag);
  assert_string_equal(d.tri, "");
  assert_int_equal(d.size, 1024);
  assert_string_equal(d.list[0], "p");
  assert_string_equal(d.list[1], "q");
  assert_null(d.list[2]);
  assert_non_null(d.hashes);
  assert_null(d.hashes[0]);
  /* Defaults again replace (and free) what is there. */
  assert_int_equal(conftab_defaults(&tab, &d), 0);
  conftab_free(&tab, &d);
  assert_null(d.name);
  assert_null(d.list);
  conftab_free(&tab, NULL);

  /* A default that does not fit its type is an error. */
  static const struct conftab_opt bad[] = {{"", "p", CONFTAB_U16, O(port), "70000", 0, NULL}};
  static const struct conftab badtab = {bad, 1};
  assert_int_equal(conftab_defaults(&badtab, &d), -EINVAL);
}

static void test_load_values(void **state) {
  (void)state;
  struct demo d;
  char err[256] = "";
  demo_init(&d);
  const char *t = "name = \"n\"\nport = 65535\ncount = 0\n"
                  "[a]\nflag = false\ntri = true\nsize = \"2KiB\"\nlist = []\n"
                  "[a.b]\nhashes = [\"0xDEADBEEF\", \"00112233\"]\nids = [\"ab\"]\n"
                  "[x.y.z]\ndeep = \"d\"\n";
  assert_int_equal(load(&d, t, err, sizeof(err)), 0);
  assert_string_equal(d.name, "n");
  assert_int_equal(d.port, 65535);
  assert_int_equal(d.count, 0);
  assert_false(d.flag);
  assert_string_equal(d.tri, "true");
  assert_int_equal(d.size, 2048);
  assert_non_null(d.list);
  assert_null(d.list[0]);
  assert_string_equal(d.hashes[0], "deadbeef");
  assert_string_equal(d.hashes[1], "00112233");
  assert_string_equal(d.ids[0], "ab");
  assert_string_equal(d.deep, "d");
  assert_int_equal(load(&d, "[a]\nsize = 77\ntri = false\n", err, sizeof(err)), 0);
  assert_int_equal(d.size, 77);
  assert_string_equal(d.tri, "false");
  conftab_free(&tab, &d);
}

static void test_load_errors(void **state) {
  (void)state;
  static const struct {
    const char *text;
    const char *msg;
  } cases[] = {
      {"nope = 1\n", "line 1:8: unknown top-level key 'nope'"},
      {"[a]\nnope = 1\n", "line 2:8: unknown key 'nope' in [a]"},
      {"[zz]\n", "unknown table [zz]"},
      {"[a.c]\n", "unknown table [a.c]"},
      {"[x]\n[x.q]\n", "unknown table [x.q]"},
      {"[a.b.c]\n", "unknown table [a.b.c]"},
      {"name = 1\n", "line 1:8: name: expected a string"},
      {"name = \"a\\u0000b\"\n", "name: expected a string"},
      {"port = 65536\n", "port: expected an integer 0..65535"},
      {"port = -1\n", "port: expected an integer"},
      {"count = 4294967296\n", "count: expected an integer 0..4294967295"},
      {"count = 1.5\n", "count: expected an integer"},
      {"[a]\nflag = \"true\"\n", "[a] flag: expected a boolean"},
      {"[a]\ntri = 1\n", "[a] tri: expected a boolean"},
      {"[a]\nsize = -1\n", "[a] size: negative size"},
      {"[a]\nsize = \"lots\"\n", "[a] size: expected a size"},
      {"[a]\nsize = \"10EiB\"\n", "[a] size: expected a size"},
      {"[a]\nsize = true\n", "[a] size: expected a size"},
      {"[a]\nlist = \"p\"\n", "[a] list: expected an array of strings"},
      {"[a]\nlist = [\"p\", 1]\n", "line 2:14: [a] list: expected an array of strings"},
      {"[a.b]\nhashes = [\"abc\"]\n", "[a.b] hashes: item 0: expected 8 hex characters"},
      {"[a.b]\nhashes = [\"0011223\"]\n", "expected 8 hex characters"},
      {"[a.b]\nhashes = [\"00112233\", \"0011223g\"]\n", "item 1: expected 8 hex"},
      {"[a.b]\nhashes = [\"0x\"]\n", "expected 8 hex"},
      {"[a.b]\nids = [\"\"]\n", "[a.b] ids: item 0: expected hex (1..64 bytes)"},
      {"[a.b]\nids = [\"abc\"]\n", "expected hex (1..64 bytes)"},
      {"[a.b]\nids = [\"" /* 65 bytes */
       "0000000000000000000000000000000000000000000000000000000000000000"
       "000000000000000000000000000000000000000000000000000000000000000000\"]\n",
       "expected hex (1..64 bytes)"},
      {"[a\n", "line 1:"},
      {"name = \"x\"\nname = \"y\"\n", "line 2:"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct demo d;
    char err[256] = "";
    demo_init(&d);
    int r = load(&d, cases[i].text, err, sizeof(err));
    if (r >= 0 || !strstr(err, cases[i].msg))
      fail_msg("case %zu: r=%d err='%s' want '%s'", i, r, err, cases[i].msg);
    conftab_free(&tab, &d);
  }
  /* A 64-byte id is fine. */
  struct demo d;
  char err[256] = "";
  demo_init(&d);
  char ok[160];
  snprintf(ok, sizeof(ok), "[a.b]\nids = [\"%0128d\"]\n", 0);
  assert_int_equal(load(&d, ok, err, sizeof(err)), 0);
  assert_int_equal(strlen(d.ids[0]), 128);
  /* No error buffer: still fails cleanly. */
  assert_int_equal(load(&d, "nope = 1\n", NULL, 0), -EINVAL);
  assert_int_equal(load(&d, "[a\n", NULL, 0), -EBADMSG);
  /* Without top-level options the message says where options live. */
  assert_int_equal(conftab_load_text(&tab_tables, &d, "name = \"n\"\n", 11, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "unknown top-level key 'name' (options live in tables)"));
  conftab_free(&tab, &d);
}

static void test_dump_roundtrip(void **state) {
  (void)state;
  struct demo d, d2;
  char err[256] = "";
  demo_init(&d);
  struct buf out = BUF_INIT(1 << 16), out2 = BUF_INIT(1 << 16);
  assert_int_equal(conftab_dump(&tab, &d, &out), 0);
  assert_int_equal(buf_append_u8(&out, 0), 0);
  const char *want = "name = \"x \\\"q\\\"\"\nport = 80\ncount = 4000000000\n"
                     "\n[a]\nflag = true\n# tri: unset, from elsewhere\nsize = 1024\n"
                     "list = [\"p\", \"q\"]\n"
                     "\n[a.b]\nhashes = []\nids = []\n"
                     "\n[x.y.z]\ndeep = \"\"\n";
  assert_string_equal((const char *)out.data, want);

  const char *t = "name = \"\\u00e9\\n\\\"\"\nport = 1\n[a]\nflag = false\ntri = false\n"
                  "size = \"1GiB\"\nlist = [\"a,b\", \"\"]\n[a.b]\nhashes = [\"AABBCCDD\"]\n";
  assert_int_equal(load(&d, t, err, sizeof(err)), 0);
  buf_reset(&out);
  assert_int_equal(conftab_dump(&tab, &d, &out), 0);
  assert_non_null(memmem(out.data, out.len, "tri = false\n", 12));
  /* The dump reads back to the same values and dumps to the same text. */
  memset(&d2, 0, sizeof(d2));
  assert_int_equal(conftab_defaults(&tab, &d2), 0);
  assert_int_equal(conftab_load_text(&tab, &d2, (const char *)out.data, out.len, err, sizeof(err)),
                   0);
  assert_string_equal(d2.name, d.name);
  assert_int_equal(d2.size, (uint64_t)1 << 30);
  assert_string_equal(d2.list[0], "a,b");
  assert_string_equal(d2.list[1], "");
  assert_string_equal(d2.hashes[0], "aabbccdd");
  assert_string_equal(d2.tri, "false");
  assert_int_equal(conftab_dump(&tab, &d2, &out2), 0);
  assert_int_equal(out.len, out2.len);
  assert_memory_equal(out.data, out2.data, out.len);

  /* A full buffer is reported. */
  struct buf small = BUF_INIT(16);
  assert_true(conftab_dump(&tab, &d, &small) < 0);
  buf_free(&small);

  /* Without top-level options the first table has no blank line before it. */
  buf_reset(&out2);
  assert_int_equal(conftab_dump(&tab_tables, &d, &out2), 0);
  assert_true(out2.len > 4 && memcmp(out2.data, "[a]\n", 4) == 0);
  buf_free(&out);
  buf_free(&out2);
  conftab_free(&tab, &d);
  conftab_free(&tab, &d2);
}

static void test_load_file(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char *path = str_printf("%s/c.toml", dir);
  char *missing = str_printf("%s/missing.toml", dir);
  assert_non_null(path);
  assert_non_null(missing);
  struct demo d;
  char err[512] = "";
  demo_init(&d);
  const char *good = "port = 9\n";
  assert_int_equal(file_write_atomic(path, good, strlen(good), 0600), 0);
  assert_int_equal(conftab_load_file(&tab, &d, path, err, sizeof(err)), 0);
  assert_int_equal(d.port, 9);
  const char *bad = "\n[a]\n  bogus = 1\n";
  assert_int_equal(file_write_atomic(path, bad, strlen(bad), 0600), 0);
  assert_int_equal(conftab_load_file(&tab, &d, path, err, sizeof(err)), -EINVAL);
  char *want = str_printf("%s:3:11: unknown key 'bogus' in [a]", path);
  assert_string_equal(err, want);
  free(want);
  const char *syntax = "x = \n";
  assert_int_equal(file_write_atomic(path, syntax, strlen(syntax), 0600), 0);
  assert_int_equal(conftab_load_file(&tab, &d, path, err, sizeof(err)), -EBADMSG);
  assert_true(str_startswith(err, path) && strstr(err, ":1:"));
  assert_true(conftab_load_file(&tab, &d, missing, err, sizeof(err)) < 0);
  assert_true(str_startswith(err, missing));
  conftab_free(&tab, &d);
  free(path);
  free(missing);
  tu_rm_rf(dir);
  free(dir);
}

static void test_helpers(void **state) {
  (void)state;
  char err[8];
  assert_int_equal(conftab_error(err, sizeof(err), "%s", "0123456789"), -EINVAL);
  assert_string_equal(err, "0123456");
  assert_int_equal(conftab_error(NULL, 0, "x"), -EINVAL);
  char *s = NULL;
  assert_int_equal(conftab_set_str(&s, "a"), 0);
  assert_int_equal(conftab_set_str(&s, "b"), 0);
  assert_string_equal(s, "b");
  free(s);
  char **l = NULL;
  assert_int_equal(conftab_set_strv(&l, NULL), 0);
  assert_non_null(l);
  assert_null(l[0]);
  char **m = NULL;
  assert_int_equal(strv_push_dup(&m, "z"), 0);
  assert_int_equal(conftab_set_strv(&l, m), 0);
  assert_string_equal(l[0], "z");
  strv_free(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),    cmocka_unit_test(test_load_values),
      cmocka_unit_test(test_load_errors), cmocka_unit_test(test_dump_roundtrip),
      cmocka_unit_test(test_load_file),   cmocka_unit_test(test_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
