/* Dev mode: simulator, certificates, WireGuard and configuration under one directory. */
#include "dev.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "attest/sim.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "certs.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "wg.h"

extern char **environ;

static int write_pem_pair(const char *dir, const char *name, X509 *cert, EVP_PKEY *key) {
  _cleanup_buf_ struct buf pem = BUF_INIT(64 * 1024);
  struct buf kp;
  buf_init_secret(&kp, 64 * 1024);
  _cleanup_free_ char *cp = str_printf("%s/%s.cert", dir, name);
  _cleanup_free_ char *kpath = str_printf("%s/%s.key", dir, name);
  int r = -ENOMEM;
  if (cp && kpath && (r = x509_cert_to_pem(cert, &pem)) >= 0 &&
      (r = key_to_pkcs8_pem(key, &kp)) >= 0 &&
      (r = file_write_atomic(kpath, kp.data, kp.len, 0600)) >= 0)
    r = file_write_atomic(cp, pem.data, pem.len, 0644);
  buf_free(&kp);
  return r;
}

/* CA and RPC certificate, unless both exist. */
static int dev_certs(const char *dir, char *err, size_t errlen) {
  _cleanup_free_ char *cdir = str_printf("%s/certs", dir);
  _cleanup_free_ char *rpc = str_printf("%s/certs/rpc.cert", dir);
  _cleanup_free_ char *ca = str_printf("%s/certs/ca.cert", dir);
  if (!cdir || !rpc || !ca)
    return -ENOMEM;
  if (access(rpc, F_OK) == 0 && access(ca, F_OK) == 0)
    return 0;
  int r = mkdir_p(cdir, 0700);
  if (r < 0)
    return str_err(err, errlen, r, "creating %s: %s", cdir, strerror(-r));
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *cak = NULL, *rk = NULL;
  _cleanup_(X509_freep) X509 *cac = NULL, *rc = NULL;
  int64_t now = (int64_t)time(NULL);
  struct x509_params cap = {.subject_cn = "tproxy dev CA",
                            .subject_org = "dstack dev",
                            .is_ca = true,
                            .path_len = 1,
                            .key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN,
                            .not_before = now - 3600,
                            .not_after = now + 10 * 365 * 86400LL,
                            .skid_akid = true};
  static const char *const sans[] = {"localhost"};
  struct x509_params rp = {.subject_cn = "localhost",
                           .dns_sans = sans,
                           .n_dns_sans = 1,
                           .explicit_no_ca = true,
                           .path_len = -1,
                           .key_usage = X509_KU_DIGITAL_SIGNATURE,
                           .ext_key_usage = X509_EKU_SERVER_AUTH,
                           .not_before = now - 3600,
                           .not_after = now + 2 * 365 * 86400LL,
                           .skid_akid = true};
  if ((r = key_p256_generate(&cak)) < 0 || (r = key_p256_generate(&rk)) < 0 ||
      (r = x509_cert_build(&cap, cak, NULL, cak, &cac)) < 0 ||
      (r = x509_cert_build(&rp, rk, cac, cak, &rc)) < 0 ||
      (r = write_pem_pair(cdir, "ca", cac, cak)) < 0 || (r = write_pem_pair(cdir, "rpc", rc, rk)) < 0)
    return str_err(err, errlen, r, "creating the dev certificates in %s: %s", cdir, strerror(-r));
  log_info("dev mode: created %s/ca.cert (the CA CVM certificates chain to) and rpc.cert", cdir);
  return 0;
}

static int free_port(int type, uint16_t *ret) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof(sa);
  int r = 0;
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
    r = -errno;
  close(fd);
  if (r == 0)
    *ret = ntohs(sa.sin_port);
  return r;
}

#define WG_RUN_DIR "/run/wireguard"

static bool can_run_wireguard_go(void) {
  if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) < 0)
    return false;
  const char *path = getenv("PATH");
  _cleanup_free_ char *copy = strdup(path && *path ? path : "/usr/bin:/bin");
  if (!copy)
    return false;
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    _cleanup_free_ char *p = str_printf("%s/wireguard-go", d);
    if (p && access(p, X_OK) == 0)
      return true;
  }
  return false;
}

static int set_dir_path(char **dst, const char *dir, const char *name) {
  _cleanup_free_ char *p = str_printf("%s/%s", dir, name);
  return p ? tproxy_config_set(dst, p) : -ENOMEM;
}

static int dev_config_new(const char *dir, const char *sim, struct tproxy_config *c, char *err,
                          size_t errlen) {
  char priv[WG_KEY_B64_LEN + 1];
  uint8_t raw[WG_KEY_LEN];
  uint16_t wg_port = 0;
  _cleanup_free_ char *keyfile = str_printf("%s/wg.key", dir);
  if (!keyfile)
    return -ENOMEM;
  int r = wg_key_load_or_generate(keyfile, raw, priv);
  secure_wipe(raw, sizeof(raw));
  if (r < 0)
    return str_err(err, errlen, r, "WireGuard key %s: %s", keyfile, strerror(-r));
  if ((r = free_port(SOCK_DGRAM, &wg_port)) < 0)
    return str_err(err, errlen, r, "picking a UDP port: %s", strerror(-r));
  bool wg = can_run_wireguard_go();
  uint8_t h[32];
  sha256(dir, strlen(dir), h);
  char ifname[16], endpoint[32];
  snprintf(ifname, sizeof(ifname), "tpd%02x%02x%02x", h[0], h[1], h[2]);
  snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%u", wg_port);
  if ((r = tproxy_config_init(c)) < 0)
    return r;
  c->port = 0;
  c->listen_port = 0;
  c->dev = true;
  c->allow_seed_event_log = true;
  c->wg_listen_port = wg_port;
  c->wg_stale_timeout = 3600;
  c->wg_poll_interval = 5;
  c->cert_poll_s = 2;
  if ((r = tproxy_config_set(&c->address, "127.0.0.1")) < 0 ||
      (r = tproxy_config_set(&c->listen_addr, "127.0.0.1")) < 0 ||
      (r = set_dir_path(&c->tls_certs, dir, "certs/rpc.cert")) < 0 ||
      (r = set_dir_path(&c->tls_key, dir, "certs/rpc.key")) < 0 ||
      (r = set_dir_path(&c->mutual_ca_certs, dir, "certs/ca.cert")) < 0 ||
      (r = set_dir_path(&c->state_db, dir, "tproxy.db")) < 0 ||
      (r = tproxy_config_set(&c->simulator_dir, sim)) < 0 ||
      (r = set_dir_path(&c->certbot_workdir, dir, "certbot")) < 0 ||
      (r = set_dir_path(&c->proxy_cert_chain, dir, "certbot/live/cert.pem")) < 0 ||
      (r = set_dir_path(&c->proxy_cert_key, dir, "certbot/live/key.pem")) < 0 ||
      (r = tproxy_config_set(&c->wg_private_key, priv)) < 0 ||
      (r = tproxy_config_set(&c->wg_ip, "10.4.0.1")) < 0 ||
      (r = tproxy_config_set(&c->wg_client_ip_range, "10.4.0.0/16")) < 0 ||
      (r = tproxy_config_set(&c->wg_interface, ifname)) < 0 ||
      (r = tproxy_config_set(&c->wg_endpoint, endpoint)) < 0 ||
      (r = tproxy_config_set(&c->wg_mode, wg ? "uapi" : "none")) < 0 ||
      (r = set_dir_path(&c->wg_sock_dir, dir, "wg")) < 0 ||
      (r = set_dir_path(&c->wg_config_path, dir, "wg.conf")) < 0) {
    tproxy_config_free(c);
    return r;
  }
  secure_wipe(priv, sizeof(priv));
  if (!wg)
    log_warn("dev mode: wireguard-go cannot run here (needs root, /dev/net/tun and "
             "wireguard-go): [core.wg] mode = \"none\"");
  return 0;
}

int tproxy_dev_config(const char *dir, struct tproxy_config *c, char *err, size_t errlen) {
  int r = mkdir_p(dir, 0700);
  if (r < 0)
    return str_err(err, errlen, r, "creating %s: %s", dir, strerror(-r));
  _cleanup_free_ char *cfg_path = str_printf("%s/tproxy.toml", dir);
  _cleanup_free_ char *live = str_printf("%s/certbot/live", dir);
  _cleanup_free_ char *cert = str_printf("%s/certbot/live/cert.pem", dir);
  _cleanup_free_ char *key = str_printf("%s/certbot/live/key.pem", dir);
  if (!cfg_path || !live || !cert || !key)
    return -ENOMEM;
  if ((r = dev_certs(dir, err, errlen)) < 0)
    return r;
  if ((r = mkdir_p(live, 0700)) < 0)
    return str_err(err, errlen, r, "creating %s: %s", live, strerror(-r));
  if ((r = tproxy_certs_selfsigned_write(cert, key, "app.localhost")) < 0)
    return str_err(err, errlen, r, "creating the wildcard certificate: %s", strerror(-r));
  if (access(cfg_path, F_OK) == 0) {
    if ((r = tproxy_config_init(c)) < 0)
      return r;
    if ((r = tproxy_config_apply_file(c, cfg_path, err, errlen)) < 0)
      tproxy_config_free(c);
    return r;
  }
  _cleanup_free_ char *sim = NULL;
  if ((r = sim_platform_for_dev(dir, &sim, err, errlen)) < 0)
    return r;
  if ((r = dev_config_new(dir, sim, c, err, errlen)) < 0)
    return r;
  struct buf text;
  buf_init_secret(&text, 256 * 1024);
  r = buf_append_str(&text, "# tproxy dev mode configuration (created by tproxy --dev; edit "
                            "freely)\n");
  if (r >= 0)
    r = tproxy_config_dump(c, true, &text);
  if (r >= 0)
    r = file_write_atomic(cfg_path, text.data, text.len, 0600);
  buf_free(&text);
  if (r < 0) {
    tproxy_config_free(c);
    return str_err(err, errlen, r, "writing %s: %s", cfg_path, strerror(-r));
  }
  log_info("dev mode: wrote %s", cfg_path);
  return 0;
}

static int run(char *const argv[]) {
  pid_t pid;
  int st;
  if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
    return -errno;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return -errno;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

int tproxy_dev_wg_start(const char *dir, const struct tproxy_config *c, pid_t *ret_pid, char *err,
                        size_t errlen) {
  *ret_pid = 0;
  _cleanup_free_ char *sock_dir = str_printf("%s/wg", dir);
  if (!sock_dir)
    return -ENOMEM;
  if (!str_eq(c->wg_mode, "uapi") || !str_eq(c->wg_sock_dir, sock_dir))
    return 0;
  _cleanup_free_ char *sock = str_printf("%s/%s.sock", sock_dir, c->wg_interface);
  if (!sock)
    return -ENOMEM;
  int r = mkdir_p(sock_dir, 0700);
  if (r < 0)
    return str_err(err, errlen, r, "creating %s: %s", sock_dir, strerror(-r));
  /* wireguard-go takes the listening socket from WG_UAPI_FD but watches its usual path
   * /run/wireguard/<ifname>.sock (and exits when that goes away): a symlink to ours, which also
   * lets `wg show` find it. */
  _cleanup_free_ char *std = str_printf("%s/%s.sock", WG_RUN_DIR, c->wg_interface);
  if (!std)
    return -ENOMEM;
  if ((r = mkdir_p(WG_RUN_DIR, 0755)) < 0)
    return str_err(err, errlen, r, "creating %s: %s", WG_RUN_DIR, strerror(-r));
  struct stat lst;
  if (lstat(std, &lst) == 0 && !S_ISLNK(lst.st_mode))
    return str_err(err, errlen, -EEXIST, "%s exists: another WireGuard interface has that name",
                std);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(sock) >= sizeof(sa.sun_path))
    return str_err(err, errlen, -ENAMETOOLONG, "%s: path too long for a socket", sock);
  strcpy(sa.sun_path, sock);
  (void)unlink(sock);
  /* wireguard-go takes its control socket from WG_UAPI_FD, so it lives under DIR. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0)
    return -errno;
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
    r = -errno;
    close(fd);
    return str_err(err, errlen, r, "%s: %s", sock, strerror(-r));
  }
  (void)chmod(sock, 0600);
  (void)unlink(std);
  if (symlink(sock, std) < 0) {
    r = -errno;
    close(fd);
    return str_err(err, errlen, r, "linking %s to %s: %s", std, sock, strerror(-r));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, 3);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO); /* our stdout: ours */
  char *argv[] = {"wireguard-go", "-f", c->wg_interface, NULL};
  char fdenv[] = "WG_UAPI_FD=3";
  char fgenv[] = "WG_PROCESS_FOREGROUND=1";
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = calloc(n + 3, sizeof(*env));
  if (!env) {
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    return -ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!str_startswith(environ[i], "WG_"))
      env[k++] = environ[i];
  env[k++] = fdenv;
  env[k++] = fgenv;
  pid_t pid;
  r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  close(fd);
  if (r != 0)
    return str_err(err, errlen, -r, "starting wireguard-go: %s", strerror(r));
  /* Wait (bounded) until the interface exists, then address it. */
  _cleanup_free_ char *sysfs = str_printf("/sys/class/net/%s", c->wg_interface);
  for (int i = 0; i < 100 && sysfs && access(sysfs, F_OK) < 0; i++)
    usleep(50 * 1000);
  char cidr[32];
  const char *slash = strchr(c->wg_client_ip_range, '/');
  snprintf(cidr, sizeof(cidr), "%s%s", c->wg_ip, slash ? slash : "/24");
  char *addr[] = {"ip", "addr", "replace", cidr, "dev", c->wg_interface, NULL};
  char *up[] = {"ip", "link", "set", c->wg_interface, "up", NULL};
  if (run(addr) < 0 || run(up) < 0)
    log_warn("dev mode: addressing %s failed; WireGuard peers may not reach tproxy",
             c->wg_interface);
  *ret_pid = pid;
  log_info("dev mode: wireguard-go (pid %d) runs %s, control socket %s", (int)pid,
           c->wg_interface, sock);
  return 0;
}

void tproxy_dev_wg_stop(const struct tproxy_config *c, pid_t pid) {
  if (pid <= 0)
    return;
  _cleanup_free_ char *std = str_printf("%s/%s.sock", WG_RUN_DIR, c->wg_interface);
  struct stat lst;
  if (std && lstat(std, &lst) == 0 && S_ISLNK(lst.st_mode))
    (void)unlink(std);
  (void)kill(pid, SIGTERM);
  for (int i = 0; i < 40; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return;
    usleep(50 * 1000);
  }
  (void)kill(pid, SIGKILL);
  (void)waitpid(pid, NULL, 0);
}
