#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/str.h"
#include "testutil.h"
#include "tproxy_wgproc.h"

static void test_proc_stat(void **state) {
  (void)state;
  unsigned long long st1 = 0, st2 = 0;
  char s = 0;
  assert_int_equal(tproxy_proc_stat(getpid(), &st1, &s), 0);
  assert_true(st1 > 0);
  assert_int_equal(s, 'R');
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(0);
  /* an exited child that was not reaped yet is a zombie */
  for (int i = 0; i < 200 && (tproxy_proc_stat(pid, &st2, &s) < 0 || s != 'Z'); i++)
    usleep(10000);
  assert_int_equal(s, 'Z');
  assert_true(st2 >= st1);
  assert_int_equal(waitpid(pid, NULL, 0), pid);
  assert_int_equal(tproxy_proc_stat(pid, NULL, NULL), -ENOENT);
}

/* An executable script at dir/name with body. */
static char *script(const char *dir, const char *name, const char *body) {
  char *p = str_printf("%s/%s", dir, name);
  _cleanup_free_ char *text = str_printf("#!/bin/sh\n%s\n", body);
  assert_non_null(p);
  assert_non_null(text);
  assert_int_equal(file_write_atomic(p, text, strlen(text), 0700), 0);
  return p;
}

static pid_t spawn_script(const char *path) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execl(path, path, (char *)NULL);
    _exit(127);
  }
  return pid;
}

static void write_pidfile(const char *dir, const char *ifname, pid_t pid) {
  unsigned long long st = 0;
  for (int i = 0; i < 200; i++) { /* until the exec happened: comm is the script's name */
    char comm[64] = "", path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
      if (!fgets(comm, sizeof(comm), f))
        comm[0] = 0;
      fclose(f);
    }
    if (str_startswith(comm, "wireguard-go") || str_startswith(comm, "sleeper"))
      break;
    usleep(10000);
  }
  assert_int_equal(tproxy_proc_stat(pid, &st, NULL), 0);
  _cleanup_free_ char *p = str_printf("%s/%s.pid", dir, ifname);
  _cleanup_free_ char *line = str_printf("%d %llu\n", (int)pid, st);
  assert_int_equal(file_write_atomic(p, line, strlen(line), 0600), 0);
}

/* A wireguard-go that exits at once: start fails with -ECHILD and a message, and leaves no
 * child behind. */
static void test_start_fails_clearly(void **state) {
  (void)state;
  _cleanup_free_ char *dir = tu_mkdtemp();
  _cleanup_free_ char *bin = script(dir, "wg-fails", "echo 'device or resource busy' >&2; exit 1");
  _cleanup_free_ char *run = str_printf("%s/run", dir);
  char ifname[16];
  snprintf(ifname, sizeof(ifname), "tpu%d", (int)getpid() % 100000);
  struct tproxy_wgproc_opts o = {
      .ifname = ifname, .sock_dir = dir, .run_dir = run, .address = "10.9.0.1/24", .bin = bin};
  struct tproxy_wgproc *w = NULL;
  char err[512] = "";
  assert_int_equal(tproxy_wgproc_start(&o, &w, err, sizeof(err)), -ECHILD);
  assert_null(w);
  assert_non_null(strstr(err, "exited with status 1"));
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* nothing left to reap */
  assert_int_equal(errno, ECHILD);
  _cleanup_free_ char *pidfile = str_printf("%s/%s.pid", dir, ifname);
  _cleanup_free_ char *link = str_printf("%s/%s.sock", run, ifname);
  _cleanup_free_ char *sock = str_printf("%s/%s.sock", dir, ifname);
  struct stat sb;
  assert_int_equal(lstat(pidfile, &sb), -1); /* nothing left behind */
  assert_int_equal(lstat(link, &sb), -1);
  assert_int_equal(lstat(sock, &sb), -1);
  tu_rm_rf(dir);
}

/* The pid file of a killed tproxy names a process: stopped when it is a wireguard-go, left
 * alone when it is anything else. */
static void test_stale_process(void **state) {
  (void)state;
  _cleanup_free_ char *dir = tu_mkdtemp();
  _cleanup_free_ char *bin = script(dir, "wg-fails", "exit 3");
  _cleanup_free_ char *old = script(dir, "wireguard-go", "while :; do sleep 0.05; done");
  _cleanup_free_ char *other = script(dir, "sleeper", "while :; do sleep 0.05; done");
  _cleanup_free_ char *run = str_printf("%s/run", dir);
  char ifname[16];
  snprintf(ifname, sizeof(ifname), "tpv%d", (int)getpid() % 100000);
  struct tproxy_wgproc_opts o = {
      .ifname = ifname, .sock_dir = dir, .run_dir = run, .address = "10.9.0.1/24", .bin = bin};
  struct tproxy_wgproc *w = NULL;
  char err[512] = "";
  int st;

  pid_t pid = spawn_script(old);
  write_pidfile(dir, ifname, pid);
  assert_int_equal(tproxy_wgproc_start(&o, &w, err, sizeof(err)), -ECHILD);
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);

  pid = spawn_script(other);
  write_pidfile(dir, ifname, pid);
  assert_int_equal(tproxy_wgproc_start(&o, &w, err, sizeof(err)), -ECHILD);
  assert_int_equal(waitpid(pid, &st, WNOHANG), 0); /* still running */
  kill(pid, SIGKILL);
  assert_int_equal(waitpid(pid, &st, 0), pid);

  /* a pid file whose start time does not match (the pid was reused): left alone too */
  pid = spawn_script(old);
  write_pidfile(dir, ifname, pid);
  _cleanup_free_ char *pidfile = str_printf("%s/%s.pid", dir, ifname);
  _cleanup_free_ char *line = str_printf("%d 1\n", (int)pid);
  assert_int_equal(file_write_atomic(pidfile, line, strlen(line), 0600), 0);
  assert_int_equal(tproxy_wgproc_start(&o, &w, err, sizeof(err)), -ECHILD);
  assert_int_equal(waitpid(pid, &st, WNOHANG), 0);
  kill(pid, SIGKILL);
  assert_int_equal(waitpid(pid, &st, 0), pid);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_proc_stat),
      cmocka_unit_test(test_start_fails_clearly),
      cmocka_unit_test(test_stale_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
