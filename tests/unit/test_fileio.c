#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "testutil.h"

static char *tdir;

static int setup(void **state) {
  (void)state;
  tdir = tu_mkdtemp();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  chmod(tdir, 0700);
  tu_rm_rf(tdir);
  free(tdir);
  return 0;
}

/* A path inside the test directory; rotates over a few static buffers. */
static const char *tpath(const char *name) {
  static char p[4][4096];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof(p[k]), "%s/%s", tdir, name);
  return p[k];
}

static void write_plain(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(s, f);
  fclose(f);
}

static size_t count_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

static void assert_content(const char *path, const char *want) {
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 20);
  assert_int_equal(file_read_all(path, 1 << 20, &b), 0);
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.data, want, b.len);
}

/* A sysfs attribute says it is 4096 bytes long whatever it holds: file_read_all refuses it
 * under a small max, file_read_pseudo reads what is there; both keep max. */
static void test_read_pseudo(void **state) {
  (void)state;
  const char *attr = "/sys/class/net/lo/mtu";
  struct stat st;
  if (stat(attr, &st) < 0 || st.st_size <= 64)
    skip();
  _cleanup_buf_ struct buf a = BUF_INIT(64), b = BUF_INIT(64);
  assert_int_equal(file_read_all(attr, 32, &a), -EFBIG);
  assert_int_equal(file_read_pseudo(attr, 32, &b), 0);
  assert_true(b.len > 1 && b.len < 32);
  assert_int_equal(b.data[b.len - 1], '\n');
  char p[4096];
  snprintf(p, sizeof(p), "%s", tpath("pseudo.txt"));
  write_plain(p, "0123456789");
  _cleanup_buf_ struct buf c = BUF_INIT(64);
  assert_int_equal(file_read_pseudo(p, 9, &c), -EFBIG);
  assert_int_equal(file_read_pseudo(p, 10, &c), 0);
  assert_int_equal(file_read_pseudo("/nonexistent/x", 10, &c), -ENOENT);
}

static void test_read_all(void **state) {
  (void)state;
  char p[4096];
  snprintf(p, sizeof(p), "%s", tpath("r.txt"));
  write_plain(p, "0123456789");
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  assert_int_equal(file_read_all(p, 10, &b), -ENOBUFS); /* cap 0 holds nothing */
  assert_int_equal(b.max, 0);                           /* max is not adopted as cap */
  assert_int_equal(b.len, 0);
  b = BUF_INIT(10);
  assert_int_equal(file_read_all(p, 10, &b), 0); /* exactly max */
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.data, "0123456789", 10);

  struct buf c = BUF_INIT(100);
  assert_int_equal(buf_append(&c, "xy", 2), 0);
  assert_int_equal(file_read_all(p, 9, &c), -EFBIG); /* one byte too long */
  assert_int_equal(c.len, 2);
  assert_int_equal(file_read_all(p, 100, &c), 0); /* appends */
  assert_int_equal(c.len, 12);
  assert_memory_equal(c.data, "xy0123456789", 12);
  buf_free(&c);

  struct buf small = BUF_INIT(5);
  assert_int_equal(file_read_all(p, 100, &small), -ENOBUFS); /* buffer cap smaller than max */
  assert_int_equal(small.len, 0);
  buf_free(&small);

  struct buf e = BUF_INIT(10);
  assert_int_equal(file_read_all(tpath("missing"), 10, &e), -ENOENT);
  assert_int_equal(file_read_all(tdir, 10, &e), -EISDIR);
  write_plain(tpath("empty"), "");
  assert_int_equal(file_read_all(tpath("empty"), 10, &e), 0);
  assert_int_equal(e.len, 0);
  buf_free(&e);
}

/* The one whole-file read: "too big" is -EFBIG for every kind of file. */
static void test_read_capped(void **state) {
  (void)state;
  char p[4096];
  snprintf(p, sizeof(p), "%s", tpath("c.txt"));
  write_plain(p, "0123456789");
  struct buf b;
  assert_int_equal(file_read_capped(p, 10, false, &b), 0); /* exactly max */
  assert_int_equal(b.max, 10);
  assert_false(b.secret);
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.data, "0123456789", 10);
  buf_free(&b);
  assert_int_equal(file_read_capped(p, 9, true, &b), -EFBIG); /* regular file: early */
  assert_int_equal(b.len, 0);
  assert_true(b.secret);
  buf_free(&b);
  /* Not a regular file (no size up front): -EFBIG too, not -ENOBUFS. */
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "0123456789", 10), 10);
  close(fds[1]);
  char fdpath[64];
  snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fds[0]);
  assert_int_equal(file_read_capped(fdpath, 9, false, &b), -EFBIG);
  assert_int_equal(b.len, 0);
  buf_free(&b);
  close(fds[0]);
  assert_int_equal(file_read_capped(tpath("missing"), 10, false, &b), -ENOENT);
  buf_free(&b);
}

static void test_read_pipe_and_stdin(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "hello pipe", 10), 10);
  close(fds[1]);
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  assert_int_equal(fd_read_all(fds[0], 64, &b), 0);
  close(fds[0]);
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.data, "hello pipe", 10);

  /* a pipe longer than max: no size known up front */
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "0123456789", 10), 10);
  close(fds[1]);
  buf_reset(&b);
  assert_int_equal(fd_read_all(fds[0], 4, &b), -EFBIG);
  assert_int_equal(b.len, 0);
  close(fds[0]);

  /* "-" is standard input */
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "from stdin", 10), 10);
  close(fds[1]);
  int saved = dup(STDIN_FILENO);
  assert_true(saved >= 0);
  assert_int_equal(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
  close(fds[0]);
  buf_reset(&b);
  int r = file_read_all("-", 64, &b);
  assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
  close(saved);
  assert_int_equal(r, 0);
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.data, "from stdin", 10);
}

static void test_write_all_large(void **state) {
  (void)state;
  size_t n = 3 * 1024 * 1024 + 17;
  uint8_t *data = malloc(n);
  assert_non_null(data);
  for (size_t i = 0; i < n; i++)
    data[i] = (uint8_t)(i * 7);
  int fd = open(tpath("big"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(fd_write_all(fd, data, n), 0);
  close(fd);
  _cleanup_buf_ struct buf b = BUF_INIT(n);
  assert_int_equal(file_read_all(tpath("big"), n, &b), 0);
  assert_int_equal(b.len, n);
  assert_memory_equal(b.data, data, n);
  buf_reset(&b);
  assert_int_equal(file_read_all(tpath("big"), n - 1, &b), -EFBIG);
  free(data);
  assert_int_equal(fd_write_all(-1, "x", 1), -EBADF);
  assert_int_equal(fd_write_all(-1, "", 0), 0);
}

static mode_t file_mode(const char *p) {
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  return st.st_mode & 07777;
}

static void test_write_atomic(void **state) {
  (void)state;
  char p[4096];
  snprintf(p, sizeof(p), "%s", tpath("a.conf"));
  size_t before = count_entries(tdir);
  mode_t old = umask(0077);
  assert_int_equal(file_write_atomic(p, "one", 3, 0644), 0);
  assert_int_equal(file_mode(p), 0644); /* umask does not apply */
  umask(0);
  assert_int_equal(file_write_atomic(p, "two!", 4, 0600), 0);
  assert_int_equal(file_mode(p), 0600);
  umask(0022);
  assert_int_equal(file_write_atomic(p, "three", 5, 0666), 0);
  assert_int_equal(file_mode(p), 0666);
  assert_int_equal(file_write_atomic(p, "", 0, 0400), 0);
  assert_int_equal(file_mode(p), 0400);
  umask(old);
  assert_content(p, "");
  assert_int_equal(file_write_atomic(p, "final", 5, 0640), 0);
  assert_content(p, "final");
  assert_int_equal(count_entries(tdir), before + 1); /* no temporary files left */

  /* relative path (current directory) */
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  assert_int_equal(chdir(tdir), 0);
  int r = file_write_atomic("rel.txt", "rel", 3, 0600);
  assert_int_equal(chdir(cwd), 0);
  assert_int_equal(r, 0);
  assert_content(tpath("rel.txt"), "rel");

  assert_int_equal(file_write_atomic("", "x", 1, 0600), -EINVAL);
  assert_int_equal(file_write_atomic(tpath("dir/"), "x", 1, 0600), -EINVAL);
}

static void test_write_atomic_failures(void **state) {
  (void)state;
  char p[4096];
  snprintf(p, sizeof(p), "%s", tpath("keep.conf"));
  assert_int_equal(file_write_atomic(p, "original", 8, 0600), 0);
  size_t before = count_entries(tdir);

  /* parent directory missing */
  assert_int_equal(file_write_atomic(tpath("nodir/x"), "new", 3, 0600), -ENOENT);
  /* target is a non-empty directory: rename fails after the temp file was written */
  assert_int_equal(mkdir(tpath("sub"), 0700), 0);
  write_plain(tpath("sub/f"), "x");
  before = count_entries(tdir);
  int r = file_write_atomic(tpath("sub"), "new", 3, 0600);
  assert_true(r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST);
  assert_int_equal(count_entries(tdir), before); /* temp removed */

  /* the write itself fails (file size limit): old content stays, temp removed */
  struct rlimit rl, small;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
  small = rl;
  small.rlim_cur = 4096;
  void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  static char big[16384];
  memset(big, 'z', sizeof(big));
  r = file_write_atomic(p, big, sizeof(big), 0600);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
  signal(SIGXFSZ, oldsig);
  assert_int_equal(r, -EFBIG);
  assert_content(p, "original");
  assert_int_equal(file_mode(p), 0600);
  assert_int_equal(count_entries(tdir), before);

  /* a directory we may not write to: as root, try it from a child that dropped to nobody */
  assert_int_equal(mkdir(tpath("ro"), 0700), 0);
  assert_int_equal(file_write_atomic(tpath("ro/f"), "old", 3, 0644), 0);
  if (geteuid() != 0) {
    assert_int_equal(chmod(tpath("ro"), 0500), 0);
    assert_int_equal(file_write_atomic(tpath("ro/f"), "new", 3, 0600), -EACCES);
    assert_int_equal(chmod(tpath("ro"), 0700), 0);
  } else {
    assert_int_equal(chmod(tdir, 0711), 0);
    assert_int_equal(chmod(tpath("ro"), 0755), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      if (setgid(65534) < 0 || setuid(65534) < 0)
        _exit(100);
      _exit(-file_write_atomic(tpath("ro/f"), "new", 3, 0600));
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(chmod(tdir, 0700), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), EACCES);
  }
  assert_content(tpath("ro/f"), "old");
  assert_int_equal(count_entries(tpath("ro")), 1);
}

static void test_mkdir_p(void **state) {
  (void)state;
  mode_t old = umask(0022);
  assert_int_equal(mkdir_p(tpath("m/a/b/c"), 0750), 0);
  struct stat st;
  assert_int_equal(stat(tpath("m/a/b/c"), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0750);
  assert_int_equal(mkdir_p(tpath("m/a/b/c"), 0700), 0); /* exists: fine */
  assert_int_equal(mkdir_p(tpath("m//x///y/"), 0700), 0);
  assert_int_equal(stat(tpath("m/x/y"), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  write_plain(tpath("m/file"), "x");
  assert_int_equal(mkdir_p(tpath("m/file"), 0700), -ENOTDIR);
  assert_int_equal(mkdir_p(tpath("m/file/sub"), 0700), -ENOTDIR);
  assert_int_equal(mkdir_parents(tpath("m/p/q/leaf.txt"), 0700), 0);
  assert_int_equal(stat(tpath("m/p/q"), &st), 0);
  assert_int_equal(stat(tpath("m/p/q/leaf.txt"), &st), -1);
  assert_int_equal(mkdir_parents("leaf-only", 0700), 0);
  assert_int_equal(mkdir_p("/", 0700), 0);
  assert_int_equal(mkdir_p("", 0700), -EINVAL);
  umask(old);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_all),        cmocka_unit_test(test_read_pseudo),        cmocka_unit_test(test_read_capped),
      cmocka_unit_test(test_read_pipe_and_stdin),
      cmocka_unit_test(test_write_all_large), cmocka_unit_test(test_write_atomic),
      cmocka_unit_test(test_write_atomic_failures), cmocka_unit_test(test_mkdir_p),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
