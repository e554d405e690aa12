/* The one QEMU command builder. Pure: it turns a description of the VM into an argv, so the
 * unit tests compare it with golden files for each backend.
 *
 * Backends: tdx (q35 with kernel-irqchip=split, confidential-guest-support=tdx, a tdx-guest
 * object with mrconfigid and the quote generation socket, -accel kvm), kvm (-accel kvm -cpu host)
 * and tcg (-accel tcg -cpu max). Every VM gets the same devices: serial to an appended log
 * file, virtio-blk data disk (qcow2), the read-only config disk (serial "dstack-config"),
 * optional read-only rootfs, user-mode networking with a hostfwd per port mapping, the host
 * channel (virtio-serial port org.dstack.host.0 on a unix socket QEMU listens on), QMP on a
 * unix socket, a pidfile, and vhost-vsock when a CID is given. QEMU runs in the VM folder, and
 * the two sockets are named relative to it (host.sock, qmp.sock): a socket path must fit in
 * 108 bytes, a run_path need not.
 *
 * Paths and values inside QEMU's option syntax (-drive, -chardev, -virtfs, -qmp, -name) are
 * escaped for it (a ',' doubled); -kernel, -initrd, -bios and -pidfile take a path as it is, so
 * it is passed unchanged there. Values that cannot be passed (control characters, an empty
 * path) are refused with -EINVAL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teepod_manifest.h"

enum teepod_backend { TEEPOD_BACKEND_TCG, TEEPOD_BACKEND_KVM, TEEPOD_BACKEND_TDX };

struct teepod_qemu_spec {
  const char *qemu;          /* binary */
  enum teepod_backend backend;
  const char *name;          /* VM name (validated) */
  uint32_t vcpu, memory_mb;
  const char *vm_dir;        /* run_path/<id>: every per-VM file lives here */
  const char *kernel, *initrd, *cmdline; /* cmdline may be "" */
  const char *bios;          /* NULL: QEMU's default firmware */
  const char *rootfs;        /* NULL: none */
  const char *shared_9p_dir; /* NULL: no 9p share */
  const struct teepod_port *ports;
  size_t n_ports;
  uint32_t cid;              /* 0: no vsock device */
  bool hugepages;
  const uint8_t *mrconfigid; /* tdx: 48 bytes */
  const char *qgs_socket;    /* tdx: quote generation service socket; NULL: none */
};

/* Builds the argv (NULL-terminated, *ret owned by the caller: strv_free). */
int teepod_qemu_argv(const struct teepod_qemu_spec *s, char ***ret);
/* One line for logs and GetInfo: the argv joined by spaces, arguments with spaces or quotes
 * single-quoted. */
char *teepod_qemu_argv_text(char *const *argv);
/* QEMU option value escaping: ',' doubled. NULL for values with control characters. */
char *teepod_qemu_escape(const char *v);
const char *teepod_backend_name(enum teepod_backend b);
