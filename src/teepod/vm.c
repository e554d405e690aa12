/* A VM's lifecycle: start (disk, config disk, QEMU), watch the exit, stop, graceful shutdown,
 * automatic restart with back-off, removal. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/app_compose.h"
#include "attest/image_meta.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "teepod.h"
#include "teepod_cfgdisk.h"
#include "teepod_hostch.h"
#include "teepod_proc.h"
#include "teepod_qmp.h"
#include "teepod_sim.h"

uint64_t teepod_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool teepod_vm_running(const struct teepod_vm *vm) {
  return vm->pid > 0;
}

const char *teepod_vm_status(const struct teepod_vm *vm) {
  bool running = teepod_vm_running(vm);
  if (running && vm->shutting_down)
    return "shutting down";
  if (running)
    return vm->started ? "running" : "stopping";
  return vm->started ? "exited" : "stopped";
}

static void set_str(char **dst, const char *v) {
  free(*dst);
  *dst = v ? strdup(v) : NULL;
}

void teepod_vm_event_add(struct teepod_vm *vm, const char *event, const char *body) {
  size_t slot;
  if (vm->n_events < TEEPOD_EVENTS_KEPT) {
    slot = (vm->events_head + vm->n_events) % TEEPOD_EVENTS_KEPT;
    vm->n_events++;
  } else {
    slot = vm->events_head;
    vm->events_head = (vm->events_head + 1) % TEEPOD_EVENTS_KEPT;
    free(vm->events[slot].event);
    free(vm->events[slot].body);
  }
  vm->events[slot].event = strdup(event);
  vm->events[slot].body = strdup(body ? body : "");
  vm->events[slot].timestamp_ms = teepod_now_ms();
}

struct teepod_vm *teepod_vm_new(struct teepod *tp, const char *dir, struct teepod_manifest *m) {
  struct teepod_vm *vm = calloc(1, sizeof(*vm));
  if (!vm || !(vm->dir = strdup(dir))) {
    free(vm);
    return NULL;
  }
  vm->tp = tp;
  vm->m = *m;
  memset(m, 0, sizeof(*m));
  vm->pidfd = -1;
  vm->exit_status = -1;
  return vm;
}

static void vm_detach(struct teepod_vm *vm) {
  teepod_hostch_free(vm->ch);
  vm->ch = NULL;
  if (vm->ch_retry) {
    event_free(vm->ch_retry);
    vm->ch_retry = NULL;
  }
  if (vm->exit_ev) {
    event_free(vm->exit_ev);
    vm->exit_ev = NULL;
  }
  if (vm->pidfd >= 0)
    close(vm->pidfd);
  vm->pidfd = -1;
  if (vm->shutdown_timer) {
    event_free(vm->shutdown_timer);
    vm->shutdown_timer = NULL;
  }
}

void teepod_vm_free(struct teepod_vm *vm) {
  if (!vm)
    return;
  vm_detach(vm);
  if (vm->restart_timer)
    event_free(vm->restart_timer);
  for (size_t i = 0; i < TEEPOD_EVENTS_KEPT; i++) {
    free(vm->events[i].event);
    free(vm->events[i].body);
  }
  teepod_sim_vm_free(vm);
  free(vm->boot_progress);
  free(vm->boot_error);
  free(vm->shutdown_progress);
  free(vm->instance_id);
  free(vm->argv_text);
  free(vm->image_version);
  free(vm->last_error);
  teepod_manifest_free(&vm->m);
  free(vm->dir);
  free(vm);
}

/* SIGKILL through the pidfd: an adopted QEMU is not our child, and its pid could be reused
 * once it is gone; the pidfd names exactly that process. */
static int vm_kill(struct teepod_vm *vm) {
  if (vm->pidfd < 0)
    return -ESRCH; /* no process we can name safely */
  if (syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0) == 0)
    return 0;
  return errno == ESRCH ? 0 : -errno;
}

static void on_exit_ev(evutil_socket_t fd, short what, void *ud);
static void ch_connect_cb(evutil_socket_t fd, short what, void *ud);

static int watch(struct teepod_vm *vm) {
  vm->exit_ev = event_new(vm->tp->base, vm->pidfd, EV_READ, on_exit_ev, vm);
  vm->ch_retry = evtimer_new(vm->tp->base, ch_connect_cb, vm);
  if (!vm->exit_ev || !vm->ch_retry || event_add(vm->exit_ev, NULL) < 0)
    return -ENOMEM;
  vm->ch_attempts = 0;
  struct timeval tv = {0, 20 * 1000};
  evtimer_add(vm->ch_retry, &tv);
  return 0;
}

/* The host channel: QEMU listens on DIR/host.sock once it runs; retried for 10 s. */
static void ch_connect_cb(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  struct teepod_vm *vm = ud;
  if (vm->ch || !teepod_vm_running(vm))
    return;
  int r = teepod_hostch_open(vm, &vm->ch);
  if (r >= 0)
    return;
  if (++vm->ch_attempts >= 200) {
    log_warn("vm %s: no host channel: %s", vm->m.id, strerror(-r));
    return;
  }
  struct timeval tv = {0, 50 * 1000};
  evtimer_add(vm->ch_retry, &tv);
}

void teepod_vm_channel_lost(struct teepod_vm *vm) {
  if (!teepod_vm_running(vm) || !vm->ch_retry)
    return;
  vm->ch_attempts = 0;
  struct timeval tv = {1, 0};
  evtimer_add(vm->ch_retry, &tv);
}

static void restart_cb(evutil_socket_t fd, short what, void *ud);

static void schedule_restart(struct teepod_vm *vm) {
  const struct teepod_config *c = vm->tp->cfg;
  if (!c->ar_enabled || !vm->started)
    return;
  if (vm->restarts >= c->ar_max_retries) {
    log_warn("vm %s (%s): exited %u times in a row; not restarting it again (StartVm does)",
             vm->m.id, vm->m.name, vm->restarts);
    vm->started = false;
    teepod_state_save(vm->dir, false);
    _cleanup_free_ char *msg = str_printf("automatic restarts given up after %u tries%s%s",
                                          vm->restarts, vm->last_error ? "; last: " : "",
                                          vm->last_error ? vm->last_error : "");
    set_str(&vm->last_error, msg ? msg : "automatic restarts given up");
    return;
  }
  uint64_t delay = c->ar_interval;
  for (unsigned i = 0; i < vm->restarts && delay < c->ar_max_backoff; i++)
    delay *= 2;
  if (delay > c->ar_max_backoff)
    delay = c->ar_max_backoff;
  if (!vm->restart_timer && !(vm->restart_timer = evtimer_new(vm->tp->base, restart_cb, vm)))
    return;
  struct timeval tv = {(time_t)delay, 0};
  evtimer_add(vm->restart_timer, &tv);
  log_info("vm %s (%s): restarting in %llu s (attempt %u of %u)", vm->m.id, vm->m.name,
           (unsigned long long)delay, vm->restarts + 1, c->ar_max_retries);
}

static void restart_cb(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  struct teepod_vm *vm = ud;
  if (!vm->started || teepod_vm_running(vm))
    return;
  char err[512] = "";
  vm->restarts++;
  vm->tp->metrics.vm_restarts++;
  if (teepod_vm_start(vm, err, sizeof(err)) < 0) {
    log_error("vm %s (%s): restart failed: %s", vm->m.id, vm->m.name, err);
    schedule_restart(vm);
  }
}

static void vm_exited(struct teepod_vm *vm) {
  int st = -1;
  teepod_reap(vm->pid, &st);
  vm->exit_status = st;
  vm->exited_at_ms = teepod_now_ms();
  bool crash = vm->started && !vm->shutting_down;
  if (st >= 0 && WIFSIGNALED(st))
    log_info("vm %s (%s): QEMU %d killed by signal %d", vm->m.id, vm->m.name, (int)vm->pid,
             WTERMSIG(st));
  else
    log_info("vm %s (%s): QEMU %d exited (status %d)", vm->m.id, vm->m.name, (int)vm->pid,
             st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  vm->pid = 0;
  vm->shutting_down = false;
  vm_detach(vm);
  if (crash && st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0) {
    /* QEMU refused to run (a bad option, a missing file): its last words say why */
    _cleanup_free_ char *out = str_printf("%s/qemu.out", vm->dir);
    _cleanup_buf_ struct buf b = BUF_INIT(0);
    if (out && file_read_capped(out, 1024 * 1024, false, &b) == 0 && buf_terminate(&b) == 0) {
      char *t = str_strip((char *)b.data), *nl = strrchr(t, '\n');
      char *last = nl ? nl + 1 : t;
      if (strlen(last) > 300)
        last[300] = 0;
      _cleanup_free_ char *clean = NULL;
      size_t cl;
      if (str_utf8_sanitize(last, strlen(last), &clean, &cl) < 0)
        clean = NULL;
      _cleanup_free_ char *msg = str_printf("QEMU exited with status %d: %s", WEXITSTATUS(st),
                                            clean ? clean : "?");
      if (msg)
        set_str(&vm->last_error, msg);
    }
  }
  teepod_cidpool_release(&vm->tp->cids, vm->cid);
  vm->cid = 0;
  vm->tp->metrics.vm_exits++;
  _cleanup_free_ char *pf = str_printf("%s/qemu.pid", vm->dir);
  if (pf)
    unlink(pf);
  if (crash) {
    /* a VM that ran for a while before it died starts a new back-off series */
    if (vm->exited_at_ms - vm->started_at_ms > 10ull * 60 * 1000)
      vm->restarts = 0;
    schedule_restart(vm);
  }
}

static void on_exit_ev(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  vm_exited(ud);
}

static int ensure_disk(struct teepod_vm *vm, const struct image_meta *img, char *err,
                       size_t errlen) {
  _cleanup_free_ char *hda = str_printf("%s/hda.img", vm->dir);
  if (!hda)
    return -ENOMEM;
  if (access(hda, F_OK) == 0)
    return 0;
  char size[32];
  snprintf(size, sizeof(size), "%uG", vm->m.disk_size);
  _cleanup_free_ char *tmp = str_printf("%s/.hda.img.tmp", vm->dir);
  _cleanup_free_ char *hda_esc = img->hda ? teepod_qemu_escape(img->hda) : NULL;
  _cleanup_free_ char *backing =
      hda_esc ? str_printf("backing_file=%s,backing_fmt=qcow2", hda_esc) : NULL;
  if (!tmp || (img->hda && !backing))
    return img->hda && !hda_esc ? -EINVAL : -ENOMEM;
  unlink(tmp);
  char *argv[10];
  size_t n = 0;
  argv[n++] = vm->tp->qemu_img;
  argv[n++] = "create";
  argv[n++] = "-q";
  argv[n++] = "-f";
  argv[n++] = "qcow2";
  if (backing) {
    argv[n++] = "-o";
    argv[n++] = backing;
  }
  argv[n++] = tmp;
  argv[n++] = size;
  argv[n] = NULL;
  int r = teepod_run_tool(argv, 60, err, errlen);
  if (r < 0) {
    unlink(tmp);
    return r;
  }
  if (chmod(tmp, 0600) < 0 || rename(tmp, hda) < 0) {
    r = -errno;
    unlink(tmp);
    return str_err(err, errlen, r, "creating %s: %s", hda, strerror(-r));
  }
  return 0;
}

int teepod_vm_start(struct teepod_vm *vm, char *err, size_t errlen) {
  struct teepod *tp = vm->tp;
  int r;
  if (teepod_vm_running(vm))
    return str_err(err, errlen, -EBUSY, "VM is already running");
  if (vm->restart_timer)
    evtimer_del(vm->restart_timer);
  _cleanup_free_ char *img_dir = str_printf("%s/%s", tp->cfg->image_path, vm->m.image);
  if (!img_dir)
    return -ENOMEM;
  struct image_meta img = {0};
  _cleanup_free_ char *why = NULL, *pf = NULL;
  char **argv = NULL;
  uint32_t cid = 0;
  if ((r = image_meta_load(img_dir, &img, &why)) < 0) {
    str_err(err, errlen, r, "image %s: %s", vm->m.image, why ? why : strerror(-r));
    goto out;
  }
  set_str(&vm->image_version, img.version);
  if ((r = ensure_disk(vm, &img, err, errlen)) < 0 ||
      (r = teepod_cfgdisk_build(vm, &img, err, errlen)) < 0)
    goto out;
  if (tp->have_vsock && (r = teepod_cidpool_alloc(&tp->cids, &cid)) < 0) {
    str_err(err, errlen, r, "no free vsock CID left in the pool");
    goto out;
  }
  struct teepod_qemu_spec spec = {
      .qemu = tp->qemu,
      .backend = tp->backend,
      .name = vm->m.name,
      .vcpu = vm->m.vcpu,
      .memory_mb = vm->m.memory,
      .vm_dir = vm->dir,
      .kernel = img.kernel,
      .initrd = img.initrd,
      .cmdline = img.cmdline,
      .bios = img.bios,
      .rootfs = img.rootfs,
      .ports = vm->m.ports,
      .n_ports = vm->m.n_ports,
      .cid = cid,
      .hugepages = vm->m.hugepages,
  };
  uint8_t mrconfigid[48];
  if (tp->backend == TEEPOD_BACKEND_TDX) {
    if ((r = teepod_vm_mrconfigid(vm, mrconfigid)) < 0) {
      str_err(err, errlen, r, "computing mrconfigid: %s", strerror(-r));
      goto out_cid;
    }
    spec.mrconfigid = mrconfigid;
    spec.qgs_socket = "/var/run/tdx-qgs/qgs.socket";
  }
  if (str_eq_ptr(img.shared_mode, "9p")) {
    _cleanup_free_ char *sh = str_printf("%s/" TEEPOD_SHARED_DIR, vm->dir);
    spec.shared_9p_dir = sh;
    r = teepod_qemu_argv(&spec, &argv);
    spec.shared_9p_dir = NULL;
  } else {
    r = teepod_qemu_argv(&spec, &argv);
  }
  if (r < 0) {
    str_err(err, errlen, r, "building the QEMU command line: %s", strerror(-r));
    goto out_cid;
  }
  if (tp->sim && !vm->m.no_tee && (r = teepod_sim_vm_boot(vm, &img, err, errlen)) < 0)
    goto out_cid;
  free(vm->argv_text);
  vm->argv_text = teepod_qemu_argv_text(argv);
  log_debug("vm %s: %s", vm->m.id, vm->argv_text ? vm->argv_text : "(argv)");
  /* a stale pidfile must not be read as this QEMU's before it writes its own */
  pf = str_printf("%s/qemu.pid", vm->dir);
  if (pf)
    unlink(pf);
  if ((r = teepod_spawn_detached(argv, vm->dir, &vm->pid, &vm->pidfd)) < 0) {
    str_err(err, errlen, r, "starting %s: %s", tp->qemu, strerror(-r));
    vm->pid = 0;
    goto out_cid;
  }
  vm->cid = cid;
  vm->started_at_ms = teepod_now_ms();
  vm->exited_at_ms = 0;
  vm->shutting_down = false;
  set_str(&vm->boot_progress, "starting");
  set_str(&vm->boot_error, NULL);
  set_str(&vm->shutdown_progress, NULL);
  set_str(&vm->last_error, NULL);
  if ((r = watch(vm)) < 0) {
    vm_kill(vm);
    int st;
    while (waitpid(vm->pid, &st, 0) < 0 && errno == EINTR) {
    }
    vm_detach(vm);
    vm->pid = 0;
    str_err(err, errlen, r, "watching QEMU: %s", strerror(-r));
    goto out;
  }
  if (!vm->started) {
    vm->started = true;
    teepod_state_save(vm->dir, true);
  }
  tp->metrics.vm_starts++;
  log_info("vm %s (%s): started QEMU %d (%s, %u vCPU, %u MB)", vm->m.id, vm->m.name,
           (int)vm->pid, teepod_backend_name(tp->backend), vm->m.vcpu, vm->m.memory);
  r = 0;
  goto out;
out_cid:
  if (cid)
    teepod_cidpool_release(&tp->cids, cid);
out:
  if (r < 0) {
    tp->metrics.vm_start_failures++;
    set_str(&vm->last_error, err);
  }
  strv_free(argv);
  image_meta_free(&img);
  return r;
}

int teepod_vm_stop(struct teepod_vm *vm, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  if (vm->restart_timer)
    evtimer_del(vm->restart_timer);
  vm->restarts = 0;
  if (vm->started) {
    vm->started = false;
    int r = teepod_state_save(vm->dir, false);
    if (r < 0)
      log_warn("vm %s: writing vm-state.json: %s", vm->m.id, strerror(-r));
  }
  int r;
  if (teepod_vm_running(vm) && (r = vm_kill(vm)) < 0)
    return str_err(err, errlen, r, "killing QEMU %d: %s", (int)vm->pid, strerror(-r));
  return 0;
}

static void shutdown_timeout_cb(evutil_socket_t fd, short what, void *ud);

/* Kills QEMU if it has not gone within shutdown_timeout. */
static int arm_shutdown_timer(struct teepod_vm *vm) {
  if (!vm->shutdown_timer &&
      !(vm->shutdown_timer = evtimer_new(vm->tp->base, shutdown_timeout_cb, vm)))
    return -ENOMEM;
  struct timeval tv = {(time_t)vm->tp->cfg->shutdown_timeout, 0};
  return evtimer_add(vm->shutdown_timer, &tv) < 0 ? -ENOMEM : 0;
}

static void shutdown_timeout_cb(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  struct teepod_vm *vm = ud;
  if (!teepod_vm_running(vm))
    return;
  log_warn("vm %s (%s): no clean shutdown within %u s; killing QEMU", vm->m.id, vm->m.name,
           vm->tp->cfg->shutdown_timeout);
  vm_kill(vm);
}

int teepod_vm_shutdown(struct teepod_vm *vm, char *err, size_t errlen) {
  /* a VM waiting for an automatic restart is stopped too: the restart must not come */
  if (vm->restart_timer)
    evtimer_del(vm->restart_timer);
  vm->restarts = 0;
  bool was_started = vm->started;
  if (vm->started) {
    vm->started = false;
    teepod_state_save(vm->dir, false);
  }
  if (!teepod_vm_running(vm))
    return was_started ? 0 : str_err(err, errlen, -EINVAL, "VM is not running");
  if (vm->shutting_down)
    return 0;
  int r = teepod_qmp_command(vm->dir, "qmp.sock", "system_powerdown", vm->tp->cfg->qmp_timeout * 1000, err, errlen);
  if (r < 0) {
    log_warn("vm %s: ACPI shutdown failed (%s); killing QEMU", vm->m.id, err);
    vm_kill(vm);
    err[0] = 0;
    return 0;
  }
  vm->shutting_down = true;
  set_str(&vm->shutdown_progress, "powerdown requested");
  return arm_shutdown_timer(vm);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  int r = flag == FTW_DP ? rmdir(path) : unlink(path);
  return r < 0 && errno != ENOENT ? -1 : 0;
}

int teepod_rm_rf(const char *path) {
  if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
    return -errno;
  return 0;
}

int teepod_vm_remove(struct teepod_vm *vm, char *err, size_t errlen) {
  struct teepod *tp = vm->tp;
  if (vm->started || teepod_vm_running(vm))
    return str_err(err, errlen, -EBUSY, "VM is running; stop it first");
  /* out of the way in one step first: a removal cut short leaves a .trash-<id> folder that the
   * next start of teepod deletes, never a VM with half its files */
  _cleanup_free_ char *trash = str_printf("%s/.trash-%s", tp->cfg->run_path, vm->m.id);
  if (!trash)
    return -ENOMEM;
  int r;
  if (rename(vm->dir, trash) < 0) {
    r = -errno;
    return str_err(err, errlen, r, "removing %s: %s", vm->dir, strerror(-r));
  }
  dir_fsync(tp->cfg->run_path);
  if ((r = teepod_rm_rf(trash)) < 0)
    log_warn("vm %s: removing %s: %s (deleted at the next start)", vm->m.id, trash,
             strerror(-r));
  for (size_t i = 0; i < tp->n_vms; i++)
    if (tp->vms[i] == vm) {
      memmove(tp->vms + i, tp->vms + i + 1, (tp->n_vms - i - 1) * sizeof(*tp->vms));
      tp->n_vms--;
      break;
    }
  log_info("vm %s (%s): removed", vm->m.id, vm->m.name);
  teepod_vm_free(vm);
  return 0;
}

int teepod_vm_add(struct teepod *tp, struct teepod_vm *vm) {
  if (tp->n_vms >= tp->cfg->max_vms)
    return -ENOSPC;
  struct teepod_vm **n = realloc(tp->vms, (tp->n_vms + 1) * sizeof(*n));
  if (!n)
    return -ENOMEM;
  tp->vms = n;
  tp->vms[tp->n_vms++] = vm;
  return 0;
}

struct teepod_vm *teepod_vm_find(struct teepod *tp, const char *id) {
  for (size_t i = 0; id && i < tp->n_vms; i++)
    if (str_eq(tp->vms[i]->m.id, id))
      return tp->vms[i];
  return NULL;
}

int teepod_vm_load_dir(struct teepod *tp, const char *id) {
  _cleanup_free_ char *dir = str_printf("%s/%s", tp->cfg->run_path, id);
  _cleanup_free_ char *mark = dir ? str_printf("%s/.removing", dir) : NULL;
  if (!dir || !mark)
    return -ENOMEM;
  if (access(mark, F_OK) == 0) {
    pid_t pid;
    int pfd;
    if (teepod_adopt(dir, &pid, &pfd) == 0) {
      /* cannot happen through teepod (removal needs a stopped VM); never delete a live disk */
      close(pfd);
      log_error("vm %s: marked for removal but its QEMU %d runs; leaving it", id, (int)pid);
      return -EBUSY;
    }
    log_info("vm %s: finishing its removal", id);
    return teepod_rm_rf(dir);
  }
  struct teepod_manifest m;
  _cleanup_free_ char *why = NULL;
  int r = teepod_manifest_load(dir, &m, &why);
  if (r < 0) {
    log_error("vm %s: not loaded: %s", id, why ? why : strerror(-r));
    return r;
  }
  if (!str_eq(m.id, id)) {
    log_error("vm %s: not loaded: its manifest names id %s", id, m.id);
    teepod_manifest_free(&m);
    return -EINVAL;
  }
  if (teepod_vm_find(tp, id)) {
    teepod_manifest_free(&m);
    return 0;
  }
  struct teepod_vm *vm = teepod_vm_new(tp, dir, &m);
  if (!vm) {
    teepod_manifest_free(&m);
    return -ENOMEM;
  }
  teepod_state_load(dir, &vm->started);
  if ((r = teepod_vm_add(tp, vm)) < 0) {
    teepod_vm_free(vm);
    return r;
  }
  if (teepod_adopt(dir, &vm->pid, &vm->pidfd) == 0) {
    vm->started_at_ms = teepod_now_ms();
    log_info("vm %s (%s): adopted running QEMU %d", id, vm->m.name, (int)vm->pid);
    uint32_t cid;
    if (teepod_proc_cid(vm->pid, &cid) == 0) {
      if ((r = teepod_cidpool_occupy(&tp->cids, cid)) < 0)
        log_warn("vm %s: its CID %u is %s", id, cid,
                 r == -EEXIST ? "taken twice" : "outside the pool");
      else
        vm->cid = cid;
    }
    teepod_sim_vm_adopt(vm);
    if ((r = watch(vm)) < 0)
      return r;
    /* not wanted running: a stop or shutdown was under way when teepod went; finish it */
    if (!vm->started) {
      vm->shutting_down = true;
      set_str(&vm->shutdown_progress, "stopping (found running at start)");
      return arm_shutdown_timer(vm);
    }
    return 0;
  }
  if (vm->started) {
    char err[512] = "";
    if ((r = teepod_vm_start(vm, err, sizeof(err))) < 0) {
      log_error("vm %s (%s): start failed: %s", id, vm->m.name, err);
      schedule_restart(vm);
    }
  }
  return 0;
}

void teepod_resources_used(struct teepod *tp, const struct teepod_vm *skip, uint32_t *ret_vcpu,
                           uint32_t *ret_memory_mb) {
  uint64_t v = 0, m = 0;
  for (size_t i = 0; i < tp->n_vms; i++) {
    const struct teepod_vm *vm = tp->vms[i];
    if (vm == skip || !(vm->started || teepod_vm_running(vm)))
      continue;
    v += vm->m.vcpu;
    m += vm->m.memory;
  }
  *ret_vcpu = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
  *ret_memory_mb = m > UINT32_MAX ? UINT32_MAX : (uint32_t)m;
}

/* Rotates one log of a VM folder past max_bytes: shift NAME.N-1 -> .N, copy the live file to
 * .1, then truncate it (QEMU appends with O_APPEND, so it goes on at the new end; lines written
 * between the copy and the truncation are lost). */
static void rotate_one(const struct teepod_config *c, const struct teepod_vm *vm,
                       const char *name) {
  _cleanup_free_ char *log = str_printf("%s/%s", vm->dir, name);
  struct stat st;
  if (!log || stat(log, &st) < 0 || (uint64_t)st.st_size <= c->log_max_bytes)
    return;
  for (unsigned k = c->log_max_backups; k > 1; k--) {
    _cleanup_free_ char *a = str_printf("%s.%u", log, k - 1), *b = str_printf("%s.%u", log, k);
    if (a && b)
      rename(a, b);
  }
  if (c->log_max_backups > 0) {
    _cleanup_free_ char *one = str_printf("%s.1", log);
    _cleanup_buf_ struct buf data = BUF_INIT(0);
    if (one && file_read_capped(log, c->log_max_bytes * 2 + 65536, false, &data) == 0)
      file_write_atomic(one, data.data, data.len, 0600);
  }
  if (truncate(log, 0) < 0)
    log_warn("vm %s: truncating %s: %s", vm->m.id, log, strerror(errno));
}

void teepod_logs_rotate(struct teepod *tp) {
  for (size_t i = 0; i < tp->n_vms; i++) {
    rotate_one(tp->cfg, tp->vms[i], "serial.log");
    rotate_one(tp->cfg, tp->vms[i], "qemu.out");
  }
}
