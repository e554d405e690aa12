/* tboot-init's pure parts: the command line, the verity table, the module list and the JSON
 * line sent to teepod on failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tboot_init_cmdline.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse(const char *s, struct init_rootfs *r, const char **why) {
  return init_cmdline_parse(s, strlen(s), r, why);
}

static void test_cmdline_minimal(void **state) {
  (void)state;
  struct init_rootfs r;
  const char *why = "x";
  const char *s = "console=ttyS0 dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=1000 quiet\n";
  assert_int_equal(parse(s, &r, &why), 0);
  assert_null(why);
  assert_string_equal(r.root_hash, H64);
  assert_int_equal(r.data_blocks, 1000);
  assert_int_equal(r.hash_start, 1000);
  assert_string_equal(r.salt, "-");
  assert_string_equal(r.fs, "erofs");
}

static void test_cmdline_all_keys(void **state) {
  (void)state;
  struct init_rootfs r;
  const char *s = "dstack.rootfs_fs=squashfs\tdstack.rootfs_salt=A0B1 dstack.rootfs_hash="
                  "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef "
                  "dstack.rootfs_hash_offset=20 dstack.rootfs_data_blocks=7 dstack.app=ignored";
  assert_int_equal(parse(s, &r, NULL), 0);
  assert_string_equal(r.root_hash, H64);
  assert_string_equal(r.salt, "a0b1");
  assert_string_equal(r.fs, "squashfs");
  assert_int_equal(r.data_blocks, 7);
  assert_int_equal(r.hash_start, 20);
}

static void test_cmdline_rejects(void **state) {
  (void)state;
  struct init_rootfs r;
  const char *why;
  static const struct {
    const char *s;
    int err;
  } bad[] = {
      {"", -ENOENT},
      {"dstack.rootfs_data_blocks=1", -ENOENT},
      {"dstack.rootfs_hash=" H64, -ENOENT},
      {"dstack.rootfs_hash=" H64 "0 dstack.rootfs_data_blocks=1", -EINVAL},
      {"dstack.rootfs_hash=0123 dstack.rootfs_data_blocks=1", -EINVAL},
      {"dstack.rootfs_hash=g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef "
       "dstack.rootfs_data_blocks=1", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=0", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=01", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=-1", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=1x", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=4294967297", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=99999999999999999999999", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=2",
       -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5 dstack.rootfs_hash_offset=4",
       -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5 dstack.rootfs_salt=abc", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5 dstack.rootfs_salt=", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5 dstack.rootfs_fs=ext4", -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5 dstack.rootfs_fs=erofs2",
       -EINVAL},
      {"dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5 dstack.rootfs_verity=1", -EINVAL},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    why = NULL;
    int err = parse(bad[i].s, &r, &why);
    if (err != bad[i].err)
      fail_msg("case %zu: %d, expected %d", i, err, bad[i].err);
    assert_non_null(why);
  }
  /* a NUL inside, and a line past the limit */
  char nul[] = "dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5\0x";
  assert_int_equal(init_cmdline_parse(nul, sizeof(nul) - 1, &r, &why), -EINVAL);
  static char big[INIT_CMDLINE_MAX + 2];
  memset(big, ' ', sizeof(big));
  assert_int_equal(init_cmdline_parse(big, sizeof(big), &r, &why), -E2BIG);
  /* the salt's upper bound: 128 bytes pass, 129 do not */
  char s[600];
  char salt[262];
  memset(salt, 'a', 258);
  salt[256] = '\0';
  snprintf(s, sizeof(s), "dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5 dstack.rootfs_salt=%s", salt);
  assert_int_equal(parse(s, &r, &why), 0);
  salt[256] = 'a';
  salt[258] = '\0';
  snprintf(s, sizeof(s), "dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=5 dstack.rootfs_salt=%s", salt);
  assert_int_equal(parse(s, &r, &why), -EINVAL);
}

static void test_verity_params(void **state) {
  (void)state;
  struct init_rootfs r;
  assert_int_equal(parse("dstack.rootfs_hash=" H64 " dstack.rootfs_data_blocks=10", &r, NULL), 0);
  char out[512];
  int n = init_verity_params(&r, "254:16", out, sizeof(out));
  const char *want = "1 254:16 254:16 4096 4096 10 10 sha256 " H64 " -";
  assert_int_equal(n, (int)strlen(want));
  assert_string_equal(out, want);
  assert_int_equal(init_verity_sectors(&r), 80);
  assert_int_equal(init_verity_params(&r, "254:16", out, 20), -ENOBUFS);
  assert_int_equal(init_verity_params(&r, "/dev/vda", out, sizeof(out)), -EINVAL);
  assert_int_equal(init_verity_params(&r, "", out, sizeof(out)), -EINVAL);
  assert_int_equal(init_verity_params(&r, "1:2 x", out, sizeof(out)), -EINVAL);
}

static void test_json_escape(void **state) {
  (void)state;
  char out[64];
  assert_int_equal(init_json_escape("a\"b\\c\nd\x01\x7f\xc3\xa9", out, sizeof(out)), 24);
  assert_string_equal(out, "a\\\"b\\\\c\\nd\\u0001\\u007f??");
  assert_int_equal(init_json_escape("", out, 1), 0);
  assert_string_equal(out, "");
  assert_int_equal(init_json_escape("abc", out, 3), -ENOBUFS);
  assert_int_equal(init_json_escape("\n", out, 2), -ENOBUFS);
  char line[256];
  int n = init_notify_line(1, "boot.error", "tboot-init: \"x\"", line, sizeof(line));
  const char *want = "{\"id\":1,\"method\":\"Notify\",\"params\":{\"event\":\"boot.error\","
                     "\"payload\":\"tboot-init: \\\"x\\\"\"}}\n";
  assert_int_equal(n, (int)strlen(want));
  assert_string_equal(line, want);
  assert_int_equal(init_notify_line(1, "boot.error", "x", line, 20), -ENOBUFS);
  /* a long payload of control bytes is cut, never refused */
  static char big[3000], huge[8192];
  memset(big, '\x01', sizeof(big) - 1);
  n = init_notify_line(7, "boot.error", big, huge, sizeof(huge));
  assert_true(n > 0);
  assert_non_null(strstr(huge, "\\u0001\"}}\n"));
  assert_int_equal((int)strlen(huge), n);
}

static void test_module_path(void **state) {
  (void)state;
  assert_int_equal(init_module_path_check("kernel/drivers/block/virtio_blk.ko"), 0);
  assert_int_equal(init_module_path_check("a.ko"), 0);
  assert_int_equal(init_module_path_check("x/.hidden.ko"), 0);
  static const char *const bad[] = {
      "", ".ko", "/lib/modules/a.ko", "../a.ko", "a/../b.ko", "a//b.ko", "./a.ko",
      "a.ko.xz", "a b.ko", "a\\b.ko", "kernel/a.o", "a/..", "a/./b.ko",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (init_module_path_check(bad[i]) != -EINVAL)
      fail_msg("accepted \"%s\"", bad[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cmdline_minimal), cmocka_unit_test(test_cmdline_all_keys),
      cmocka_unit_test(test_cmdline_rejects), cmocka_unit_test(test_verity_params),
      cmocka_unit_test(test_json_escape),     cmocka_unit_test(test_module_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
