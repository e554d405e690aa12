/* How many connections tproxy can hold with the descriptors RLIMIT_NOFILE gives it.
 *
 * A proxied connection needs up to TPROXY_FDS_PER_CONN descriptors (passthrough: client,
 * backend and two splice pipes; a terminated one needs two, counted as six all the same). The
 * rest of the process needs some too, and must keep getting them when the proxy is full: a
 * fixed reserve (stdio, the log, the SQLite store and its journal files, the event loops, the
 * listeners, WireGuard control sockets and `wg` runs, the resolver's sockets, PCCS fetches)
 * plus one per RPC connection, plus the proxy's idle pipe pool.
 *
 * The plan splits the limit in that order: the fixed reserve, the RPC server (at most a quarter
 * of what is left after the reserve), the pipe pool (at most 1/16 of what is then left), the
 * proxy connections (the rest, divided by TPROXY_FDS_PER_CONN). A configured max_conns that does
 * not fit is lowered to what fits (the caller warns); a limit too small to leave the proxy and
 * the RPC server TPROXY_FD_MIN_CONNS connections each is refused (-EMFILE). */
#pragma once

#include <stdint.h>

#define TPROXY_FDS_PER_CONN 6
#define TPROXY_FD_RESERVE 64   /* fixed */
#define TPROXY_FD_PER_WORKER 8 /* event loop, wakeup pipe and eventfd, listener, resolver */
#define TPROXY_FD_MIN_CONNS 4
#define TPROXY_PIPE_POOL_MAX 256 /* idle pipes a worker keeps at most */

struct tproxy_fd_plan {
  uint64_t nofile;      /* the RLIMIT_NOFILE soft limit planned for */
  unsigned reserve;     /* fixed + per-worker descriptors */
  unsigned rpc_conns;   /* RPC server connections: min(wanted, what fits) */
  unsigned pipe_pool;   /* idle pipes kept per worker */
  unsigned proxy_conns; /* proxy connections: min(wanted, what fits) */
  unsigned proxy_fit;   /* proxy connections that would fit (>= proxy_conns) */
};

/* 0, or -EMFILE when nofile is too small (ret still describes the shortfall: reserve). */
int tproxy_fdlimit_plan(uint64_t nofile, unsigned workers, unsigned rpc_want, unsigned proxy_want,
                        struct tproxy_fd_plan *ret);
/* Raises the RLIMIT_NOFILE soft limit to the hard limit (best effort) and returns the soft
 * limit in effect. */
int tproxy_fdlimit_raise(uint64_t *ret_nofile);
