#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/str.h"
#include "net/url.h"
#include "testutil.h"

static void test_encode(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  assert_int_equal(url_encode("a b/c~d.e-f_g\xff", 14, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data, "a%20b%2Fc~d.e-f_g%FF");
  /* Round trip. */
  char *dec = NULL;
  assert_int_equal(str_pct_decode((char *)b.data, b.len, 0, &dec, NULL), 0);
  assert_memory_equal(dec, "a b/c~d.e-f_g\xff", 14);
  free(dec);
  /* Cap: output unchanged on failure. */
  struct buf small = BUF_INIT(4);
  assert_int_equal(url_encode("   ", 3, &small), -ENOBUFS);
  assert_int_equal(small.len, 0);
  buf_free(&small);
}

static void check_path(const char *in, const char *want) {
  char *out = NULL;
  int r = url_path_normalize(in, strlen(in), &out);
  if (!want) {
    assert_true(r < 0);
    assert_null(out);
    return;
  }
  assert_int_equal(r, 0);
  assert_string_equal(out, want);
  free(out);
}

static void test_path(void **state) {
  (void)state;
  check_path("/", "/");
  check_path("//", "/");
  check_path("/a/b", "/a/b");
  check_path("/a//b/", "/a/b/");
  check_path("/a/./b/.", "/a/b/");
  check_path("/./", "/");
  check_path("/prpc/Tappd.DeriveKey", "/prpc/Tappd.DeriveKey");
  check_path("/logs/my%20app", "/logs/my app");
  check_path("/a..b/..c/c..", "/a..b/..c/c..");
  check_path("/a/...", "/a/...");
  /* Rejected. */
  check_path("", NULL);
  check_path("a/b", NULL);
  check_path("/..", NULL);
  check_path("/a/../b", NULL);
  check_path("/a/..", NULL);
  check_path("/a/%2e%2e/b", NULL);
  check_path("/a/.%2E/b", NULL);
  check_path("/a%2F..%2Fb", NULL);
  check_path("/a%00b", NULL);
  check_path("/a%0ab", NULL);
  check_path("/a%7fb", NULL);
  check_path("/a%zz", NULL);
  char *out = NULL;
  assert_int_equal(url_path_normalize("/a\0b", 4, &out), -EBADMSG);
  /* Length cap. */
  char *big = malloc(URL_PATH_MAX + 2);
  assert_non_null(big);
  memset(big, 'a', URL_PATH_MAX + 1);
  big[0] = '/';
  big[URL_PATH_MAX + 1] = '\0';
  assert_int_equal(url_path_normalize(big, URL_PATH_MAX + 1, &out), -ENOBUFS);
  assert_int_equal(url_path_normalize(big, URL_PATH_MAX, &out), 0);
  assert_int_equal(strlen(out), URL_PATH_MAX);
  free(out);
  free(big);
}

static void test_query(void **state) {
  (void)state;
  struct url_query q;
  const char *s = "a=b&c&a=d&&e=&f=x+y%26z&g%3D=1&=v";
  assert_int_equal(url_query_parse(s, strlen(s), &q), 0);
  assert_int_equal(q.n, 7);
  assert_string_equal(q.params[0].key, "a");
  assert_string_equal(q.params[0].value, "b");
  assert_true(q.params[0].has_value);
  assert_string_equal(q.params[1].key, "c");
  assert_string_equal(q.params[1].value, "");
  assert_false(q.params[1].has_value);
  assert_string_equal(q.params[2].value, "d");
  assert_string_equal(q.params[3].key, "e");
  assert_true(q.params[3].has_value);
  const char *v;
  assert_int_equal(url_query_get(&q, "a", &v), 0);
  assert_string_equal(v, "b"); /* first of repeated keys */
  assert_int_equal(url_query_get(&q, "f", &v), 0);
  assert_string_equal(v, "x y&z");
  assert_int_equal(url_query_get(&q, "g=", &v), 0);
  assert_string_equal(v, "1");
  assert_int_equal(url_query_get(&q, "", &v), 0);
  assert_string_equal(v, "v");
  assert_int_equal(url_query_get(&q, "zz", &v), -ENOENT);
  assert_non_null(url_query_find(&q, "c"));
  assert_null(url_query_find(&q, "C"));
  url_query_free(&q);
  assert_int_equal(q.n, 0);
  url_query_free(&q);
  url_query_free(NULL);

  assert_int_equal(url_query_parse("", 0, &q), 0);
  assert_int_equal(q.n, 0);
  assert_int_equal(url_query_get(&q, "json", &v), -ENOENT);
  url_query_free(&q);

  /* Malformed escapes and decoded NULs. */
  assert_int_equal(url_query_parse("a=%", 3, &q), -EBADMSG);
  assert_int_equal(q.n, 0);
  assert_int_equal(url_query_parse("a=b&c=%00", 9, &q), -EBADMSG);
  assert_int_equal(url_query_parse("%zz=1", 5, &q), -EBADMSG);

  /* Parameter cap. */
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  for (int i = 0; i <= URL_QUERY_MAX_PARAMS; i++)
    assert_int_equal(buf_printf(&b, "k%d=v&", i), 0);
  assert_int_equal(url_query_parse((char *)b.data, b.len, &q), -ENOBUFS);
  assert_int_equal(q.n, 0);
  b.len = 0;
  for (int i = 0; i < URL_QUERY_MAX_PARAMS; i++)
    assert_int_equal(buf_printf(&b, "k%d=v&", i), 0);
  assert_int_equal(url_query_parse((char *)b.data, b.len, &q), 0);
  assert_int_equal(q.n, URL_QUERY_MAX_PARAMS);
  url_query_free(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      
      cmocka_unit_test(test_encode),
      cmocka_unit_test(test_path),
      cmocka_unit_test(test_query),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
