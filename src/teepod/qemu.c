/* The QEMU command line of a VM. */
#include "teepod_qemu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/macro.h"
#include "base/str.h"

const char *teepod_backend_name(enum teepod_backend b) {
  switch (b) {
  case TEEPOD_BACKEND_TDX: return "tdx";
  case TEEPOD_BACKEND_KVM: return "kvm";
  default: return "tcg";
  }
}

char *teepod_qemu_escape(const char *v) {
  if (!v)
    return NULL;
  size_t n = 0;
  for (const char *p = v; *p; p++) {
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return NULL;
    n += *p == ',' ? 2 : 1;
  }
  char *out = malloc(n + 1), *o = out;
  if (!out)
    return NULL;
  for (const char *p = v; *p; p++) {
    *o++ = *p;
    if (*p == ',')
      *o++ = ',';
  }
  *o = 0;
  return out;
}

struct argv_builder {
  char **v;
  int err;
};

static void add(struct argv_builder *b, const char *s) {
  if (b->err)
    return;
  int r = strv_push_dup(&b->v, s);
  if (r < 0)
    b->err = r;
}

static void addf(struct argv_builder *b, const char *fmt, ...) _printf_(2, 3);
static void addf(struct argv_builder *b, const char *fmt, ...) {
  if (b->err)
    return;
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->err = -ENOMEM;
    return;
  }
  int r = strv_push(&b->v, s);
  if (r < 0)
    b->err = r;
}

/* An escaped path; records -EINVAL in b when it cannot be one. Freed by the caller. */
static char *esc(struct argv_builder *b, const char *v) {
  if (b->err)
    return NULL;
  if (!v || !*v) {
    b->err = -EINVAL;
    return NULL;
  }
  char *e = teepod_qemu_escape(v);
  if (!e)
    b->err = -EINVAL;
  return e;
}

/* A path QEMU takes as it is, not in its option syntax (-kernel, -initrd, -bios: a ',' doubled
 * there would be part of the file name): checked like an escaped one, copied unchanged. */
static char *plain(struct argv_builder *b, const char *v) {
  char *e = esc(b, v);
  if (!e)
    return NULL;
  free(e);
  char *c = strdup(v);
  if (!c)
    b->err = -ENOMEM;
  return c;
}

/* JSON string escaping for the -object JSON form (paths only; control characters refused). */
static char *json_esc(struct argv_builder *b, const char *v) {
  if (b->err)
    return NULL;
  size_t n = 0;
  for (const char *p = v; *p; p++) {
    if ((unsigned char)*p < 0x20) {
      b->err = -EINVAL;
      return NULL;
    }
    n += (*p == '"' || *p == '\\') ? 2 : 1;
  }
  char *out = malloc(n + 1), *o = out;
  if (!out) {
    b->err = -ENOMEM;
    return NULL;
  }
  for (const char *p = v; *p; p++) {
    if (*p == '"' || *p == '\\')
      *o++ = '\\';
    *o++ = *p;
  }
  *o = 0;
  return out;
}

static bool ip_literal(const char *s) {
  return *s && strspn(s, "0123456789abcdefABCDEF.:") == strlen(s);
}

int teepod_qemu_argv(const struct teepod_qemu_spec *s, char ***ret) {
  struct argv_builder b = {0};
  *ret = NULL;
  if (!s->qemu || !s->vm_dir || !s->kernel || !s->initrd || !s->name || s->vcpu == 0 ||
      s->memory_mb == 0)
    return -EINVAL;
  if (s->backend == TEEPOD_BACKEND_TDX && !s->mrconfigid)
    return -EINVAL;
  _cleanup_free_ char *dir = esc(&b, s->vm_dir);
  _cleanup_free_ char *kernel = plain(&b, s->kernel);
  _cleanup_free_ char *initrd = plain(&b, s->initrd);
  _cleanup_free_ char *name = esc(&b, s->name);
  if (b.err)
    return b.err;

  add(&b, s->qemu);
  addf(&b, "-name");
  addf(&b, "%s,process=teepod-%s", name, name);
  switch (s->backend) {
  case TEEPOD_BACKEND_TDX:
    add(&b, "-accel");
    add(&b, "kvm");
    add(&b, "-cpu");
    add(&b, "host");
    add(&b, "-machine");
    add(&b, "q35,kernel-irqchip=split,confidential-guest-support=tdx,hpet=off");
    break;
  case TEEPOD_BACKEND_KVM:
    add(&b, "-accel");
    add(&b, "kvm");
    add(&b, "-cpu");
    add(&b, "host");
    add(&b, "-machine");
    add(&b, "q35");
    break;
  default:
    add(&b, "-accel");
    add(&b, "tcg");
    add(&b, "-cpu");
    add(&b, "max");
    add(&b, "-machine");
    add(&b, "q35");
    break;
  }
  add(&b, "-smp");
  addf(&b, "%u", s->vcpu);
  add(&b, "-m");
  addf(&b, "%uM", s->memory_mb);
  if (s->hugepages) {
    add(&b, "-mem-path");
    add(&b, "/dev/hugepages");
  }
  add(&b, "-nographic");
  add(&b, "-nodefaults");
  add(&b, "-no-user-config");
  /* a reset inside the guest ends QEMU: the next boot must start from a fresh TD state
   * (RTMR3 zero, measured again), which only a new start gives */
  add(&b, "-no-reboot");
  add(&b, "-chardev");
  addf(&b, "file,id=serial0,path=%s/serial.log,append=on", dir);
  add(&b, "-serial");
  add(&b, "chardev:serial0");
  add(&b, "-kernel");
  add(&b, kernel);
  add(&b, "-initrd");
  add(&b, initrd);
  if (s->bios) {
    _cleanup_free_ char *bios = plain(&b, s->bios);
    add(&b, "-bios");
    add(&b, bios ? bios : "");
  }
  add(&b, "-drive");
  addf(&b, "file=%s/hda.img,if=none,id=hd0,format=qcow2", dir);
  add(&b, "-device");
  add(&b, "virtio-blk-pci,drive=hd0,serial=dstack-data");
  if (s->rootfs) {
    _cleanup_free_ char *rootfs = esc(&b, s->rootfs);
    add(&b, "-drive");
    addf(&b, "file=%s,if=none,id=rootfs,format=raw,readonly=on", rootfs ? rootfs : "");
    add(&b, "-device");
    add(&b, "virtio-blk-pci,drive=rootfs,serial=dstack-rootfs");
  }
  add(&b, "-drive");
  addf(&b, "file=%s/config.img,if=none,id=cfg,format=raw,readonly=on", dir);
  add(&b, "-device");
  add(&b, "virtio-blk-pci,drive=cfg,serial=dstack-config");
  if (s->shared_9p_dir) {
    _cleanup_free_ char *sh = esc(&b, s->shared_9p_dir);
    add(&b, "-virtfs");
    addf(&b, "local,path=%s,mount_tag=host-shared,readonly=on,security_model=mapped,id=virtfs0",
         sh ? sh : "");
  }
  /* user-mode networking with the port map */
  _cleanup_buf_ struct buf net = BUF_INIT(16 * 1024);
  if (buf_append_str(&net, "user,id=net0") < 0)
    b.err = -ENOMEM;
  for (size_t i = 0; i < s->n_ports && !b.err; i++) {
    const struct teepod_port *p = &s->ports[i];
    if (!ip_literal(p->host_address) || strchr(p->host_address, ':') || p->host_port == 0 ||
        p->vm_port == 0) {
      b.err = -EINVAL; /* hostfwd takes IPv4 addresses only */
      break;
    }
    if (buf_printf(&net, ",hostfwd=%s:%s:%u-:%u", p->udp ? "udp" : "tcp", p->host_address,
                   p->host_port, p->vm_port) < 0)
      b.err = -ENOMEM;
  }
  if (!b.err && buf_terminate(&net) < 0)
    b.err = -ENOMEM;
  add(&b, "-netdev");
  if (!b.err)
    add(&b, (const char *)net.data);
  add(&b, "-device");
  add(&b, "virtio-net-pci,netdev=net0");
  add(&b, "-device");
  add(&b, "virtio-serial-pci,id=vser0");
  add(&b, "-chardev");
  /* sockets relative to the VM folder (QEMU's working directory): a unix socket path must fit
   * in 108 bytes, a run_path need not */
  add(&b, "socket,id=hostch,path=host.sock,server=on,wait=off");
  add(&b, "-device");
  add(&b, "virtserialport,bus=vser0.0,chardev=hostch,name=org.dstack.host.0");
  add(&b, "-qmp");
  add(&b, "unix:qmp.sock,server=on,wait=off");
  add(&b, "-pidfile");
  addf(&b, "%s/qemu.pid", s->vm_dir);
  if (s->cid) {
    add(&b, "-device");
    addf(&b, "vhost-vsock-pci,guest-cid=%u", s->cid);
  }
  if (s->backend == TEEPOD_BACKEND_TDX) {
    _cleanup_free_ char *mrc = base64_encode_alloc(s->mrconfigid, 48);
    if (!mrc)
      b.err = -ENOMEM;
    add(&b, "-object");
    if (s->qgs_socket) {
      _cleanup_free_ char *q = json_esc(&b, s->qgs_socket);
      addf(&b,
           "{\"qom-type\":\"tdx-guest\",\"id\":\"tdx\",\"mrconfigid\":\"%s\","
           "\"quote-generation-socket\":{\"type\":\"unix\",\"path\":\"%s\"}}",
           mrc, q ? q : "");
    } else {
      addf(&b, "{\"qom-type\":\"tdx-guest\",\"id\":\"tdx\",\"mrconfigid\":\"%s\"}", mrc);
    }
  }
  if (s->cmdline && *s->cmdline) {
    add(&b, "-append");
    add(&b, s->cmdline);
  }
  if (b.err) {
    strv_free(b.v);
    return b.err;
  }
  *ret = b.v;
  return 0;
}

char *teepod_qemu_argv_text(char *const *argv) {
  _cleanup_buf_ struct buf b = BUF_INIT(256 * 1024);
  for (size_t i = 0; argv && argv[i]; i++) {
    const char *a = argv[i];
    bool quote = !*a || strpbrk(a, " \t'\"\\$;&|<>(){}*?") != NULL;
    if (i && buf_append_u8(&b, ' ') < 0)
      return NULL;
    if (!quote) {
      if (buf_append_str(&b, a) < 0)
        return NULL;
      continue;
    }
    if (buf_append_u8(&b, '\'') < 0)
      return NULL;
    for (const char *p = a; *p; p++)
      if ((*p == '\'' ? buf_append_str(&b, "'\\''") : buf_append_u8(&b, (uint8_t)*p)) < 0)
        return NULL;
    if (buf_append_u8(&b, '\'') < 0)
      return NULL;
  }
  if (buf_terminate(&b) < 0)
    return NULL;
  return (char *)buf_steal(&b, NULL);
}
