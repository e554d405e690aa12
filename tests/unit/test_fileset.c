/* fileset: a set of new files that appears as one. A child process is killed (SIGKILL) after
 * every step of fileset_create and of the completion in fileset_recover; after recovery either
 * all files are there with their content and modes, or none is and the set can be created. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/fileset.h"
#include "base/str.h"
#include "testutil.h"

#define N 3

struct fx {
  char *top, *staging;
  char *paths[N];
  struct fileset_file files[N];
};

static const char *const contents[N] = {"secret key\n", "", "certificate\n"};
static const mode_t modes[N] = {0600, 0600, 0644};

static void fx_init(struct fx *f) {
  f->top = tu_mkdtemp();
  f->staging = str_printf("%s/keys/.staging", f->top);
  f->paths[0] = str_printf("%s/keys/a.key", f->top);
  f->paths[1] = str_printf("%s/keys/sub/b.key", f->top); /* a directory to create */
  f->paths[2] = str_printf("%s/c.cert", f->top);         /* another directory */
  for (size_t i = 0; i < N; i++) {
    assert_non_null(f->paths[i]);
    f->files[i] = (struct fileset_file){f->paths[i], contents[i], strlen(contents[i]), modes[i]};
  }
}

static void fx_free(struct fx *f) {
  tu_rm_rf(f->top);
  free(f->top);
  free(f->staging);
  for (size_t i = 0; i < N; i++)
    free(f->paths[i]);
}

static bool exists(const char *p) {
  struct stat st;
  return lstat(p, &st) == 0;
}

static size_t count_present(const struct fx *f) {
  size_t n = 0;
  for (size_t i = 0; i < N; i++)
    n += exists(f->paths[i]);
  return n;
}

static void assert_all_there(const struct fx *f) {
  for (size_t i = 0; i < N; i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(4096);
    assert_int_equal(file_read_all(f->paths[i], 4096, &b), 0);
    assert_int_equal(b.len, strlen(contents[i]));
    assert_memory_equal(b.data, contents[i], b.len);
    struct stat st;
    assert_int_equal(stat(f->paths[i], &st), 0);
    assert_int_equal(st.st_mode & 07777, modes[i]);
    assert_int_equal(st.st_nlink, 1); /* the staged link is gone */
  }
  assert_false(exists(f->staging));
}

static void kill_at(void *userdata, unsigned step) {
  if (step == *(unsigned *)userdata)
    raise(SIGKILL);
}

/* Runs fileset_create (or fileset_recover) in a child killed after step; true when it was. */
static bool child_killed_at(struct fx *f, bool recover, unsigned step) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int r;
    if (recover) {
      enum fileset_recovery what;
      r = fileset_recover(f->staging, (const char *const *)f->paths, N, kill_at, &step, &what);
    } else {
      r = fileset_create(f->staging, f->files, N, kill_at, &step);
    }
    _exit(r < 0 ? 2 : 0);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (WIFSIGNALED(st)) {
    assert_int_equal(WTERMSIG(st), SIGKILL);
    return true;
  }
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  return false;
}

static void test_create(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  enum fileset_recovery what;
  assert_int_equal(fileset_recover(f.staging, (const char *const *)f.paths, N, NULL, NULL, &what),
                   0);
  assert_int_equal(what, FILESET_NOTHING);
  assert_int_equal(fileset_create(f.staging, f.files, N, NULL, NULL), 0);
  assert_all_there(&f);
  /* never over an existing file: nothing written, no staging left */
  assert_int_equal(fileset_create(f.staging, f.files, N, NULL, NULL), -EEXIST);
  assert_false(exists(f.staging));
  assert_int_equal(unlink(f.paths[0]), 0);
  assert_int_equal(unlink(f.paths[2]), 0);
  assert_int_equal(fileset_create(f.staging, f.files, N, NULL, NULL), -EEXIST);
  assert_int_equal(count_present(&f), 1);
  assert_false(exists(f.staging));
  /* nor while a staging directory is there */
  assert_int_equal(unlink(f.paths[1]), 0);
  assert_int_equal(mkdir(f.staging, 0700), 0);
  assert_int_equal(fileset_create(f.staging, f.files, N, NULL, NULL), -EEXIST);
  assert_int_equal(count_present(&f), 0);
  assert_int_equal(rmdir(f.staging), 0);
  /* arguments */
  assert_int_equal(fileset_create(NULL, f.files, N, NULL, NULL), -EINVAL);
  assert_int_equal(fileset_create(f.staging, f.files, 0, NULL, NULL), -EINVAL);
  assert_int_equal(fileset_create(f.staging, f.files, FILESET_MAX + 1, NULL, NULL), -EINVAL);
  struct fileset_file bad = {f.paths[0], NULL, 3, 0600};
  assert_int_equal(fileset_create(f.staging, &bad, 1, NULL, NULL), -EINVAL);
  assert_int_equal(fileset_recover(f.staging, (const char *const *)f.paths, 0, NULL, NULL, &what),
                   -EINVAL);
  fx_free(&f);
}

/* Killed after every step of the creation: N files, the marker, N links. */
static void test_crash_every_step(void **state) {
  (void)state;
  for (unsigned step = 1; step <= 2 * N + 1; step++) {
    struct fx f;
    fx_init(&f);
    assert_true(child_killed_at(&f, false, step));
    assert_true(exists(f.staging));
    /* nothing is in place before the commit; the links made so far after it */
    assert_int_equal(count_present(&f), step <= N + 1 ? 0 : step - (N + 1));
    enum fileset_recovery what;
    assert_int_equal(
        fileset_recover(f.staging, (const char *const *)f.paths, N, NULL, NULL, &what), 0);
    if (step <= N) {
      assert_int_equal(what, FILESET_REMOVED);
      assert_int_equal(count_present(&f), 0);
      assert_false(exists(f.staging));
      assert_int_equal(fileset_create(f.staging, f.files, N, NULL, NULL), 0);
    } else {
      assert_int_equal(what, FILESET_FINISHED);
    }
    assert_all_there(&f);
    /* recovering again is a no-op */
    assert_int_equal(
        fileset_recover(f.staging, (const char *const *)f.paths, N, NULL, NULL, &what), 0);
    assert_int_equal(what, FILESET_NOTHING);
    fx_free(&f);
  }
}

/* Killed again while completing a committed set. */
static void test_crash_while_recovering(void **state) {
  (void)state;
  for (unsigned step = 1; step <= N; step++) {
    struct fx f;
    fx_init(&f);
    assert_true(child_killed_at(&f, false, N + 2)); /* committed, one link made */
    assert_true(child_killed_at(&f, true, step));
    assert_int_equal(count_present(&f), step); /* the first was linked already */
    enum fileset_recovery what;
    assert_int_equal(
        fileset_recover(f.staging, (const char *const *)f.paths, N, NULL, NULL, &what), 0);
    assert_int_equal(what, FILESET_FINISHED);
    assert_all_there(&f);
    fx_free(&f);
  }
}

/* What recovery refuses: a target that is not the staged file, a staging directory that does
 * not match. Nothing is replaced or removed then. */
static void test_recover_refusals(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  assert_true(child_killed_at(&f, false, N + 1)); /* committed, nothing linked */
  assert_int_equal(file_write_atomic(f.paths[1], "other\n", 6, 0600), 0);
  enum fileset_recovery what;
  assert_int_equal(fileset_recover(f.staging, (const char *const *)f.paths, N, NULL, NULL, &what),
                   -EEXIST);
  assert_true(exists(f.staging));
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  assert_int_equal(file_read_all(f.paths[1], 64, &b), 0);
  assert_memory_equal(b.data, "other\n", 6);
  /* fewer targets than staged files */
  assert_int_equal(unlink(f.paths[1]), 0);
  assert_int_equal(
      fileset_recover(f.staging, (const char *const *)f.paths, N - 1, NULL, NULL, &what),
      -EBADMSG);
  assert_true(exists(f.staging));
  /* the right targets: done */
  assert_int_equal(fileset_recover(f.staging, (const char *const *)f.paths, N, NULL, NULL, &what),
                   0);
  assert_all_there(&f);
  /* staging that is a file */
  assert_int_equal(file_write_atomic(f.staging, "x", 1, 0600), 0);
  assert_int_equal(fileset_recover(f.staging, (const char *const *)f.paths, N, NULL, NULL, &what),
                   -ENOTDIR);
  fx_free(&f);
}

/* Targets on another file system than staging: refused before anything is written. */
static void test_other_filesystem(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  struct stat a, b; /* the targets live under f.top (TMPDIR) */
  if (stat("/dev/shm", &a) < 0 || stat(f.top, &b) < 0 || a.st_dev == b.st_dev ||
      access("/dev/shm", W_OK) < 0) {
    fx_free(&f);
    skip();
    return;
  }
  char shm[] = "/dev/shm/fileset-test-XXXXXX";
  assert_non_null(mkdtemp(shm));
  _cleanup_free_ char *staging = str_printf("%s/staging", shm);
  assert_int_equal(fileset_create(staging, f.files, N, NULL, NULL), -EXDEV);
  assert_false(exists(staging));
  assert_int_equal(count_present(&f), 0);
  tu_rm_rf(shm);
  fx_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create),
      cmocka_unit_test(test_crash_every_step),
      cmocka_unit_test(test_crash_while_recovering),
      cmocka_unit_test(test_recover_refusals),
      cmocka_unit_test(test_other_filesystem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
