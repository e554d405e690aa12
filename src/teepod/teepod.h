/* teepod's state: the configuration, the VMs it owns and what it found on the host. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "teepod_cid.h"
#include "teepod_config.h"
#include "teepod_manifest.h"
#include "teepod_qemu.h"

struct event;
struct event_base;
struct teepod_hostch;
struct tee;

#define TEEPOD_EVENTS_KEPT 32
#define TEEPOD_PROGRESS_MAX 256
#define TEEPOD_ERROR_MAX 1024

struct teepod_guest_event {
  char *event;
  char *body;
  uint64_t timestamp_ms;
};

struct teepod_vm {
  struct teepod *tp;
  char *dir;                  /* run_path/<id> */
  struct teepod_manifest m;
  bool started;               /* what the operator wants (vm-state.json) */
  /* the QEMU process */
  pid_t pid;                  /* 0: not running */
  int pidfd;
  struct event *exit_ev;
  uint64_t started_at_ms, exited_at_ms;
  int exit_status;            /* waitpid status of the last exit, -1 unknown (not our child) */
  uint32_t cid;               /* 0: none */
  char *argv_text;
  char *image_version;
  /* from the guest */
  char *boot_progress, *boot_error, *shutdown_progress, *instance_id;
  struct teepod_guest_event events[TEEPOD_EVENTS_KEPT];
  size_t n_events, events_head;
  struct teepod_hostch *ch;
  /* the guest's request budget, kept with the VM (a reconnect does not refill it): every
   * line, and the costly ones (signing, fsync'd writes) */
  double ch_tokens, ch_heavy_tokens;
  uint64_t ch_refill_ns, ch_warned_ns;
  struct event *ch_retry;
  unsigned ch_attempts;
  /* stopping */
  bool shutting_down;
  struct event *shutdown_timer;
  /* auto restart */
  unsigned restarts;          /* consecutive automatic restarts */
  struct event *restart_timer;
  char *last_error;           /* why the last start or restart failed */
  /* simulated TDX (platform sim): the VM's TD state lives in DIR/td */
  struct tee *tee;
  uint8_t rtmr_boot[3][48];
  uint8_t mrtd[48];
};

struct teepod_metrics {
  uint64_t vm_starts, vm_start_failures, vm_exits, vm_restarts, rpc_errors;
};

struct teepod {
  struct teepod_config *cfg;
  struct event_base *base;
  enum teepod_backend backend;
  bool sim;                   /* platform sim: teepod plays the TDX module */
  bool have_vsock;
  char *qemu, *qemu_img;
  uint32_t host_cpus, host_memory_mb;
  struct teepod_vm **vms;
  size_t n_vms;
  struct teepod_cidpool cids;
  char **tokens;              /* admin tokens; NULL when auth is off */
  struct event *log_timer;    /* serial log rotation */
  struct teepod_vsock *vsock; /* guests' host channel over vsock (with /dev/vhost-vsock) */
  struct teepod_metrics metrics;
  int lock_fd;                /* flock of run_path/.lock: one teepod per run_path */
};

/* Sets up the state from cfg (backend, tools, tokens) and loads every VM folder of run_path:
 * running QEMUs are adopted, VMs marked started that are not running are started, half-done
 * removals are finished. err says what failed. */
int teepod_new(struct teepod_config *cfg, struct event_base *base, struct teepod **ret, char *err,
               size_t errlen);
/* The checks of teepod_new only (tools, platform, tokens): no lock, no listener, no VM loaded,
 * nothing started or removed; a running teepod is left alone. *ret_n_vms: VM folders seen. */
int teepod_check(struct teepod_config *cfg, size_t *ret_n_vms, const char **ret_backend,
                 char **ret_qemu, bool *ret_sim, char *err, size_t errlen);
/* Frees the state; running VMs keep running (they are adopted at the next start). */
void teepod_free(struct teepod *tp);

struct teepod_vm *teepod_vm_find(struct teepod *tp, const char *id);
uint64_t teepod_now_ms(void);

/* Lifecycle (vm.c). err: a reason for the caller (RPC error text). */
int teepod_vm_start(struct teepod_vm *vm, char *err, size_t errlen);
int teepod_vm_stop(struct teepod_vm *vm, char *err, size_t errlen);      /* hard */
int teepod_vm_shutdown(struct teepod_vm *vm, char *err, size_t errlen);  /* ACPI, then kill */
int teepod_vm_remove(struct teepod_vm *vm, char *err, size_t errlen);
/* Adds a VM whose folder was just written (CreateVm); takes vm. */
int teepod_vm_add(struct teepod *tp, struct teepod_vm *vm);
struct teepod_vm *teepod_vm_new(struct teepod *tp, const char *dir, struct teepod_manifest *m);
void teepod_vm_free(struct teepod_vm *vm);
bool teepod_vm_running(const struct teepod_vm *vm);
/* "running", "stopped", "exited", "stopping", "shutting down" */
const char *teepod_vm_status(const struct teepod_vm *vm);
/* The host channel ended while the VM may still run: connect again (after a second). */
void teepod_vm_channel_lost(struct teepod_vm *vm);
void teepod_vm_event_add(struct teepod_vm *vm, const char *event, const char *body);
/* Loads one run folder (startup and ReloadVms). */
int teepod_vm_load_dir(struct teepod *tp, const char *id);
/* Rotates serial logs over [cvm.log] max_bytes. */
void teepod_logs_rotate(struct teepod *tp);

/* rm -rf of a VM folder (no symlinks followed). */
int teepod_rm_rf(const char *path);

/* Resources in use by VMs that are started (or running), excluding skip. */
void teepod_resources_used(struct teepod *tp, const struct teepod_vm *skip, uint32_t *ret_vcpu,
                           uint32_t *ret_memory_mb);
