#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/conftab.h"
#include "base/fileio.h"
#include "base/str.h"
#include "testutil.h"
#include "tu_conftab.h"
#include "tu_wipe.h"

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
  char *token;
  char *deep;
};

#define D struct demo

static const struct conftab_opt opts[] = {
    CONFTAB_STR(D, "", "name", name, "x \"q\""),
    CONFTAB_U16(D, "", "port", port, 80),
    CONFTAB_U32(D, "", "count", count, 4000000000u),
    CONFTAB_BOOL(D, "a", "flag", flag, true),
    CONFTAB_TRIBOOL(D, "a", "tri", tri, "", "from elsewhere"),
    CONFTAB_SIZE(D, "a", "size", size, 1024),
    CONFTAB_STRV(D, "a", "list", list, "p,q"),
    CONFTAB_HEXV(D, "a.b", "hashes", hashes, "", 4),
    CONFTAB_HEXV(D, "a.b", "ids", ids, "", 0),
    CONFTAB_SECRET_STR(D, "a.b", "token", token, ""),
    CONFTAB_STR(D, "x.y.z", "deep", deep, ""),
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

}

#define O(f) offsetof(struct demo, f)

/* Defaults that do not fit their type are errors at conftab_defaults, not some other value.
 * (The entry macros refuse them at compile time; these tables are built by hand.) */
static void test_bad_defaults(void **state) {
  (void)state;
  static const struct conftab_opt bad[] = {
      /* a boolean default other than 0 or 1 (the old text default "ture" was false) */
      {.section = "", .key = "f", .type = CONFTAB_T_BOOL, .offset = O(flag), .def_num = 2},
      {.section = "", .key = "p", .type = CONFTAB_T_U16, .offset = O(port), .def_num = 70000},
      {.section = "", .key = "c", .type = CONFTAB_T_U32, .offset = O(count),
       .def_num = (uint64_t)UINT32_MAX + 1},
      {.section = "", .key = "s", .type = CONFTAB_T_SIZE, .offset = O(size),
       .def_num = (uint64_t)INT64_MAX + 1},
      {.section = "", .key = "t", .type = CONFTAB_T_TRIBOOL, .offset = O(tri), .def = "ture"},
      {.section = "", .key = "t", .type = CONFTAB_T_TRIBOOL, .offset = O(tri), .def = "yes"},
      {.section = "", .key = "h", .type = CONFTAB_T_HEXV, .offset = O(hashes), .def = "abc",
       .hexlen = 4},
      {.section = "", .key = "h", .type = CONFTAB_T_HEXV, .offset = O(hashes),
       .def = "00112233,zz112233", .hexlen = 4},
      {.section = "", .key = "h", .type = CONFTAB_T_HEXV, .offset = O(ids), .def = "0", .hexlen = 0},
      {.section = "", .key = "x", .type = (enum conftab_type)99, .offset = O(name)},
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    struct demo d;
    memset(&d, 0, sizeof(d));
    struct conftab one = {&bad[i], 1};
    if (conftab_defaults(&one, &d) != -EINVAL)
      fail_msg("bad default %zu (%s) accepted", i, bad[i].key);
    conftab_free(&one, &d);
  }
  /* The limits themselves are fine, and hex defaults are stored like loaded values. */
  static const struct conftab_opt good[] = {
      {.section = "", .key = "f", .type = CONFTAB_T_BOOL, .offset = O(flag), .def_num = 1},
      {.section = "", .key = "p", .type = CONFTAB_T_U16, .offset = O(port), .def_num = 65535},
      {.section = "", .key = "c", .type = CONFTAB_T_U32, .offset = O(count), .def_num = UINT32_MAX},
      {.section = "", .key = "s", .type = CONFTAB_T_SIZE, .offset = O(size), .def_num = INT64_MAX},
      {.section = "", .key = "t", .type = CONFTAB_T_TRIBOOL, .offset = O(tri), .def = "false"},
      {.section = "", .key = "h", .type = CONFTAB_T_HEXV, .offset = O(hashes),
       .def = "0xAABBCCDD,00112233", .hexlen = 4},
  };
  struct demo d;
  memset(&d, 0, sizeof(d));
  struct conftab g = {good, ARRAY_SIZE(good)};
  assert_int_equal(conftab_defaults(&g, &d), 0);
  assert_true(d.flag);
  assert_int_equal(d.port, 65535);
  assert_int_equal(d.count, UINT32_MAX);
  assert_true(d.size == INT64_MAX);
  assert_string_equal(d.tri, "false");
  assert_string_equal(d.hashes[0], "aabbccdd");
  assert_string_equal(d.hashes[1], "00112233");
  conftab_free(&g, &d);
}

/* Tables whose dump would not load back (or that name a key or field twice) are refused. */
static void test_bad_tables(void **state) {
  (void)state;
#define S(sec, k, f) {.section = sec, .key = k, .type = CONFTAB_T_STR, .offset = O(f)}
  static const struct conftab_opt twice[] = {S("a", "k", name), S("a", "k", deep)};
  static const struct conftab_opt same_field[] = {S("a", "k", name), S("a", "j", name)};
  static const struct conftab_opt split[] = {S("a", "k", name), S("b", "k", deep),
                                             S("a", "j", tri)};
  static const struct conftab_opt top_late[] = {S("a", "k", name), S("", "j", deep)};
  static const struct conftab_opt key_is_table[] = {S("a", "b", name), S("a.b", "c", deep)};
  static const struct conftab_opt top_key_is_table[] = {S("", "a", name), S("a.b", "c", deep)};
  static const struct conftab_opt empty_part[] = {S("a..b", "k", name)};
  static const struct conftab_opt lead_dot[] = {S(".a", "k", name)};
  static const struct conftab_opt trail_dot[] = {S("a.", "k", name)};
  static const struct conftab_opt no_key[] = {S("a", "", name)};
  static const struct conftab_opt big_hex[] = {
      {.section = "", .key = "h", .type = CONFTAB_T_HEXV, .offset = O(ids), .hexlen = 65}};
  static const struct {
    const struct conftab_opt *o;
    size_t n;
  } bad[] = {
      {twice, ARRAY_SIZE(twice)},
      {same_field, ARRAY_SIZE(same_field)},
      {split, ARRAY_SIZE(split)},
      {top_late, ARRAY_SIZE(top_late)},
      {key_is_table, ARRAY_SIZE(key_is_table)},
      {top_key_is_table, ARRAY_SIZE(top_key_is_table)},
      {empty_part, 1},
      {lead_dot, 1},
      {trail_dot, 1},
      {no_key, 1},
      {big_hex, 1},
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    struct demo d;
    memset(&d, 0, sizeof(d));
    struct conftab t = {bad[i].o, bad[i].n};
    if (conftab_defaults(&t, &d) != -EINVAL)
      fail_msg("bad table %zu accepted", i);
    conftab_free(&t, &d);
  }
  /* Fine: a table below one whose name is not a key, and sibling tables sharing a prefix. */
  static const struct conftab_opt ok[] = {S("", "k", name), S("a", "bb", tri),
                                          S("a.b", "c", deep), S("ab", "c", token)};
  struct demo d;
  memset(&d, 0, sizeof(d));
  struct conftab t = {ok, ARRAY_SIZE(ok)};
  assert_int_equal(conftab_defaults(&t, &d), 0);
  conftab_free(&t, &d);
#undef S
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
  assert_int_equal(conftab_dump(&tab, &d, 0, &out), 0);
  assert_int_equal(buf_append_u8(&out, 0), 0);
  const char *want = "name = \"x \\\"q\\\"\"\nport = 80\ncount = 4000000000\n"
                     "\n[a]\nflag = true\n# tri: unset, from elsewhere\nsize = 1024\n"
                     "list = [\"p\", \"q\"]\n"
                     "\n[a.b]\nhashes = []\nids = []\ntoken = \"\"\n"
                     "\n[x.y.z]\ndeep = \"\"\n";
  assert_string_equal((const char *)out.data, want);

  const char *t = "name = \"\\u00e9\\n\\\"\"\nport = 1\n[a]\nflag = false\ntri = false\n"
                  "size = \"1GiB\"\nlist = [\"a,b\", \"\"]\n[a.b]\nhashes = [\"AABBCCDD\"]\n";
  assert_int_equal(load(&d, t, err, sizeof(err)), 0);
  buf_reset(&out);
  assert_int_equal(conftab_dump(&tab, &d, 0, &out), 0);
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
  assert_int_equal(conftab_dump(&tab, &d2, 0, &out2), 0);
  assert_int_equal(out.len, out2.len);
  assert_memory_equal(out.data, out2.data, out.len);

  /* A full buffer is reported, and what was there before stays. */
  struct buf small = BUF_INIT(16);
  assert_int_equal(buf_append_str(&small, "# head\n"), 0);
  assert_int_equal(conftab_dump(&tab, &d, 0, &small), -ENOBUFS);
  assert_int_equal(small.len, 7);
  buf_free(&small);

  /* Without top-level options the first table has no blank line before it. */
  buf_reset(&out2);
  assert_int_equal(conftab_dump(&tab_tables, &d, 0, &out2), 0);
  assert_true(out2.len > 4 && memcmp(out2.data, "[a]\n", 4) == 0);
  buf_free(&out);
  buf_free(&out2);
  conftab_free(&tab, &d);
  conftab_free(&tab, &d2);
}

/* A secret is hidden (as a comment, so the dump still loads), shown only on request and only
 * into a secret buffer. */
static void test_secret_dump(void **state) {
  (void)state;
  struct demo d, d2;
  char err[256] = "";
  demo_init(&d);
  assert_int_equal(load(&d, "[a.b]\ntoken = \"hunter2 \\\"x\\\"\"\n", err, sizeof(err)), 0);
  assert_string_equal(d.token, "hunter2 \"x\"");
  struct buf out = BUF_INIT(1 << 16);
  assert_int_equal(conftab_dump(&tab, &d, 0, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_null(strstr((const char *)out.data, "hunter2"));
  assert_non_null(strstr((const char *)out.data, "\n# token = (set, not shown)\n"));
  /* The dump loads; the secret is at its default then. */
  demo_init(&d2);
  assert_int_equal(conftab_load_text(&tab, &d2, (const char *)out.data, out.len, err, sizeof(err)),
                   0);
  assert_string_equal(d2.token, "");
  assert_string_equal(d2.name, d.name);
  /* With secrets: only into a secret buffer. */
  buf_reset(&out);
  assert_int_equal(conftab_dump(&tab, &d, CONFTAB_DUMP_SECRETS, &out), -EINVAL);
  assert_int_equal(out.len, 0);
  struct buf sec = BUF_INIT_SECRET(1 << 16);
  assert_int_equal(conftab_dump(&tab, &d, CONFTAB_DUMP_SECRETS, &sec), 0);
  assert_int_equal(buf_terminate(&sec), 0);
  assert_non_null(strstr((const char *)sec.data, "token = \"hunter2 \\\"x\\\"\"\n"));
  assert_int_equal(conftab_load_text(&tab, &d2, (const char *)sec.data, sec.len, err, sizeof(err)),
                   0);
  assert_string_equal(d2.token, d.token);
  /* An empty secret has nothing to hide. */
  assert_int_equal(load(&d, "[a.b]\ntoken = \"\"\n", err, sizeof(err)), 0);
  buf_reset(&out);
  assert_int_equal(conftab_dump(&tab, &d, 0, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_non_null(strstr((const char *)out.data, "\ntoken = \"\"\n"));
  buf_free(&out);
  buf_free(&sec);
  conftab_free(&tab, &d);
  conftab_free(&tab, &d2);
}

/* A secret's memory is zero when it is freed: on conftab_free and when a load replaces it. */
static void test_secret_wiped(void **state) {
  (void)state;
  struct demo d;
  char err[256] = "";
  demo_init(&d);
  assert_int_equal(load(&d, "[a.b]\ntoken = \"first secret\"\n", err, sizeof(err)), 0);
  tu_wipe_watch(d.token, strlen("first secret"));
  assert_int_equal(load(&d, "[a.b]\ntoken = \"second secret\"\n", err, sizeof(err)), 0);
  assert_true(tu_wipe_freed());
  assert_true(tu_wipe_was_clean());
  tu_wipe_watch(d.token, strlen("second secret"));
  conftab_free(&tab, &d);
  assert_null(d.token);
  assert_true(tu_wipe_freed());
  assert_true(tu_wipe_was_clean());
  /* the helper for daemons' own values wipes what it replaces, too */
  char *s = strdup("old secret");
  assert_non_null(s);
  tu_wipe_watch(s, strlen("old secret"));
  assert_int_equal(conftab_set_str(&s, "new"), 0);
  assert_true(tu_wipe_freed() && tu_wipe_was_clean());
  free(s);
}

/* TOML text is UTF-8: a string that is not cannot be dumped (it would not load back). */
static void test_dump_not_utf8(void **state) {
  (void)state;
  struct demo d;
  demo_init(&d);
  static const char *const bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    assert_int_equal(conftab_set_str(&d.deep, bad[i]), 0);
    struct buf out = BUF_INIT(1 << 16);
    assert_int_equal(buf_append_str(&out, "x"), 0);
    if (conftab_dump(&tab, &d, 0, &out) != -EILSEQ)
      fail_msg("case %zu dumped", i);
    assert_int_equal(out.len, 1);
    buf_free(&out);
  }
  conftab_free(&tab, &d);
}

/* Every option at its default and at a non-default value round-trips through the dump. */
static void test_roundtrip_every_option(void **state) {
  (void)state;
  tu_conftab_roundtrip(&tab, sizeof(struct demo));
  assert_int_equal(tu_conftab_check_secret_names(&tab), 1);
}

/* Entries whose type does not match their field, or whose default does not fit, do not
 * compile (tests/unit/conftab_compile_fail.c). */
static void test_compile_fail(void **state) {
  (void)state;
#ifndef TEST_CC
  skip();
#else
  char src[4096], inc[4096];
  snprintf(src, sizeof(src), "%s", tu_source_path("tests/unit/conftab_compile_fail.c"));
  snprintf(inc, sizeof(inc), "%s", tu_source_path("lib"));
  for (int c = 0; c <= 16; c++) {
    char cmd[10000];
    snprintf(cmd, sizeof(cmd),
             "%s -std=gnu17 -D_GNU_SOURCE -fsyntax-only -DCASE=%d -I'%s' '%s' >/dev/null 2>&1",
             TEST_CC, c, inc, src);
    int st = system(cmd);
    assert_true(st != -1 && WIFEXITED(st));
    if (c == 0 && WEXITSTATUS(st) != 0)
      fail_msg("the valid table does not compile: %s", cmd);
    if (c > 0 && WEXITSTATUS(st) == 0)
      fail_msg("case %d compiles: %s", c, cmd);
  }
#endif
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
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_bad_defaults),
      cmocka_unit_test(test_bad_tables),
      cmocka_unit_test(test_load_values),
      cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_dump_roundtrip),
      cmocka_unit_test(test_secret_dump),
      cmocka_unit_test(test_secret_wiped),
      cmocka_unit_test(test_dump_not_utf8),
      cmocka_unit_test(test_roundtrip_every_option),
      cmocka_unit_test(test_compile_fail),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
