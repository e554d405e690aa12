/* kms.toml: one table of options drives the defaults, the parser and --dump-config. */
#include "kms_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "attest/dcap.h"
#include "base/conftab.h"
#include "base/hex.h"
#include "base/str.h"

#define CFG struct kms_config

#define POLICY_OPTS(sec, p)                                                                        \
  CONFTAB_BOOL(CFG, sec, "allow_all", p.allow_all, false),                                         \
      CONFTAB_HEXV(CFG, sec, "mrtd", p.mrtd, "", 48),                                              \
      CONFTAB_HEXV(CFG, sec, "rtmr0", p.rtmr0, "", 48),                                            \
      CONFTAB_HEXV(CFG, sec, "rtmr1", p.rtmr1, "", 48),                                            \
      CONFTAB_HEXV(CFG, sec, "rtmr2", p.rtmr2, "", 48),                                            \
      CONFTAB_HEXV(CFG, sec, "compose_hashes", p.compose_hashes, "", 32),                          \
      CONFTAB_HEXV(CFG, sec, "app_ids", p.app_ids, "", 0),                                         \
      CONFTAB_STRV(CFG, sec, "tcb_statuses", p.tcb_statuses, "UpToDate"),                          \
      CONFTAB_U32(CFG, sec, "out_of_date_grace_days", p.out_of_date_grace_days, 0),                \
      CONFTAB_BOOL(CFG, sec, "allow_simulator", p.allow_simulator, false)

#define CERTS "/etc/kms/certs/"

static const struct conftab_opt opts[] = {
    CONFTAB_STR(CFG, "", "address", address, "0.0.0.0"),
    CONFTAB_U16(CFG, "", "port", port, 8043),
    CONFTAB_STR(CFG, "", "log_level", log_level, "normal"),
    CONFTAB_U32(CFG, "", "max_conns", max_conns, 1024),
    CONFTAB_U32(CFG, "", "max_conns_per_source", max_conns_per_source, 128),
    CONFTAB_U32(CFG, "", "request_timeout", request_timeout, 30),
    CONFTAB_U32(CFG, "", "handshake_timeout", handshake_timeout, 5),
    CONFTAB_STR(CFG, "tls", "key", tls_key, CERTS "rpc.key"),
    CONFTAB_STR(CFG, "tls", "certs", tls_certs, CERTS "rpc.crt"),
    CONFTAB_BOOL(CFG, "tls", "ra_tls", tls_ra, false),
    CONFTAB_STRV(CFG, "tls", "alt_names", tls_alt_names, ""),
    CONFTAB_STR(CFG, "tls.mutual", "ca_certs", mutual_ca_certs, CERTS "tmp-ca.cert"),
    CONFTAB_BOOL(CFG, "tls.mutual", "mandatory", mutual_mandatory, false),
    CONFTAB_STR(CFG, "core", "root_ca_cert", root_ca_cert, CERTS "root-ca.cert"),
    CONFTAB_STR(CFG, "core", "root_ca_key", root_ca_key, CERTS "root-ca.key"),
    CONFTAB_STR(CFG, "core", "k256_key", k256_key, CERTS "root-k256.key"),
    CONFTAB_STR(CFG, "core", "tmp_ca_cert", tmp_ca_cert, CERTS "tmp-ca.cert"),
    CONFTAB_STR(CFG, "core", "tmp_ca_key", tmp_ca_key, CERTS "tmp-ca.key"),
    CONFTAB_STR(CFG, "core", "subject_postfix", subject_postfix, ".local"),
    CONFTAB_STR(CFG, "core", "gateway_app_id", gateway_app_id, ""),
    CONFTAB_STR(CFG, "core", "tee", tee, ""),
    CONFTAB_STR(CFG, "core", "sim_dir", sim_dir, ""),
    CONFTAB_BOOL(CFG, "core", "dev", dev, false),
    CONFTAB_STR(CFG, "core.quote", "pccs_url", pccs_url, ""),
    CONFTAB_STR(CFG, "core.quote", "cache_dir", cache_dir, ""),
    CONFTAB_STR(CFG, "core.quote", "simulator_dir", simulator_dir, ""),
    CONFTAB_BOOL(CFG, "core.quote", "allow_seed_event_log", allow_seed_event_log, false),
    POLICY_OPTS("core.allowed_mr", apps),
    CONFTAB_BOOL(CFG, "core.onboard", "enabled", onboard_enabled, false),
    POLICY_OPTS("core.onboard.allowed_mr", onboard),
};

static const struct conftab table = {opts, ARRAY_SIZE(opts)};

const struct conftab *kms_config_table(void) {
  return &table;
}

int kms_config_init(struct kms_config *c) {
  memset(c, 0, sizeof(*c));
  int r = conftab_defaults(&table, c);
  if (r < 0)
    kms_config_free(c);
  return r;
}

static int set_path(char **dst, const char *dir, const char *name) {
  char *p = str_printf("%s/%s", dir, name);
  if (!p)
    return -ENOMEM;
  free(*dst);
  *dst = p;
  return 0;
}

static int set_hex1(char ***dst, const uint8_t *v, size_t len) {
  char *h = hex_encode_alloc(v, len);
  if (!h)
    return -ENOMEM;
  char **l = NULL;
  int r = strv_push(&l, h);
  if (r < 0)
    return r;
  return conftab_set_strv(dst, l);
}

static int policy_dev(struct kms_policy *p, const uint8_t mrtd[48], const uint8_t rtmr[3][48]) {
  int r;
  if ((r = set_hex1(&p->mrtd, mrtd, 48)) < 0 || (r = set_hex1(&p->rtmr0, rtmr[0], 48)) < 0 ||
      (r = set_hex1(&p->rtmr1, rtmr[1], 48)) < 0 || (r = set_hex1(&p->rtmr2, rtmr[2], 48)) < 0)
    return r;
  p->allow_simulator = true;
  return 0;
}

int kms_config_init_dev(struct kms_config *c, const char *dir, const char *sim_dir,
                        const uint8_t mrtd[48], const uint8_t rtmr[3][48]) {
  int r = kms_config_init(c);
  if (r < 0)
    return r;
  c->port = 0;
  c->tls_ra = true;
  c->dev = true;
  c->onboard_enabled = true;
  c->allow_seed_event_log = true;
  if ((r = conftab_set_str(&c->address, "127.0.0.1")) < 0 ||
      (r = conftab_set_str(&c->tls_key, "")) < 0 || (r = conftab_set_str(&c->tls_certs, "")) < 0 ||
      (r = set_path(&c->mutual_ca_certs, dir, "tmp-ca.cert")) < 0 ||
      (r = set_path(&c->root_ca_cert, dir, "root-ca.cert")) < 0 ||
      (r = set_path(&c->root_ca_key, dir, "root-ca.key")) < 0 ||
      (r = set_path(&c->k256_key, dir, "root-k256.key")) < 0 ||
      (r = set_path(&c->tmp_ca_cert, dir, "tmp-ca.cert")) < 0 ||
      (r = set_path(&c->tmp_ca_key, dir, "tmp-ca.key")) < 0 ||
      (r = conftab_set_str(&c->tee, "sim")) < 0 ||
      (r = conftab_set_str(&c->sim_dir, sim_dir)) < 0 ||
      (r = conftab_set_str(&c->simulator_dir, sim_dir)) < 0 ||
      (r = policy_dev(&c->apps, mrtd, rtmr)) < 0 || (r = policy_dev(&c->onboard, mrtd, rtmr)) < 0)
    goto fail;
  return 0;
fail:
  kms_config_free(c);
  return r;
}

void kms_config_free(struct kms_config *c) {
  conftab_free(&table, c);
}

int kms_config_apply(struct kms_config *c, const char *text, size_t len, char *err, size_t errlen) {
  return conftab_load_text(&table, c, text, len, err, errlen);
}

int kms_config_apply_file(struct kms_config *c, const char *path, char *err, size_t errlen) {
  return conftab_load_file(&table, c, path, err, errlen);
}

bool kms_config_uses_simulator(const struct kms_config *c) {
  return c->apps.allow_simulator || c->onboard.allow_simulator;
}

static int check_policy(const char *sec, const struct kms_policy *p, char *err, size_t errlen) {
  for (size_t i = 0; p->tcb_statuses && p->tcb_statuses[i]; i++) {
    enum dcap_status s;
    if (dcap_status_from_name(p->tcb_statuses[i], &s) < 0)
      return conftab_error(err, errlen, "[%s] tcb_statuses: unknown TCB status '%s'", sec,
                           p->tcb_statuses[i]);
    if (s == DCAP_STATUS_REVOKED)
      return conftab_error(err, errlen, "[%s] tcb_statuses: Revoked can never be accepted", sec);
  }
  if (p->out_of_date_grace_days > 3650)
    return conftab_error(err, errlen, "[%s] out_of_date_grace_days: at most 3650", sec);
  return 0;
}

static bool is_ip_literal(const char *s) {
  if (str_isempty(s))
    return false;
  for (const char *p = s; *p; p++)
    if (!strchr("0123456789abcdefABCDEF.:", *p))
      return false;
  return true;
}

int kms_config_check(const struct kms_config *c, char *err, size_t errlen) {
  int r;
  if (!is_ip_literal(c->address))
    return conftab_error(err, errlen, "address: '%s' is not an IP address", c->address);
  if (c->max_conns == 0)
    return conftab_error(err, errlen, "max_conns: must be > 0");
  if (c->max_conns_per_source == 0)
    return conftab_error(err, errlen, "max_conns_per_source: must be > 0");
  if (c->request_timeout == 0)
    return conftab_error(err, errlen, "request_timeout: must be > 0");
  if (c->handshake_timeout == 0)
    return conftab_error(err, errlen, "handshake_timeout: must be > 0");
  if (!c->tls_ra && (str_isempty(c->tls_key) || str_isempty(c->tls_certs)))
    return conftab_error(err, errlen, "[tls] needs key and certs, or ra_tls = true");
  for (size_t i = 0; c->tls_alt_names && c->tls_alt_names[i]; i++)
    if (str_isempty(c->tls_alt_names[i]) || strlen(c->tls_alt_names[i]) > 253 ||
        !str_is_printable_ascii(c->tls_alt_names[i]) || strchr(c->tls_alt_names[i], ' '))
      return conftab_error(err, errlen, "[tls] alt_names: bad name '%s'", c->tls_alt_names[i]);
  if (c->mutual_mandatory && str_isempty(c->mutual_ca_certs))
    return conftab_error(err, errlen, "[tls.mutual] mandatory needs ca_certs");
  const char *need[][2] = {{"root_ca_cert", c->root_ca_cert},
                           {"root_ca_key", c->root_ca_key},
                           {"k256_key", c->k256_key},
                           {"tmp_ca_cert", c->tmp_ca_cert},
                           {"tmp_ca_key", c->tmp_ca_key}};
  for (size_t i = 0; i < ARRAY_SIZE(need); i++)
    if (str_isempty(need[i][1]))
      return conftab_error(err, errlen, "[core] %s: a file path is required", need[i][0]);
  if (!str_isempty(c->tee) && !str_eq(c->tee, "tdx") && !str_eq(c->tee, "sim"))
    return conftab_error(err, errlen, "[core] tee: expected \"tdx\", \"sim\" or \"\" (auto)");
  if (str_eq_ptr(c->tee, "sim") && str_isempty(c->sim_dir))
    return conftab_error(err, errlen, "[core] tee = \"sim\" needs sim_dir");
  if (!str_isempty(c->pccs_url) && !str_startswith(c->pccs_url, "http://") &&
      !str_startswith(c->pccs_url, "https://"))
    return conftab_error(err, errlen, "[core.quote] pccs_url: expected an http(s) URL");
  if (kms_config_uses_simulator(c) && str_isempty(c->simulator_dir))
    return conftab_error(err, errlen,
                         "allow_simulator needs [core.quote] simulator_dir (the simulated "
                         "platform to trust)");
  if ((r = check_policy("core.allowed_mr", &c->apps, err, errlen)) < 0 ||
      (r = check_policy("core.onboard.allowed_mr", &c->onboard, err, errlen)) < 0)
    return r;
  return 0;
}

int kms_config_dump(const struct kms_config *c, struct buf *out) {
  return conftab_dump(&table, c, 0, out);
}
