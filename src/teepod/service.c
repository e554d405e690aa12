/* teepod's pRPC methods. */
#include "teepod_service.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "attest/app_compose.h"
#include "attest/image_meta.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "net/prpc_json.h"
#include "teepod.h"
#include "teepod_cfgdisk.h"
#include "teepod_compose.h"
#include "teepod_proc.h"
#include "vmm_rpc.pb-c.h"

#define ENV_MAX ((size_t)256 * 1024)
#define USER_CONFIG_MAX ((size_t)256 * 1024)

#ifndef TEEPOD_VERSION
#define TEEPOD_VERSION "0.0.0"
#endif
#ifndef TEEPOD_GIT_REV
#define TEEPOD_GIT_REV "unknown"
#endif

static char *xstrdup(const char *s) {
  return strdup(s ? s : "");
}

static uint32_t host_vcpu_limit(const struct teepod *tp) {
  return tp->cfg->max_allocable_vcpu ? tp->cfg->max_allocable_vcpu : tp->host_cpus;
}

static uint32_t host_memory_limit(const struct teepod *tp) {
  return tp->cfg->max_allocable_memory_in_mb ? tp->cfg->max_allocable_memory_in_mb
                                             : tp->host_memory_mb;
}

/* ---------- checks shared by CreateVm, UpdateVm and ResizeVm ---------- */

static int check_image(struct teepod *tp, const char *image, char **ret_error) {
  if (str_isempty(image) || strlen(image) > 128 || strchr(image, '/') || image[0] == '.')
    return prpc_error(ret_error, -EINVAL, "image: not an image name");
  _cleanup_free_ char *dir = str_printf("%s/%s", tp->cfg->image_path, image);
  if (!dir)
    return -ENOMEM;
  struct stat st;
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
    return prpc_error(ret_error, -ENOENT, "image %s does not exist", image);
  struct image_meta m = {0};
  _cleanup_free_ char *why = NULL;
  int r = image_meta_load(dir, &m, &why);
  image_meta_free(&m);
  if (r < 0)
    return prpc_error(ret_error, r, "image %s: %s", image, why ? why : strerror(-r));
  return 0;
}

static int check_resources(struct teepod *tp, const struct teepod_vm *skip, uint32_t vcpu,
                           uint32_t memory, uint32_t disk, bool will_run, char **ret_error) {
  uint32_t vmax = host_vcpu_limit(tp), mmax = host_memory_limit(tp);
  if (vcpu == 0)
    return prpc_error(ret_error, -EINVAL, "vcpu must be at least 1");
  if (memory < 64)
    return prpc_error(ret_error, -EINVAL, "memory must be at least 64 MB");
  if (disk == 0)
    return prpc_error(ret_error, -EINVAL, "disk_size must be at least 1 GB");
  if (vcpu > vmax)
    return prpc_error(ret_error, -EINVAL, "vcpu %u is over the limit of %u", vcpu, vmax);
  if (memory > mmax)
    return prpc_error(ret_error, -EINVAL, "memory %u MB is over the limit of %u MB", memory, mmax);
  if (disk > tp->cfg->max_disk_size)
    return prpc_error(ret_error, -EINVAL, "disk_size %u GB is over max_disk_size %u GB", disk,
                      tp->cfg->max_disk_size);
  if (will_run) {
    uint32_t uv, um;
    teepod_resources_used(tp, skip, &uv, &um);
    if ((uint64_t)uv + vcpu > vmax)
      return prpc_error(ret_error, -ENOSPC,
                        "not enough vCPUs left on this host: %u of %u allocated, %u asked", uv,
                        vmax, vcpu);
    if ((uint64_t)um + memory > mmax)
      return prpc_error(ret_error, -ENOSPC,
                        "not enough memory left on this host: %u of %u MB allocated, %u asked",
                        um, mmax, memory);
  }
  return 0;
}

static bool in_ranges(const struct teepod_config *c, bool udp, uint16_t port) {
  for (size_t i = 0; i < c->n_ranges; i++)
    if (c->ranges[i].udp == udp && port >= c->ranges[i].from && port <= c->ranges[i].to)
      return true;
  return false;
}

static bool addr_overlap(const char *a, const char *b) {
  return str_eq(a, b) || str_eq(a, "0.0.0.0") || str_eq(b, "0.0.0.0");
}

/* Is addr:port free on the host (nobody, us included, has it bound)? */
static bool port_free(const char *addr, uint16_t port, bool udp) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
    return false;
  int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  close(fd);
  return ok;
}

/* Checks and converts the requested port map into ret (n entries). */
static int check_ports(struct teepod *tp, const struct teepod_vm *skip, Vmm__PortMapping **in,
                       size_t n, struct teepod_port *ret, size_t *ret_n, char **ret_error) {
  const struct teepod_config *c = tp->cfg;
  *ret_n = 0;
  if (n == 0)
    return 0;
  if (!c->pm_enabled)
    return prpc_error(ret_error, -EPERM, "port mapping is disabled on this host "
                                         "([cvm.port_mapping] enabled = false)");
  if (n > TEEPOD_MAX_PORTS)
    return prpc_error(ret_error, -EINVAL, "at most %d port mappings", TEEPOD_MAX_PORTS);
  for (size_t i = 0; i < n; i++) {
    const Vmm__PortMapping *p = in[i];
    struct teepod_port *o = &ret[i];
    const char *proto = str_isempty(p->protocol) ? "tcp" : p->protocol;
    if (!str_eq(proto, "tcp") && !str_eq(proto, "udp"))
      return prpc_error(ret_error, -EINVAL, "ports[%zu]: protocol must be tcp or udp", i);
    o->udp = str_eq(proto, "udp");
    if (p->host_port == 0 || p->host_port > 65535 || p->vm_port == 0 || p->vm_port > 65535)
      return prpc_error(ret_error, -EINVAL, "ports[%zu]: ports must be 1..65535", i);
    o->host_port = (uint16_t)p->host_port;
    o->vm_port = (uint16_t)p->vm_port;
    const char *addr = str_isempty(p->host_address) ? c->pm_address : p->host_address;
    if (!str_eq(addr, c->pm_address))
      return prpc_error(ret_error, -EPERM, "ports[%zu]: host_address must be %s", i,
                        c->pm_address);
    snprintf(o->host_address, sizeof(o->host_address), "%s", addr);
    if (!in_ranges(c, o->udp, o->host_port))
      return prpc_error(ret_error, -EPERM, "ports[%zu]: host port %s/%u is outside the allowed "
                        "ranges", i, proto, o->host_port);
    for (size_t k = 0; k < i; k++)
      if (ret[k].udp == o->udp && ret[k].host_port == o->host_port)
        return prpc_error(ret_error, -EEXIST, "ports[%zu]: host port %s/%u is listed twice", i,
                          proto, o->host_port);
    for (size_t v = 0; v < tp->n_vms; v++) {
      const struct teepod_vm *vm = tp->vms[v];
      if (vm == skip)
        continue;
      for (size_t k = 0; k < vm->m.n_ports; k++) {
        const struct teepod_port *q = &vm->m.ports[k];
        if (q->udp == o->udp && q->host_port == o->host_port &&
            addr_overlap(q->host_address, o->host_address))
          return prpc_error(ret_error, -EADDRINUSE, "ports[%zu]: host port %s/%u belongs to VM %s",
                            i, proto, o->host_port, vm->m.name);
      }
    }
    /* a port the VM being changed holds itself is bound by its own QEMU */
    bool own = false;
    for (size_t k = 0; skip && k < skip->m.n_ports; k++)
      own |= skip->m.ports[k].udp == o->udp && skip->m.ports[k].host_port == o->host_port &&
             teepod_vm_running(skip);
    if (!own && !port_free(o->host_address, o->host_port, o->udp))
      return prpc_error(ret_error, -EADDRINUSE, "ports[%zu]: %s port %s:%u is already in use on "
                        "the host", i, proto, o->host_address, o->host_port);
  }
  *ret_n = n;
  return 0;
}

static int check_urls(const char *what, char **urls, size_t n, char **ret_error) {
  if (n > TEEPOD_MAX_URLS)
    return prpc_error(ret_error, -EINVAL, "%s: at most %d URLs", what, TEEPOD_MAX_URLS);
  for (size_t i = 0; i < n; i++)
    if (strlen(urls[i]) > 2048 || !(str_startswith(urls[i], "https://") ||
                                    str_startswith(urls[i], "http://")) ||
        !str_is_printable_ascii(urls[i]) || strchr(urls[i], ' '))
      return prpc_error(ret_error, -EINVAL, "%s[%zu]: not an http(s) URL", what, i);
  return 0;
}

static int urls_copy(char **in, size_t n, char ***ret) {
  *ret = NULL;
  for (size_t i = 0; i < n; i++) {
    int r = strv_push_dup(ret, in[i]);
    if (r < 0)
      return r;
  }
  return 0;
}

static int write_app(const char *dir, const struct buf *doc, const char *compose, size_t clen,
                     bool wrapped) {
  int r = teepod_shared_write(dir, "app-compose.json", doc->data, doc->len);
  if (r >= 0)
    r = wrapped ? teepod_shared_write(dir, "docker-compose.yaml", compose, clen)
                : teepod_shared_write(dir, "docker-compose.yaml", NULL, 0);
  return r;
}

static int app_from_request(const char *compose, const char *name, struct buf *doc,
                            struct app_compose_info *info, bool *wrapped, char **ret_error) {
  _cleanup_free_ char *why = NULL;
  int r = teepod_compose_build(compose ? compose : "", compose ? strlen(compose) : 0, name, doc,
                               info, wrapped, &why);
  if (r < 0)
    return prpc_error(ret_error, r, "%s", why ? why : "bad compose_file");
  return 0;
}

/* ---------- VmInfo ---------- */

static void uptime_text(uint64_t ms, char *out, size_t len) {
  uint64_t s = ms / 1000, d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
  s %= 60;
  if (d)
    snprintf(out, len, "%llud %lluh %llum %llus", (unsigned long long)d, (unsigned long long)h,
             (unsigned long long)m, (unsigned long long)s);
  else if (h)
    snprintf(out, len, "%lluh %llum %llus", (unsigned long long)h, (unsigned long long)m,
             (unsigned long long)s);
  else if (m)
    snprintf(out, len, "%llum %llus", (unsigned long long)m, (unsigned long long)s);
  else
    snprintf(out, len, "%llus", (unsigned long long)s);
}

static void iso_time(uint64_t ms, char *out, size_t len) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int strv_to_repeated(char **l, char ***ret, size_t *ret_n) {
  size_t n = strv_length(l);
  *ret_n = 0;
  *ret = NULL;
  if (!n)
    return 0;
  *ret = calloc(n, sizeof(char *));
  if (!*ret)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (!((*ret)[i] = strdup(l[i])))
      return -ENOMEM;
    (*ret_n)++;
  }
  return 0;
}

static int vm_configuration(const struct teepod_vm *vm, bool with_compose,
                            Vmm__VmConfiguration **ret) {
  Vmm__VmConfiguration *c = malloc(sizeof(*c));
  *ret = c;
  if (!c)
    return -ENOMEM;
  vmm__vm_configuration__init(c);
  c->name = xstrdup(vm->m.name);
  c->image = xstrdup(vm->m.image);
  c->vcpu = vm->m.vcpu;
  c->memory = vm->m.memory;
  c->disk_size = vm->m.disk_size;
  c->app_id = xstrdup(vm->m.app_id);
  c->hugepages = vm->m.hugepages;
  c->pin_numa = vm->m.pin_numa;
  c->no_tee = vm->m.no_tee;
  c->stopped = !vm->started;
  if (!c->name || !c->image || !c->app_id)
    return -ENOMEM;
  if (with_compose) {
    _cleanup_free_ char *p = str_printf("%s/shared/app-compose.json", vm->dir);
    _cleanup_buf_ struct buf b = BUF_INIT(0);
    if (p && file_read_capped(p, APP_COMPOSE_MAX, false, &b) == 0 && buf_terminate(&b) == 0) {
      c->compose_file = (char *)buf_steal(&b, NULL);
    }
    _cleanup_free_ char *u = str_printf("%s/shared/.user-config", vm->dir);
    _cleanup_buf_ struct buf ub = BUF_INIT(0);
    if (u && file_read_capped(u, USER_CONFIG_MAX, false, &ub) == 0 && buf_terminate(&ub) == 0) {
      c->user_config = (char *)buf_steal(&ub, NULL);
    }
  }
  if (vm->m.n_ports) {
    c->ports = calloc(vm->m.n_ports, sizeof(*c->ports));
    if (!c->ports)
      return -ENOMEM;
    for (size_t i = 0; i < vm->m.n_ports; i++) {
      Vmm__PortMapping *p = malloc(sizeof(*p));
      if (!p)
        return -ENOMEM;
      vmm__port_mapping__init(p);
      c->ports[c->n_ports++] = p;
      p->protocol = xstrdup(vm->m.ports[i].udp ? "udp" : "tcp");
      p->host_address = xstrdup(vm->m.ports[i].host_address);
      p->host_port = vm->m.ports[i].host_port;
      p->vm_port = vm->m.ports[i].vm_port;
      if (!p->protocol || !p->host_address)
        return -ENOMEM;
    }
  }
  int r;
  if ((r = strv_to_repeated(vm->m.kms_urls, &c->kms_urls, &c->n_kms_urls)) < 0 ||
      (r = strv_to_repeated(vm->m.gateway_urls, &c->gateway_urls, &c->n_gateway_urls)) < 0)
    return r;
  return 0;
}

static int vm_info(struct teepod *tp, const struct teepod_vm *vm, bool brief, Vmm__VmInfo **ret) {
  Vmm__VmInfo *m = malloc(sizeof(*m));
  *ret = m;
  if (!m)
    return -ENOMEM;
  vmm__vm_info__init(m);
  char up[64] = "", ex[32] = "";
  if (teepod_vm_running(vm))
    uptime_text(teepod_now_ms() - vm->started_at_ms, up, sizeof(up));
  if (vm->exited_at_ms && !teepod_vm_running(vm))
    iso_time(vm->exited_at_ms, ex, sizeof(ex));
  const struct teepod_config *c = tp->cfg;
  _cleanup_free_ char *url = str_printf("https://%s-%u.%s:%u", vm->m.app_id, c->agent_port,
                                        c->base_domain, c->gw_port);
  m->id = xstrdup(vm->m.id);
  m->name = xstrdup(vm->m.name);
  m->status = xstrdup(teepod_vm_status(vm));
  m->uptime = xstrdup(up);
  m->app_url = xstrdup(url);
  m->app_id = xstrdup(vm->m.app_id);
  m->instance_id = xstrdup(vm->instance_id);
  m->exited_at = xstrdup(ex);
  m->boot_progress = xstrdup(vm->boot_progress);
  m->boot_error = xstrdup(vm->boot_error ? vm->boot_error : vm->last_error);
  m->shutdown_progress = xstrdup(vm->shutdown_progress);
  m->image_version = xstrdup(vm->image_version);
  if (!m->id || !m->name || !m->status || !m->uptime || !m->app_url || !m->app_id ||
      !m->instance_id || !m->exited_at || !m->boot_progress || !m->boot_error ||
      !m->shutdown_progress || !m->image_version)
    return -ENOMEM;
  int r = vm_configuration(vm, !brief, &m->configuration);
  if (r < 0)
    return r;
  m->interfaces = calloc(1, sizeof(*m->interfaces));
  if (!m->interfaces)
    return -ENOMEM;
  Vmm__NetworkInterface *nic = malloc(sizeof(*nic));
  if (!nic)
    return -ENOMEM;
  vmm__network_interface__init(nic);
  m->interfaces[m->n_interfaces++] = nic;
  nic->mode = xstrdup("user");
  nic->backend = xstrdup("virtio-net-pci");
  nic->netdev_id = xstrdup("net0");
  if (!nic->mode || !nic->backend || !nic->netdev_id)
    return -ENOMEM;
  if (!brief && vm->n_events) {
    m->events = calloc(vm->n_events, sizeof(*m->events));
    if (!m->events)
      return -ENOMEM;
    for (size_t i = 0; i < vm->n_events; i++) {
      const struct teepod_guest_event *e = &vm->events[(vm->events_head + i) % TEEPOD_EVENTS_KEPT];
      Vmm__GuestEvent *g = malloc(sizeof(*g));
      if (!g)
        return -ENOMEM;
      vmm__guest_event__init(g);
      m->events[m->n_events++] = g;
      g->event = xstrdup(e->event);
      g->body = xstrdup(e->body);
      g->timestamp = e->timestamp_ms;
      if (!g->event || !g->body)
        return -ENOMEM;
    }
  }
  if (!brief) {
    m->qemu_command = xstrdup(vm->argv_text);
    if (!m->qemu_command)
      return -ENOMEM;
  }
  return 0;
}

/* ---------- methods ---------- */

#define METHOD(name)                                                                            \
  static int name(void *ud, struct http_request *req, const ProtobufCMessage *in_,              \
                  ProtobufCMessage **ret_out, char **ret_error)

static int new_reply(const ProtobufCMessageDescriptor *d, ProtobufCMessage **ret) {
  return prpc_message_new(d, ret);
}

static int create_vm(struct teepod *tp, const Vmm__VmConfiguration *in, char **ret_id,
                     char **ret_error) {
  int r;
  if (!teepod_name_valid(in->name))
    return prpc_error(ret_error, -EINVAL,
                      "name must be 1..64 characters of A-Z, a-z, 0-9, '_' and '-'");
  if (tp->n_vms >= tp->cfg->max_vms)
    return prpc_error(ret_error, -ENOSPC, "this host already has %u VMs (max_vms)", tp->cfg->max_vms);
  if ((r = check_image(tp, in->image, ret_error)) < 0 ||
      (r = check_resources(tp, NULL, in->vcpu, in->memory, in->disk_size, !in->stopped, ret_error)) < 0)
    return r;
  struct teepod_port ports[TEEPOD_MAX_PORTS];
  size_t n_ports = 0;
  if ((r = check_ports(tp, NULL, in->ports, in->n_ports, ports, &n_ports, ret_error)) < 0)
    return r;
  if (in->encrypted_env.len > ENV_MAX)
    return prpc_error(ret_error, -EINVAL, "encrypted_env is over %zu KiB", ENV_MAX / 1024);
  if (in->user_config && strlen(in->user_config) > USER_CONFIG_MAX)
    return prpc_error(ret_error, -EINVAL, "user_config is over %zu KiB", USER_CONFIG_MAX / 1024);
  if (in->user_config && !str_utf8_valid(in->user_config, strlen(in->user_config)))
    return prpc_error(ret_error, -EINVAL, "user_config is not UTF-8 text");
  if ((r = check_urls("kms_urls", in->kms_urls, in->n_kms_urls, ret_error)) < 0 ||
      (r = check_urls("gateway_urls", in->gateway_urls, in->n_gateway_urls, ret_error)) < 0)
    return r;
  if (in->gpus && in->gpus->n_gpus)
    return prpc_error(ret_error, -EINVAL, "this host has no GPUs to attach");
  _cleanup_buf_ struct buf doc = BUF_INIT(APP_COMPOSE_MAX * 2);
  struct app_compose_info info;
  bool wrapped;
  if ((r = app_from_request(in->compose_file, in->name, &doc, &info, &wrapped, ret_error)) < 0)
    return r;
  char app_id[41];
  if (!str_isempty(in->app_id)) {
    const char *a = in->app_id;
    if (str_startswith(a, "0x"))
      a += 2;
    if (strlen(a) != 40 || strspn(a, "0123456789abcdefABCDEF") != 40)
      return prpc_error(ret_error, -EINVAL, "app_id must be 20 bytes of hex");
    snprintf(app_id, sizeof(app_id), "%s", a);
    str_ascii_lower(app_id);
  } else {
    hex_encode(info.app_id, APP_ID_SIZE, app_id);
  }
  struct teepod_manifest m = {0};
  if ((r = teepod_id_new(m.id)) < 0)
    return r;
  _cleanup_free_ char *dir = str_printf("%s/%s", tp->cfg->run_path, m.id);
  if (!dir)
    return -ENOMEM;
  snprintf(m.name, sizeof(m.name), "%s", in->name);
  memcpy(m.app_id, app_id, sizeof(m.app_id));
  m.vcpu = in->vcpu;
  m.memory = in->memory;
  m.disk_size = in->disk_size;
  m.created_at_ms = teepod_now_ms();
  m.hugepages = in->hugepages;
  m.pin_numa = in->pin_numa;
  m.no_tee = in->no_tee;
  memcpy(m.ports, ports, n_ports * sizeof(*ports));
  m.n_ports = n_ports;
  if (!(m.image = strdup(in->image)) ||
      (r = urls_copy(in->kms_urls, in->n_kms_urls, &m.kms_urls)) < 0 ||
      (r = urls_copy(in->gateway_urls, in->n_gateway_urls, &m.gateway_urls)) < 0) {
    teepod_manifest_free(&m);
    return -ENOMEM;
  }
  if (mkdir(dir, 0700) < 0) {
    r = -errno;
    teepod_manifest_free(&m);
    log_error("creating %s: %s", dir, strerror(-r));
    return prpc_error(ret_error, r, "cannot create the VM's folder");
  }
  const char *compose = in->compose_file;
  if ((r = write_app(dir, &doc, compose, strlen(compose), wrapped)) < 0 ||
      (in->encrypted_env.len &&
       (r = teepod_shared_write(dir, ".encrypted-env", in->encrypted_env.data,
                                in->encrypted_env.len)) < 0) ||
      (!str_isempty(in->user_config) &&
       (r = teepod_shared_write(dir, ".user-config", in->user_config, strlen(in->user_config))) < 0) ||
      (r = teepod_manifest_save(dir, &m)) < 0 || (r = teepod_state_save(dir, false)) < 0) {
    log_error("writing %s: %s", dir, strerror(-r));
    teepod_rm_rf(dir);
    teepod_manifest_free(&m);
    return prpc_error(ret_error, r, "cannot write the VM's files");
  }
  struct teepod_vm *vm = teepod_vm_new(tp, dir, &m);
  if (!vm || (r = teepod_vm_add(tp, vm)) < 0) {
    teepod_vm_free(vm);
    teepod_manifest_free(&m);
    teepod_rm_rf(dir);
    return prpc_error(ret_error, -ENOMEM, "out of memory");
  }
  log_info("vm %s (%s): created (app %s, %u vCPU, %u MB, %u GB)", vm->m.id, vm->m.name,
           vm->m.app_id, vm->m.vcpu, vm->m.memory, vm->m.disk_size);
  if (!in->stopped) {
    char err[512] = "";
    if ((r = teepod_vm_start(vm, err, sizeof(err))) < 0) {
      log_error("vm %s: start failed: %s", vm->m.id, err);
      char e2[256];
      teepod_vm_stop(vm, e2, sizeof(e2));
      teepod_vm_remove(vm, e2, sizeof(e2));
      return prpc_error(ret_error, r, "%s", err);
    }
  }
  *ret_id = strdup(vm->m.id);
  return *ret_id ? 0 : -ENOMEM;
}

static struct teepod_vm *vm_by_id(struct teepod *tp, const char *id, char **ret_error) {
  struct teepod_vm *vm = teepod_vm_find(tp, id);
  if (!vm)
    prpc_error(ret_error, -ENOENT, "VM %.64s not found", id ? id : "");
  return vm;
}

METHOD(m_create_vm) {
  struct teepod *tp = ud;
  (void)req;
  const Vmm__VmConfiguration *in = (const Vmm__VmConfiguration *)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__id__descriptor, &out);
  if (r < 0)
    return r;
  Vmm__Id *id = (Vmm__Id *)out;
  char *vid = NULL;
  r = create_vm(tp, in, &vid, ret_error);
  if (r >= 0) {
    id->id = vid;
  }
  return prpc_reply_done(r, out, ret_out);
}

METHOD(m_start_vm) {
  struct teepod *tp = ud;
  (void)req, (void)ret_out;
  const Vmm__Id *in = (const Vmm__Id *)in_;
  struct teepod_vm *vm = vm_by_id(tp, in->id, ret_error);
  if (!vm)
    return -ENOENT;
  if (teepod_vm_running(vm))
    return prpc_error(ret_error, -EBUSY, "VM is already running");
  int r = check_resources(tp, vm, vm->m.vcpu, vm->m.memory, vm->m.disk_size, true, ret_error);
  if (r < 0)
    return r;
  char err[512] = "";
  vm->restarts = 0;
  if ((r = teepod_vm_start(vm, err, sizeof(err))) < 0) {
    log_error("vm %s: start failed: %s", vm->m.id, err);
    return prpc_error(ret_error, r, "%s", err);
  }
  return 0;
}

/* StopVm, ShutdownVm, RemoveVm: one VM by id, one lifecycle call. */
static int vm_op(void *ud, const ProtobufCMessage *in_, char **ret_error,
                 int (*op)(struct teepod_vm *, char *, size_t)) {
  const Vmm__Id *in = (const Vmm__Id *)in_;
  struct teepod_vm *vm = vm_by_id(ud, in->id, ret_error);
  if (!vm)
    return -ENOENT;
  char err[512] = "";
  int r = op(vm, err, sizeof(err));
  return r < 0 ? prpc_error(ret_error, r, "%s", err) : 0;
}

METHOD(m_stop_vm) {
  (void)req, (void)ret_out;
  return vm_op(ud, in_, ret_error, teepod_vm_stop);
}

METHOD(m_shutdown_vm) {
  (void)req, (void)ret_out;
  return vm_op(ud, in_, ret_error, teepod_vm_shutdown);
}

METHOD(m_remove_vm) {
  (void)req, (void)ret_out;
  return vm_op(ud, in_, ret_error, teepod_vm_remove);
}

static int update_vm(struct teepod *tp, const Vmm__UpdateVmRequest *in, char **ret_error) {
  struct teepod_vm *vm = vm_by_id(tp, in->id, ret_error);
  if (!vm)
    return -ENOENT;
  int r;
  bool resize = in->vcpu || in->memory || in->disk_size || !str_isempty(in->image);
  if (resize && (vm->started || teepod_vm_running(vm)))
    return prpc_error(ret_error, -EBUSY, "stop the VM before changing its resources or image");
  /* before the first goto: out: frees it */
  _cleanup_buf_ struct buf doc = BUF_INIT(APP_COMPOSE_MAX * 2);
  struct teepod_manifest m;
  if ((r = teepod_manifest_copy(&vm->m, &m)) < 0)
    return r;
  /* every check first, then the writes */
  if (in->vcpu)
    m.vcpu = in->vcpu;
  if (in->memory)
    m.memory = in->memory;
  if (in->disk_size) {
    if (in->disk_size < vm->m.disk_size) {
      teepod_manifest_free(&m);
      return prpc_error(ret_error, -EINVAL, "disk_size cannot shrink (%u GB now)",
                        vm->m.disk_size);
    }
    m.disk_size = in->disk_size;
  }
  if (!str_isempty(in->image)) {
    if ((r = check_image(tp, in->image, ret_error)) < 0) {
      teepod_manifest_free(&m);
      return r;
    }
    free(m.image);
    m.image = strdup(in->image);
  }
  if ((r = check_resources(tp, vm, m.vcpu, m.memory, m.disk_size, false, ret_error)) < 0)
    goto out;
  if (in->update_ports &&
      (r = check_ports(tp, vm, in->ports, in->n_ports, m.ports, &m.n_ports, ret_error)) < 0)
    goto out;
  if (in->update_kms_urls) {
    if ((r = check_urls("kms_urls", in->kms_urls, in->n_kms_urls, ret_error)) < 0)
      goto out;
    strv_free(m.kms_urls);
    if ((r = urls_copy(in->kms_urls, in->n_kms_urls, &m.kms_urls)) < 0)
      goto out;
  }
  if (in->update_gateway_urls) {
    if ((r = check_urls("gateway_urls", in->gateway_urls, in->n_gateway_urls, ret_error)) < 0)
      goto out;
    strv_free(m.gateway_urls);
    if ((r = urls_copy(in->gateway_urls, in->n_gateway_urls, &m.gateway_urls)) < 0)
      goto out;
  }
  if (in->encrypted_env.len > ENV_MAX) {
    r = prpc_error(ret_error, -EINVAL, "encrypted_env is over %zu KiB", ENV_MAX / 1024);
    goto out;
  }
  if (in->user_config && (strlen(in->user_config) > USER_CONFIG_MAX || !str_utf8_valid(in->user_config, strlen(in->user_config)))) {
    r = prpc_error(ret_error, -EINVAL, "user_config must be UTF-8 text of at most %zu KiB",
                   USER_CONFIG_MAX / 1024);
    goto out;
  }
  struct app_compose_info info;
  bool wrapped = false;
  if (!str_isempty(in->compose_file) &&
      (r = app_from_request(in->compose_file, vm->m.name, &doc, &info, &wrapped, ret_error)) < 0)
    goto out;
  if (in->disk_size && in->disk_size > vm->m.disk_size) {
    _cleanup_free_ char *hda = str_printf("%s/hda.img", vm->dir);
    char size[32], err[512] = "";
    snprintf(size, sizeof(size), "%uG", in->disk_size);
    if (!hda) {
      r = -ENOMEM;
      goto out;
    }
    if (access(hda, F_OK) == 0) {
      char *argv[] = {tp->qemu_img, "resize", "-q", hda, size, NULL};
      if ((r = teepod_run_tool(argv, 60, err, sizeof(err))) < 0) {
        log_error("vm %s: %s", vm->m.id, err);
        r = prpc_error(ret_error, r, "resizing the disk failed: %s", err);
        goto out;
      }
    }
  }
  if ((!str_isempty(in->compose_file) &&
       (r = write_app(vm->dir, &doc, in->compose_file, strlen(in->compose_file), wrapped)) < 0) ||
      (in->encrypted_env.len &&
       (r = teepod_shared_write(vm->dir, ".encrypted-env", in->encrypted_env.data,
                                in->encrypted_env.len)) < 0) ||
      (!str_isempty(in->user_config) &&
       (r = teepod_shared_write(vm->dir, ".user-config", in->user_config,
                                strlen(in->user_config))) < 0) ||
      (r = teepod_manifest_save(vm->dir, &m)) < 0) {
    log_error("vm %s: writing its files: %s", vm->m.id, strerror(-r));
    r = prpc_error(ret_error, r, "cannot write the VM's files");
    goto out;
  }
  teepod_manifest_free(&vm->m);
  vm->m = m;
  memset(&m, 0, sizeof(m));
  log_info("vm %s (%s): updated%s", vm->m.id, vm->m.name,
           str_isempty(in->compose_file) ? "" : " (new compose; used at the next start)");
  r = 0;
out:
  teepod_manifest_free(&m);
  return r;
}

METHOD(m_update_vm) {
  struct teepod *tp = ud;
  (void)req;
  const Vmm__UpdateVmRequest *in = (const Vmm__UpdateVmRequest *)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__id__descriptor, &out);
  if (r < 0)
    return r;
  r = update_vm(tp, in, ret_error);
  if (r >= 0) {
    Vmm__Id *id = (Vmm__Id *)out;
    if (!(id->id = strdup(in->id)))
      r = -ENOMEM;
  }
  return prpc_reply_done(r, out, ret_out);
}

METHOD(m_resize_vm) {
  struct teepod *tp = ud;
  (void)req, (void)ret_out;
  const Vmm__ResizeVmRequest *in = (const Vmm__ResizeVmRequest *)in_;
  Vmm__UpdateVmRequest u;
  vmm__update_vm_request__init(&u);
  u.id = in->id;
  u.vcpu = in->vcpu;
  u.memory = in->memory;
  u.disk_size = in->disk_size;
  u.image = in->image;
  return update_vm(tp, &u, ret_error);
}

METHOD(m_get_compose_hash) {
  (void)ud, (void)req;
  const Vmm__VmConfiguration *in = (const Vmm__VmConfiguration *)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__compose_hash__descriptor, &out);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf doc = BUF_INIT(APP_COMPOSE_MAX * 2);
  struct app_compose_info info;
  bool wrapped;
  if (!teepod_name_valid(in->name))
    r = prpc_error(ret_error, -EINVAL, "name must be 1..64 characters of A-Z, a-z, 0-9, '_' and '-'");
  if (r >= 0)
    r = app_from_request(in->compose_file, in->name, &doc, &info, &wrapped, ret_error);
  if (r >= 0) {
    Vmm__ComposeHash *h = (Vmm__ComposeHash *)out;
    if (!(h->hash = hex_encode_alloc(info.compose_hash, 32)))
      r = -ENOMEM;
  }
  return prpc_reply_done(r, out, ret_out);
}

static bool vm_matches(const struct teepod_vm *vm, const Vmm__StatusRequest *in) {
  if (in->n_ids) {
    bool found = false;
    for (size_t i = 0; i < in->n_ids && !found; i++)
      found = str_eq(in->ids[i], vm->m.id);
    if (!found)
      return false;
  }
  if (!str_isempty(in->keyword))
    return strstr(vm->m.name, in->keyword) || strstr(vm->m.id, in->keyword) ||
           strstr(vm->m.app_id, in->keyword);
  return true;
}

static int cmp_created(const void *a, const void *b) {
  const struct teepod_vm *x = *(struct teepod_vm *const *)a, *y = *(struct teepod_vm *const *)b;
  if (x->m.created_at_ms != y->m.created_at_ms)
    return x->m.created_at_ms < y->m.created_at_ms ? -1 : 1;
  return strcmp(x->m.id, y->m.id);
}

/* The VMs a Status request selects, in creation order, paged. */
static int status_fill(struct teepod *tp, const Vmm__StatusRequest *in, Vmm__VmInfo ***ret,
                       size_t *ret_n, uint32_t *ret_total) {
  *ret = NULL;
  *ret_n = 0;
  _cleanup_free_ struct teepod_vm **sel = calloc(tp->n_vms + 1, sizeof(*sel));
  if (!sel)
    return -ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < tp->n_vms; i++)
    if (vm_matches(tp->vms[i], in))
      sel[n++] = tp->vms[i];
  qsort(sel, n, sizeof(*sel), cmp_created);
  *ret_total = (uint32_t)n;
  size_t first = 0, count = n;
  if (in->page_size) {
    uint64_t page = in->page ? in->page - 1 : 0; /* pages count from 1 */
    first = page * in->page_size >= n ? n : (size_t)(page * in->page_size);
    count = n - first < in->page_size ? n - first : in->page_size;
  }
  if (!count)
    return 0;
  *ret = calloc(count, sizeof(**ret));
  if (!*ret)
    return -ENOMEM;
  for (size_t i = 0; i < count; i++) {
    int r = vm_info(tp, sel[first + i], in->brief, &(*ret)[i]);
    (*ret_n)++;
    if (r < 0)
      return r;
  }
  return 0;
}

METHOD(m_status) {
  struct teepod *tp = ud;
  (void)req, (void)ret_error;
  const Vmm__StatusRequest *in = (const Vmm__StatusRequest *)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__status_response__descriptor, &out);
  if (r < 0)
    return r;
  Vmm__StatusResponse *m = (Vmm__StatusResponse *)out;
  m->port_mapping_enabled = tp->cfg->pm_enabled;
  r = status_fill(tp, in, &m->vms, &m->n_vms, &m->total);
  return prpc_reply_done(r, out, ret_out);
}

METHOD(m_list_vms) {
  struct teepod *tp = ud;
  (void)req, (void)ret_error, (void)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__vmlist_response__descriptor, &out);
  if (r < 0)
    return r;
  Vmm__VMListResponse *m = (Vmm__VMListResponse *)out;
  Vmm__StatusRequest all;
  vmm__status_request__init(&all);
  all.brief = true;
  uint32_t total;
  r = status_fill(tp, &all, &m->vms, &m->n_vms, &total);
  return prpc_reply_done(r, out, ret_out);
}

METHOD(m_get_info) {
  struct teepod *tp = ud;
  (void)req, (void)ret_error;
  const Vmm__Id *in = (const Vmm__Id *)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__get_info_response__descriptor, &out);
  if (r < 0)
    return r;
  Vmm__GetInfoResponse *m = (Vmm__GetInfoResponse *)out;
  struct teepod_vm *vm = teepod_vm_find(tp, in->id);
  if (vm) {
    m->found = true;
    r = vm_info(tp, vm, false, &m->info);
  }
  return prpc_reply_done(r, out, ret_out);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

METHOD(m_list_images) {
  struct teepod *tp = ud;
  (void)req, (void)ret_error, (void)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__image_list_response__descriptor, &out);
  if (r < 0)
    return r;
  Vmm__ImageListResponse *m = (Vmm__ImageListResponse *)out;
  DIR *d = opendir(tp->cfg->image_path);
  char **names = NULL;
  if (d) {
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d)) && n < 1024) {
      if (e->d_name[0] == '.')
        continue;
      if (strv_push_dup(&names, e->d_name) < 0)
        break;
      n++;
    }
    closedir(d);
  }
  size_t n = strv_length(names);
  if (n)
    qsort(names, n, sizeof(*names), cmp_str);
  if (n && !(m->images = calloc(n, sizeof(*m->images))))
    r = -ENOMEM;
  for (size_t i = 0; r >= 0 && i < n; i++) {
    _cleanup_free_ char *dir = str_printf("%s/%s", tp->cfg->image_path, names[i]);
    struct image_meta meta = {0};
    _cleanup_free_ char *why = NULL;
    if (!dir || image_meta_load(dir, &meta, &why) < 0) {
      image_meta_free(&meta);
      continue; /* not an image: ListImages lists only what CreateVm accepts */
    }
    Vmm__ImageInfo *ii = malloc(sizeof(*ii));
    if (!ii) {
      image_meta_free(&meta);
      r = -ENOMEM;
      break;
    }
    vmm__image_info__init(ii);
    m->images[m->n_images++] = ii;
    ii->name = xstrdup(names[i]);
    ii->description = str_printf("kernel %s, initrd %s%s%s", strrchr(meta.kernel, '/') + 1,
                                 strrchr(meta.initrd, '/') + 1, meta.rootfs ? ", rootfs " : "",
                                 meta.rootfs ? strrchr(meta.rootfs, '/') + 1 : "");
    ii->version = xstrdup(meta.version);
    ii->is_dev = meta.is_dev;
    if (!ii->name || !ii->description || !ii->version)
      r = -ENOMEM;
    image_meta_free(&meta);
  }
  strv_free(names);
  return prpc_reply_done(r, out, ret_out);
}

METHOD(m_version) {
  (void)ud, (void)req, (void)ret_error, (void)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__version_response__descriptor, &out);
  if (r < 0)
    return r;
  Vmm__VersionResponse *m = (Vmm__VersionResponse *)out;
  m->version = strdup(TEEPOD_VERSION);
  m->rev = strdup(TEEPOD_GIT_REV);
  if (!m->version || !m->rev)
    r = -ENOMEM;
  return prpc_reply_done(r, out, ret_out);
}

METHOD(m_get_meta) {
  struct teepod *tp = ud;
  (void)req, (void)ret_error, (void)in_;
  const struct teepod_config *c = tp->cfg;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__get_meta_response__descriptor, &out);
  if (r < 0)
    return r;
  Vmm__GetMetaResponse *m = (Vmm__GetMetaResponse *)out;
  m->kms = malloc(sizeof(*m->kms));
  m->gateway = malloc(sizeof(*m->gateway));
  m->resources = malloc(sizeof(*m->resources));
  m->networking = malloc(sizeof(*m->networking));
  if (!m->kms || !m->gateway || !m->resources || !m->networking) {
    r = -ENOMEM;
    goto out;
  }
  vmm__kms_settings__init(m->kms);
  vmm__gateway_settings__init(m->gateway);
  vmm__resources_settings__init(m->resources);
  vmm__networking_settings__init(m->networking);
  m->kms->url = xstrdup(c->kms_urls && c->kms_urls[0] ? c->kms_urls[0] : "");
  m->gateway->url = xstrdup(c->gateway_urls && c->gateway_urls[0] ? c->gateway_urls[0] : "");
  m->gateway->base_domain = xstrdup(c->base_domain);
  m->gateway->port = c->gw_port;
  m->gateway->agent_port = c->agent_port;
  m->resources->max_cvm_number = c->max_vms;
  m->resources->max_allocable_vcpu = host_vcpu_limit(tp);
  m->resources->max_allocable_memory_in_mb = host_memory_limit(tp);
  m->networking->default_mode = xstrdup("user");
  m->networking->default_bridge = xstrdup("");
  m->networking->supported_modes = calloc(1, sizeof(char *));
  if (!m->kms->url || !m->gateway->url || !m->gateway->base_domain ||
      !m->networking->default_mode || !m->networking->default_bridge ||
      !m->networking->supported_modes) {
    r = -ENOMEM;
    goto out;
  }
  if (!(m->networking->supported_modes[0] = strdup("user"))) {
    r = -ENOMEM;
    goto out;
  }
  m->networking->n_supported_modes = 1;
  if ((r = strv_to_repeated(c->kms_urls, &m->kms->urls, &m->kms->n_urls)) < 0 ||
      (r = strv_to_repeated(c->gateway_urls, &m->gateway->urls, &m->gateway->n_urls)) < 0)
    goto out;
out:
  return prpc_reply_done(r, out, ret_out);
}

METHOD(m_list_gpus) {
  (void)ud, (void)req, (void)ret_error, (void)in_;
  /* no GPU passthrough on this host: an empty list */
  return new_reply(&vmm__list_gpus_response__descriptor, ret_out);
}

METHOD(m_reload_vms) {
  struct teepod *tp = ud;
  (void)req, (void)ret_error, (void)in_;
  ProtobufCMessage *out = NULL;
  int r = new_reply(&vmm__reload_vms_response__descriptor, &out);
  if (r < 0)
    return r;
  Vmm__ReloadVmsResponse *m = (Vmm__ReloadVmsResponse *)out;
  size_t before = tp->n_vms;
  DIR *d = opendir(tp->cfg->run_path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (teepod_id_valid(e->d_name) && !teepod_vm_find(tp, e->d_name))
        teepod_vm_load_dir(tp, e->d_name);
    closedir(d);
  }
  m->loaded = (uint32_t)(tp->n_vms - before);
  return prpc_reply_done(0, out, ret_out);
}

int teepod_api_init(struct teepod *tp, struct teepod_api *ret, char *err, size_t errlen) {
  static const struct prpc_method_entry vmm[] = {
      {"CreateVm", m_create_vm},
      {"StartVm", m_start_vm},
      {"StopVm", m_stop_vm},
      {"RemoveVm", m_remove_vm},
      {"UpgradeApp", m_update_vm},
      {"UpdateVm", m_update_vm},
      {"ShutdownVm", m_shutdown_vm},
      {"ResizeVm", m_resize_vm},
      {"GetComposeHash", m_get_compose_hash},
      {"Status", m_status},
      {"ListImages", m_list_images},
      {"GetInfo", m_get_info},
      {"Version", m_version},
      {"GetMeta", m_get_meta},
      {"ListGpus", m_list_gpus},
      {"ReloadVms", m_reload_vms},
  };
  static const struct prpc_method_entry seed[] = {
      {"CreateVM", m_create_vm},
      {"StartVM", m_start_vm},
      {"StopVM", m_stop_vm},
      {"RemoveVM", m_remove_vm},
      {"ListVms", m_list_vms},
  };
  memset(ret, 0, sizeof(*ret));
  int r = prpc_methods_fill(&vmm__vmm__descriptor, vmm, ARRAY_SIZE(vmm), ret->vmm,
                            ARRAY_SIZE(ret->vmm), err, errlen);
  if (r < 0)
    return r;
  if ((r = prpc_methods_fill(&vmm__teepod__descriptor, seed, ARRAY_SIZE(seed), ret->seed,
                             ARRAY_SIZE(ret->seed), err, errlen)) < 0)
    return r;
  /* the seed's names under Teepod., the newest under Vmm., Teepod. and no prefix */
  const struct {
    const ProtobufCServiceDescriptor *d;
    const char *mount;
    prpc_method_fn *m;
  } mounts[] = {
      {&vmm__teepod__descriptor, "/prpc/Teepod.", ret->seed},
      {&vmm__vmm__descriptor, "/prpc/Teepod.", ret->vmm},
      {&vmm__vmm__descriptor, "/prpc/Vmm.", ret->vmm},
      {&vmm__teepod__descriptor, "/prpc/", ret->seed},
      {&vmm__vmm__descriptor, "/prpc/", ret->vmm},
  };
  for (size_t i = 0; i < ARRAY_SIZE(mounts); i++)
    ret->svcs[i] = (struct prpc_service){.desc = mounts[i].d,
                                         .mount = mounts[i].mount,
                                         .methods = mounts[i].m,
                                         .n_methods = mounts[i].d->n_methods,
                                         .ud = tp};
  ret->router = (struct prpc_router){.svcs = ret->svcs, .n = ARRAY_SIZE(ret->svcs)};
  return 0;
}
