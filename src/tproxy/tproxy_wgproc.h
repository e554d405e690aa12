/* The wireguard-go process dev mode runs for its interface: started, found again after tproxy
 * was killed, supervised, stopped.
 *
 * wireguard-go gets its UAPI listening socket from tproxy (WG_UAPI_FD, bound at
 * <sock_dir>/<ifname>.sock) and watches its usual path <run_dir>/<ifname>.sock, a symlink to
 * ours (it exits when that goes away, and removes it when it exits). tproxy writes
 * <sock_dir>/<ifname>.pid ("PID STARTTIME", the start time from /proc/PID/stat) once it runs.
 *
 * Start: a wireguard-go left behind by a tproxy that was killed (the pid file names it, and it
 * still is that process: same start time, comm "wireguard-go") is asked to stop (SIGTERM, then
 * SIGKILL), and the interface must be gone before a new one is made, all bounded; an
 * interface of that name that stays is an error. The new wireguard-go counts as started once
 * it is alive, its interface exists and it answers a UAPI get=1; then the interface gets its
 * address and is brought up.
 *
 * Supervision (tproxy_wgproc_watch): SIGCHLD reaps it; when it has exited, the state says so,
 * it is started again after 1, 2, 4, 8, 16 s, and after WGPROC_RESTARTS_MAX failed restarts in
 * a row it stays down (TPROXY_WGPROC_FAILED). on_up runs after every successful restart (the
 * caller configures the peers again). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct event_base;

#define WGPROC_START_TIMEOUT_MS 5000
#define WGPROC_STOP_TIMEOUT_MS 5000
#define WGPROC_RESTARTS_MAX 5
#define WGPROC_STABLE_S 60 /* running this long resets the count of restarts */

struct tproxy_wgproc_opts {
  const char *ifname;
  const char *sock_dir; /* <ifname>.sock and <ifname>.pid */
  const char *run_dir;  /* where wireguard-go looks for its socket (/run/wireguard) */
  const char *address;  /* "a.b.c.d/n" for the interface */
  const char *bin;      /* NULL = "wireguard-go" from PATH */
};

enum tproxy_wgproc_state {
  TPROXY_WGPROC_RUNNING,
  TPROXY_WGPROC_RESTARTING, /* exited; started again soon */
  TPROXY_WGPROC_FAILED,     /* exited; not started again */
};

struct tproxy_wgproc_status {
  enum tproxy_wgproc_state state;
  pid_t pid;          /* the running one, or the last one */
  int wait_status;    /* of the last exit (waitpid) */
  unsigned restarts;  /* successful restarts so far */
  char detail[256];   /* one line for /health and the dashboard */
};

struct tproxy_wgproc;

/* Errors (with a message in err): -EEXIST when the interface name is taken by something that
 * does not go away, -ETIMEDOUT / -ECHILD when wireguard-go does not come up or exits. */
int tproxy_wgproc_start(const struct tproxy_wgproc_opts *o, struct tproxy_wgproc **ret,
                        char *err, size_t errlen);
/* Reaps and restarts from base's loop (see above). */
int tproxy_wgproc_watch(struct tproxy_wgproc *w, struct event_base *base, void (*on_up)(void *),
                        void *ud);
/* Reaps wireguard-go if it exited (never blocks): true when it just did. Called on SIGCHLD. */
bool tproxy_wgproc_reap(struct tproxy_wgproc *w);
bool tproxy_wgproc_running(const struct tproxy_wgproc *w);
void tproxy_wgproc_status(const struct tproxy_wgproc *w, struct tproxy_wgproc_status *ret);
/* Stops wireguard-go (SIGTERM, bounded wait, SIGKILL), removes the link and the pid file, frees.
 * NULL is fine. */
void tproxy_wgproc_stop(struct tproxy_wgproc *w);

/* /proc helpers (exposed for tests): the start time (field 22 of /proc/PID/stat) and state
 * letter of pid; -ENOENT when there is no such process. */
int tproxy_proc_stat(pid_t pid, unsigned long long *ret_starttime, char *ret_state);
