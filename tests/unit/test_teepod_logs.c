/* ANSI escape stripping for GET /logs?ansi=false, also across reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "teepod_logs.h"

/* Strips in in one call; returns a NUL-terminated copy (static storage). */
static const char *strip(const char *in, size_t n) {
  static char out[4096];
  struct teepod_ansi a = {0};
  assert_true(n < sizeof(out));
  size_t o = teepod_ansi_strip(&a, in, n, out);
  assert_true(o <= n);
  out[o] = 0;
  return out;
}

#define STRIP(s) strip(s, sizeof(s) - 1)

static void test_plain(void **state) {
  (void)state;
  const char text[] = "plain text\r\n\ttabs [1m not an escape ] \xc3\xa9\x7f\x01 done\n";
  assert_string_equal(STRIP(text), text);
  assert_string_equal(STRIP(""), "");
  /* every byte but ESC passes when no sequence is open */
  char all[256];
  size_t n = 0;
  for (int c = 1; c < 256; c++)
    if (c != 0x1b)
      all[n++] = (char)c;
  char out[256];
  struct teepod_ansi a = {0};
  assert_int_equal(teepod_ansi_strip(&a, all, n, out), n);
  assert_memory_equal(out, all, n);
  assert_int_equal(a.state, 0);
}

static void test_csi(void **state) {
  (void)state;
  assert_string_equal(STRIP("\x1b[1;31mred\x1b[0m normal"), "red normal");
  assert_string_equal(STRIP("a\x1b[2Kb\x1b[10;20Hc\x1b[?25ld"), "abcd");
  assert_string_equal(STRIP("\x1b[m\x1b[J"), "");
  /* the final byte ends it: anything from 0x40 to 0x7e */
  assert_string_equal(STRIP("\x1b[12@x\x1b[~y"), "xy");
  /* parameters and intermediates are swallowed until the final byte */
  assert_string_equal(STRIP("\x1b[1 q!"), "!");
}

static void test_osc(void **state) {
  (void)state;
  /* ended by BEL or by ST (ESC \) */
  assert_string_equal(STRIP("\x1b]0;window title\x07text"), "text");
  assert_string_equal(STRIP("\x1b]8;;http://example.com\x1b\\link\x1b]8;;\x1b\\ end"), "link end");
  /* an ESC inside that is not ST does not end it */
  assert_string_equal(STRIP("\x1b]2;a\x1bxb\x07" "c"), "c");
  /* text with [ and m inside an OSC is not output */
  assert_string_equal(STRIP("\x1b]0;[1m\x07ok"), "ok");
}

static void test_two_byte(void **state) {
  (void)state;
  assert_string_equal(STRIP("a\x1b" "7b\x1b" "8c"), "abc");   /* save / restore cursor */
  assert_string_equal(STRIP("a\x1b" "cb"), "ab");             /* reset */
  assert_string_equal(STRIP("a\x1b=b\x1b>c"), "abc");         /* keypad modes */
  assert_string_equal(STRIP("\x1b\x1b[0mx"), "x"); /* a repeated ESC starts over */
  /* character set designation: ESC, intermediate, final (what `tput sgr0` writes) */
  assert_string_equal(STRIP("\x1b(B\x1b[mplain"), "plain");
  assert_string_equal(STRIP("a\x1b)0b\x1b(Bc"), "abc");
  assert_string_equal(STRIP("a\x1b#8b"), "ab");
}

/* A sequence split over calls is still stripped: the state carries over. */
static void test_split(void **state) {
  (void)state;
  static const char *const inputs[] = {
      "before\x1b[1;31mred\x1b[0m after",
      "x\x1b]0;title\x1b\\y\x1b]1;t\x07z",
      "a\x1b" "7b\x1b(Bc\x1b[Kd",
  };
  static const char *const want[] = {"beforered after", "xyz", "abcd"};
  for (size_t t = 0; t < sizeof(inputs) / sizeof(inputs[0]); t++) {
    const char *in = inputs[t];
    size_t n = strlen(in);
    /* every split point, and byte by byte */
    for (size_t cut = 0; cut <= n; cut++) {
      struct teepod_ansi a = {0};
      char out[256];
      size_t o = teepod_ansi_strip(&a, in, cut, out);
      o += teepod_ansi_strip(&a, in + cut, n - cut, out + o);
      out[o] = 0;
      if (strcmp(out, want[t]) != 0)
        fail_msg("input %zu cut at %zu: got \"%s\"", t, cut, out);
    }
    struct teepod_ansi a = {0};
    char out[256];
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
      o += teepod_ansi_strip(&a, in + i, 1, out + o);
    out[o] = 0;
    assert_string_equal(out, want[t]);
    assert_int_equal(a.state, 0);
  }
  /* an unfinished sequence at the end of a read swallows nothing of the next text once it
   * ends */
  struct teepod_ansi a = {0};
  char out[64];
  assert_int_equal(teepod_ansi_strip(&a, "ok\x1b[3", 5, out), 2);
  assert_int_equal(teepod_ansi_strip(&a, "1mnext", 6, out), 4);
  assert_memory_equal(out, "next", 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),    cmocka_unit_test(test_csi),
      cmocka_unit_test(test_osc),      cmocka_unit_test(test_two_byte),
      cmocka_unit_test(test_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
