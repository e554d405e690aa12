/* The QEMU command line: golden argv per backend (tests/data/teepod/qemu-*.argv, one argument
 * per line), escaping, the log line, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "teepod_qemu.h"
#include "testutil.h"

#define DIR "/var/lib/teepod/vm/0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6b"
#define IMG "/var/lib/teepod/images/dstack-0.5.3"

static const struct teepod_port ports[] = {
    {.udp = false, .host_address = "127.0.0.1", .host_port = 8080, .vm_port = 80},
    {.udp = true, .host_address = "0.0.0.0", .host_port = 5353, .vm_port = 53},
};

static uint8_t mrconfigid[48];

/* The one spec of the golden files; only the backend (and the TDX parts) differ. */
static struct teepod_qemu_spec spec(enum teepod_backend be) {
  for (size_t i = 0; i < sizeof(mrconfigid); i++)
    mrconfigid[i] = 0;
  mrconfigid[0] = 0x01;
  for (size_t i = 0; i < 32; i++)
    mrconfigid[1 + i] = (uint8_t)i;
  struct teepod_qemu_spec s = {
      .qemu = "/usr/bin/qemu-system-x86_64",
      .backend = be,
      .name = "web-1",
      .vcpu = 4,
      .memory_mb = 4096,
      .vm_dir = DIR,
      .kernel = IMG "/bzImage",
      .initrd = IMG "/initramfs.cpio.gz",
      .cmdline = "console=ttyS0 init=/init dstack.rootfs_hash=abcd",
      .bios = IMG "/ovmf.fd",
      .rootfs = IMG "/rootfs.img.verity",
      .shared_9p_dir = DIR "/shared",
      .ports = ports,
      .n_ports = 2,
      .cid = 1000,
      .hugepages = true,
      .mrconfigid = be == TEEPOD_BACKEND_TDX ? mrconfigid : NULL,
      .qgs_socket = be == TEEPOD_BACKEND_TDX ? "/var/run/tdx-qgs/qgs.socket" : NULL,
  };
  return s;
}

/* The golden file's lines (one argument per line, the last ended by a newline). */
static char **golden(const char *name) {
  _cleanup_free_ char *rel = str_printf("tests/data/teepod/%s", name);
  struct buf b = BUF_INIT(1 << 20);
  tu_read_file(tu_source_path(rel), &b);
  assert_true(b.len > 0);
  assert_int_equal(b.data[b.len - 1], '\n');
  char **v = NULL;
  size_t start = 0;
  for (size_t i = 0; i < b.len; i++) {
    if (b.data[i] != '\n')
      continue;
    char *line = strndup((const char *)b.data + start, i - start);
    assert_non_null(line);
    assert_int_equal(strv_push(&v, line), 0);
    start = i + 1;
  }
  buf_free(&b);
  return v;
}

static void check_golden(enum teepod_backend be, const char *file) {
  struct teepod_qemu_spec s = spec(be);
  char **argv = NULL;
  assert_int_equal(teepod_qemu_argv(&s, &argv), 0);
  char **want = golden(file);
  size_t n = strv_length(argv), m = strv_length(want);
  for (size_t i = 0; i < n && i < m; i++)
    if (strcmp(argv[i], want[i]) != 0)
      fail_msg("%s: argument %zu is\n  %s\nexpected\n  %s", file, i, argv[i], want[i]);
  if (n != m)
    fail_msg("%s: %zu arguments, expected %zu", file, n, m);
  strv_free(argv);
  strv_free(want);
}

static void test_golden_tcg(void **state) {
  (void)state;
  check_golden(TEEPOD_BACKEND_TCG, "qemu-tcg.argv");
}

static void test_golden_kvm(void **state) {
  (void)state;
  check_golden(TEEPOD_BACKEND_KVM, "qemu-kvm.argv");
}

static void test_golden_tdx(void **state) {
  (void)state;
  check_golden(TEEPOD_BACKEND_TDX, "qemu-tdx.argv");
}

static bool argv_has(char **argv, const char *a) {
  for (size_t i = 0; argv && argv[i]; i++)
    if (str_eq(argv[i], a))
      return true;
  return false;
}

static bool argv_has_prefix(char **argv, const char *a) {
  for (size_t i = 0; argv && argv[i]; i++)
    if (str_startswith(argv[i], a))
      return true;
  return false;
}

/* The optional parts are left out when not asked for. */
static void test_minimal(void **state) {
  (void)state;
  struct teepod_qemu_spec s = spec(TEEPOD_BACKEND_TCG);
  s.bios = s.rootfs = s.shared_9p_dir = NULL;
  s.n_ports = 0;
  s.cid = 0;
  s.hugepages = false;
  s.cmdline = "";
  char **argv = NULL;
  assert_int_equal(teepod_qemu_argv(&s, &argv), 0);
  assert_false(argv_has(argv, "-bios"));
  assert_false(argv_has(argv, "-virtfs"));
  assert_false(argv_has(argv, "-mem-path"));
  assert_false(argv_has(argv, "-append"));
  assert_false(argv_has(argv, "-object"));
  assert_false(argv_has_prefix(argv, "vhost-vsock-pci"));
  assert_false(argv_has_prefix(argv, "file=" IMG "/rootfs.img.verity"));
  assert_true(argv_has(argv, "user,id=net0"));
  strv_free(argv);
  /* a NULL cmdline is the same as "" */
  s.cmdline = NULL;
  assert_int_equal(teepod_qemu_argv(&s, &argv), 0);
  assert_false(argv_has(argv, "-append"));
  strv_free(argv);
  /* TDX without a quote socket: the tdx-guest object without it */
  s = spec(TEEPOD_BACKEND_TDX);
  s.qgs_socket = NULL;
  assert_int_equal(teepod_qemu_argv(&s, &argv), 0);
  assert_true(argv_has(argv, "{\"qom-type\":\"tdx-guest\",\"id\":\"tdx\",\"mrconfigid\":\""
                             "AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fAAAAAAAAAAAAAAAAAAAA"
                             "\"}"));
  strv_free(argv);
}

static void test_escape(void **state) {
  (void)state;
  char *e;
  assert_non_null(e = teepod_qemu_escape("/a,b,,c"));
  assert_string_equal(e, "/a,,b,,,,c");
  free(e);
  assert_non_null(e = teepod_qemu_escape(""));
  assert_string_equal(e, "");
  free(e);
  assert_non_null(e = teepod_qemu_escape("sp ace=\"q\"\xc3\xa9"));
  assert_string_equal(e, "sp ace=\"q\"\xc3\xa9");
  free(e);
  assert_null(teepod_qemu_escape(NULL));
  assert_null(teepod_qemu_escape("a\nb"));
  assert_null(teepod_qemu_escape("a\tb"));
  assert_null(teepod_qemu_escape("\x01"));
  assert_null(teepod_qemu_escape("a\x7f"));

  /* a ',' in the VM folder is doubled inside option values, kept as it is in -pidfile; in
   * -kernel, -initrd and -bios (plain paths for QEMU) it stays single */
  struct teepod_qemu_spec s = spec(TEEPOD_BACKEND_TCG);
  s.vm_dir = "/srv/vm,x";
  s.kernel = "/img/k,1";
  s.initrd = "/img/i,1";
  s.bios = "/img/b,1";
  s.rootfs = "/img/r,1";
  s.shared_9p_dir = "/srv/vm,x/shared";
  s.qgs_socket = NULL;
  char **argv = NULL;
  assert_int_equal(teepod_qemu_argv(&s, &argv), 0);
  assert_true(argv_has(argv, "file,id=serial0,path=/srv/vm,,x/serial.log,append=on"));
  assert_true(argv_has(argv, "file=/srv/vm,,x/hda.img,if=none,id=hd0,format=qcow2"));
  assert_true(argv_has(argv, "file=/img/r,,1,if=none,id=rootfs,format=raw,readonly=on"));
  assert_true(argv_has(argv, "file=/srv/vm,,x/config.img,if=none,id=cfg,format=raw,readonly=on"));
  assert_true(argv_has(argv, "local,path=/srv/vm,,x/shared,mount_tag=host-shared,readonly=on,"
                             "security_model=mapped,id=virtfs0"));
  /* the sockets are named relative to the VM folder (QEMU's working directory) */
  assert_true(argv_has(argv, "socket,id=hostch,path=host.sock,server=on,wait=off"));
  assert_true(argv_has(argv, "unix:qmp.sock,server=on,wait=off"));
  assert_true(argv_has(argv, "/srv/vm,x/qemu.pid"));
  assert_true(argv_has(argv, "/img/k,1"));
  assert_true(argv_has(argv, "/img/i,1"));
  assert_true(argv_has(argv, "/img/b,1"));
  strv_free(argv);
  /* the quote socket path is JSON-escaped in the -object JSON */
  s = spec(TEEPOD_BACKEND_TDX);
  s.qgs_socket = "/run/q\"s\\,ock";
  assert_int_equal(teepod_qemu_argv(&s, &argv), 0);
  assert_true(argv_has_prefix(argv, "{\"qom-type\":\"tdx-guest\""));
  bool found = false;
  for (size_t i = 0; argv[i]; i++)
    found |= strstr(argv[i], "\"path\":\"/run/q\\\"s\\\\,ock\"}}") != NULL;
  assert_true(found);
  strv_free(argv);
  /* the kernel command line is one argument, passed as it is */
  s = spec(TEEPOD_BACKEND_KVM);
  s.cmdline = "a=b,c d='e'";
  assert_int_equal(teepod_qemu_argv(&s, &argv), 0);
  assert_string_equal(argv[strv_length(argv) - 1], "a=b,c d='e'");
  assert_string_equal(argv[strv_length(argv) - 2], "-append");
  strv_free(argv);
}

/* Every value that cannot be passed is refused, and nothing is returned. */
static void test_refusals(void **state) {
  (void)state;
  char **argv = (char **)(uintptr_t)1;
  struct teepod_qemu_spec s;
#define REFUSED(mutation)                                                                      \
  do {                                                                                         \
    s = spec(TEEPOD_BACKEND_TDX);                                                              \
    mutation;                                                                                  \
    argv = (char **)(uintptr_t)1;                                                              \
    if (teepod_qemu_argv(&s, &argv) != -EINVAL || argv)                                        \
      fail_msg("accepted: %s", #mutation);                                                     \
  } while (0)
  REFUSED(s.qemu = NULL);
  REFUSED(s.vm_dir = NULL);
  REFUSED(s.vm_dir = "");
  REFUSED(s.kernel = NULL);
  REFUSED(s.kernel = "");
  REFUSED(s.initrd = NULL);
  REFUSED(s.name = NULL);
  REFUSED(s.name = "");
  REFUSED(s.vcpu = 0);
  REFUSED(s.memory_mb = 0);
  REFUSED(s.mrconfigid = NULL);
  REFUSED(s.vm_dir = "/srv/vm\n");
  REFUSED(s.kernel = "/img/k\x01");
  REFUSED(s.initrd = "/img/i\x7f");
  REFUSED(s.bios = "/img/b\r");
  REFUSED(s.bios = "");
  REFUSED(s.rootfs = "/img/r\t");
  REFUSED(s.rootfs = "");
  REFUSED(s.shared_9p_dir = "/x\x1b[0m");
  REFUSED(s.name = "a\nb");
  REFUSED(s.qgs_socket = "/run/q\ns");
  static const struct teepod_port v6[] = {
      {.host_address = "::1", .host_port = 8080, .vm_port = 80}};
  static const struct teepod_port empty[] = {
      {.host_address = "", .host_port = 8080, .vm_port = 80}};
  static const struct teepod_port name[] = {
      {.host_address = "localhost", .host_port = 8080, .vm_port = 80}};
  static const struct teepod_port inject[] = {
      {.host_address = "127.0.0.1,hostfwd=tcp::22-:22", .host_port = 8080, .vm_port = 80}};
  static const struct teepod_port zero_host[] = {
      {.host_address = "127.0.0.1", .host_port = 0, .vm_port = 80}};
  static const struct teepod_port zero_vm[] = {
      {.host_address = "127.0.0.1", .host_port = 80, .vm_port = 0}};
  REFUSED((s.ports = v6, s.n_ports = 1));
  REFUSED((s.ports = empty, s.n_ports = 1));
  REFUSED((s.ports = name, s.n_ports = 1));
  REFUSED((s.ports = inject, s.n_ports = 1));
  REFUSED((s.ports = zero_host, s.n_ports = 1));
  REFUSED((s.ports = zero_vm, s.n_ports = 1));
#undef REFUSED
  /* the TCG and KVM backends need no mrconfigid */
  s = spec(TEEPOD_BACKEND_KVM);
  s.mrconfigid = NULL;
  assert_int_equal(teepod_qemu_argv(&s, &argv), 0);
  assert_false(argv_has(argv, "-object"));
  strv_free(argv);
}

static void test_argv_text(void **state) {
  (void)state;
  char *argv[] = {"/usr/bin/qemu", "-name", "a,process=b", "",          "has space",
                  "it's",          "q\"",   "back\\",      "$HOME",     "a;b",
                  "{\"j\":1}",     "x*",    "tab\tx",      "plain=1,2", NULL};
  char *t = teepod_qemu_argv_text(argv);
  assert_non_null(t);
  assert_string_equal(t, "/usr/bin/qemu -name a,process=b '' 'has space' 'it'\\''s' 'q\"' "
                         "'back\\' '$HOME' 'a;b' '{\"j\":1}' 'x*' 'tab\tx' plain=1,2");
  free(t);
  char *none[] = {NULL};
  t = teepod_qemu_argv_text(none);
  assert_non_null(t);
  assert_string_equal(t, "");
  free(t);
  /* the real argv: one line, and the kernel command line quoted */
  struct teepod_qemu_spec s = spec(TEEPOD_BACKEND_TCG);
  char **v = NULL;
  assert_int_equal(teepod_qemu_argv(&s, &v), 0);
  t = teepod_qemu_argv_text(v);
  assert_non_null(t);
  assert_null(strchr(t, '\n'));
  assert_true(str_startswith(t, "/usr/bin/qemu-system-x86_64 -name web-1,process=teepod-web-1 "));
  assert_true(str_endswith(t, " -append 'console=ttyS0 init=/init dstack.rootfs_hash=abcd'"));
  free(t);
  strv_free(v);
}

static void test_backend_names(void **state) {
  (void)state;
  assert_string_equal(teepod_backend_name(TEEPOD_BACKEND_TCG), "tcg");
  assert_string_equal(teepod_backend_name(TEEPOD_BACKEND_KVM), "kvm");
  assert_string_equal(teepod_backend_name(TEEPOD_BACKEND_TDX), "tdx");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_tcg), cmocka_unit_test(test_golden_kvm),
      cmocka_unit_test(test_golden_tdx), cmocka_unit_test(test_minimal),
      cmocka_unit_test(test_escape),     cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_argv_text),  cmocka_unit_test(test_backend_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
