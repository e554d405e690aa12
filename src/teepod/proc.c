/* Spawning, adopting and reaping processes. */
#include "teepod_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/macro.h"
#include "base/str.h"
#include "teepod_qemu.h"

extern char **environ;

static int pidfd_open_(pid_t pid) {
  return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void spawn_attr_defaults(posix_spawnattr_t *a, short extra) {
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(a, &none);
  posix_spawnattr_setsigdefault(a, &all);
  posix_spawnattr_setflags(a, (short)(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | extra));
}

uint64_t teepod_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void) {
  return teepod_mono_ns() / 1000000;
}

int teepod_run_tool(char *const argv[], unsigned timeout_s, char *err, size_t errlen) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return str_err(err, errlen, -errno, "%s: pipe: %s", argv[0], strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  spawn_attr_defaults(&at, 0);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  pid_t pid;
  int r = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(pipefd[1]);
  if (r != 0) {
    close(pipefd[0]);
    return str_err(err, errlen, -r, "cannot run %s: %s", argv[0], strerror(r));
  }
  char out[4096];
  size_t used = 0;
  uint64_t deadline = mono_ms() + (uint64_t)timeout_s * 1000;
  bool timed_out = false;
  for (;;) {
    uint64_t now = mono_ms();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
    int pr = poll(&p, 1, (int)(deadline - now));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0) {
      timed_out = pr == 0;
      break;
    }
    char tmp[1024];
    ssize_t n = read(pipefd[0], tmp, sizeof(tmp));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    /* keep the last bytes (tmp is smaller than out) */
    {
      if (used + (size_t)n > sizeof(out) - 1) {
        size_t drop = used + (size_t)n - (sizeof(out) - 1);
        memmove(out, out + drop, used - drop);
        used -= drop;
      }
      memcpy(out + used, tmp, (size_t)n);
      used += (size_t)n;
    }
  }
  close(pipefd[0]);
  int st = 0;
  if (timed_out)
    kill(pid, SIGKILL);
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return str_err(err, errlen, -ETIMEDOUT, "%s did not finish within %u s", argv[0], timeout_s);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return 0;
  out[used] = 0;
  /* the last non-empty line */
  while (used && (out[used - 1] == '\n' || out[used - 1] == '\r'))
    out[--used] = 0;
  char *last = strrchr(out, '\n');
  last = last ? last + 1 : out;
  if (WIFEXITED(st))
    return str_err(err, errlen, -EIO, "%s failed (exit %d): %.300s", argv[0], WEXITSTATUS(st),
                   last);
  return str_err(err, errlen, -EIO, "%s killed by signal %d", argv[0],
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int teepod_spawn_detached(char *const argv[], const char *dir, pid_t *ret_pid, int *ret_pidfd) {
  _cleanup_free_ char *out = str_printf("%s/qemu.out", dir);
  if (!out)
    return -ENOMEM;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  spawn_attr_defaults(&at, POSIX_SPAWN_SETSID);
  posix_spawn_file_actions_addchdir_np(&fa, dir);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  pid_t pid;
  int r = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (r != 0)
    return -r;
  int fd = pidfd_open_(pid);
  if (fd < 0) {
    r = -errno;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return r;
  }
  *ret_pid = pid;
  *ret_pidfd = fd;
  return 0;
}

int teepod_adopt(const char *dir, pid_t *ret_pid, int *ret_pidfd) {
  _cleanup_free_ char *pf = str_printf("%s/qemu.pid", dir);
  /* the command line holds the folder as QEMU option syntax: commas doubled */
  _cleanup_free_ char *esc = teepod_qemu_escape(dir);
  _cleanup_free_ char *needle = esc ? str_printf("path=%s/serial.log,", esc) : NULL;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  if (!pf || !needle)
    return -ENOMEM;
  int r = file_read_capped(pf, 64, false, &b);
  if (r < 0)
    return r == -ENOENT ? -ESRCH : r;
  if (buf_terminate(&b) < 0)
    return -ENOMEM;
  uint32_t pid;
  char *txt = str_strip((char *)b.data);
  if (str_to_u32(txt, &pid) < 0 || pid < 2)
    return -ESRCH;
  int fd = pidfd_open_((pid_t)pid);
  if (fd < 0)
    return -ESRCH;
  /* the pid is pinned by the pidfd from here: check it is our QEMU */
  char path[64];
  snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
  _cleanup_buf_ struct buf cmd = BUF_INIT(0);
  if (file_read_capped(path, 256 * 1024, false, &cmd) < 0 || cmd.len == 0) {
    close(fd);
    return -ESRCH;
  }
  bool found = false;
  size_t nl = strlen(needle);
  for (size_t i = 0; i + nl <= cmd.len && !found; i++)
    found = memcmp(cmd.data + i, needle, nl) == 0;
  /* and it runs in this VM's folder */
  char cwd_link[64], cwd[4096];
  snprintf(cwd_link, sizeof(cwd_link), "/proc/%u/cwd", pid);
  ssize_t cl = readlink(cwd_link, cwd, sizeof(cwd) - 1);
  _cleanup_free_ char *real = realpath(dir, NULL);
  if (!found || cl <= 0 || !real || (cwd[cl] = 0, !str_eq(cwd, real))) {
    close(fd);
    return -ESRCH;
  }
  *ret_pid = (pid_t)pid;
  *ret_pidfd = fd;
  return 0;
}

void teepod_reap(pid_t pid, int *ret_status) {
  int st = 0;
  pid_t r;
  while ((r = waitpid(pid, &st, WNOHANG)) < 0 && errno == EINTR) {
  }
  *ret_status = r == pid ? st : -1;
}

int teepod_unix_connect(const char *dir, const char *name, int *ret_fd) {
  int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -errno;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, name);
  if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
    close(dfd);
    return -ENAMETOOLONG;
  }
  /* non-blocking connect: a QEMU whose one-slot backlog is full answers EAGAIN at once
   * instead of holding the loop */
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    int r = -errno;
    close(dfd);
    return r;
  }
  int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
  close(dfd);
  if (r < 0) {
    close(fd);
    return r;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    r = -errno;
    close(fd);
    return r;
  }
  *ret_fd = fd;
  return 0;
}

int teepod_proc_cid(pid_t pid, uint32_t *ret) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
  _cleanup_buf_ struct buf cmd = BUF_INIT(0);
  int r = file_read_capped(path, 256 * 1024, false, &cmd);
  if (r < 0)
    return r;
  static const char key[] = "guest-cid=";
  for (size_t i = 0; i + sizeof(key) - 1 < cmd.len; i++) {
    if (memcmp(cmd.data + i, key, sizeof(key) - 1) != 0)
      continue;
    uint64_t v = 0;
    size_t k = i + sizeof(key) - 1, digits = 0;
    while (k < cmd.len && cmd.data[k] >= '0' && cmd.data[k] <= '9' && digits < 10) {
      v = v * 10 + (uint64_t)(cmd.data[k++] - '0');
      digits++;
    }
    if (digits == 0 || v > UINT32_MAX)
      return -EBADMSG;
    *ret = (uint32_t)v;
    return 0;
  }
  return -ENOENT;
}
