/* Running the tools tboot needs. tboot is PID 1, so a child is waited for by its own pid:
 * the final reaping loop (pid1.c) collects everything else. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"
#include "tboot.h"

extern char **environ;

uint64_t tboot_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* In the child: stdin from in_fd (or /dev/null), stdout/stderr to out_fd (or inherited), then
 * exec. Only async-signal-safe calls. */
static _Noreturn void child_exec(const char *const *argv, const char *const *envp, const char *cwd,
                                 int in_fd, int out_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  if (in_fd < 0)
    in_fd = open("/dev/null", O_RDONLY);
  if (in_fd >= 0 && in_fd != STDIN_FILENO) {
    dup2(in_fd, STDIN_FILENO);
    close(in_fd);
  }
  if (out_fd >= 0) {
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    if (out_fd > STDERR_FILENO)
      close(out_fd);
  }
  if (chdir(cwd ? cwd : "/") < 0)
    _exit(126);
  execve(argv[0], (char *const *)argv, (char *const *)(envp ? envp : (const char *const *)environ));
  _exit(127);
}

static int wait_pid(pid_t pid, int *status, int timeout_ms) {
  uint64_t end = tboot_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid)
      return 0;
    if (w < 0 && errno != EINTR)
      return -errno;
    if (tboot_now_ms() >= end)
      return -ETIMEDOUT;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

void tboot_cmd_stop(pid_t pid, int timeout_ms) {
  int st;
  if (pid <= 0)
    return;
  if (wait_pid(pid, &st, timeout_ms) == 0)
    return;
  kill(pid, SIGTERM);
  if (wait_pid(pid, &st, 5000) == 0)
    return;
  kill(pid, SIGKILL);
  (void)wait_pid(pid, &st, 5000);
}

int tboot_cmd_spawn(const char *const *argv, const char *const *envp, const char *cwd,
                    pid_t *ret_pid) {
  pid_t pid = fork();
  if (pid < 0)
    return log_debug_errno(-errno, "fork");
  if (pid == 0)
    child_exec(argv, envp, cwd, -1, -1);
  *ret_pid = pid;
  return 0;
}

int tboot_cmd_run(const struct tboot_cmd *c, int *ret_status) {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  int r = 0;
  int timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 60000;
  if ((c->input && pipe2(in, O_CLOEXEC) < 0) || (c->output && pipe2(out, O_CLOEXEC) < 0)) {
    r = -errno;
    goto out;
  }
  pid_t pid = fork();
  if (pid < 0) {
    r = -errno;
    goto out;
  }
  if (pid == 0)
    child_exec(c->argv, c->envp, c->cwd, in[0], out[1]);
  if (in[0] >= 0) {
    close(in[0]);
    in[0] = -1;
    fcntl(in[1], F_SETFL, O_NONBLOCK);
  }
  if (out[1] >= 0) {
    close(out[1]);
    out[1] = -1;
  }
  size_t sent = 0;
  uint64_t end = tboot_now_ms() + (uint64_t)timeout_ms;
  bool overflow = false;
  while (in[1] >= 0 || out[0] >= 0) {
    struct pollfd p[2];
    int n = 0;
    if (in[1] >= 0)
      p[n++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
    if (out[0] >= 0)
      p[n++] = (struct pollfd){.fd = out[0], .events = POLLIN};
    uint64_t now = tboot_now_ms();
    if (now >= end)
      break;
    int k = poll(p, (nfds_t)n, (int)MIN(end - now, (uint64_t)1000));
    if (k < 0 && errno != EINTR)
      break;
    for (int i = 0; i < n && k > 0; i++) {
      if (!p[i].revents)
        continue;
      if (p[i].fd == in[1]) {
        ssize_t w = write(in[1], (const uint8_t *)c->input + sent, c->input_len - sent);
        if (w > 0)
          sent += (size_t)w;
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == c->input_len) {
          close(in[1]);
          in[1] = -1;
        }
      } else {
        uint8_t chunk[4096];
        ssize_t got = read(out[0], chunk, sizeof(chunk));
        if (got > 0) {
          if (!overflow && buf_append(c->output, chunk, (size_t)got) < 0)
            overflow = true; /* keep draining: the child must not block on a full pipe */
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          close(out[0]);
          out[0] = -1;
        }
      }
    }
  }
  uint64_t now = tboot_now_ms();
  int st = 0;
  r = wait_pid(pid, &st, now < end ? (int)(end - now) : 0);
  if (r == -ETIMEDOUT) {
    kill(pid, SIGKILL);
    (void)wait_pid(pid, &st, 5000);
    log_debug("%s: killed after %d ms", c->argv[0], timeout_ms);
    goto out;
  }
  if (r < 0)
    goto out;
  if (ret_status)
    *ret_status = st;
  r = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
out:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (out[i] >= 0)
      close(out[i]);
  }
  return r;
}
