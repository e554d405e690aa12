/* Dev mode: simulator, certificates, WireGuard and configuration under one directory. */
#include "tproxy_dev.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "attest/sim.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "tproxy_certs.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "tproxy_wg.h"

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

static void wg_key_text_wipe(char (*p)[WG_KEY_B64_LEN + 1]) {
  secure_wipe(*p, sizeof(*p));
}

static int dev_config_new(const char *dir, const char *sim, struct tproxy_config *c, char *err,
                          size_t errlen) {
  _cleanup_(wg_key_text_wipe) char priv[WG_KEY_B64_LEN + 1] = "";
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
      (r = tproxy_config_set(&c->wg_ip, wg ? TPROXY_DEV_WG_IP : TPROXY_DEV_LOOPBACK_IP)) < 0 ||
      (r = tproxy_config_set(&c->wg_client_ip_range,
                             wg ? TPROXY_DEV_WG_RANGE : TPROXY_DEV_LOOPBACK_RANGE)) < 0 ||
      (r = tproxy_config_set(&c->wg_interface, ifname)) < 0 ||
      (r = tproxy_config_set(&c->wg_endpoint, endpoint)) < 0 ||
      (r = tproxy_config_set(&c->wg_mode, wg ? "uapi" : "none")) < 0 ||
      (r = set_dir_path(&c->wg_sock_dir, dir, "wg")) < 0 ||
      (r = set_dir_path(&c->wg_config_path, dir, "wg.conf")) < 0) {
    tproxy_config_free(c);
    return r;
  }
  if (!wg)
    log_warn("dev mode: wireguard-go cannot run here (needs root, /dev/net/tun and "
             "wireguard-go): [core.wg] mode = \"none\", CVMs get addresses in %s (backends "
             "listen on them)", TPROXY_DEV_LOOPBACK_RANGE);
  return 0;
}

int tproxy_dev_config(struct tproxy_config *c, const char *dir, char *err, size_t errlen) {
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
  if (r > 0)
    log_info("dev mode: created a simulated TDX platform in %s", sim);
  if ((r = dev_config_new(dir, sim, c, err, errlen)) < 0)
    return r;
  struct buf text;
  buf_init_secret(&text, 256 * 1024);
  r = buf_append_str(&text, "# tproxy dev mode configuration (created by tproxy --dev; edit "
                            "freely)\n");
  if (r >= 0)
    r = tproxy_config_dump_secrets(c, &text);
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

int tproxy_dev_wg_start(const char *dir, const struct tproxy_config *c,
                        struct tproxy_wgproc **ret, char *err, size_t errlen) {
  *ret = NULL;
  _cleanup_free_ char *sock_dir = str_printf("%s/wg", dir);
  if (!sock_dir)
    return -ENOMEM;
  if (!str_eq(c->wg_mode, "uapi") || !str_eq(c->wg_sock_dir, sock_dir))
    return 0;
  char cidr[32];
  const char *slash = strchr(c->wg_client_ip_range, '/');
  snprintf(cidr, sizeof(cidr), "%s%s", c->wg_ip, slash ? slash : "/24");
  struct tproxy_wgproc_opts o = {
      .ifname = c->wg_interface,
      .sock_dir = sock_dir,
      .run_dir = WG_RUN_DIR,
      .address = cidr,
  };
  return tproxy_wgproc_start(&o, ret, err, errlen);
}
