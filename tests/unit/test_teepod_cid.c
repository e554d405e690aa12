/* The vsock CID pool: order, reuse, exhaustion, adoption, CIDs used outside the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "teepod_cid.h"

static void test_init(void **state) {
  (void)state;
  struct teepod_cidpool p;
  assert_int_equal(teepod_cidpool_init(&p, 1000, 0), -EINVAL);
  assert_int_equal(teepod_cidpool_init(&p, UINT32_MAX - 10, 11), -EINVAL);
  assert_int_equal(teepod_cidpool_init(&p, UINT32_MAX - 10, 10), 0);
  uint32_t cid = 0;
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, UINT32_MAX - 10);
  teepod_cidpool_free(&p);
  assert_null(p.used);
  teepod_cidpool_free(&p); /* twice is harmless */
}

static void test_order_release_reuse(void **state) {
  (void)state;
  struct teepod_cidpool p;
  uint32_t cid;
  assert_int_equal(teepod_cidpool_init(&p, 1000, 4), 0);
  assert_int_equal(teepod_cidpool_n_used(&p), 0);
  for (uint32_t i = 0; i < 4; i++) {
    assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
    assert_int_equal(cid, 1000 + i);
  }
  assert_int_equal(teepod_cidpool_n_used(&p), 4);
  cid = 7;
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), -ENOSPC);
  assert_int_equal(cid, 7); /* untouched */
  /* the lowest free one comes back first */
  teepod_cidpool_release(&p, 1002);
  teepod_cidpool_release(&p, 1001);
  assert_int_equal(teepod_cidpool_n_used(&p), 2);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, 1001);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, 1002);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), -ENOSPC);
  /* releasing outside the pool or twice changes nothing */
  teepod_cidpool_release(&p, 999);
  teepod_cidpool_release(&p, 1004);
  teepod_cidpool_release(&p, 0);
  teepod_cidpool_release(&p, UINT32_MAX);
  assert_int_equal(teepod_cidpool_n_used(&p), 4);
  teepod_cidpool_release(&p, 1003);
  teepod_cidpool_release(&p, 1003);
  assert_int_equal(teepod_cidpool_n_used(&p), 3);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, 1003);
  teepod_cidpool_free(&p);
}

static void test_occupy(void **state) {
  (void)state;
  struct teepod_cidpool p;
  uint32_t cid;
  assert_int_equal(teepod_cidpool_init(&p, 100, 3), 0);
  /* adopted VMs take their CIDs first */
  assert_int_equal(teepod_cidpool_occupy(&p, 101), 0);
  assert_int_equal(teepod_cidpool_occupy(&p, 101), -EEXIST);
  assert_int_equal(teepod_cidpool_occupy(&p, 99), -ERANGE);
  assert_int_equal(teepod_cidpool_occupy(&p, 103), -ERANGE);
  assert_int_equal(teepod_cidpool_occupy(&p, 0), -ERANGE);
  assert_int_equal(teepod_cidpool_occupy(&p, UINT32_MAX), -ERANGE);
  assert_int_equal(teepod_cidpool_n_used(&p), 1);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, 100);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, 102);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), -ENOSPC);
  /* an allocated CID cannot be occupied again */
  assert_int_equal(teepod_cidpool_occupy(&p, 102), -EEXIST);
  teepod_cidpool_release(&p, 101);
  assert_int_equal(teepod_cidpool_occupy(&p, 101), 0);
  teepod_cidpool_free(&p);
}

struct elsewhere {
  uint32_t busy[4];
  size_t n;
  unsigned calls;
};

static bool busy_elsewhere(uint32_t cid, void *ud) {
  struct elsewhere *e = ud;
  e->calls++;
  for (size_t i = 0; i < e->n; i++)
    if (e->busy[i] == cid)
      return true;
  return false;
}

static void test_in_use_elsewhere(void **state) {
  (void)state;
  struct teepod_cidpool p;
  struct elsewhere e = {.busy = {10, 12}, .n = 2};
  uint32_t cid;
  assert_int_equal(teepod_cidpool_init(&p, 10, 4), 0);
  p.in_use_elsewhere = busy_elsewhere;
  p.ud = &e;
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, 11);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, 13);
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), -ENOSPC);
  /* a skipped CID is not marked taken: once the other user is gone it is handed out */
  assert_int_equal(teepod_cidpool_n_used(&p), 2);
  e.n = 1; /* 12 is free again */
  unsigned before = e.calls;
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), 0);
  assert_int_equal(cid, 12);
  assert_true(e.calls > before);
  /* our own CIDs are never asked about */
  e.calls = 0;
  assert_int_equal(teepod_cidpool_alloc(&p, &cid), -ENOSPC);
  assert_int_equal(e.calls, 1); /* only 10, the one free slot */
  teepod_cidpool_free(&p);
}

/* The /proc scan: a process whose argument holds guest-cid=N uses N (and only N, not a CID
 * that is a prefix of it or that it is a prefix of). */
static void test_other_qemu(void **state) {
  (void)state;
  assert_false(teepod_cid_used_by_other_qemu(4294967001u, NULL));
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* its own process group, killed as one; no handle on the test's output */
    setpgid(0, 0);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    /* the ':' keeps the shell from replacing itself with sleep */
    execl("/bin/sh", "sh", "-c", "sleep 20; :", "vhost-vsock-pci,guest-cid=4294967001,x=y",
          (char *)NULL);
    _exit(127);
  }
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
  bool ready = false;
  for (int i = 0; i < 400 && !ready; i++) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
      ssize_t n = read(fd, buf, sizeof(buf));
      close(fd);
      ready = n > 0 && memmem(buf, (size_t)n, "guest-cid=", 10);
    }
    if (!ready)
      usleep(5000);
  }
  bool found = ready && teepod_cid_used_by_other_qemu(4294967001u, NULL);
  bool prefix = teepod_cid_used_by_other_qemu(429496700u, NULL);
  bool longer = teepod_cid_used_by_other_qemu(4294967u, NULL);
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  assert_true(ready);
  assert_true(found);
  assert_false(prefix);
  assert_false(longer);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init),          cmocka_unit_test(test_order_release_reuse),
      cmocka_unit_test(test_occupy),        cmocka_unit_test(test_in_use_elsewhere),
      cmocka_unit_test(test_other_qemu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
