#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>

#include "base/fileio.h"
#include "base/str.h"
#include "base/toml.h"
#include "testutil.h"
#include "tu_wipe.h"

static struct toml_value *parse_ok(const char *s) {
  struct toml_value *root = NULL;
  struct toml_error e;
  int r = toml_parse(s, strlen(s), &root, &e);
  if (r < 0)
    fail_msg("parse failed (%d) at %u:%u: %s\n--- input:\n%s", r, e.line, e.col, e.msg, s);
  assert_non_null(root);
  return root;
}

static void expect_str(const struct toml_value *t, const char *path, const char *want) {
  const char *s;
  int r = toml_get_string(t, path, &s);
  if (r < 0)
    fail_msg("%s: error %d", path, r);
  if (strcmp(s, want) != 0)
    fail_msg("%s: got \"%s\", want \"%s\"", path, s, want);
}

static void expect_int(const struct toml_value *t, const char *path, int64_t want) {
  int64_t v;
  int r = toml_get_int(t, path, &v);
  if (r < 0)
    fail_msg("%s: error %d", path, r);
  if (v != want)
    fail_msg("%s: got %lld, want %lld", path, (long long)v, (long long)want);
}

static void test_document(void **state) {
  (void)state;
  _cleanup_toml_ struct toml_value *root = parse_ok(
      "# a config file\n"
      "title = \"dstack\" # trailing comment\n"
      "enabled = true\n"
      "disabled = false\n"
      "\"quoted key\" = 1\n"
      "'literal key' = 2\n"
      "\"\" = \"empty key\"\n"
      "site.\"google.com\" = true\n"
      "a . b . c = 3\n"
      "\n"
      "[core]\n"
      "  port = 8080\n"
      "  hosts = [\"a\", \"b\",]\n"
      "  mixed = [1, \"two\", [3.0], {four = 4}]\n"
      "  point = { x = 1, y = -2, z.w = 3 }\n"
      "  empty = {}\n"
      "\n"
      "[core.tls]\n"
      "key = '/etc/key.pem'\n"
      "\n"
      "[[servers]]\n"
      "name = \"alpha\"\n"
      "[servers.extra]\n"
      "x = 1\n"
      "[[servers]]\n"
      "name = \"beta\"\n"
      "[[servers.ports]]\n"
      "n = 1\n"
      "[[servers.ports]]\n"
      "n = 2\n");
  expect_str(root, "title", "dstack");
  bool b;
  assert_int_equal(toml_get_bool(root, "enabled", &b), 0);
  assert_true(b);
  assert_int_equal(toml_get_bool(root, "disabled", &b), 0);
  assert_false(b);
  int64_t v;
  assert_int_equal(toml_value_int(toml_get(root, "quoted key"), &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(toml_value_int(toml_get(root, "literal key"), &v), 0);
  assert_int_equal(v, 2);
  const char *s;
  assert_int_equal(toml_value_string(toml_get(root, ""), &s, NULL), 0);
  assert_string_equal(s, "empty key");
  assert_int_equal(toml_value_bool(toml_get(toml_get(root, "site"), "google.com"), &b), 0);
  assert_true(b);
  expect_int(root, "a.b.c", 3);
  expect_int(root, "core.port", 8080);
  expect_str(root, "core.tls.key", "/etc/key.pem");
  expect_int(root, "core.point.x", 1);
  expect_int(root, "core.point.y", -2);
  expect_int(root, "core.point.z.w", 3);
  const struct toml_value *t;
  assert_int_equal(toml_get_table(root, "core.empty", &t), 0);
  assert_int_equal(toml_table_len(t), 0);

  char **hosts = NULL;
  assert_int_equal(toml_get_strv(root, "core.hosts", &hosts), 0);
  assert_int_equal(strv_length(hosts), 2);
  assert_string_equal(hosts[1], "b");
  strv_free(hosts);
  assert_int_equal(toml_get_strv(root, "core.mixed", &hosts), -EINVAL);

  const struct toml_value *mixed;
  assert_int_equal(toml_get_array(root, "core.mixed", &mixed), 0);
  assert_int_equal(toml_array_len(mixed), 4);
  assert_int_equal(toml_type(toml_array_at(mixed, 0)), TOML_INTEGER);
  assert_int_equal(toml_type(toml_array_at(mixed, 1)), TOML_STRING);
  assert_int_equal(toml_type(toml_array_at(mixed, 2)), TOML_ARRAY);
  assert_int_equal(toml_type(toml_array_at(mixed, 3)), TOML_TABLE);
  assert_null(toml_array_at(mixed, 4));
  expect_int(toml_array_at(mixed, 3), "four", 4);

  const struct toml_value *servers;
  assert_int_equal(toml_get_array(root, "servers", &servers), 0);
  assert_int_equal(toml_array_len(servers), 2);
  expect_str(toml_array_at(servers, 0), "name", "alpha");
  expect_int(toml_array_at(servers, 0), "extra.x", 1);
  expect_str(toml_array_at(servers, 1), "name", "beta");
  const struct toml_value *ports;
  assert_int_equal(toml_get_array(toml_array_at(servers, 1), "ports", &ports), 0);
  assert_int_equal(toml_array_len(ports), 2);
  expect_int(toml_array_at(ports, 1), "n", 2);

  /* file order is kept */
  static const char *const order[] = {"title",  "enabled", "disabled", "quoted key", "literal key",
                                      "",       "site",    "a",        "core",       "servers"};
  assert_int_equal(toml_table_len(root), ARRAY_SIZE(order));
  for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
    assert_string_equal(toml_table_key_at(root, i), order[i]);
    assert_ptr_equal(toml_table_value_at(root, i), toml_get(root, order[i]));
  }
  assert_null(toml_table_key_at(root, ARRAY_SIZE(order)));
  assert_null(toml_table_value_at(root, ARRAY_SIZE(order)));

  /* value positions */
  const struct toml_value *port = toml_get_path(root, "core.port");
  assert_int_equal(toml_value_line(port), 12);
  assert_int_equal(toml_value_col(port), 10);
}

static void test_getters(void **state) {
  (void)state;
  _cleanup_toml_ struct toml_value *root = parse_ok("s = 'x'\n"
                                                    "i = 70000\n"
                                                    "n = -1\n"
                                                    "f = 2.5\n"
                                                    "b = true\n"
                                                    "z = \"a\\u0000b\"\n"
                                                    "[t]\n"
                                                    "k = 1\n");
  const char *s;
  int64_t i;
  uint64_t u64;
  uint32_t u32;
  uint16_t u16;
  double f;
  bool b;
  const struct toml_value *t;
  assert_int_equal(toml_get_string(root, "missing", &s), -ENOENT);
  assert_int_equal(toml_get_string(root, "t.missing", &s), -ENOENT);
  assert_int_equal(toml_get_string(root, "s.deeper", &s), -ENOENT);
  assert_int_equal(toml_get_string(root, "i", &s), -EINVAL);
  assert_int_equal(toml_get_int(root, "s", &i), -EINVAL);
  assert_int_equal(toml_get_bool(root, "i", &b), -EINVAL);
  assert_int_equal(toml_get_table(root, "s", &t), -EINVAL);
  assert_int_equal(toml_get_array(root, "t", &t), -EINVAL);
  assert_int_equal(toml_get_u64(root, "n", &u64), -ERANGE);
  assert_int_equal(toml_get_u32(root, "i", &u32), 0);
  assert_int_equal(u32, 70000);
  assert_int_equal(toml_get_u16(root, "i", &u16), -ERANGE);
  assert_int_equal(toml_get_u16(root, "t.k", &u16), 0);
  assert_int_equal(u16, 1);
  assert_int_equal(toml_get_float(root, "f", &f), 0);
  assert_true(f == 2.5);
  assert_int_equal(toml_get_float(root, "i", &f), 0); /* integers convert */
  assert_true(f == 70000.0);
  assert_int_equal(toml_get_float(root, "s", &f), -EINVAL);
  assert_int_equal(toml_get_float(root, "nope", &f), -ENOENT);
  /* an embedded NUL is refused as a C string but reachable with its length */
  assert_int_equal(toml_get_string(root, "z", &s), -EINVAL);
  size_t len;
  assert_int_equal(toml_value_string(toml_get(root, "z"), &s, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(s, "a\0b", 3);
  assert_null(toml_get(toml_get(root, "s"), "x"));
  assert_null(toml_get_path(root, "t..k"));
  assert_int_equal(toml_array_len(root), 0);
  assert_int_equal(toml_table_len(toml_get(root, "s")), 0);
  assert_string_equal(toml_type_name(TOML_FLOAT), "float");

  static const char *const allowed[] = {"s", "i", "n", "f", "b", "z", "t", NULL};
  const char *bad = NULL;
  assert_int_equal(toml_table_check_keys(root, allowed, &bad), 0);
  static const char *const fewer[] = {"s", "i", "n", "f", "z", "t", NULL};
  assert_int_equal(toml_table_check_keys(root, fewer, &bad), -EINVAL);
  assert_string_equal(bad, "b");
}

static void test_strings(void **state) {
  (void)state;
  _cleanup_toml_ struct toml_value *root = parse_ok(
      "esc = \"b\\bt\\tn\\nf\\fr\\rq\\\"s\\\\\"\n"
      "uni = \"\\u00e9\\U0001F600\\u0041\"\n"
      "raw = \"caf\xc3\xa9 \xf0\x9f\x98\x80\"\n"
      "tab = \"a\tb\"\n"
      "lit = 'C:\\Users\\x \"q\"'\n"
      "ml = \"\"\"\n"
      "line1\n"
      "line2\"\"\"\n"
      "ml_crlf = \"\"\"\r\nx\r\ny\"\"\"\n"
      "fold = \"\"\"\\\n"
      "   The quick \\\n"
      "\n"
      "   brown \\   \n"
      "   fox.\"\"\"\n"
      "quotes = \"\"\"a\"b\"\"c\"\"\"\"\"\n"
      "quotes1 = \"\"\"\"x\"\"\"\"\n"
      "mll = '''\n"
      "first \\n '' '\n"
      "second'''\n"
      "mll_q = ''''x'''''\n"
      "empty = \"\"\n"
      "empty_ml = \"\"\"\"\"\"\n"
      "empty_lit = ''\n"
      "one = \"\"\" \"one quote\" \"\"\"\n"
      "mismatch1 = \"\"\"aaa'''bbb\"\"\"\n"
      "mismatch2 = '''aaa\"\"\"bbb'''\n"
      "q7 = \"\"\"\"\"\"\"\n"
      "foo.bar = \"\"\"\nhello\"\"\"\n"
      "foo.spam = \"\"\"\nhello\n\"\"\"\n");
  expect_str(root, "esc", "b\bt\tn\nf\fr\rq\"s\\");
  expect_str(root, "uni", "\xc3\xa9\xf0\x9f\x98\x80" "A");
  expect_str(root, "raw", "caf\xc3\xa9 \xf0\x9f\x98\x80");
  expect_str(root, "tab", "a\tb");
  expect_str(root, "lit", "C:\\Users\\x \"q\"");
  expect_str(root, "ml", "line1\nline2");
  expect_str(root, "ml_crlf", "x\ny");
  expect_str(root, "fold", "The quick brown fox.");
  expect_str(root, "quotes", "a\"b\"\"c\"\"");
  expect_str(root, "quotes1", "\"x\"");
  expect_str(root, "mll", "first \\n '' '\nsecond");
  expect_str(root, "mll_q", "'x''");
  expect_str(root, "empty", "");
  expect_str(root, "empty_ml", "");
  expect_str(root, "empty_lit", "");
  expect_str(root, "one", " \"one quote\" ");
  expect_str(root, "mismatch1", "aaa'''bbb");
  expect_str(root, "mismatch2", "aaa\"\"\"bbb");
  expect_str(root, "q7", "\"");
  expect_str(root, "foo.bar", "hello");
  expect_str(root, "foo.spam", "hello\n");
}

static void test_numbers(void **state) {
  (void)state;
  _cleanup_toml_ struct toml_value *root = parse_ok("a = 0\n"
                                                    "b = +17\n"
                                                    "c = -17\n"
                                                    "d = 1_000_000\n"
                                                    "e = 0xDEAD_beef\n"
                                                    "f = 0o755\n"
                                                    "g = 0b1101_0110\n"
                                                    "max = 9223372036854775807\n"
                                                    "min = -9223372036854775808\n"
                                                    "hmax = 0x7fffffffffffffff\n"
                                                    "mz = -0\n"
                                                    "pz = +0\n"
                                                    "f1 = 3.1415\n"
                                                    "f2 = -0.01\n"
                                                    "f3 = 5e+22\n"
                                                    "f4 = 1e06\n"
                                                    "f5 = -2E-2\n"
                                                    "f6 = 6.626e-34\n"
                                                    "f7 = 224_617.445_991\n"
                                                    "f8 = 0e0\n"
                                                    "f9 = 0.0\n"
                                                    "f10 = -0.0\n"
                                                    "i1 = inf\n"
                                                    "i2 = +inf\n"
                                                    "i3 = -inf\n"
                                                    "n1 = nan\n"
                                                    "n2 = -nan\n"
                                                    "arr = [1,2,3]\n"
                                                    "tiny = 1e-400\n");
  expect_int(root, "a", 0);
  expect_int(root, "b", 17);
  expect_int(root, "c", -17);
  expect_int(root, "d", 1000000);
  expect_int(root, "e", 0xdeadbeef);
  expect_int(root, "f", 0755);
  expect_int(root, "g", 0xd6);
  expect_int(root, "max", INT64_MAX);
  expect_int(root, "min", INT64_MIN);
  expect_int(root, "hmax", INT64_MAX);
  expect_int(root, "mz", 0);
  expect_int(root, "pz", 0);
  static const struct {
    const char *k;
    double v;
  } fl[] = {{"f1", 3.1415}, {"f2", -0.01}, {"f3", 5e22},  {"f4", 1e6},  {"f5", -2e-2},
            {"f6", 6.626e-34}, {"f7", 224617.445991}, {"f8", 0.0}, {"f9", 0.0}, {"f10", -0.0}};
  for (size_t i = 0; i < ARRAY_SIZE(fl); i++) {
    double d;
    assert_int_equal(toml_get_float(root, fl[i].k, &d), 0);
    assert_true(d == fl[i].v);
    assert_int_equal(toml_type(toml_get(root, fl[i].k)), TOML_FLOAT);
  }
  double d;
  assert_int_equal(toml_get_float(root, "f10", &d), 0);
  assert_true(signbit(d));
  assert_int_equal(toml_get_float(root, "i1", &d), 0);
  assert_true(isinf(d) && d > 0);
  assert_int_equal(toml_get_float(root, "i2", &d), 0);
  assert_true(isinf(d) && d > 0);
  assert_int_equal(toml_get_float(root, "i3", &d), 0);
  assert_true(isinf(d) && d < 0);
  assert_int_equal(toml_get_float(root, "n1", &d), 0);
  assert_true(isnan(d));
  assert_int_equal(toml_get_float(root, "n2", &d), 0);
  assert_true(isnan(d));
  assert_int_equal(toml_get_float(root, "tiny", &d), 0);
  assert_true(d == 0.0);
  assert_int_equal(toml_get_int(root, "f1", &(int64_t){0}), -EINVAL);
}

static void test_table_semantics_valid(void **state) {
  (void)state;
  static const char *const ok[] = {
      /* implicit super-table defined later, once */
      "[x.y.z.w]\n[x]\n",
      "[a.b]\nc = 1\n[a]\nd = 2\n",
      /* sub-tables of a dotted-key table via headers */
      "[fruit]\napple.color = 'red'\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true\n",
      /* dotted keys extending a dotted table in the same section */
      "a.b.c = 1\na.b.d = 2\na.e = 3\n",
      /* array of tables with sub-tables and nested arrays */
      "[[fruits]]\nname='apple'\n[fruits.physical]\ncolor='red'\n[[fruits.varieties]]\nname='x'\n"
      "[[fruits]]\nname='banana'\n[[fruits.varieties]]\nname='y'\n",
      /* the same sub-table name in two array elements */
      "[[a]]\n[a.b]\n[[a]]\n[a.b]\n",
      /* inline tables with dotted keys */
      "t = { a.b = 1, a.c = 2 }\n",
      /* whitespace around header keys and dots */
      "[ a . b ]\n[[ c . d ]]\n[ e . 'f.g' ]\n",
      /* comments and blank lines everywhere; CRLF */
      "\r\n# c\r\n  a = 1   # c\r\n\r\n[t] # c\r\n\tb = [ # c\r\n 1, # c\r\n # c\r\n 2 # c\r\n ] # c\r\n",
      /* no newline at the end; empty document; only comments */
      "a = 1",
      "",
      "# only a comment",
      "\xef\xbb\xbf" "a = 1\n",
      /* keys that look like other things */
      "1234 = 'a'\ntrue = 1\ninf = 2\n-_- = 3\n0x10 = 4\n",
      /* arrays spanning lines with nested arrays of tables */
      "a = [\n  { x = 1 },\n  { x = 2 },\n]\n",
      /* mixed arrays (TOML 1.0) */
      "a = [1, 'a', 1.5, true, [], {}]\n",
  };
  for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
    toml_free(parse_ok(ok[i]));
}

struct bad_case {
  const char *in;
  unsigned line, col;
  const char *msg; /* substring */
};

static const struct bad_case bad_cases[] = {
    /* key/table redefinitions */
    {"a = 1\na = 2\n", 2, 1, "duplicate key 'a'"},
    {"a = 1\n\"a\" = 2\n", 2, 1, "duplicate key"},
    {"a = 1\n'a' = 2\n", 2, 1, "duplicate key"},
    {"[t]\n[t]\n", 2, 2, "table 't' is already defined"},
    {"[t.u]\n[t]\n[t]\n", 3, 2, "already defined"},
    {"a = 1\n[a]\n", 2, 2, "key 'a' is already defined as an integer"},
    {"a = 1\n[a.b]\n", 2, 2, "already defined as an integer"},
    {"a.b = 1\n[a]\n", 2, 2, "table 'a' is already defined"},
    {"[fruit]\napple.color = 'red'\n[fruit.apple]\n", 3, 8, "already defined"},
    {"[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]\n", 3, 14, "already defined"},
    {"[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", 4, 1, "defined by a header"},
    {"[a.b.c.d]\nz = 9\n[a]\nb.c.d.k.t = 1\n", 4, 1, "defined by a header"},
    {"[a]\nb = 1\n[a.b]\n", 3, 4, "already defined as an integer"},
    {"a.b = 1\na.b.c = 2\n", 2, 3, "key 'b' is already defined as an integer"},
    {"a = {}\na.b = 1\n", 2, 1, "inline table 'a'"},
    {"a = {b = 1}\n[a]\n", 2, 2, "table 'a' is already defined"},
    {"a = {b = 1}\n[a.c]\n", 2, 2, "cannot extend inline table 'a'"},
    {"a = {b = {c = 1}, b.d = 2}\n", 1, 19, "inline table 'b'"},
    {"tbl = { fruit = { apple.color = 'red' }, fruit.apple.texture = { smooth = true } }\n", 1, 42,
     "inline table 'fruit'"},
    {"a = {b = 1, b = 2}\n", 1, 13, "duplicate key 'b'"},
    {"a = [{b = 1}]\n[a.c]\n", 2, 2, "already defined as an array"},
    {"a = []\n[[a]]\n", 2, 3, "cannot append to static array 'a'"},
    {"[a]\n[[a]]\n", 2, 3, "already defined as a table"},
    {"[[a]]\n[a]\n", 2, 2, "already defined as an array"},
    {"[[a]]\nb = 1\n[a.b]\n", 3, 4, "already defined as an integer"},
    /* missing pieces */
    {"a =\n", 1, 4, "missing value"},
    {"a = # c\n", 1, 5, "missing value"},
    {"a = ", 1, 5, "missing value"},
    {"= 1\n", 1, 1, "missing key"},
    {"a\n", 1, 2, "expected '='"},
    {"a b = 1\n", 1, 3, "expected '='"},
    {"a = 1 b = 2\n", 1, 7, "expected a newline"},
    {"a = 1,\n", 1, 6, "expected a newline"},
    {"[a\n", 1, 3, "expected ']'"},
    {"[[a]\n", 1, 4, "expected ']]'"},
    {"[a]]\n", 1, 4, "expected a newline"},
    {"[]\n", 1, 2, "expected a key, found ']'"},
    {"[a.]\n", 1, 4, "expected a key, found ']'"},
    {"a. = 1\n", 1, 4, "missing key"},
    {"[a] b = 1\n", 1, 5, "expected a newline"},
    {"a = 1\n  [t] x\n", 2, 7, "expected a newline"},
    {"k\xc3\xa9 = 1\n", 1, 2, "expected '='"},
    {"\xc3\xa9 = 1\n", 1, 1, "invalid character in key"},
    /* strings */
    {"a = \"abc\n", 1, 5, "unterminated string"},
    {"a = \"abc", 1, 5, "unterminated string"},
    {"a = 'abc\nb = 1\n", 1, 5, "unterminated string"},
    {"x = 1\na = \"\"\"abc\n\ndef\n", 2, 5, "unterminated string"},
    {"a = '''abc", 1, 5, "unterminated string"},
    {"a = \"\\q\"\n", 1, 6, "invalid escape sequence '\\q'"},
    {"a = \"\\x41\"\n", 1, 6, "invalid escape sequence '\\x'"},
    {"a = \"\\e\"\n", 1, 6, "invalid escape"},
    {"a = \"\\ \"\n", 1, 6, "invalid escape"},
    {"a = \"\"\"\\ x\"\"\"\n", 1, 8, "must end the line"},
    {"a = \"\\u12\"\n", 1, 6, "expected 4 hex digits"},
    {"a = \"\\u12g4\"\n", 1, 6, "expected 4 hex digits"},
    {"a = \"\\U0000004\"\n", 1, 6, "expected 8 hex digits"},
    {"a = \"\\uD800\"\n", 1, 6, "not a Unicode scalar"},
    {"a = \"\\uDFFF\"\n", 1, 6, "not a Unicode scalar"},
    {"a = \"\\U00110000\"\n", 1, 6, "not a Unicode scalar"},
    {"a = \"\\UFFFFFFFF\"\n", 1, 6, "not a Unicode scalar"},
    {"a = \"x\x01y\"\n", 1, 7, "control character in string"},
    {"a = 'x\x7fy'\n", 1, 7, "control character in string"},
    {"a = \"x\x1b\"\n", 1, 7, "control character"},
    {"a = \"x\ry\"\n", 1, 7, "carriage return"},
    {"a = '''x\ry'''\n", 1, 9, "carriage return"},
    {"a = \"\xff\"\n", 1, 6, "invalid UTF-8"},
    {"a = \"\xc0\xaf\"\n", 1, 6, "invalid UTF-8"},         /* overlong */
    {"a = \"\xed\xa0\x80\"\n", 1, 6, "invalid UTF-8"},     /* surrogate */
    {"a = \"\xf4\x90\x80\x80\"\n", 1, 6, "invalid UTF-8"}, /* > U+10FFFF */
    {"a = 'caf\xc3'\n", 1, 9, "invalid UTF-8"},            /* truncated */
    {"\"\"\"k\"\"\" = 1\n", 1, 1, "multi-line strings cannot be keys"},
    {"'''k''' = 1\n", 1, 1, "multi-line strings cannot be keys"},
    {"\"a\\u0000b\" = 1\n", 1, 1, "NUL"},
    {"a = \"\"\"\"\"\"\"\"\"\n", 1, 13, "expected a newline"},
    {"a = \"x\" \"y\"\n", 1, 9, "expected a newline"},
    /* comments and control characters */
    {"# x\x01y\n", 1, 4, "control character in comment"},
    {"a = 1 # x\x7f\n", 1, 10, "control character in comment"},
    {"# \xff\n", 1, 3, "invalid UTF-8"},
    {"a = 1\rb = 2\n", 1, 6, "carriage return"},
    {"\r", 1, 1, "carriage return"},
    {"a = 1\n\x0c\n", 2, 1, "invalid character"},
    /* integers */
    {"a = 01\n", 1, 5, "leading zeros"},
    {"a = 00\n", 1, 5, "leading zeros"},
    {"a = 0_0\n", 1, 5, "leading zeros"},
    {"a = -01\n", 1, 5, "leading zeros"},
    {"a = +0_1\n", 1, 5, "leading zeros"},
    {"a = ++99\n", 1, 5, "invalid number"},
    {"a = --99\n", 1, 5, "invalid number"},
    {"a = -0xff\n", 1, 5, "sign is not allowed"},
    {"a = +0b1\n", 1, 5, "sign is not allowed"},
    {"a = -0o7\n", 1, 5, "sign is not allowed"},
    {"a = 123_\n", 1, 5, "invalid number"},
    {"a = _123\n", 1, 5, "invalid value"},
    {"a = 1__23\n", 1, 5, "invalid number"},
    {"a = 0x_1\n", 1, 5, "invalid hexadecimal"},
    {"a = 0o_1\n", 1, 5, "invalid octal"},
    {"a = 0b_1\n", 1, 5, "invalid binary"},
    {"a = 0x1_\n", 1, 5, "invalid hexadecimal"},
    {"a = 0x\n", 1, 5, "invalid hexadecimal"},
    {"a = 0xaafz\n", 1, 5, "invalid hexadecimal"},
    {"a = 0o778\n", 1, 5, "invalid octal"},
    {"a = 0b0012\n", 1, 5, "invalid binary"},
    {"a = 0X1\n", 1, 5, "invalid number"},
    {"a = 0O0\n", 1, 5, "invalid number"},
    {"a = 0B0\n", 1, 5, "invalid number"},
    {"a = 9223372036854775808\n", 1, 5, "out of range"},
    {"a = -9223372036854775809\n", 1, 5, "out of range"},
    {"a = 99999999999999999999999\n", 1, 5, "out of range"},
    {"a = 0x8000000000000000\n", 1, 5, "out of range"},
    {"a = 0xffffffffffffffffff\n", 1, 5, "out of range"},
    {"a = 1a\n", 1, 5, "invalid number"},
    {"a = +\n", 1, 5, "missing value"},
    /* floats */
    {"a = 1.\n", 1, 5, "expected digits after '.'"},
    {"a = .5\n", 1, 5, "invalid value"},
    {"a = 1.e5\n", 1, 5, "expected digits after '.'"},
    {"a = 1e\n", 1, 5, "exponent"},
    {"a = 1e_5\n", 1, 5, "exponent"},
    {"a = 1e5_\n", 1, 5, "exponent"},
    {"a = 1_.5\n", 1, 5, "invalid number"},
    {"a = 1._5\n", 1, 5, "expected digits after '.'"},
    {"a = 01.5\n", 1, 5, "leading zeros"},
    {"a = 1.5.5\n", 1, 5, "invalid number"},
    {"a = 1e5.5\n", 1, 5, "invalid number"},
    {"a = 1e999\n", 1, 5, "float out of range"},
    {"a = -1e999\n", 1, 5, "float out of range"},
    {"a = infinity\n", 1, 5, "invalid number"},
    {"a = Inf\n", 1, 5, "invalid value"},
    {"a = NaN\n", 1, 5, "invalid value"},
    {"a = nan1\n", 1, 5, "invalid number"},
    /* dates */
    {"a = 1979-05-27\n", 1, 5, "date-time values are not supported"},
    {"a = 1979-05-27T07:32:00Z\n", 1, 5, "date-time"},
    {"a = 07:32:00\n", 1, 5, "date-time"},
    /* booleans and other values */
    {"a = tru\n", 1, 5, "invalid value"},
    {"a = TRUE\n", 1, 5, "invalid value"},
    {"a = truee\n", 1, 9, "expected a newline"},
    {"a = falsy\n", 1, 5, "invalid value"},
    {"a = bare\n", 1, 5, "invalid value"},
    /* arrays */
    {"a = [1, 2\n", 1, 5, "unterminated array"},
    {"a = [1 2]\n", 1, 8, "expected ',' or ']'"},
    {"a = [,]\n", 1, 6, "expected a value"},
    {"a = [1,,2]\n", 1, 8, "expected a value"},
    {"a = [\n1,\n# c\n", 1, 5, "unterminated array"},
    {"a = [1, # \x01\n]\n", 1, 11, "control character in comment"},
    /* inline tables */
    {"a = {b = 1,}\n", 1, 12, "trailing comma"},
    {"a = {b = 1\n}\n", 1, 11, "newline in inline table"},
    {"a = {\nb = 1}\n", 1, 6, "newline in inline table"},
    {"a = {b = 1, c = 2\n", 1, 18, "newline in inline table"},
    {"a = {b = 1", 1, 5, "unterminated inline table"},
    {"a = {b = 1 c = 2}\n", 1, 12, "expected ',' or '}'"},
    {"a = {,}\n", 1, 6, "expected a key, found ','"},
    {"a = {b}\n", 1, 7, "expected '='"},
};

static void test_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
    const struct bad_case *c = &bad_cases[i];
    struct toml_value *root = (struct toml_value *)0x1;
    struct toml_error e;
    int r = toml_parse(c->in, strlen(c->in), &root, &e);
    if (r != -EBADMSG)
      fail_msg("case %zu accepted (r=%d): %s", i, r, c->in);
    assert_ptr_equal(root, (struct toml_value *)0x1); /* untouched on error */
    if (e.line != c->line || e.col != c->col || !strstr(e.msg, c->msg))
      fail_msg("case %zu: got %u:%u \"%s\", want %u:%u \"%s\"\n--- input:\n%s", i, e.line, e.col,
               e.msg, c->line, c->col, c->msg, c->in);
  }
}

/* A NUL byte inside values and comments, which C string literals above cannot carry. */
static void test_nul_bytes(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t len;
    unsigned line, col;
    const char *msg;
  } cases[] = {
      {"a = \"x\0y\"\n", 10, 1, 7, "control character in string"},
      {"a = '''x\0'''\n", 13, 1, 9, "control character in string"},
      {"a = \"\"\"x\0y\"\"\"\n", 14, 1, 9, "control character in string"},
      {"# x\0\n", 5, 1, 4, "control character in comment"},
      {"a = 1\0\n", 7, 1, 6, "expected a newline"},
      {"a = 1\n\0\n", 8, 2, 1, "invalid character in key"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct toml_value *root = NULL;
    struct toml_error e;
    assert_int_equal(toml_parse(cases[i].in, cases[i].len, &root, &e), -EBADMSG);
    if (e.line != cases[i].line || e.col != cases[i].col || !strstr(e.msg, cases[i].msg))
      fail_msg("case %zu: got %u:%u \"%s\"", i, e.line, e.col, e.msg);
  }
}

static void test_limits(void **state) {
  (void)state;
  struct toml_value *root = NULL;
  struct toml_error e;
  _cleanup_buf_ struct buf b = BUF_INIT(TOML_MAX_INPUT + 16);

  /* nesting: 64 levels of arrays are fine, 65 are not */
  assert_int_equal(buf_append_str(&b, "a = "), 0);
  for (int i = 0; i < TOML_MAX_DEPTH; i++)
    assert_int_equal(buf_append_u8(&b, '['), 0);
  for (int i = 0; i < TOML_MAX_DEPTH; i++)
    assert_int_equal(buf_append_u8(&b, ']'), 0);
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), 0);
  toml_free(root);
  buf_reset(&b);
  assert_int_equal(buf_append_str(&b, "a = "), 0);
  for (int i = 0; i < 10000; i++)
    assert_int_equal(buf_append_u8(&b, '['), 0);
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), -EBADMSG);
  assert_int_equal(e.line, 1);
  assert_int_equal(e.col, 5 + TOML_MAX_DEPTH);
  assert_non_null(strstr(e.msg, "nesting"));
  buf_reset(&b);
  for (int i = 0; i < 10000; i++)
    assert_int_equal(buf_append_str(&b, "a = {"), 0);
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), -EBADMSG);
  assert_non_null(strstr(e.msg, "nesting"));

  /* long dotted keys and headers */
  buf_reset(&b);
  assert_int_equal(buf_append_u8(&b, '['), 0);
  for (int i = 0; i < 200; i++)
    assert_int_equal(buf_append_str(&b, "k."), 0);
  assert_int_equal(buf_append_str(&b, "k]\n"), 0);
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), -EBADMSG);
  assert_non_null(strstr(e.msg, "key has more than"));
  buf_reset(&b);
  for (int i = 0; i < TOML_MAX_DEPTH - 1; i++)
    assert_int_equal(buf_append_str(&b, "k."), 0);
  assert_int_equal(buf_append_str(&b, "k = [[1]]\n"), 0);
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), -EBADMSG);
  assert_non_null(strstr(e.msg, "nesting"));

  /* input size */
  buf_reset(&b);
  assert_int_equal(buf_append_str(&b, "a = '"), 0);
  assert_int_equal(buf_append_zero(&b, TOML_MAX_INPUT - 7), 0);
  memset(b.data + 5, 'x', TOML_MAX_INPUT - 7);
  assert_int_equal(buf_append_str(&b, "'\n"), 0);
  assert_int_equal(b.len, TOML_MAX_INPUT);
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), 0);
  assert_int_equal(toml_get_string(root, "a", &(const char *){NULL}), 0);
  toml_free(root);
  assert_int_equal(buf_append_u8(&b, '\n'), 0);
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), -ENOBUFS);
  assert_int_equal(e.line, 0);
  assert_non_null(strstr(e.msg, "larger"));

  /* a big table stays fast (hash index) and keeps order */
  buf_reset(&b);
  for (int i = 0; i < 20000; i++)
    assert_int_equal(buf_printf(&b, "key%d = %d\n", i, i), 0);
  assert_int_equal(buf_append_str(&b, "key777 = 1\n"), 0);
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), -EBADMSG);
  assert_int_equal(e.line, 20001);
  assert_non_null(strstr(e.msg, "duplicate key 'key777'"));
  b.len -= strlen("key777 = 1\n");
  assert_int_equal(toml_parse((char *)b.data, b.len, &root, &e), 0);
  assert_int_equal(toml_table_len(root), 20000);
  expect_int(root, "key12345", 12345);
  assert_string_equal(toml_table_key_at(root, 19999), "key19999");
  toml_free(root);

  assert_int_equal(toml_parse(NULL, 0, &root, NULL), 0);
  assert_int_equal(toml_table_len(root), 0);
  toml_free(root);
  toml_free(NULL);
}

static void test_writers(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(4096);
  const char *nasty = "q\"b\\s\b\t\n\f\r\x01\x7f caf\xc3\xa9";
  assert_int_equal(toml_append_key(&b, "plain_key-1"), 0);
  assert_int_equal(buf_append_str(&b, " = "), 0);
  assert_int_equal(toml_append_string(&b, nasty), 0);
  assert_int_equal(buf_append_str(&b, "\n"), 0);
  assert_int_equal(toml_append_key(&b, "needs quoting.x"), 0);
  assert_int_equal(buf_append_str(&b, " = 1\n"), 0);
  assert_int_equal(toml_append_key(&b, ""), 0);
  assert_int_equal(buf_append_str(&b, " = 2\n"), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_non_null(strstr((char *)b.data, "\"needs quoting.x\" = 1"));
  assert_non_null(strstr((char *)b.data, "\\u0001"));
  _cleanup_toml_ struct toml_value *root = parse_ok((char *)b.data);
  expect_str(root, "plain_key-1", nasty);
  assert_non_null(toml_get(root, "needs quoting.x"));
  assert_non_null(toml_get(root, ""));
  struct buf tiny = BUF_INIT(4);
  assert_int_equal(toml_append_string(&tiny, "abcdef"), -ENOBUFS);
  assert_int_equal(tiny.len, 0);
  buf_free(&tiny);
}

/* TOML text is UTF-8: valid sequences are written as they are and read back; anything else
 * cannot be written (it would not parse) and leaves the buffer as it was. */
static void test_writer_utf8(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(4096);
  const char *ok = "\xc3\xa9 \xe4\xb8\xad \xef\xbf\xbd \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  assert_int_equal(buf_append_str(&b, "k = "), 0);
  assert_int_equal(toml_append_string(&b, ok), 0);
  assert_int_equal(buf_terminate(&b), 0);
  _cleanup_toml_ struct toml_value *root = parse_ok((char *)b.data);
  expect_str(root, "k", ok);
  static const char *const bad[] = {
      "\x80",             /* continuation byte first */
      "a\xc3",            /* cut short */
      "\xc3(",            /* bad continuation */
      "\xc0\xaf",         /* overlong */
      "\xe0\x80\xaf",     /* overlong */
      "\xed\xa0\x80",     /* surrogate */
      "\xf4\x90\x80\x80", /* above U+10FFFF */
      "\xf8\x88\x80\x80\x80",
      "\xff",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t before = b.len;
    if (toml_append_string(&b, bad[i]) != -EILSEQ)
      fail_msg("case %zu written", i);
    assert_int_equal(b.len, before);
  }
}

/* String values may be secrets (a key in a config file): freeing the tree wipes them. */
static void test_free_wipes_strings(void **state) {
  (void)state;
  const char *text = "[a]\nkey = \"a secret value\"\nlist = [\"another secret\"]\n";
  struct toml_value *root = NULL;
  struct toml_error e;
  assert_int_equal(toml_parse(text, strlen(text), &root, &e), 0);
  const char *v = NULL;
  size_t n = 0;
  assert_int_equal(toml_value_string(toml_get_path(root, "a.key"), &v, &n), 0);
  assert_int_equal(n, 14);
  tu_wipe_watch(v, n);
  toml_free(root);
  assert_true(tu_wipe_freed());
  assert_true(tu_wipe_was_clean());
  assert_int_equal(toml_parse(text, strlen(text), &root, &e), 0);
  const struct toml_value *l = toml_get_path(root, "a.list");
  assert_int_equal(toml_value_string(toml_array_at(l, 0), &v, &n), 0);
  tu_wipe_watch(v, n);
  toml_free(root);
  assert_true(tu_wipe_freed() && tu_wipe_was_clean());
}

static void test_parse_file(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char path[4096];
  snprintf(path, sizeof(path), "%s/c.toml", dir);
  struct toml_value *root = NULL;
  struct toml_error e;
  assert_int_equal(toml_parse_file(path, &root, &e), -ENOENT);
  /* The caller names the file (conftab: "PATH: msg"), so msg does not repeat it. */
  assert_string_equal(e.msg, "No such file or directory");
  assert_int_equal(e.line, 0);
  const char *text = "[s]\nport = 443\nx = \n";
  assert_int_equal(file_write_atomic(path, text, strlen(text), 0600), 0);
  assert_int_equal(toml_parse_file(path, &root, &e), -EBADMSG);
  assert_int_equal(e.line, 3);
  assert_int_equal(e.col, 5);
  text = "[s]\nport = 443\n";
  assert_int_equal(file_write_atomic(path, text, strlen(text), 0600), 0);
  assert_int_equal(toml_parse_file(path, &root, &e), 0);
  expect_int(root, "s.port", 443);
  toml_free(root);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_document),   cmocka_unit_test(test_getters),
      cmocka_unit_test(test_strings),    cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_table_semantics_valid), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_nul_bytes),  cmocka_unit_test(test_limits),
      cmocka_unit_test(test_writers),    cmocka_unit_test(test_parse_file),
      cmocka_unit_test(test_writer_utf8), cmocka_unit_test(test_free_wipes_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
