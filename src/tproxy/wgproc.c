/* wireguard-go for dev mode: start, find again, supervise, stop. */
#include "tproxy_wgproc.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "tproxy_wg.h"

extern char **environ;

#define POLL_MS 50
#define KILL_WAIT_MS 2000
#define UAPI_TIMEOUT_MS 1000
#define IP_TIMEOUT_MS 5000 /* each `ip` run when addressing the interface */
#define WG_COMM "wireguard-go"

struct tproxy_wgproc {
  char *ifname, *sock, *pidfile, *link, *address, *bin, *sysfs;
  pid_t pid, last_pid; /* pid: the running one, 0 when none */
  unsigned long long starttime;
  int64_t started_s; /* monotonic */
  enum tproxy_wgproc_state state;
  int wait_status;
  unsigned restarts, failures;
  struct event *sigchld, *retry;
  void (*on_up)(void *);
  void *ud;
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* ---------------------------------------------------------------- /proc */

int tproxy_proc_stat(pid_t pid, unsigned long long *ret_starttime, char *ret_state) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  _cleanup_buf_ struct buf b = BUF_INIT(4096);
  int r = file_read_all(path, 4096, &b);
  if (r < 0)
    return r == -ENOENT || r == -ESRCH ? -ENOENT : r;
  if ((r = buf_terminate(&b)) < 0)
    return r;
  /* "pid (comm) S ppid ...": comm may hold anything, so fields start after the last ')'. */
  const char *p = strrchr((const char *)b.data, ')');
  if (!p || p[1] != ' ')
    return -EBADMSG;
  p += 2;
  char state = *p;
  for (int field = 3; field < 22; field++) { /* to field 22, starttime */
    p = strchr(p, ' ');
    if (!p)
      return -EBADMSG;
    p++;
  }
  char *end;
  errno = 0;
  unsigned long long st = strtoull(p, &end, 10);
  if (errno || end == p || (*end != ' ' && *end != '\n' && *end))
    return -EBADMSG;
  if (ret_starttime)
    *ret_starttime = st;
  if (ret_state)
    *ret_state = state;
  return 0;
}

static bool proc_comm_is(pid_t pid, const char *comm) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  if (file_read_all(path, 64, &b) < 0 || buf_terminate(&b) < 0)
    return false;
  size_t n = strlen(comm);
  return b.len >= n && memcmp(b.data, comm, n) == 0 && (b.len == n || b.data[n] == '\n');
}

/* The process pid started at starttime has exited (zombies included: a process that is not
 * our child is reaped by someone else, maybe later). */
static bool proc_gone(pid_t pid, unsigned long long starttime) {
  unsigned long long st;
  char state;
  if (tproxy_proc_stat(pid, &st, &state) < 0)
    return true;
  return st != starttime || state == 'Z' || state == 'X';
}

/* ---------------------------------------------------------------- a left-behind wireguard-go */

static int pidfile_read(const char *path, pid_t *ret_pid, unsigned long long *ret_starttime) {
  _cleanup_buf_ struct buf b = BUF_INIT(128);
  int r = file_read_all(path, 128, &b);
  if (r < 0)
    return r;
  if ((r = buf_terminate(&b)) < 0)
    return r;
  /* "<pid> <starttime>\n", as spawn() writes it */
  char *text = str_strip((char *)b.data), *sp = strchr(text, ' ');
  int32_t pid;
  uint64_t st;
  if (!sp)
    return -EBADMSG;
  *sp = '\0';
  if (str_to_i32(text, &pid) < 0 || pid <= 1 || str_to_u64(sp + 1, &st) < 0)
    return -EBADMSG;
  *ret_pid = pid;
  *ret_starttime = st;
  return 0;
}

static bool wait_gone(pid_t pid, unsigned long long starttime, int timeout_ms) {
  for (int64_t end = mono_ms() + timeout_ms;; sleep_ms(POLL_MS)) {
    if (proc_gone(pid, starttime))
      return true;
    if (mono_ms() >= end)
      return false;
  }
}

/* The wireguard-go a killed tproxy left running, named by the pid file: stopped (bounded). A
 * pid that is no longer that process is left alone. */
static void stale_stop(struct tproxy_wgproc *w) {
  pid_t pid;
  unsigned long long st;
  if (pidfile_read(w->pidfile, &pid, &st) < 0)
    return;
  if (!proc_gone(pid, st) && proc_comm_is(pid, WG_COMM)) {
    log_info("dev mode: stopping wireguard-go (pid %d) left running by an earlier tproxy",
             (int)pid);
    (void)kill(pid, SIGTERM);
    if (!wait_gone(pid, st, WGPROC_STOP_TIMEOUT_MS)) {
      (void)kill(pid, SIGKILL);
      if (!wait_gone(pid, st, KILL_WAIT_MS))
        log_warn("dev mode: wireguard-go (pid %d) did not exit", (int)pid);
    }
  }
  (void)unlink(w->pidfile);
}

/* The link at run_dir points to our socket path. */
static bool link_is_ours(const struct tproxy_wgproc *w) {
  char target[PATH_MAX];
  ssize_t n = readlink(w->link, target, sizeof(target) - 1);
  if (n < 0)
    return false;
  target[n] = 0;
  return str_eq(target, w->sock);
}

static bool iface_exists(const struct tproxy_wgproc *w) {
  return access(w->sysfs, F_OK) == 0;
}

static bool wait_iface_gone(const struct tproxy_wgproc *w, int timeout_ms) {
  for (int64_t end = mono_ms() + timeout_ms;; sleep_ms(POLL_MS)) {
    if (!iface_exists(w))
      return true;
    if (mono_ms() >= end)
      return false;
  }
}

/* ---------------------------------------------------------------- starting */

static void status_text(int st, char *out, size_t len) {
  if (WIFEXITED(st))
    snprintf(out, len, "exited with status %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    snprintf(out, len, "was killed by signal %d", WTERMSIG(st));
  else
    snprintf(out, len, "ended (wait status %d)", st);
}

/* Binds the UAPI socket, links it from run_dir, spawns wireguard-go on it. */
static int spawn(struct tproxy_wgproc *w, char *err, size_t errlen) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(w->sock) >= sizeof(sa.sun_path))
    return str_err(err, errlen, -ENAMETOOLONG, "%s: path too long for a socket", w->sock);
  strcpy(sa.sun_path, w->sock);
  struct stat lst;
  if (lstat(w->link, &lst) == 0 && !S_ISLNK(lst.st_mode))
    return str_err(err, errlen, -EEXIST, "%s exists: another WireGuard interface has that name",
                   w->link);
  (void)unlink(w->sock);
  /* No SOCK_CLOEXEC: it is handed down as fd 3; closed here right after the spawn. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0), r;
  if (fd < 0)
    return str_err(err, errlen, -errno, "socket: %s", strerror(errno));
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
    r = -errno;
    close(fd);
    return str_err(err, errlen, r, "%s: %s", w->sock, strerror(-r));
  }
  (void)chmod(w->sock, 0600);
  (void)unlink(w->link);
  if (symlink(w->sock, w->link) < 0) {
    r = -errno;
    close(fd);
    return str_err(err, errlen, r, "linking %s to %s: %s", w->link, w->sock, strerror(-r));
  }
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = calloc(n + 3, sizeof(*env));
  if (!env) {
    close(fd);
    return -ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!str_startswith(environ[i], "WG_"))
      env[k++] = environ[i];
  char fdenv[] = "WG_UAPI_FD=3", fgenv[] = "WG_PROCESS_FOREGROUND=1";
  env[k++] = fdenv;
  env[k++] = fgenv;
  char *argv[] = {w->bin, "-f", w->ifname, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  if ((r = wg_spawnattr_init(&attr)) < 0) {
    free(env);
    close(fd);
    return str_err(err, errlen, r, "starting %s: %s", w->bin, strerror(-r));
  }
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, 3);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO); /* our stdout: ours */
  pid_t pid;
  r = posix_spawnp(&pid, w->bin, &fa, &attr, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  free(env);
  close(fd);
  if (r != 0)
    return str_err(err, errlen, -r, "starting %s: %s", w->bin, strerror(r));
  w->pid = w->last_pid = pid;
  w->started_s = mono_ms() / 1000;
  w->starttime = 0;
  (void)tproxy_proc_stat(pid, &w->starttime, NULL);
  char line[64];
  int len = snprintf(line, sizeof(line), "%d %llu\n", (int)pid, w->starttime);
  if ((r = file_write_atomic(w->pidfile, line, (size_t)len, 0600)) < 0)
    log_warn("dev mode: writing %s: %s (a restart after a crash will not find wireguard-go)",
             w->pidfile, strerror(-r));
  return 0;
}

/* Bounded wait for the new wireguard-go: alive, its interface there, answering get=1. */
static int wait_ready(struct tproxy_wgproc *w, char *err, size_t errlen) {
  int64_t end = mono_ms() + WGPROC_START_TIMEOUT_MS;
  for (;; sleep_ms(POLL_MS)) {
    int st;
    pid_t r = waitpid(w->pid, &st, WNOHANG);
    if (r == w->pid) {
      char how[64];
      status_text(st, how, sizeof(how));
      w->pid = 0;
      w->wait_status = st;
      (void)unlink(w->pidfile);
      return str_err(err, errlen, -ECHILD, "wireguard-go for %s %s right after starting (see "
                     "its message above)", w->ifname, how);
    }
    if (iface_exists(w)) {
      struct buf b;
      buf_init_secret(&b, WG_UAPI_MAX_RESPONSE); /* get=1 answers with the private key */
      int u = wg_uapi_transact(w->sock, "get=1\n\n", 7, UAPI_TIMEOUT_MS, &b);
      buf_free(&b);
      if (u >= 0)
        return 0;
    }
    if (mono_ms() >= end)
      break;
  }
  (void)kill(w->pid, SIGKILL);
  while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
    ;
  w->pid = 0;
  (void)unlink(w->pidfile);
  return str_err(err, errlen, -ETIMEDOUT, "wireguard-go for %s did not come up within %d ms",
                 w->ifname, WGPROC_START_TIMEOUT_MS);
}

static int launch(struct tproxy_wgproc *w, char *err, size_t errlen) {
  if (!wait_iface_gone(w, WGPROC_STOP_TIMEOUT_MS))
    return str_err(err, errlen, -EEXIST,
                   "network interface %s exists and does not go away (another wireguard-go, or "
                   "another tproxy with this directory?)",
                   w->ifname);
  int r = spawn(w, err, errlen);
  if (r >= 0)
    r = wait_ready(w, err, errlen);
  if (r < 0) {
    if (link_is_ours(w))
      (void)unlink(w->link);
    (void)unlink(w->sock);
    return r;
  }
  char *addr[] = {"ip", "addr", "replace", w->address, "dev", w->ifname, NULL};
  char *up[] = {"ip", "link", "set", w->ifname, "up", NULL};
  if (wg_run_bounded(addr, IP_TIMEOUT_MS) < 0 || wg_run_bounded(up, IP_TIMEOUT_MS) < 0)
    log_warn("dev mode: addressing %s failed; WireGuard peers may not reach tproxy", w->ifname);
  w->state = TPROXY_WGPROC_RUNNING;
  log_info("dev mode: wireguard-go (pid %d) runs %s, control socket %s", (int)w->pid, w->ifname,
           w->sock);
  return 0;
}

static void wgproc_free(struct tproxy_wgproc *w) {
  if (!w)
    return;
  if (w->sigchld)
    event_free(w->sigchld);
  if (w->retry)
    event_free(w->retry);
  free(w->ifname);
  free(w->sock);
  free(w->pidfile);
  free(w->link);
  free(w->address);
  free(w->bin);
  free(w->sysfs);
  free(w);
}

int tproxy_wgproc_start(const struct tproxy_wgproc_opts *o, struct tproxy_wgproc **ret,
                        char *err, size_t errlen) {
  struct tproxy_wgproc *w = calloc(1, sizeof(*w));
  int r = -ENOMEM;
  if (!w)
    return -ENOMEM;
  w->ifname = strdup(o->ifname);
  w->sock = str_printf("%s/%s.sock", o->sock_dir, o->ifname);
  w->pidfile = str_printf("%s/%s.pid", o->sock_dir, o->ifname);
  w->link = str_printf("%s/%s.sock", o->run_dir, o->ifname);
  w->address = strdup(o->address);
  w->bin = strdup(o->bin ? o->bin : WG_COMM);
  w->sysfs = str_printf("/sys/class/net/%s", o->ifname);
  if (!w->ifname || !w->sock || !w->pidfile || !w->link || !w->address || !w->bin || !w->sysfs)
    goto fail;
  if ((r = mkdir_p(o->sock_dir, 0700)) < 0) {
    str_err(err, errlen, r, "creating %s: %s", o->sock_dir, strerror(-r));
    goto fail;
  }
  if ((r = mkdir_p(o->run_dir, 0755)) < 0) {
    str_err(err, errlen, r, "creating %s: %s", o->run_dir, strerror(-r));
    goto fail;
  }
  stale_stop(w);
  /* Without a pid file (it was killed before writing it): a wireguard-go of ours exits once
   * its socket goes away. */
  if (iface_exists(w) && link_is_ours(w)) {
    (void)unlink(w->sock);
    (void)unlink(w->link);
  }
  if ((r = launch(w, err, errlen)) < 0)
    goto fail;
  *ret = w;
  return 0;
fail:
  wgproc_free(w);
  return r;
}

/* ---------------------------------------------------------------- supervision */

static void restart_schedule(struct tproxy_wgproc *w) {
  if (mono_ms() / 1000 - w->started_s >= WGPROC_STABLE_S)
    w->failures = 0;
  if (!w->retry || w->failures >= WGPROC_RESTARTS_MAX) {
    w->state = TPROXY_WGPROC_FAILED;
    if (w->retry)
      log_error("dev mode: wireguard-go for %s failed %u times in a row: not starting it again; "
                "WireGuard stays down",
                w->ifname, w->failures);
    return;
  }
  struct timeval tv = {(time_t)1 << w->failures, 0};
  w->failures++;
  w->state = TPROXY_WGPROC_RESTARTING;
  (void)evtimer_add(w->retry, &tv);
}

bool tproxy_wgproc_reap(struct tproxy_wgproc *w) {
  int st;
  if (!w || w->pid <= 0 || waitpid(w->pid, &st, WNOHANG) != w->pid)
    return false;
  char how[64];
  status_text(st, how, sizeof(how));
  log_error("dev mode: wireguard-go (pid %d) %s: WireGuard interface %s is down", (int)w->pid,
            how, w->ifname);
  w->pid = 0;
  w->wait_status = st;
  (void)unlink(w->pidfile);
  restart_schedule(w);
  return true;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct tproxy_wgproc *w = arg;
  char err[512] = "";
  int r = launch(w, err, sizeof(err));
  if (r < 0) {
    log_error("dev mode: starting wireguard-go again: %s", err[0] ? err : strerror(-r));
    restart_schedule(w);
    return;
  }
  w->restarts++;
  if (w->on_up)
    w->on_up(w->ud);
}

static void sigchld_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  (void)tproxy_wgproc_reap(arg);
}

int tproxy_wgproc_watch(struct tproxy_wgproc *w, struct event_base *base, void (*on_up)(void *),
                        void *ud) {
  if (w->sigchld)
    event_free(w->sigchld);
  if (w->retry)
    event_free(w->retry);
  w->sigchld = w->retry = NULL;
  w->on_up = on_up;
  w->ud = ud;
  if (!base)
    return 0;
  w->sigchld = evsignal_new(base, SIGCHLD, sigchld_cb, w);
  w->retry = evtimer_new(base, retry_cb, w);
  if (!w->sigchld || !w->retry || event_add(w->sigchld, NULL) < 0)
    return -ENOMEM;
  (void)tproxy_wgproc_reap(w); /* it may have ended before the handler was there */
  return 0;
}

bool tproxy_wgproc_running(const struct tproxy_wgproc *w) {
  return w && w->pid > 0 && w->state == TPROXY_WGPROC_RUNNING;
}

void tproxy_wgproc_status(const struct tproxy_wgproc *w, struct tproxy_wgproc_status *ret) {
  memset(ret, 0, sizeof(*ret));
  ret->state = w->state;
  ret->pid = w->pid > 0 ? w->pid : w->last_pid;
  ret->wait_status = w->wait_status;
  ret->restarts = w->restarts;
  char how[64];
  status_text(w->wait_status, how, sizeof(how));
  switch (w->state) {
  case TPROXY_WGPROC_RUNNING:
    snprintf(ret->detail, sizeof(ret->detail), "wireguard-go (pid %d) runs %s", (int)ret->pid,
             w->ifname);
    break;
  case TPROXY_WGPROC_RESTARTING:
    snprintf(ret->detail, sizeof(ret->detail),
             "wireguard-go (pid %d) %s; %s is down, starting it again", (int)ret->pid, how,
             w->ifname);
    break;
  case TPROXY_WGPROC_FAILED:
    snprintf(ret->detail, sizeof(ret->detail),
             "wireguard-go (pid %d) %s; %s is down, not started again", (int)ret->pid, how,
             w->ifname);
    break;
  }
}

void tproxy_wgproc_stop(struct tproxy_wgproc *w) {
  if (!w)
    return;
  if (link_is_ours(w))
    (void)unlink(w->link);
  if (w->pid > 0) {
    (void)kill(w->pid, SIGTERM);
    bool done = false;
    for (int64_t end = mono_ms() + KILL_WAIT_MS;; sleep_ms(POLL_MS)) {
      if ((done = waitpid(w->pid, NULL, WNOHANG) == w->pid) || mono_ms() >= end)
        break;
    }
    if (!done) {
      (void)kill(w->pid, SIGKILL);
      while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
    (void)unlink(w->pidfile);
  }
  wgproc_free(w);
}
