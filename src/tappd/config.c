/* tappd.toml: one table of options drives the defaults, the parser and --dump-config. */
#include "tappd_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/conftab.h"
#include "base/str.h"

#define CFG struct tappd_config
#define COMPOSE "taken from compose_file"

static const struct conftab_opt opts[] = {
    CONFTAB_U32(CFG, "default", "workers", workers, 8),
    CONFTAB_U32(CFG, "default", "max_blocking", max_blocking, 64),
    CONFTAB_STR(CFG, "default", "ident", ident, "Tappd Server"),
    CONFTAB_U32(CFG, "default", "keep_alive", keep_alive, 10),
    CONFTAB_STR(CFG, "default", "log_level", log_level, "normal"),
    CONFTAB_SIZE(CFG, "default", "max_body", max_body, (uint64_t)10 << 20),
    CONFTAB_SIZE(CFG, "default", "max_header", max_header, (uint64_t)64 << 10),
    CONFTAB_U32(CFG, "default", "request_timeout", request_timeout, 30),
    CONFTAB_U32(CFG, "default", "max_conns", max_conns, 1024),
    CONFTAB_U32(CFG, "default", "max_conns_per_source", max_conns_per_source, 128),
    CONFTAB_U32(CFG, "default", "handshake_timeout", handshake_timeout, 5),
    CONFTAB_STR(CFG, "default.core", "keys_file", keys_file, "/dstack/.host-shared/.appkeys.json"),
    CONFTAB_STR(CFG, "default.core", "cert_file", cert_file, "/etc/tappd/app-ca.cert"),
    CONFTAB_STR(CFG, "default.core", "key_file", key_file, "/etc/tappd/app-ca.key"),
    CONFTAB_STR(CFG, "default.core", "compose_file", compose_file,
                "/dstack/.host-shared/app-compose.json"),
    CONFTAB_STR(CFG, "default.core", "sys_config_file", sys_config_file,
                "/dstack/.host-shared/.sys-config.json"),
    CONFTAB_TRIBOOL(CFG, "default.core", "public_logs", public_logs, "", COMPOSE),
    CONFTAB_TRIBOOL(CFG, "default.core", "public_sysinfo", public_sysinfo, "", COMPOSE),
    CONFTAB_TRIBOOL(CFG, "default.core", "public_tcbinfo", public_tcbinfo, "", COMPOSE),
    CONFTAB_STR(CFG, "default.core", "docker_socket", docker_socket, "/var/run/docker.sock"),
    CONFTAB_STR(CFG, "default.core", "tee", tee, ""),
    CONFTAB_STR(CFG, "default.core", "sim_dir", sim_dir, ""),
    CONFTAB_STR(CFG, "default.core", "ccel_file", ccel_file, "/sys/firmware/acpi/tables/data/CCEL"),
    CONFTAB_STRV(CFG, "default.core", "data_disks", data_disks, "/"),
    CONFTAB_STR(CFG, "internal", "address", internal.address, "unix:/var/run/tappd.sock"),
    CONFTAB_U16(CFG, "internal", "port", internal.port, 0),
    CONFTAB_STR(CFG, "internal", "mode", internal.mode, "0666"),
    CONFTAB_STR(CFG, "dstack", "address", dstack.address, "unix:/var/run/dstack.sock"),
    CONFTAB_U16(CFG, "dstack", "port", dstack.port, 0),
    CONFTAB_STR(CFG, "dstack", "mode", dstack.mode, "0666"),
    CONFTAB_STR(CFG, "external", "address", external.address, "0.0.0.0"),
    CONFTAB_U16(CFG, "external", "port", external.port, 8090),
    CONFTAB_STR(CFG, "external", "mode", external.mode, "0666"),
    CONFTAB_STR(CFG, "external-https", "address", external_https.address, "0.0.0.0"),
    CONFTAB_U16(CFG, "external-https", "port", external_https.port, 8043),
    CONFTAB_STR(CFG, "external-https", "mode", external_https.mode, "0666"),
    CONFTAB_STR(CFG, "external-https.tls", "key", tls_key, ""),
    CONFTAB_STR(CFG, "external-https.tls", "certs", tls_certs, ""),
};

static const struct conftab table = {opts, ARRAY_SIZE(opts)};

const struct conftab *tappd_config_table(void) {
  return &table;
}

int tappd_config_init(struct tappd_config *c) {
  memset(c, 0, sizeof(*c));
  int r = conftab_defaults(&table, c);
  if (r < 0)
    tappd_config_free(c);
  return r;
}

static int set_path(char **dst, const char *dir, const char *name) {
  char *p = str_printf("%s%s%s", dir, name[0] ? "/" : "", name);
  if (!p)
    return -ENOMEM;
  free(*dst);
  *dst = p;
  return 0;
}

int tappd_config_init_dev(struct tappd_config *c, const char *dir, char *err, size_t errlen) {
  int r = tappd_config_init(c);
  if (r < 0)
    return r;
  char *unix_tappd = str_printf("unix:%s/tappd.sock", dir);
  char *unix_dstack = str_printf("unix:%s/dstack.sock", dir);
  if (!unix_tappd || !unix_dstack) {
    free(unix_tappd);
    free(unix_dstack);
    r = -ENOMEM;
    goto fail;
  }
  free(c->internal.address);
  c->internal.address = unix_tappd;
  free(c->dstack.address);
  c->dstack.address = unix_dstack;
  if ((r = conftab_set_str(&c->external.address, "127.0.0.1")) < 0)
    goto fail;
  c->external.port = 0;
  if ((r = conftab_set_str(&c->external_https.address, "")) < 0 ||
      (r = set_path(&c->keys_file, dir, "appkeys.json")) < 0 ||
      (r = set_path(&c->cert_file, dir, "app-ca.cert")) < 0 ||
      (r = set_path(&c->key_file, dir, "app-ca.key")) < 0 ||
      (r = set_path(&c->compose_file, dir, "app-compose.json")) < 0 ||
      (r = set_path(&c->sys_config_file, dir, "sys-config.json")) < 0 ||
      (r = set_path(&c->sim_dir, dir, "sim")) < 0 || (r = conftab_set_str(&c->tee, "sim")) < 0 ||
      (r = conftab_set_str(&c->ccel_file, "")) < 0)
    goto fail;
  return 0;
fail:
  tappd_config_free(c);
  return str_err(err, errlen, r, "dev mode defaults for %s: %s", dir, strerror(-r));
}

void tappd_config_free(struct tappd_config *c) {
  conftab_free(&table, c);
}

int tappd_config_apply(struct tappd_config *c, const char *text, size_t len, char *err,
                       size_t errlen) {
  return conftab_load_text(&table, c, text, len, err, errlen);
}

int tappd_config_apply_file(struct tappd_config *c, const char *path, char *err, size_t errlen) {
  return conftab_load_file(&table, c, path, err, errlen);
}

int tappd_config_tribool(const char *s) {
  if (str_isempty(s))
    return -1;
  return str_eq(s, "true") ? 1 : 0;
}

const char *tappd_listen_unix_path(const struct tappd_listen *l) {
  return l->address ? str_after_prefix(l->address, "unix:") : NULL;
}

int tappd_listen_mode(const struct tappd_listen *l, mode_t *ret) {
  uint64_t m;
  if (str_isempty(l->mode) || str_to_u64_base(l->mode, 8, &m) < 0 || m > 07777)
    return -EINVAL;
  *ret = (mode_t)m;
  return 0;
}

static int check_listen(const char *name, const struct tappd_listen *l, char *err, size_t errlen) {
  if (str_isempty(l->address))
    return 0;
  const char *path = tappd_listen_unix_path(l);
  mode_t m;
  if (path) {
    if (path[0] != '/')
      return conftab_error(err, errlen, "[%s] address: unix socket path must be absolute", name);
    if (strlen(path) >= 108)
      return conftab_error(err, errlen, "[%s] address: unix socket path too long", name);
    if (tappd_listen_mode(l, &m) < 0)
      return conftab_error(err, errlen, "[%s] mode: expected octal permission bits like \"0666\"",
                           name);
    return 0;
  }
  /* TCP: an IPv4 or IPv6 literal (names are not resolved). */
  for (const char *p = l->address; *p; p++)
    if (!strchr("0123456789abcdefABCDEF.:", *p))
      return conftab_error(err, errlen, "[%s] address: '%s' is not an IP address or unix:/path",
                           name, l->address);
  return 0;
}

int tappd_config_check(const struct tappd_config *c, char *err, size_t errlen) {
  int r;
  if ((r = check_listen("internal", &c->internal, err, errlen)) < 0 ||
      (r = check_listen("dstack", &c->dstack, err, errlen)) < 0 ||
      (r = check_listen("external", &c->external, err, errlen)) < 0 ||
      (r = check_listen("external-https", &c->external_https, err, errlen)) < 0)
    return r;
  if (!str_isempty(c->tee) && !str_eq(c->tee, "tdx") && !str_eq(c->tee, "sim") &&
      !str_eq(c->tee, "hostch"))
    return conftab_error(err, errlen,
                         "[default.core] tee: expected \"tdx\", \"sim\", \"hostch\" or \"\" "
                         "(auto)");
  if (str_eq_ptr(c->tee, "sim") && str_isempty(c->sim_dir))
    return conftab_error(err, errlen, "[default.core] tee = \"sim\" needs sim_dir");
  if (str_isempty(c->keys_file) && (str_isempty(c->cert_file) || str_isempty(c->key_file)))
    return conftab_error(err, errlen, "[default.core] needs keys_file or cert_file + key_file");
  if (c->max_body < 1024 || c->max_body > ((uint64_t)1 << 30))
    return conftab_error(err, errlen, "[default] max_body: must be 1 KiB .. 1 GiB");
  if (c->max_header < 1024 || c->max_header > ((uint64_t)16 << 20))
    return conftab_error(err, errlen, "[default] max_header: must be 1 KiB .. 16 MiB");
  if (c->max_conns == 0)
    return conftab_error(err, errlen, "[default] max_conns: must be > 0");
  if (c->max_conns_per_source == 0)
    return conftab_error(err, errlen, "[default] max_conns_per_source: must be > 0");
  if (c->handshake_timeout == 0)
    return conftab_error(err, errlen, "[default] handshake_timeout: must be > 0");
  if (c->request_timeout == 0)
    return conftab_error(err, errlen, "[default] request_timeout: must be > 0");
  bool tls_any = !str_isempty(c->tls_key) || !str_isempty(c->tls_certs);
  bool tls_all = !str_isempty(c->tls_key) && !str_isempty(c->tls_certs);
  if (tls_any && !tls_all)
    return conftab_error(err, errlen, "[external-https.tls] needs both key and certs");
  if (str_isempty(c->internal.address) && str_isempty(c->dstack.address) &&
      str_isempty(c->external.address) && !tls_all)
    return conftab_error(err, errlen, "no listener configured");
  return 0;
}

int tappd_config_dump(const struct tappd_config *c, struct buf *out) {
  return conftab_dump(&table, c, 0, out);
}
