/* teepod.toml: one table of options drives the defaults, the parser and --dump-config. */
#include "teepod_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/sim.h"
#include "base/conftab.h"
#include "base/fileio.h"
#include "base/str.h"

#define CFG struct teepod_config

static const struct conftab_opt opts[] = {
    CONFTAB_STR(CFG, "", "image_path", image_path, "/var/lib/teepod/images"),
    CONFTAB_STR(CFG, "", "run_path", run_path, "/var/lib/teepod/vm"),
    CONFTAB_STR(CFG, "", "qemu_path", qemu_path, ""),
    CONFTAB_STR(CFG, "", "qemu_img_path", qemu_img_path, ""),
    CONFTAB_STR(CFG, "", "address", address, "127.0.0.1"),
    CONFTAB_U16(CFG, "", "port", port, 8080),
    CONFTAB_STR(CFG, "", "unix_socket", unix_socket, ""),
    CONFTAB_STR(CFG, "", "log_level", log_level, "info"),
    CONFTAB_STR(CFG, "", "platform", platform, "auto"),
    CONFTAB_STR(CFG, "", "accel", accel, "auto"),
    CONFTAB_STR(CFG, "", "sim_dir", sim_dir, ""),
    CONFTAB_U32(CFG, "", "max_conns", max_conns, 256),
    CONFTAB_U32(CFG, "", "request_timeout", request_timeout, 30),
    CONFTAB_BOOL(CFG, "auth", "enabled", auth_enabled, false),
    CONFTAB_STR(CFG, "auth", "token_file", auth_token_file, ""),
    CONFTAB_STR(CFG, "cvm", "kms_url", kms_url, ""),
    CONFTAB_STRV(CFG, "cvm", "kms_urls", kms_urls, ""),
    CONFTAB_STR(CFG, "cvm", "tproxy_url", tproxy_url, ""),
    CONFTAB_STRV(CFG, "cvm", "gateway_urls", gateway_urls, ""),
    CONFTAB_STR(CFG, "cvm", "pccs_url", pccs_url, ""),
    CONFTAB_STR(CFG, "cvm", "docker_registry", docker_registry, ""),
    CONFTAB_HEXV(CFG, "cvm", "kms_pubkeys", kms_pubkeys, "", 33),
    CONFTAB_STR(CFG, "cvm", "ca_cert", ca_cert, ""),
    CONFTAB_STR(CFG, "cvm", "tmp_ca_cert", tmp_ca_cert, ""),
    CONFTAB_STR(CFG, "cvm", "tmp_ca_key", tmp_ca_key, ""),
    CONFTAB_U32(CFG, "cvm", "max_disk_size", max_disk_size, 100),
    CONFTAB_U32(CFG, "cvm", "cid_start", cid_start, 1000),
    CONFTAB_U32(CFG, "cvm", "cid_pool_size", cid_pool_size, 1000),
    CONFTAB_U32(CFG, "cvm", "max_allocable_vcpu", max_allocable_vcpu, 0),
    CONFTAB_U32(CFG, "cvm", "max_allocable_memory_in_mb", max_allocable_memory_in_mb, 0),
    CONFTAB_U32(CFG, "cvm", "shutdown_timeout", shutdown_timeout, 60),
    CONFTAB_U32(CFG, "cvm", "qmp_timeout", qmp_timeout, 5),
    CONFTAB_U32(CFG, "cvm", "max_vms", max_vms, 256),
    CONFTAB_BOOL(CFG, "cvm.port_mapping", "enabled", pm_enabled, false),
    CONFTAB_STR(CFG, "cvm.port_mapping", "address", pm_address, "127.0.0.1"),
    CONFTAB_STRV(CFG, "cvm.port_mapping", "range", pm_range, "tcp:1024-65535,udp:1024-65535"),
    CONFTAB_BOOL(CFG, "cvm.auto_restart", "enabled", ar_enabled, true),
    CONFTAB_U32(CFG, "cvm.auto_restart", "interval", ar_interval, 5),
    CONFTAB_U32(CFG, "cvm.auto_restart", "max_backoff", ar_max_backoff, 300),
    CONFTAB_U32(CFG, "cvm.auto_restart", "max_retries", ar_max_retries, 10),
    CONFTAB_SIZE(CFG, "cvm.log", "max_bytes", log_max_bytes, 10 * 1024 * 1024),
    CONFTAB_U32(CFG, "cvm.log", "max_backups", log_max_backups, 3),
    CONFTAB_STR(CFG, "gateway", "base_domain", base_domain, "localhost"),
    CONFTAB_U16(CFG, "gateway", "port", gw_port, 443),
    CONFTAB_U16(CFG, "gateway", "tappd_port", tappd_port, 8090),
    CONFTAB_U16(CFG, "gateway", "agent_port", agent_port, 0),
};

static const struct conftab table = {opts, ARRAY_SIZE(opts)};

const struct conftab *teepod_config_table(void) {
  return &table;
}

int teepod_config_init(struct teepod_config *c) {
  memset(c, 0, sizeof(*c));
  int r = conftab_defaults(&table, c);
  if (r < 0)
    teepod_config_free(c);
  return r;
}

void teepod_config_free(struct teepod_config *c) {
  conftab_free(&table, c);
}

int teepod_config_apply(struct teepod_config *c, const char *text, size_t len, char *err,
                        size_t errlen) {
  return conftab_load_text(&table, c, text, len, err, errlen);
}

int teepod_config_apply_file(struct teepod_config *c, const char *path, char *err, size_t errlen) {
  return conftab_load_file(&table, c, path, err, errlen);
}

int teepod_config_dump(const struct teepod_config *c, struct buf *out) {
  return conftab_dump(&table, c, 0, out);
}

static int set_sub(char **dst, const char *dir, const char *name) {
  char *p = str_printf("%s/%s", dir, name);
  if (!p)
    return -ENOMEM;
  free(*dst);
  *dst = p;
  return 0;
}

int teepod_config_init_dev(struct teepod_config *c, const char *dir, char *err, size_t errlen) {
  int r = teepod_config_init(c);
  if (r < 0)
    return r;
  const char *sim_env = getenv(TEE_ENV_SIM_DIR);
  _cleanup_free_ char *own = str_printf("%s/teepod.toml", dir);
  if (!own) {
    r = -ENOMEM;
    goto fail;
  }
  c->port = 0;
  if ((r = set_sub(&c->image_path, dir, "images")) < 0 ||
      (r = set_sub(&c->run_path, dir, "vm")) < 0 ||
      (r = set_sub(&c->unix_socket, dir, "teepod.sock")) < 0 ||
      (r = conftab_set_str(&c->platform, "sim")) < 0 ||
      (r = (sim_env && *sim_env) ? conftab_set_str(&c->sim_dir, sim_env)
                                 : set_sub(&c->sim_dir, dir, "sim")) < 0)
    goto fail;
  if (access(own, F_OK) == 0 && (r = teepod_config_apply_file(c, own, err, errlen)) < 0)
    goto fail;
  return 0;
fail:
  teepod_config_free(c);
  return r;
}

/* A port: 1..5 decimal digits, nothing else (strtoul alone would take spaces and signs). */
static const char *parse_port(const char *s, uint32_t *ret) {
  size_t n = strspn(s, "0123456789");
  if (n == 0 || n > 5)
    return NULL;
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (uint32_t)(s[i] - '0');
  if (v > 65535)
    return NULL;
  *ret = v;
  return s + n;
}

static int parse_range(const char *s, struct teepod_port_range *ret) {
  const char *p;
  uint32_t a, b;
  if ((p = str_after_prefix(s, "tcp:")))
    ret->udp = false;
  else if ((p = str_after_prefix(s, "udp:")))
    ret->udp = true;
  else
    return -EINVAL;
  if (!(p = parse_port(p, &a)) || *p != '-' || a == 0)
    return -EINVAL;
  if (!(p = parse_port(p + 1, &b)) || *p || b < a)
    return -EINVAL;
  ret->from = (uint16_t)a;
  ret->to = (uint16_t)b;
  return 0;
}

static bool is_ipv4(const char *s) {
  struct in_addr a4;
  return !str_isempty(s) && inet_pton(AF_INET, s, &a4) == 1;
}

static bool is_ip_literal(const char *s) {
  struct in6_addr a6;
  return is_ipv4(s) || (!str_isempty(s) && inet_pton(AF_INET6, s, &a6) == 1);
}

static bool url_ok(const char *u) {
  return str_startswith(u, "https://") || str_startswith(u, "http://");
}

static int complete_list(char ***list, const char *one) {
  if ((*list && (*list)[0]) || str_isempty(one))
    return 0;
  char **l = NULL;
  int r = strv_push_dup(&l, one);
  if (r < 0)
    return r;
  return conftab_set_strv(list, l);
}

/* QEMU runs in each VM's folder: every path it is given must be absolute. */
static int make_absolute(char **p) {
  if (str_isempty(*p) || (*p)[0] == '/')
    return 0;
  char cwd[4096];
  if (!getcwd(cwd, sizeof(cwd)))
    return -errno;
  char *a = str_printf("%s/%s", cwd, *p);
  if (!a)
    return -ENOMEM;
  free(*p);
  *p = a;
  return 0;
}

int teepod_config_check(struct teepod_config *c, char *err, size_t errlen) {
  int r;
  if (str_isempty(c->image_path) || str_isempty(c->run_path))
    return conftab_error(err, errlen, "image_path and run_path must be set");
  if ((r = make_absolute(&c->image_path)) < 0 || (r = make_absolute(&c->run_path)) < 0 ||
      (r = make_absolute(&c->sim_dir)) < 0)
    return conftab_error(err, errlen, "making image_path/run_path absolute: %s", strerror(-r));
  if (str_isempty(c->address) && str_isempty(c->unix_socket))
    return conftab_error(err, errlen, "no listener: set address (and port) or unix_socket");
  if (!str_isempty(c->address) && !is_ip_literal(c->address))
    return conftab_error(err, errlen, "address: '%s' is not an IP address", c->address);
  if (!str_eq(c->platform, "auto") && !str_eq(c->platform, "tdx") && !str_eq(c->platform, "sim"))
    return conftab_error(err, errlen, "platform: expected \"auto\", \"tdx\" or \"sim\"");
  if (!str_eq(c->accel, "auto") && !str_eq(c->accel, "kvm") && !str_eq(c->accel, "tcg"))
    return conftab_error(err, errlen, "accel: expected \"auto\", \"kvm\" or \"tcg\"");
  if (str_eq(c->platform, "sim") && str_isempty(c->sim_dir))
    return conftab_error(err, errlen, "platform = \"sim\" needs sim_dir (a simulated platform, "
                                      "made by `tdxctl sim init DIR`)");
  if (c->max_conns == 0 || c->request_timeout == 0)
    return conftab_error(err, errlen, "max_conns and request_timeout must be > 0");
  if (c->auth_enabled && str_isempty(c->auth_token_file))
    return conftab_error(err, errlen, "[auth] enabled needs token_file");
  if (c->cid_start < 3 || c->cid_pool_size == 0 ||
      (uint64_t)c->cid_start + c->cid_pool_size > UINT32_MAX)
    return conftab_error(err, errlen, "[cvm] cid_start must be >= 3 and the pool must fit in "
                                      "32 bits, with cid_pool_size > 0");
  if (c->max_disk_size == 0 || c->max_disk_size > 65536)
    return conftab_error(err, errlen, "[cvm] max_disk_size: 1..65536 (GB)");
  if (c->shutdown_timeout == 0 || c->qmp_timeout == 0 || c->max_vms == 0)
    return conftab_error(err, errlen, "[cvm] shutdown_timeout, qmp_timeout and max_vms must be > 0");
  if ((r = complete_list(&c->kms_urls, c->kms_url)) < 0 ||
      (r = complete_list(&c->gateway_urls, c->tproxy_url)) < 0)
    return r;
  for (char **u = c->kms_urls; u && *u; u++)
    if (!url_ok(*u))
      return conftab_error(err, errlen, "[cvm] kms_urls: '%s' is not an http(s) URL", *u);
  for (char **u = c->gateway_urls; u && *u; u++)
    if (!url_ok(*u))
      return conftab_error(err, errlen, "[cvm] gateway_urls: '%s' is not an http(s) URL", *u);
  if (!str_isempty(c->pccs_url) && !url_ok(c->pccs_url))
    return conftab_error(err, errlen, "[cvm] pccs_url: expected an http(s) URL");
  /* QEMU's user-mode hostfwd binds IPv4 addresses only */
  if (!is_ipv4(c->pm_address))
    return conftab_error(err, errlen, "[cvm.port_mapping] address: '%s' is not an IPv4 address",
                         c->pm_address);
  c->n_ranges = 0;
  for (char **s = c->pm_range; s && *s; s++) {
    if (c->n_ranges == ARRAY_SIZE(c->ranges))
      return conftab_error(err, errlen, "[cvm.port_mapping] range: at most %zu entries",
                           ARRAY_SIZE(c->ranges));
    if (parse_range(*s, &c->ranges[c->n_ranges]) < 0)
      return conftab_error(err, errlen,
                           "[cvm.port_mapping] range: '%s' is not \"tcp:FROM-TO\" or "
                           "\"udp:FROM-TO\"", *s);
    c->n_ranges++;
  }
  if (c->ar_interval == 0 || c->ar_max_backoff < c->ar_interval)
    return conftab_error(err, errlen,
                         "[cvm.auto_restart] interval must be > 0 and max_backoff >= interval");
  if (c->log_max_bytes < 4096)
    return conftab_error(err, errlen, "[cvm.log] max_bytes: at least 4096");
  if (c->log_max_backups > 100)
    return conftab_error(err, errlen, "[cvm.log] max_backups: at most 100");
  if (str_isempty(c->base_domain) || strlen(c->base_domain) > 200 ||
      strspn(c->base_domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
          strlen(c->base_domain))
    return conftab_error(err, errlen, "[gateway] base_domain: not a domain name");
  if (c->agent_port == 0)
    c->agent_port = c->tappd_port;
  return 0;
}
