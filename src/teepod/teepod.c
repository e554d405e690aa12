/* teepod's state: host facts, tools, tokens, and the VMs of run_path. */
#include "teepod.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/sim.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "teepod_hostch.h"

/* The executable for name: an absolute path as is, else the first PATH entry that has it. */
static char *find_exe(const char *name) {
  if (strchr(name, '/'))
    return access(name, X_OK) == 0 ? strdup(name) : NULL;
  const char *path = getenv("PATH");
  _cleanup_strv_free_ char **dirs = NULL;
  if (str_split(path && *path ? path : "/usr/local/bin:/usr/bin:/bin", ":", true, &dirs) < 0)
    return NULL;
  for (char **d = dirs; d && *d; d++) {
    char *p = str_printf("%s/%s", *d, name);
    if (p && access(p, X_OK) == 0)
      return p;
    free(p);
  }
  return NULL;
}

static bool host_has_tdx(void) {
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  if (file_read_capped("/sys/module/kvm_intel/parameters/tdx", 16, false, &b) < 0 || !b.len)
    return false;
  return b.data[0] == 'Y' || b.data[0] == 'y' || b.data[0] == '1';
}

static int load_tokens(struct teepod *tp, char *err, size_t errlen) {
  const char *path = tp->cfg->auth_token_file;
  struct stat st;
  if (stat(path, &st) < 0)
    return str_err(err, errlen, -errno, "[auth] token_file %s: %s", path, strerror(errno));
  if (st.st_mode & 0077)
    return str_err(err, errlen, -EPERM,
                   "[auth] token_file %s is readable by others (mode %03o); chmod 600 it", path,
                   (unsigned)(st.st_mode & 0777));
  _cleanup_buf_ struct buf b;
  int r = file_read_capped(path, 64 * 1024, true, &b);
  if (r < 0 || (r = buf_terminate(&b)) < 0)
    return str_err(err, errlen, r, "[auth] reading %s: %s", path, strerror(-r));
  _cleanup_strv_free_ char **lines = NULL;
  if ((r = str_split((const char *)b.data, "\n", true, &lines)) < 0)
    return r;
  for (char **l = lines; l && *l; l++) {
    char *t = str_strip(*l);
    if (!*t || *t == '#')
      continue;
    if (strlen(t) < 16)
      return str_err(err, errlen, -EINVAL, "[auth] %s: tokens must be at least 16 characters",
                     path);
    if ((r = strv_push_dup(&tp->tokens, t)) < 0)
      return r;
  }
  if (!tp->tokens)
    return str_err(err, errlen, -EINVAL, "[auth] %s holds no token", path);
  for (char **l = lines; l && *l; l++)
    explicit_bzero(*l, strlen(*l));
  return 0;
}

static void rotate_cb(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  teepod_logs_rotate(ud);
}

/* What teepod_new and teepod_check share: tools, platform, host facts, tokens. */
static int setup(struct teepod *tp, char *err, size_t errlen) {
  struct teepod_config *cfg = tp->cfg;
  int r;
  const char *qemu = str_isempty(cfg->qemu_path) ? "qemu-system-x86_64" : cfg->qemu_path;
  const char *qimg = str_isempty(cfg->qemu_img_path) ? "qemu-img" : cfg->qemu_img_path;
  if (!(tp->qemu = find_exe(qemu))) {
    r = str_err(err, errlen, -ENOENT, "qemu_path: %s not found (install qemu-system-x86)", qemu);
    goto fail;
  }
  if (!(tp->qemu_img = find_exe(qimg))) {
    r = str_err(err, errlen, -ENOENT, "qemu_img_path: %s not found (install qemu-utils)", qimg);
    goto fail;
  }
  bool tdx = str_eq(cfg->platform, "tdx") || (str_eq(cfg->platform, "auto") && host_has_tdx());
  if (tdx) {
    tp->backend = TEEPOD_BACKEND_TDX;
  } else {
    if (str_eq(cfg->platform, "auto") && str_isempty(cfg->sim_dir)) {
      r = str_err(err, errlen, -ENODEV,
                  "this host has no TDX: set platform = \"sim\" and sim_dir to run simulated "
                  "TDX VMs");
      goto fail;
    }
    tp->sim = true;
    if ((r = sim_platform_check(cfg->sim_dir)) < 0) {
      r = str_err(err, errlen, r, "sim_dir %s is not a simulated platform (tdxctl sim init %s)",
                  cfg->sim_dir, cfg->sim_dir);
      goto fail;
    }
    tp->backend = str_eq(cfg->accel, "kvm") ? TEEPOD_BACKEND_KVM : TEEPOD_BACKEND_TCG;
  }
  tp->have_vsock = access("/dev/vhost-vsock", R_OK | W_OK) == 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  tp->host_cpus = cpus > 0 ? (uint32_t)cpus : 1;
  tp->host_memory_mb = pages > 0 && psize > 0 ? (uint32_t)((uint64_t)pages * psize >> 20) : 1024;
  if (cfg->auth_enabled && (r = load_tokens(tp, err, errlen)) < 0)
    goto fail;
  return 0;
fail:
  return r;
}

int teepod_check(struct teepod_config *cfg, size_t *ret_n_vms, const char **ret_backend,
                 char **ret_qemu, bool *ret_sim, char *err, size_t errlen) {
  struct teepod tp = {.cfg = cfg, .lock_fd = -1};
  int r = setup(&tp, err, errlen);
  size_t n = 0;
  if (r >= 0) {
    DIR *d = opendir(cfg->run_path);
    struct dirent *e;
    while (d && (e = readdir(d)))
      n += teepod_id_valid(e->d_name);
    if (d)
      closedir(d);
    *ret_n_vms = n;
    *ret_backend = teepod_backend_name(tp.backend);
    *ret_sim = tp.sim;
    *ret_qemu = tp.qemu;
    tp.qemu = NULL;
  }
  strv_free(tp.tokens);
  free(tp.qemu);
  free(tp.qemu_img);
  return r;
}

int teepod_new(struct teepod_config *cfg, struct event_base *base, struct teepod **ret, char *err,
               size_t errlen) {
  struct teepod *tp = calloc(1, sizeof(*tp));
  _cleanup_free_ char *lock = NULL;
  int r;
  if (!tp)
    return -ENOMEM;
  tp->cfg = cfg;
  tp->base = base;
  tp->lock_fd = -1;
  if ((r = setup(tp, err, errlen)) < 0)
    goto fail;
  if ((r = mkdir_p(cfg->run_path, 0700)) < 0) {
    r = str_err(err, errlen, r, "creating run_path %s: %s", cfg->run_path, strerror(-r));
    goto fail;
  }
  if (!(lock = str_printf("%s/.lock", cfg->run_path))) {
    r = -ENOMEM;
    goto fail;
  }
  tp->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (tp->lock_fd < 0 || flock(tp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
    r = -errno;
    r = str_err(err, errlen, r == -EWOULDBLOCK ? -EBUSY : r, "%s: %s", lock,
                r == -EWOULDBLOCK ? "another teepod uses this run_path" : strerror(-r));
    goto fail;
  }
  if ((r = teepod_cidpool_init(&tp->cids, cfg->cid_start, cfg->cid_pool_size)) < 0)
    goto fail;
  tp->cids.in_use_elsewhere = teepod_cid_used_by_other_qemu;
  if (!(tp->log_timer = event_new(base, -1, EV_PERSIST, rotate_cb, tp))) {
    r = -ENOMEM;
    goto fail;
  }
  struct timeval tv = {5, 0};
  event_add(tp->log_timer, &tv);
  if (tp->have_vsock && (r = teepod_vsock_listen(tp, &tp->vsock)) < 0) {
    r = str_err(err, errlen, r, "listening on vsock port %d: %s", TEEPOD_VSOCK_PORT,
                strerror(-r));
    goto fail;
  }
  DIR *d = opendir(cfg->run_path);
  if (!d) {
    r = str_err(err, errlen, -errno, "reading run_path %s: %s", cfg->run_path, strerror(errno));
    goto fail;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (teepod_id_valid(e->d_name)) {
      teepod_vm_load_dir(tp, e->d_name);
    } else if (str_startswith(e->d_name, ".trash-") && teepod_id_valid(e->d_name + 7)) {
      _cleanup_free_ char *p = str_printf("%s/%s", cfg->run_path, e->d_name);
      if (p && teepod_rm_rf(p) < 0)
        log_warn("removing %s: %s", p, strerror(errno));
    }
  }
  closedir(d);
  *ret = tp;
  return 0;
fail:
  teepod_free(tp);
  return r;
}

void teepod_free(struct teepod *tp) {
  if (!tp)
    return;
  for (size_t i = 0; i < tp->n_vms; i++)
    teepod_vm_free(tp->vms[i]);
  free(tp->vms);
  if (tp->log_timer)
    event_free(tp->log_timer);
  teepod_vsock_free(tp->vsock);
  teepod_cidpool_free(&tp->cids);
  if (tp->tokens)
    for (char **t = tp->tokens; *t; t++)
      explicit_bzero(*t, strlen(*t));
  strv_free(tp->tokens);
  free(tp->qemu);
  free(tp->qemu_img);
  if (tp->lock_fd >= 0)
    close(tp->lock_fd);
  free(tp);
}
