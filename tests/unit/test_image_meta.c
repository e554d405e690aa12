#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/image_meta.h"
#include "base/str.h"
#include "testutil.h"

static char *tdir; /* holds img/ (the image folder) and outside/ */
static char img[4096];

static const char *tpath(const char *rel) {
  static char p[4][4096];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof(p[k]), "%s/%s", tdir, rel);
  return p[k];
}

static void write_file(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(s, f);
  assert_int_equal(fclose(f), 0);
}

static void meta(const char *json) {
  write_file(tpath("img/metadata.json"), json);
}

static int setup(void **state) {
  (void)state;
  tdir = tu_mkdtemp();
  snprintf(img, sizeof(img), "%s/img", tdir);
  assert_int_equal(mkdir(img, 0700), 0);
  assert_int_equal(mkdir(tpath("img/sub"), 0700), 0);
  assert_int_equal(mkdir(tpath("outside"), 0700), 0);
  write_file(tpath("img/bzImage"), "kernel");
  write_file(tpath("img/initrd.gz"), "initrd");
  write_file(tpath("img/sub/rootfs.img"), "rootfs");
  write_file(tpath("img/ovmf.fd"), "bios");
  write_file(tpath("outside/secret"), "secret");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tu_rm_rf(tdir);
  free(tdir);
  return 0;
}

/* Loads img and expects failure r with a reason that contains want. */
static void expect_fail(const char *json, int r, const char *want) {
  struct image_meta m = {0};
  char *why = NULL;
  meta(json);
  assert_int_equal(image_meta_load(img, &m, &why), r);
  assert_non_null(why);
  if (!strstr(why, want))
    fail_msg("reason \"%s\" lacks \"%s\"", why, want);
  assert_null(m.kernel);
  assert_null(m.dir);
  free(why);
}

static void test_full(void **state) {
  (void)state;
  struct image_meta m = {0};
  char *why = NULL;
  char want[8192];
  meta("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"rootfs\":\"sub/rootfs.img\","
       "\"bios\":\"ovmf.fd\",\"cmdline\":\"console=ttyS0 ro\",\"rootfs_hash\":\"ab12\","
       "\"version\":\"0.5.3\",\"shared_mode\":\"9p\",\"is_dev\":true,\"unknown\":[1,2]}");
  assert_int_equal(image_meta_load(img, &m, &why), 0);
  assert_null(why);
  assert_string_equal(m.dir, img);
  assert_string_equal(m.name, "img");
  snprintf(want, sizeof(want), "%s/bzImage", img);
  assert_string_equal(m.kernel, want);
  snprintf(want, sizeof(want), "%s/initrd.gz", img);
  assert_string_equal(m.initrd, want);
  snprintf(want, sizeof(want), "%s/sub/rootfs.img", img);
  assert_string_equal(m.rootfs, want);
  snprintf(want, sizeof(want), "%s/ovmf.fd", img);
  assert_string_equal(m.bios, want);
  assert_null(m.hda);
  assert_string_equal(m.cmdline, "console=ttyS0 ro");
  assert_string_equal(m.rootfs_hash, "ab12");
  assert_string_equal(m.version, "0.5.3");
  assert_string_equal(m.shared_mode, "9p");
  assert_true(m.is_dev);
  image_meta_free(&m);
  assert_null(m.kernel);
  image_meta_free(&m); /* a zeroed struct again */
}

static void test_defaults_and_trailing_slash(void **state) {
  (void)state;
  struct image_meta m = {0};
  char *why = NULL;
  char dir[8192];
  meta("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"hda\":null}");
  snprintf(dir, sizeof(dir), "%s//", img);
  assert_int_equal(image_meta_load(dir, &m, &why), 0);
  assert_string_equal(m.dir, img);
  assert_string_equal(m.name, "img");
  assert_string_equal(m.cmdline, "");
  assert_string_equal(m.shared_mode, "disk");
  assert_false(m.is_dev);
  assert_null(m.rootfs);
  assert_null(m.hda);
  assert_null(m.bios);
  assert_null(m.rootfs_hash);
  assert_null(m.version);
  image_meta_free(&m);
}

static void test_symlink_inside(void **state) {
  (void)state;
  struct image_meta m = {0};
  char *why = NULL;
  assert_int_equal(symlink("sub/rootfs.img", tpath("img/link")), 0);
  meta("{\"kernel\":\"link\",\"initrd\":\"./initrd.gz\"}");
  assert_int_equal(image_meta_load(img, &m, &why), 0);
  image_meta_free(&m);
}

static void test_missing_and_types(void **state) {
  (void)state;
  expect_fail("{\"initrd\":\"initrd.gz\"}", -EINVAL, "kernel is missing");
  expect_fail("{\"kernel\":\"bzImage\"}", -EINVAL, "initrd is missing");
  expect_fail("{\"kernel\":null,\"initrd\":\"initrd.gz\"}", -EINVAL, "kernel is missing");
  expect_fail("{\"kernel\":7,\"initrd\":\"initrd.gz\"}", -EINVAL, "kernel is not a string");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"bios\":{}}", -EINVAL,
              "bios is not a string");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"cmdline\":[\"a\"]}", -EINVAL,
              "cmdline is not a string");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"version\":5}", -EINVAL,
              "version is not a string");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"rootfs_hash\":true}", -EINVAL,
              "rootfs_hash is not a string");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"is_dev\":\"true\"}", -EINVAL,
              "is_dev");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"shared_mode\":\"nfs\"}", -EINVAL,
              "shared_mode \"nfs\"");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"shared_mode\":1}", -EINVAL,
              "shared_mode is not a string");
}

static void test_not_json(void **state) {
  (void)state;
  expect_fail("[\"kernel\"]", -EBADMSG, "not a JSON object");
  expect_fail("{\"kernel\":", -EBADMSG, "not a JSON object");
  expect_fail("", -EBADMSG, "not a JSON object");
  expect_fail("{\"kernel\":\"a\",\"kernel\":\"b\",\"initrd\":\"initrd.gz\"}", -EBADMSG,
              "not a JSON object");
  /* one byte over the cap */
  size_t n = IMAGE_META_MAX_JSON + 1;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, ' ', n);
  memcpy(big, "{}", 2);
  big[n] = '\0';
  expect_fail(big, -EFBIG, "larger than");
  free(big);
}

static void test_bad_names(void **state) {
  (void)state;
  static const char *bad[] = {
    "\"\"", "\"/etc/passwd\"", "\"..\"", "\"../outside/secret\"", "\"sub/../../outside/secret\"",
    "\"sub/..\"", "\"bz\\nImage\"", "\"bz\\u007fImage\"", "\"bz\\tImage\"",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char json[512];
    snprintf(json, sizeof(json), "{\"kernel\":%s,\"initrd\":\"initrd.gz\"}", bad[i]);
    expect_fail(json, -EINVAL, "is not a plain relative name inside the image folder");
  }
  /* the same rule for the optional paths */
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"hda\":\"/dev/sda\"}", -EINVAL,
              "hda \"/dev/sda\" is not a plain relative name");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"../img/initrd.gz\"}", -EINVAL,
              "initrd \"../img/initrd.gz\"");
  /* "..x" and "x.." are names, not the parent */
  write_file(tpath("img/..x"), "k");
  struct image_meta m = {0};
  char *why = NULL;
  meta("{\"kernel\":\"..x\",\"initrd\":\"initrd.gz\"}");
  assert_int_equal(image_meta_load(img, &m, &why), 0);
  image_meta_free(&m);
}

static void test_files(void **state) {
  (void)state;
  expect_fail("{\"kernel\":\"bz\",\"initrd\":\"initrd.gz\"}", -ENOENT,
              "metadata.json: kernel \"bz\" does not exist");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"rootfs\":\"no/such\"}", -ENOENT,
              "rootfs \"no/such\" does not exist");
  expect_fail("{\"kernel\":\"sub\",\"initrd\":\"initrd.gz\"}", -EINVAL,
              "kernel \"sub\" is not a regular file");
  assert_int_equal(mkfifo(tpath("img/fifo"), 0600), 0);
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"fifo\"}", -EINVAL,
              "initrd \"fifo\" is not a regular file");
  /* symlinks that leave the folder: absolute, relative, through a linked directory */
  assert_int_equal(symlink(tpath("outside/secret"), tpath("img/abs")), 0);
  assert_int_equal(symlink("../outside/secret", tpath("img/rel")), 0);
  assert_int_equal(symlink("../outside", tpath("img/out")), 0);
  assert_int_equal(symlink("/", tpath("img/root")), 0);
  expect_fail("{\"kernel\":\"abs\",\"initrd\":\"initrd.gz\"}", -EPERM,
              "kernel \"abs\" resolves outside the image folder");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"rel\"}", -EPERM, "resolves outside");
  expect_fail("{\"kernel\":\"bzImage\",\"initrd\":\"initrd.gz\",\"bios\":\"out/secret\"}", -EPERM,
              "bios \"out/secret\" resolves outside");
  /* through a link to the root, to a file the test made (not one the host may lack) */
  _cleanup_free_ char *via_root = str_printf("{\"kernel\":\"root%s\",\"initrd\":\"initrd.gz\"}",
                                             tpath("outside/secret"));
  expect_fail(via_root, -EPERM, "resolves outside");
  /* a dangling link does not exist */
  assert_int_equal(symlink("nowhere", tpath("img/dangling")), 0);
  expect_fail("{\"kernel\":\"dangling\",\"initrd\":\"initrd.gz\"}", -ENOENT, "does not exist");
}

static void test_folder(void **state) {
  (void)state;
  struct image_meta m = {0};
  char *why = NULL;
  assert_int_equal(image_meta_load(tpath("outside"), &m, &why), -ENOENT);
  assert_non_null(strstr(why, "metadata.json: cannot read"));
  free(why);
  why = NULL;
  assert_int_equal(image_meta_load(tpath("nonexistent"), &m, &why), -ENOENT);
  assert_non_null(why);
  free(why);
  why = NULL;
  assert_int_equal(image_meta_load("", &m, &why), -EINVAL);
  free(why);
  why = NULL;
  assert_int_equal(image_meta_load("///", &m, &why), -EINVAL);
  free(why);
  /* the root by another name is refused too: "/." and a link to "/" */
  why = NULL;
  assert_int_equal(image_meta_load("/.", &m, &why), -EINVAL);
  assert_non_null(strstr(why, "is the root"));
  free(why);
  assert_int_equal(symlink("/", tpath("rootlink")), 0);
  why = NULL;
  assert_int_equal(image_meta_load(tpath("rootlink"), &m, &why), -EINVAL);
  free(why);
  assert_int_equal(image_meta_load(NULL, &m, NULL), -EINVAL);
  /* metadata.json that is a directory */
  assert_int_equal(mkdir(tpath("outside/metadata.json"), 0700), 0);
  why = NULL;
  assert_true(image_meta_load(tpath("outside"), &m, &why) < 0);
  assert_non_null(why);
  free(why);
}

static void test_parse_only(void **state) {
  (void)state;
  struct image_meta m = {0};
  char *why = NULL;
  const char *j = "{\"kernel\":\"k\",\"initrd\":\"i\",\"cmdline\":\"a b\"}";
  /* parse does not look at the file system */
  assert_int_equal(image_meta_parse("/nonexistent/x", j, strlen(j), &m, &why), 0);
  assert_string_equal(m.kernel, "/nonexistent/x/k");
  assert_string_equal(m.name, "x");
  image_meta_free(&m);
  assert_int_equal(image_meta_parse("d", "{}", 2, &m, &why), -EINVAL);
  assert_string_equal(why, "metadata.json: kernel is missing");
  free(why);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_full, setup, teardown),
    cmocka_unit_test_setup_teardown(test_defaults_and_trailing_slash, setup, teardown),
    cmocka_unit_test_setup_teardown(test_symlink_inside, setup, teardown),
    cmocka_unit_test_setup_teardown(test_missing_and_types, setup, teardown),
    cmocka_unit_test_setup_teardown(test_not_json, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
    cmocka_unit_test_setup_teardown(test_files, setup, teardown),
    cmocka_unit_test_setup_teardown(test_folder, setup, teardown),
    cmocka_unit_test(test_parse_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
