/* The demo app's reading of tappd's HTTP replies (guest/apps/app/reply.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reply.h"

/* parse text (copied with room for the NUL); returns the result, body copied to out */
static int parse(const char *text, int *status, char *out, size_t outlen, const char **why) {
  size_t n = strlen(text);
  char *buf = malloc(n + 1);
  assert_non_null(buf);
  memcpy(buf, text, n);
  char *body = NULL;
  size_t blen = 0;
  int r = attest_reply_parse(buf, n, status, &body, &blen, why);
  if (r == 0) {
    assert_true(blen < outlen);
    memcpy(out, body, blen);
    out[blen] = 0;
  }
  free(buf);
  return r;
}

static void test_plain(void **state) {
  (void)state;
  int st = 0;
  char out[64];
  const char *why = NULL;
  assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}", &st, out,
                         sizeof(out), &why),
                   0);
  assert_int_equal(st, 200);
  assert_string_equal(out, "{\"a\":1}");
  assert_int_equal(parse("HTTP/1.0 400\r\n\r\nbad", &st, out, sizeof(out), &why), 0);
  assert_int_equal(st, 400);
  assert_string_equal(out, "bad");
}

static void test_chunked(void **state) {
  (void)state;
  int st = 0;
  char out[64];
  const char *why = NULL;
  assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3\r\n{\"a\r\na;ext=1\r\n\":[1,2,3]}\r\n0\r\n\r\n",
                         &st, out, sizeof(out), &why),
                   0);
  assert_string_equal(out, "{\"a\":[1,2,3]}");
  /* trailer lines after the last chunk are ignored */
  assert_int_equal(parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nX: 1\r\n\r\n",
                         &st, out, sizeof(out), &why),
                   0);
  assert_string_equal(out, "");
}

static void test_refused(void **state) {
  (void)state;
  static const char *bad[] = {
      "",                                      /* nothing */
      "HTTP/1.1 200 OK\r\n",                   /* no end of headers */
      "HTTP/2 200\r\n\r\n{}",                  /* not HTTP/1.x */
      "HTTP/1.1 20\r\n\r\n",                   /* two digits */
      "HTTP/1.1 2000\r\n\r\n",                 /* four digits */
      "HTTP/1.1 600\r\n\r\n",                  /* no such class */
      "ICY 200 OK\r\n\r\n",                    /* another protocol */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n",                 /* no chunk */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",           /* not hex */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n0\r\n\r\n", /* a sign */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nab\r\n0\r\n\r\n", /* a blank */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\n0\r\n\r\n",  /* overlong */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",    /* no CRLF after */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",           /* no last chunk */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", /* overflow */
      "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n2",                      /* cut */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int st = 0;
    char out[64];
    const char *why = NULL;
    assert_int_equal(parse(bad[i], &st, out, sizeof(out), &why), -1);
    assert_non_null(why);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),
      cmocka_unit_test(test_chunked),
      cmocka_unit_test(test_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
