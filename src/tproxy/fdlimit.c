/* Connection caps from RLIMIT_NOFILE. */
#include "tproxy_fdlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "base/macro.h"

int tproxy_fdlimit_plan(uint64_t nofile, unsigned workers, unsigned rpc_want, unsigned proxy_want,
                        struct tproxy_fd_plan *ret) {
  memset(ret, 0, sizeof(*ret));
  ret->nofile = nofile;
  workers = MAX(workers, 1u);
  uint64_t reserve = TPROXY_FD_RESERVE + (uint64_t)workers * TPROXY_FD_PER_WORKER;
  ret->reserve = (unsigned)MIN(reserve, (uint64_t)UINT32_MAX);
  uint64_t min_need = reserve + TPROXY_FD_MIN_CONNS + TPROXY_FD_MIN_CONNS * TPROXY_FDS_PER_CONN;
  if (nofile < min_need)
    return -EMFILE;
  uint64_t left = nofile - reserve;
  uint64_t rpc = MIN((uint64_t)rpc_want, MAX(left / 4, (uint64_t)TPROXY_FD_MIN_CONNS));
  left -= rpc;
  /* A few idle pipes save two syscalls per passthrough connection; they must not crowd out
   * the connections themselves. */
  uint64_t pool = MIN(left / 16 / 2 / workers, (uint64_t)TPROXY_PIPE_POOL_MAX);
  left -= pool * 2 * workers;
  uint64_t fit = left / TPROXY_FDS_PER_CONN;
  if (fit < TPROXY_FD_MIN_CONNS)
    return -EMFILE;
  ret->rpc_conns = (unsigned)rpc;
  ret->pipe_pool = (unsigned)pool;
  ret->proxy_fit = (unsigned)MIN(fit, (uint64_t)UINT32_MAX);
  ret->proxy_conns = MIN(proxy_want, ret->proxy_fit);
  return 0;
}

int tproxy_fdlimit_raise(uint64_t *ret_nofile) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return -errno;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
      rl.rlim_cur = rl.rlim_max;
  }
  *ret_nofile = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
  return 0;
}
