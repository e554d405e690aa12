/* Step 6: the app. Files in /tapp (the compose file as measured, never re-read from the host's
 * disk), the registry mirror the measured sys-config names, podman's Docker-compatible API on
 * /var/run/docker.sock, tappd (its keys in a 0600 file, its TEE the one tboot used), then
 * `docker-compose up` in /tapp with the app's decrypted environment in the process environment
 * only (never in argv, files or logs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "attest/tee.h"
#include "attest/tee_hostch.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "tboot_appenv.h"
#include "net/http_client.h"
#include "tboot.h"

#define PODMAN "/usr/bin/podman"
#define TAPPD "/usr/bin/tappd"
#define COMPOSE "/usr/bin/docker-compose"
#define DOCKER_SOCK "/var/run/docker.sock"
#define DOCKER_HOST_ENV "DOCKER_HOST=unix:///var/run/docker.sock"
#define DOCKER_SOCK_URL "unix:///var/run/docker.sock"
#define MIRROR_CONF "/etc/containers/registries.conf.d/90-dstack-mirror.conf"



static pid_t podman_pid, tappd_pid;

static int write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode) {
  _cleanup_free_ char *p = str_printf("%s/%s", dir, name);
  if (!p)
    return -ENOMEM;
  return file_write_atomic(p, data, len, mode);
}

/* host[:port] of the registry and whether it is reached without TLS */
static int registry_mirror(struct tboot *t) {
  const char *reg = t->sys.docker_registry;
  if (!reg || !*reg)
    return 0;
  /* sysconfig_parse gave host[:port]; http:// in the sys-config means no TLS */
  bool insecure = t->sys.docker_registry_insecure;
  size_t n = strlen(reg);
  for (size_t i = 0; i < n; i++)
    if (reg[i] <= ' ' || reg[i] == '"' || reg[i] == '\\' || reg[i] == '/' || reg[i] >= 0x7f)
      return tboot_fail(t, -EINVAL, "docker_registry: bad host");
  _cleanup_buf_ struct buf c = BUF_INIT(4096);
  int r = buf_printf(&c,
                     "unqualified-search-registries = [\"docker.io\"]\n\n"
                     "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n"
                     "[[registry.mirror]]\nlocation = \"%.*s\"\ninsecure = %s\n",
                     (int)n, reg, insecure ? "true" : "false");
  if (r >= 0)
    r = mkdir_p("/etc/containers/registries.conf.d", 0755);
  if (r >= 0)
    r = file_write_atomic(MIRROR_CONF, c.data, c.len, 0644);
  if (r < 0)
    return tboot_fail(t, r, "writing the registry mirror");
  log_info("registry mirror %.*s%s", (int)n, reg, insecure ? " (no TLS)" : "");
  return 0;
}

static int wait_socket_ping(const char *sock, const char *url, int timeout_ms) {
  uint64_t end = tboot_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    if (access(sock, F_OK) == 0) {
      struct http_client_opts o = {.timeout_ms = 3000, .unix_socket = sock};
      struct http_response resp = {0};
      if (http_get(url, &o, &resp) == 0) {
        long st = resp.status;
        http_response_free(&resp);
        if (st == 200)
          return 0;
      }
    }
    if (tboot_now_ms() >= end)
      return -ETIMEDOUT;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* appkeys.json for tappd: the KMS reply, or without a KMS a CA made here that never leaves the
 * TD (key provider "none"). */
static int appkeys_write(struct tboot *t, char **ret_path) {
  _cleanup_free_ char *path = str_printf("%s/appkeys.json", t->paths->work);
  _cleanup_buf_ struct buf out = BUF_INIT_SECRET(1024 * 1024);
  int r;
  if (!path)
    return -ENOMEM;
  if (t->have_keys) {
    /* tappd gets what it serves from: not the disk or env keys */
    _cleanup_json_ json_t *copy = json_deep_copy(t->kms_reply);
    if (!copy)
      return -ENOMEM;
    json_object_del(copy, "disk_crypt_key");
    json_object_del(copy, "env_crypt_key");
    r = json_dump_buf(copy, JSON_COMPACT, &out);
  } else {
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
    _cleanup_(X509_freep) X509 *ca = NULL;
    _cleanup_buf_ struct buf kp = BUF_INIT_SECRET(16 * 1024), cp = BUF_INIT(16 * 1024);
    char app_id[41];
    hex_encode(t->app.app_id, 20, app_id);
    struct x509_params p = {.subject_cn = app_id, .subject_org = "dstack local CA",
                            .is_ca = true, .path_len = 1};
    if ((r = key_p256_generate(&k)) < 0 || (r = x509_cert_build(&p, k, NULL, NULL, &ca)) < 0 ||
        (r = key_to_pkcs8_pem(k, &kp)) < 0 || (r = x509_cert_to_pem(ca, &cp)) < 0 ||
        (r = buf_terminate(&kp)) < 0 || (r = buf_terminate(&cp)) < 0)
      return r;
    _cleanup_json_ json_t *j = json_object(), *none = json_object(), *kpj = json_object();
    if (!j || !none || !kpj || json_set_str(j, "ca_cert", (char *)cp.data) < 0 ||
        json_set_str(none, "key", (char *)kp.data) < 0 ||
        json_object_set(kpj, "None", none) < 0 || json_object_set(j, "key_provider", kpj) < 0)
      return -ENOMEM;
    r = json_dump_buf(j, JSON_COMPACT, &out);
  }
  if (r >= 0)
    r = file_write_atomic(path, out.data, out.len, 0600);
  if (r >= 0)
    *ret_path = TAKE_PTR(path);
  return r;
}

static int tappd_start(struct tboot *t) {
  _cleanup_free_ char *keys = NULL, *ccel = NULL;
  int r = appkeys_write(t, &keys);
  if (r < 0)
    return tboot_fail(t, r, "writing the app keys for tappd");
  if (str_eq(t->tee_name, "hostch")) {
    _cleanup_buf_ struct buf b = BUF_INIT(4 * 1024 * 1024);
    if ((r = tee_hostch_ccel(&b)) < 0)
      log_warn("the boot event log (CCEL) from the host: %s", strerror(-r));
    else if (!(ccel = str_printf("%s/ccel.bin", t->paths->work)) ||
             file_write_atomic(ccel, b.data, b.len, 0600) < 0)
      log_warn("writing the CCEL copy");
  }
  _cleanup_buf_ struct buf conf = BUF_INIT(16 * 1024);
  r = buf_printf(&conf,
                 "[default]\nlog_level = \"info\"\n\n[default.core]\nkeys_file = \"%s\"\n"
                 "compose_file = \"%s/app-compose.json\"\nsys_config_file = \"%s/sys-config.json\"\n"
                 "docker_socket = \"%s\"\ntee = \"%s\"\nccel_file = \"%s\"\n"
                 "data_disks = [\"/\", \"%s\"]\n\n"
                 "[internal]\naddress = \"unix:/var/run/tappd.sock\"\nmode = \"0666\"\n\n"
                 "[dstack]\naddress = \"unix:/var/run/dstack.sock\"\nmode = \"0666\"\n\n"
                 "[external]\naddress = \"0.0.0.0\"\nport = 8090\n",
                 keys, t->paths->app_dir, t->paths->work, DOCKER_SOCK, t->tee_name,
                 ccel ? ccel : (str_eq(t->tee_name, "tdx") ? "/sys/firmware/acpi/tables/data/CCEL" : ""),
                 t->paths->data_mnt);
  _cleanup_free_ char *path = str_printf("%s/tappd.toml", t->paths->work);
  if (r < 0 || !path)
    return -ENOMEM;
  if ((r = file_write_atomic(path, conf.data, conf.len, 0600)) < 0)
    return tboot_fail(t, r, "writing %s", path);
  const char *argv[] = {TAPPD, "-c", path, NULL};
  if ((r = tboot_cmd_spawn(argv, NULL, "/", &tappd_pid)) < 0)
    return tboot_fail(t, r, "starting tappd");
  if ((r = wait_socket_ping("/var/run/dstack.sock", "http://localhost/Version", 30000)) < 0)
    return tboot_fail(t, r, "tappd did not answer on /var/run/dstack.sock");
  return 0;
}

static int env_build(struct tboot *t, struct appenv *env, char ***ret_envp) {
  const char *base[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "HOME=/root", DOCKER_HOST_ENV,
                        "COMPOSE_HTTP_TIMEOUT=600", "LANG=C.UTF-8"};
  size_t n = ARRAY_SIZE(base) + env->n;
  char **v = calloc(n + 1, sizeof(char *));
  if (!v)
    return -ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < ARRAY_SIZE(base); i++)
    v[k++] = (char *)base[i];
  for (size_t i = 0; i < env->n; i++)
    v[k++] = env->envp[i]; /* borrowed from env */
  (void)t;
  *ret_envp = v;
  return 0;
}

int tboot_app_start(struct tboot *t) {
  int r;
  if ((r = mkdir_p(t->paths->app_dir, 0755)) < 0 ||
      (r = write_file(t->paths->app_dir, "app-compose.json", t->compose.data, t->compose.len, 0644)) < 0 ||
      (r = write_file(t->paths->app_dir, "docker-compose.yaml", t->compose_file,
                      strlen(t->compose_file), 0644)) < 0 ||
      (r = write_file(t->paths->work, "sys-config.json", t->sys_payload.data, t->sys_payload.len,
                      0600)) < 0)
    return tboot_fail(t, r, "writing the app's files");
  if ((r = registry_mirror(t)) < 0)
    return r;

  struct appenv env = {0};
  char why[256] = "";
  if (t->encrypted_env.len) {
    if (!t->have_env_key)
      return tboot_fail(t, -ENOKEY, "the app has an encrypted environment but no env key (%s)",
                        t->have_keys ? "the KMS sent none" : "kms_enabled is false");
    r = appenv_decrypt(t->env_key, t->encrypted_env.data, t->encrypted_env.len,
                       (const char *const *)t->allowed_envs, t->n_allowed_envs, &env, why,
                       sizeof(why));
    if (r < 0)
      return tboot_fail(t, r, "the encrypted environment: %s", why);
    for (size_t i = 0; i < env.n_dropped; i++)
      log_warn("environment variable %s is not in allowed_envs: dropped", env.dropped[i]);
  }

  tboot_progress(t, "starting the container runtime");
  const char *pargv[] = {PODMAN, "system", "service", "--time=0", DOCKER_SOCK_URL, NULL};
  if ((r = tboot_cmd_spawn(pargv, NULL, "/", &podman_pid)) < 0) {
    appenv_free(&env);
    return tboot_fail(t, r, "starting podman");
  }
  if ((r = wait_socket_ping(DOCKER_SOCK, "http://d/_ping", 60000)) < 0) {
    appenv_free(&env);
    return tboot_fail(t, r, "the container runtime did not answer on %s", DOCKER_SOCK);
  }
  if ((r = tappd_start(t)) < 0) {
    appenv_free(&env);
    return r;
  }
  tboot_progress(t, "starting the app (docker-compose up)");
  _cleanup_free_ char **envp = NULL;
  if ((r = env_build(t, &env, &envp)) < 0) {
    appenv_free(&env);
    return r;
  }
  const char *cargv[] = {COMPOSE, "up", "-d", "--remove-orphans", NULL};
  struct tboot_cmd c = {.argv = cargv, .envp = (const char *const *)envp,
                        .cwd = t->paths->app_dir, .timeout_ms = 15 * 60 * 1000};
  int st = 0;
  r = tboot_cmd_run(&c, &st);
  appenv_free(&env);
  if (r < 0)
    return tboot_fail(t, r, "docker-compose up failed (status %d)", st);
  /* the runtime's metadata of what it just created reaches the disk now, not at the next
   * writeback: a VM killed right after (StopVm) must find it whole at the next boot */
  sync();
  tboot_progress(t, "app started");
  return 0;
}

void tboot_app_reaped(pid_t pid) {
  if (pid == tappd_pid) {
    log_warn("tappd exited");
    tappd_pid = 0;
  } else if (pid == podman_pid) {
    log_warn("the container runtime exited");
    podman_pid = 0;
  }
}

void tboot_app_stop(struct tboot *t) {
  if (podman_pid > 0 && t->compose_file) {
    const char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                          DOCKER_HOST_ENV, NULL};
    const char *argv[] = {COMPOSE, "down", "--timeout", "10", NULL};
    struct tboot_cmd c = {.argv = argv, .envp = envp, .cwd = t->paths->app_dir,
                          .timeout_ms = 60000};
    (void)tboot_cmd_run(&c, NULL);
  }
  if (tappd_pid > 0) {
    kill(tappd_pid, SIGTERM);
    tboot_cmd_stop(tappd_pid, 5000);
    tappd_pid = 0;
  }
  if (podman_pid > 0) {
    kill(podman_pid, SIGTERM);
    tboot_cmd_stop(podman_pid, 10000);
    podman_pid = 0;
  }
}
