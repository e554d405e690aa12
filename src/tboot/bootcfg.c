/* Step 1: the config disk. It is mounted read-only and every file is read exactly once into
 * memory with a cap; what tboot measures, checks and uses is that copy, so a host that rewrites
 * the disk image under the running VM changes nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/hostch_client.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "tboot.h"

#define ENCRYPTED_ENV_MAX ((size_t)256 * 1024)
#define USER_CONFIG_MAX ((size_t)256 * 1024)
#define INSTANCE_INFO_MAX ((size_t)4096)
#define SERIAL_MAX 64

int tboot_find_disk(const char *serial, int wait_ms, char **ret_dev) {
  uint64_t end = tboot_now_ms() + (uint64_t)wait_ms;
  for (;;) {
    DIR *d = opendir("/sys/block");
    if (d) {
      struct dirent *e;
      while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) > 32)
          continue;
        char path[96];
        snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
        _cleanup_buf_ struct buf b = BUF_INIT(SERIAL_MAX);
        if (file_read_pseudo(path, SERIAL_MAX, &b) < 0)
          continue;
        while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
          b.len--;
        if (b.len == strlen(serial) && memcmp(b.data, serial, b.len) == 0) {
          char *dev = str_printf("/dev/%s", e->d_name);
          closedir(d);
          if (!dev)
            return -ENOMEM;
          *ret_dev = dev;
          return 0;
        }
      }
      closedir(d);
    }
    if (tboot_now_ms() >= end)
      return -ENOENT;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Reads name from the mounted config disk: -ENOENT when absent (optional files), -EFBIG over
 * max. Only regular files, never through a symlink. */
static int shared_read(struct tboot *t, const char *name, size_t max, bool secret, struct buf *out) {
  _cleanup_free_ char *path = str_printf("%s/%s", t->paths->shared_mnt, name);
  if (!path)
    return -ENOMEM;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return -errno;
  struct stat st;
  int r = 0;
  if (fstat(fd, &st) < 0)
    r = -errno;
  else if (!S_ISREG(st.st_mode))
    r = -EINVAL;
  else if ((uint64_t)st.st_size > max)
    r = -EFBIG;
  if (r == 0) {
    buf_init(out, max);
    out->secret = secret;
    r = fd_read_all(fd, max, out);
    if (r == -ENOBUFS)
      r = -EFBIG;
  }
  close(fd);
  return r;
}

static int mount_config(struct tboot *t) {
  _cleanup_free_ char *dev = NULL;
  int r = tboot_find_disk(t->paths->config_serial, 5000, &dev);
  if (r < 0)
    return tboot_fail(t, r, "config disk (virtio serial %s) not found", t->paths->config_serial);
  if ((r = mkdir_p(t->paths->shared_mnt, 0755)) < 0)
    return tboot_fail(t, r, "creating %s", t->paths->shared_mnt);
  if (mount(dev, t->paths->shared_mnt, "vfat", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "codepage=437,iocharset=iso8859-1,fmask=0177,dmask=0077") < 0)
    return tboot_fail(t, -errno, "mounting the config disk %s", dev);
  return 0;
}

/* The fields tboot uses from the document (app_compose_check has checked their types). */
static int compose_fields(struct tboot *t) {
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf((const char *)t->compose.data, t->compose.len, APP_COMPOSE_MAX, &j);
  if (r < 0)
    return r;
  const char *s;
  if (json_get_str(j, "docker_compose_file", &s) == 0 && s && !(t->compose_file = strdup(s)))
    return -ENOMEM;
  if (json_get_str(j, "name", &s) == 0 && s && !(t->app_name = strdup(s)))
    return -ENOMEM;
  if (json_get_str(j, "key_provider_id", &s) == 0 && s && *s &&
      !(t->key_provider_id_pin = strdup(s)))
    return -ENOMEM;
  json_t *a = json_object_get(j, "allowed_envs");
  if (json_is_array(a) && json_array_size(a)) {
    t->allowed_envs = calloc(json_array_size(a) + 1, sizeof(char *));
    if (!t->allowed_envs)
      return -ENOMEM;
    for (size_t i = 0; i < json_array_size(a); i++) {
      const char *v = json_string_value(json_array_get(a, i));
      if (v && !(t->allowed_envs[t->n_allowed_envs++] = strdup(v)))
        return -ENOMEM;
    }
  }
  return 0;
}

/* instance_id = SHA-256(seed || app_id)[0..20]; the seed comes from .instance_info when it holds
 * one (the same VM keeps its id across reboots), else it is new. The host chooses the seed, so
 * it can give two VMs of one app the same instance id (and so the same disk key): both run the
 * same measured app, which is upstream's model. It cannot reach another app's keys. */
static int instance_setup(struct tboot *t, const struct buf *info) {
  bool have_seed = false;
  if (info->len) {
    _cleanup_json_ json_t *j = NULL;
    if (json_parse_buf((const char *)info->data, info->len, INSTANCE_INFO_MAX, &j) == 0 &&
        json_get_hex(j, "instance_id_seed", t->instance_seed, sizeof(t->instance_seed)) == 0)
      have_seed = true;
  }
  if (!have_seed && getrandom(t->instance_seed, sizeof(t->instance_seed), 0) !=
                        (ssize_t)sizeof(t->instance_seed))
    return -EIO;
  if (t->app.no_instance_id)
    return 0;
  uint8_t in[40], h[32];
  memcpy(in, t->instance_seed, 20);
  memcpy(in + 20, t->app.app_id, 20);
  sha256(in, sizeof(in), h);
  memcpy(t->instance_id, h, 20);
  t->have_instance_id = true;
  return 0;
}

static void instance_report(struct tboot *t) {
  char seed[41], iid[41], aid[41];
  hex_encode(t->instance_seed, 20, seed);
  hex_encode(t->instance_id, 20, iid);
  hex_encode(t->app.app_id, 20, aid);
  _cleanup_free_ char *msg =
      str_printf("{\"app_id\":\"%s\",\"instance_id\":\"%s\",\"instance_id_seed\":\"%s\"}", aid,
                 t->have_instance_id ? iid : "", seed);
  if (msg && t->have_host)
    (void)hostch_notify("instance.info", msg, 5000);
  log_info("app id %s, instance id %s", aid, t->have_instance_id ? iid : "(none)");
}

int tboot_config_load(struct tboot *t) {
  int r = mount_config(t);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf raw = BUF_INIT(0), sys = BUF_INIT(0), info = BUF_INIT(0);
  r = shared_read(t, "app-compose.json", APP_COMPOSE_MAX, false, &raw);
  if (r == -ENOENT) {
    /* a seed-era host: wrap its docker-compose.yaml as teepod and the SDKs do */
    _cleanup_buf_ struct buf yaml = BUF_INIT(0);
    r = shared_read(t, "docker-compose.yaml", APP_COMPOSE_MAX / 2, false, &yaml);
    if (r < 0)
      return tboot_fail(t, r, "config disk: neither app-compose.json nor docker-compose.yaml");
    buf_init(&raw, APP_COMPOSE_MAX);
    if ((r = app_compose_wrap((const char *)yaml.data, yaml.len, "app", &raw)) < 0)
      return tboot_fail(t, r, "config disk: docker-compose.yaml is not UTF-8 text");
  } else if (r == -EFBIG) {
    return tboot_fail(t, r, "config disk: app-compose.json is over %zu KiB",
                      APP_COMPOSE_MAX / 1024);
  } else if (r < 0) {
    return tboot_fail(t, r, "config disk: reading app-compose.json");
  }
  t->compose = raw;
  raw = BUF_INIT(0);
  _cleanup_free_ char *why = NULL;
  if ((r = app_compose_check((const char *)t->compose.data, t->compose.len, &t->app, &why)) < 0)
    return tboot_fail(t, r, "app-compose.json: %s", why ? why : strerror(-r));
  if ((r = compose_fields(t)) < 0)
    return tboot_fail(t, r, "app-compose.json: reading its fields");
  if (!str_eq(t->app.runner, "docker-compose") || !t->compose_file)
    return tboot_fail(t, -EOPNOTSUPP, "app-compose.json: runner \"%s\" is not supported here "
                      "(docker-compose with docker_compose_file is)", t->app.runner);

  r = shared_read(t, ".sys-config.json", SYSCONFIG_MAX_BYTES, false, &sys);
  if (r < 0 && r != -ENOENT)
    return tboot_fail(t, r, "config disk: reading .sys-config.json");
  char ewhy[256] = "";
  if ((r = sysconfig_parse(sys.len ? (const char *)sys.data : "{}", sys.len ? sys.len : 2, &t->sys,
                           ewhy, sizeof(ewhy))) < 0)
    return tboot_fail(t, r, ".sys-config.json: %s", ewhy);
  buf_init(&t->sys_payload, SYSCONFIG_MAX_BYTES * 2);
  if ((r = sysconfig_payload(&t->sys, &t->sys_payload)) < 0)
    return tboot_fail(t, r, ".sys-config.json: canonical form");

  r = shared_read(t, ".encrypted-env", ENCRYPTED_ENV_MAX, false, &t->encrypted_env);
  if (r < 0 && r != -ENOENT)
    return tboot_fail(t, r, "config disk: reading .encrypted-env");
  r = shared_read(t, ".user-config", USER_CONFIG_MAX, false, &t->user_config);
  if (r < 0 && r != -ENOENT)
    return tboot_fail(t, r, "config disk: reading .user-config");
  r = shared_read(t, ".instance_info", INSTANCE_INFO_MAX, false, &info);
  if (r < 0 && r != -ENOENT && r != -EFBIG)
    return tboot_fail(t, r, "config disk: reading .instance_info");
  if ((r = instance_setup(t, &info)) < 0)
    return tboot_fail(t, r, "instance id");
  instance_report(t);
  return 0;
}
