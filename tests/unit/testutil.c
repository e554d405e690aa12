#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hex.h"
#include "testutil.h"

#ifndef TEST_SOURCE_ROOT
#define TEST_SOURCE_ROOT "."
#endif

static char tu_path[4096];

const char *tu_source_path(const char *rel) {
  const char *root = getenv("DSTACK_SOURCE_ROOT");
  snprintf(tu_path, sizeof(tu_path), "%s/%s", root && *root ? root : TEST_SOURCE_ROOT, rel);
  return tu_path;
}

const char *tu_vector_path(const char *rel) {
  const char *v = getenv("DSTACK_VECTORS");
  if (v && *v) {
    snprintf(tu_path, sizeof(tu_path), "%s/%s", v, rel);
    return tu_path;
  }
  const char *root = getenv("DSTACK_SOURCE_ROOT");
  snprintf(tu_path, sizeof(tu_path), "%s/tests/vectors/%s",
           root && *root ? root : TEST_SOURCE_ROOT, rel);
  return tu_path;
}

void tu_read_file(const char *path, struct buf *out) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  if (out->max == 0)
    out->max = BUF_MAX_FILE;
  uint8_t tmp[8192];
  size_t n;
  while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
    assert_int_equal(buf_append(out, tmp, n), 0);
  fclose(f);
}

void tu_read_vector(const char *rel, bool hex, struct buf *out) {
  if (!hex) {
    tu_read_file(tu_vector_path(rel), out);
    return;
  }
  struct buf text = BUF_INIT(BUF_MAX_FILE);
  tu_read_file(tu_vector_path(rel), &text);
  if (out->max == 0)
    out->max = BUF_MAX_FILE;
  assert_int_equal(hex_decode_buf((const char *)text.data, text.len, true, out), 0);
  buf_free(&text);
}

void tu_hex(const char *hex, struct buf *out) {
  if (out->max == 0)
    out->max = BUF_MAX_FILE;
  assert_int_equal(hex_decode_buf(hex, strlen(hex), true, out), 0);
}

char *tu_mkdtemp(void) {
  const char *t = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof(tmpl), "%s/dstack-test-XXXXXX", t && *t ? t : "/tmp");
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

static int tu_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

void tu_rm_rf(const char *path) {
  if (path)
    nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
