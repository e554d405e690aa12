/* The guest's configuration files and the config disk. */
#include "teepod_cfgdisk.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/image_meta.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/macro.h"
#include "base/str.h"
#include "teepod.h"
#include "teepod_proc.h"

int teepod_shared_write(const char *vm_dir, const char *name, const void *data, size_t len) {
  _cleanup_free_ char *d = str_printf("%s/" TEEPOD_SHARED_DIR, vm_dir);
  _cleanup_free_ char *p = str_printf("%s/" TEEPOD_SHARED_DIR "/%s", vm_dir, name);
  if (!d || !p)
    return -ENOMEM;
  int r = mkdir_p(d, 0700);
  if (r < 0)
    return r;
  if (!data) {
    if (unlink(p) < 0 && errno != ENOENT)
      return -errno;
    return 0;
  }
  return file_write_atomic(p, data, len, 0600);
}

static json_t *urls_json(char **l) {
  json_t *a = json_array();
  for (size_t i = 0; a && l && l[i]; i++)
    json_array_append_new(a, json_string(l[i]));
  return a;
}

static int copy_file(const char *src, const char *vm_dir, const char *name) {
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  int r = file_read_capped(src, 1024 * 1024, true, &b);
  if (r < 0)
    return r;
  return teepod_shared_write(vm_dir, name, b.data, b.len);
}

static int sys_config(struct teepod_vm *vm, const struct image_meta *img) {
  struct teepod *tp = vm->tp;
  const struct teepod_config *c = tp->cfg;
  char **kms = vm->m.kms_urls && vm->m.kms_urls[0] ? vm->m.kms_urls : c->kms_urls;
  char **gw = vm->m.gateway_urls && vm->m.gateway_urls[0] ? vm->m.gateway_urls : c->gateway_urls;
  _cleanup_json_ json_t *vmc = json_pack("{s:i,s:s,s:I,s:I,s:b}", "spec_version", 1,
                                         "os_image_hash", img->rootfs_hash ? img->rootfs_hash : "",
                                         "cpu_count", (json_int_t)vm->m.vcpu, "memory_size",
                                         (json_int_t)vm->m.memory * 1024 * 1024, "hugepages",
                                         vm->m.hugepages);
  if (!vmc)
    return -ENOMEM;
  _cleanup_free_ char *vmc_text = json_dump_compact(vmc);
  const char *host_api = tp->have_vsock ? "vsock://2:10000/api" : "virtio-serial:org.dstack.host.0";
  _cleanup_json_ json_t *j = json_pack("{s:o,s:o,s:s,s:s,s:s,s:s}", "kms_urls", urls_json(kms),
                                       "gateway_urls", urls_json(gw), "pccs_url",
                                       c->pccs_url ? c->pccs_url : "", "docker_registry",
                                       c->docker_registry ? c->docker_registry : "",
                                       "host_api_url", host_api, "vm_config",
                                       vmc_text ? vmc_text : "{}");
  if (!j || !vmc_text)
    return -ENOMEM;
  _cleanup_buf_ struct buf b = BUF_INIT(256 * 1024);
  int r = json_dump_buf(j, JSON_COMPACT | JSON_SORT_KEYS, &b);
  if (r < 0)
    return r;
  if ((r = teepod_shared_write(vm->dir, ".sys-config.json", b.data, b.len)) < 0)
    return r;
  /* seed era: config.json with sorted keys */
  _cleanup_json_ json_t *seed = json_pack("{s:s,s:s,s:s}", "kms_url", kms && kms[0] ? kms[0] : "",
                                          "rootfs_hash", img->rootfs_hash ? img->rootfs_hash : "",
                                          "tproxy_url", gw && gw[0] ? gw[0] : "");
  if (!seed)
    return -ENOMEM;
  buf_reset(&b);
  if ((r = json_dump_buf(seed, JSON_COMPACT | JSON_SORT_KEYS, &b)) < 0)
    return r;
  return teepod_shared_write(vm->dir, "config.json", b.data, b.len);
}

static int seed_certs(struct teepod_vm *vm) {
  const struct teepod_config *c = vm->tp->cfg;
  const char *files[][2] = {{c->ca_cert, "ca.cert"},
                            {c->tmp_ca_cert, "tmp-ca.cert"},
                            {c->tmp_ca_key, "tmp-ca.key"}};
  bool any = false;
  for (size_t i = 0; i < ARRAY_SIZE(files); i++)
    any |= !str_isempty(files[i][0]);
  if (!any)
    return 0;
  _cleanup_free_ char *d = str_printf("%s/" TEEPOD_SHARED_DIR "/certs", vm->dir);
  if (!d)
    return -ENOMEM;
  int r = mkdir_p(d, 0700);
  if (r < 0)
    return r;
  for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
    if (str_isempty(files[i][0]))
      continue;
    _cleanup_free_ char *name = str_printf("certs/%s", files[i][1]);
    if (!name)
      return -ENOMEM;
    if ((r = copy_file(files[i][0], vm->dir, name)) < 0)
      return r;
  }
  return 0;
}

/* Total bytes of the regular files in dir and one level below. */
static int64_t dir_bytes(const char *dir, unsigned depth) {
  DIR *d = opendir(dir);
  if (!d)
    return -errno;
  int64_t total = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (str_eq(e->d_name, ".") || str_eq(e->d_name, ".."))
      continue;
    _cleanup_free_ char *p = str_printf("%s/%s", dir, e->d_name);
    struct stat st;
    if (!p || lstat(p, &st) < 0)
      continue;
    if (S_ISREG(st.st_mode))
      total += st.st_size + 4096;
    else if (S_ISDIR(st.st_mode) && depth > 0) {
      int64_t sub = dir_bytes(p, depth - 1);
      if (sub > 0)
        total += sub + 4096;
    }
  }
  closedir(d);
  return total;
}

int teepod_cfgdisk_build(struct teepod_vm *vm, const struct image_meta *img, char *err,
                         size_t errlen) {
  int r;
  if ((r = sys_config(vm, img)) < 0 || (r = seed_certs(vm)) < 0)
    return str_err(err, errlen, r, "writing the guest's configuration: %s", strerror(-r));
  _cleanup_free_ char *shared = str_printf("%s/" TEEPOD_SHARED_DIR, vm->dir);
  _cleanup_free_ char *tmp = str_printf("%s/.config.img.tmp", vm->dir);
  _cleanup_free_ char *img_path = str_printf("%s/config.img", vm->dir);
  if (!shared || !tmp || !img_path)
    return -ENOMEM;
  int64_t bytes = dir_bytes(shared, 1);
  if (bytes < 0)
    return str_err(err, errlen, (int)bytes, "reading %s: %s", shared, strerror((int)-bytes));
  if ((uint64_t)bytes > TEEPOD_SHARED_MAX)
    return str_err(err, errlen, -EFBIG, "the guest's configuration is over %zu MiB",
                   TEEPOD_SHARED_MAX >> 20);
  /* FAT16 needs some room for its tables: twice the data plus 2 MiB, in KiB */
  uint64_t kib = (uint64_t)bytes * 2 / 1024 + 2048;
  char kib_s[32];
  snprintf(kib_s, sizeof(kib_s), "%llu", (unsigned long long)kib);
  unlink(tmp);
  char *mkfs[] = {"mkfs.vfat", "-n", TEEPOD_CFGDISK_LABEL, "-i", "d57ac0de", "-C", tmp, kib_s,
                  NULL};
  if ((r = teepod_run_tool(mkfs, 30, err, errlen)) < 0)
    goto fail;
  /* mcopy every entry of shared/ (dot files too) into the root */
  char **argv = NULL;
  if ((r = strv_push_dup(&argv, "mcopy")) < 0 || (r = strv_push_dup(&argv, "-s")) < 0 ||
      (r = strv_push_dup(&argv, "-Q")) < 0 || (r = strv_push_dup(&argv, "-i")) < 0 ||
      (r = strv_push_dup(&argv, tmp)) < 0) {
    strv_free(argv);
    goto fail;
  }
  DIR *d = opendir(shared);
  size_t n_files = 0;
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) && n_files < 64) {
      if (str_eq(e->d_name, ".") || str_eq(e->d_name, ".."))
        continue;
      char *p = str_printf("%s/%s", shared, e->d_name);
      if (!p || strv_push(&argv, p) < 0) {
        closedir(d);
        strv_free(argv);
        r = -ENOMEM;
        goto fail;
      }
      n_files++;
    }
    closedir(d);
  }
  if (n_files > 0) {
    if ((r = strv_push_dup(&argv, "::/")) < 0) {
      strv_free(argv);
      goto fail;
    }
    r = teepod_run_tool(argv, 30, err, errlen);
  }
  strv_free(argv);
  if (r < 0)
    goto fail;
  if (chmod(tmp, 0600) < 0 || rename(tmp, img_path) < 0) {
    r = -errno;
    str_err(err, errlen, r, "writing %s: %s", img_path, strerror(-r));
    goto fail;
  }
  return 0;
fail:
  unlink(tmp);
  return r;
}
