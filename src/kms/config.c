/* kms.toml: one table of options drives the defaults, the parser and --dump-config. */
#include "kms_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "attest/dcap.h"
#include "base/hex.h"
#include "base/str.h"
#include "base/toml.h"

enum opt_type {
  OPT_STR,
  OPT_U16,
  OPT_U32,
  OPT_BOOL,
  OPT_STRV,
  OPT_HEXV, /* array of hex strings, lowercased; hexlen bytes each (0: 1..64 bytes) */
};

struct opt {
  const char *section; /* dotted table path; "" = top level */
  const char *key;
  enum opt_type type;
  size_t offset;
  const char *def; /* default as text; STRV/HEXV: comma-separated */
  size_t hexlen;
};

#define O(field) offsetof(struct kms_config, field)

#define POLICY_OPTS(sec, p)                                                                        \
  {sec, "allow_all", OPT_BOOL, O(p.allow_all), "false", 0},                                        \
      {sec, "mrtd", OPT_HEXV, O(p.mrtd), "", 48}, {sec, "rtmr0", OPT_HEXV, O(p.rtmr0), "", 48},    \
      {sec, "rtmr1", OPT_HEXV, O(p.rtmr1), "", 48}, {sec, "rtmr2", OPT_HEXV, O(p.rtmr2), "", 48},  \
      {sec, "compose_hashes", OPT_HEXV, O(p.compose_hashes), "", 32},                              \
      {sec, "app_ids", OPT_HEXV, O(p.app_ids), "", 0},                                             \
      {sec, "tcb_statuses", OPT_STRV, O(p.tcb_statuses), "UpToDate", 0},                           \
      {sec, "out_of_date_grace_days", OPT_U32, O(p.out_of_date_grace_days), "0", 0},               \
      {sec, "allow_simulator", OPT_BOOL, O(p.allow_simulator), "false", 0}

#define CERTS "/etc/kms/certs/"

static const struct opt opts[] = {
    {"", "address", OPT_STR, O(address), "0.0.0.0", 0},
    {"", "port", OPT_U16, O(port), "8043", 0},
    {"", "log_level", OPT_STR, O(log_level), "normal", 0},
    {"", "max_conns", OPT_U32, O(max_conns), "1024", 0},
    {"", "request_timeout", OPT_U32, O(request_timeout), "30", 0},
    {"tls", "key", OPT_STR, O(tls_key), CERTS "rpc.key", 0},
    {"tls", "certs", OPT_STR, O(tls_certs), CERTS "rpc.crt", 0},
    {"tls", "ra_tls", OPT_BOOL, O(tls_ra), "false", 0},
    {"tls", "alt_names", OPT_STRV, O(tls_alt_names), "", 0},
    {"tls.mutual", "ca_certs", OPT_STR, O(mutual_ca_certs), CERTS "tmp-ca.cert", 0},
    {"tls.mutual", "mandatory", OPT_BOOL, O(mutual_mandatory), "false", 0},
    {"core", "root_ca_cert", OPT_STR, O(root_ca_cert), CERTS "root-ca.cert", 0},
    {"core", "root_ca_key", OPT_STR, O(root_ca_key), CERTS "root-ca.key", 0},
    {"core", "k256_key", OPT_STR, O(k256_key), CERTS "root-k256.key", 0},
    {"core", "tmp_ca_cert", OPT_STR, O(tmp_ca_cert), CERTS "tmp-ca.cert", 0},
    {"core", "tmp_ca_key", OPT_STR, O(tmp_ca_key), CERTS "tmp-ca.key", 0},
    {"core", "subject_postfix", OPT_STR, O(subject_postfix), ".local", 0},
    {"core", "gateway_app_id", OPT_STR, O(gateway_app_id), "", 0},
    {"core", "tee", OPT_STR, O(tee), "", 0},
    {"core", "sim_dir", OPT_STR, O(sim_dir), "", 0},
    {"core", "dev", OPT_BOOL, O(dev), "false", 0},
    {"core.quote", "pccs_url", OPT_STR, O(pccs_url), "", 0},
    {"core.quote", "cache_dir", OPT_STR, O(cache_dir), "", 0},
    {"core.quote", "simulator_dir", OPT_STR, O(simulator_dir), "", 0},
    POLICY_OPTS("core.allowed_mr", apps),
    {"core.onboard", "enabled", OPT_BOOL, O(onboard_enabled), "false", 0},
    POLICY_OPTS("core.onboard.allowed_mr", onboard),
};

static const char *const sections[] = {"tls",        "tls.mutual",       "core",
                                       "core.quote", "core.allowed_mr", "core.onboard",
                                       "core.onboard.allowed_mr"};

static void *field(struct kms_config *c, const struct opt *o) {
  return (char *)c + o->offset;
}
static const void *cfield(const struct kms_config *c, const struct opt *o) {
  return (const char *)c + o->offset;
}

static bool is_list(enum opt_type t) {
  return t == OPT_STRV || t == OPT_HEXV;
}

static int set_str(char **dst, const char *v) {
  char *n = strdup(v);
  if (!n)
    return -ENOMEM;
  free(*dst);
  *dst = n;
  return 0;
}

static int set_strv(char ***dst, char **l) {
  if (!l && (l = calloc(1, sizeof(char *))) == NULL)
    return -ENOMEM;
  strv_free(*dst);
  *dst = l;
  return 0;
}

static int set_default(struct kms_config *c, const struct opt *o) {
  void *f = field(c, o);
  uint64_t v;
  switch (o->type) {
  case OPT_STR:
    return set_str((char **)f, o->def);
  case OPT_U16:
  case OPT_U32:
    if (str_to_u64(o->def, &v) < 0)
      return -EINVAL;
    if (o->type == OPT_U16)
      *(uint16_t *)f = (uint16_t)v;
    else
      *(uint32_t *)f = (uint32_t)v;
    return 0;
  case OPT_BOOL:
    *(bool *)f = str_eq(o->def, "true");
    return 0;
  case OPT_STRV:
  case OPT_HEXV: {
    char **l = NULL;
    int r = str_split(o->def, ",", true, &l);
    if (r < 0)
      return r;
    return set_strv((char ***)f, l);
  }
  }
  return -EINVAL;
}

int kms_config_init(struct kms_config *c) {
  memset(c, 0, sizeof(*c));
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
    int r = set_default(c, &opts[i]);
    if (r < 0) {
      kms_config_free(c);
      return r;
    }
  }
  return 0;
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
  return set_strv(dst, l);
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
  if ((r = set_str(&c->address, "127.0.0.1")) < 0 || (r = set_str(&c->tls_key, "")) < 0 ||
      (r = set_str(&c->tls_certs, "")) < 0 ||
      (r = set_path(&c->mutual_ca_certs, dir, "tmp-ca.cert")) < 0 ||
      (r = set_path(&c->root_ca_cert, dir, "root-ca.cert")) < 0 ||
      (r = set_path(&c->root_ca_key, dir, "root-ca.key")) < 0 ||
      (r = set_path(&c->k256_key, dir, "root-k256.key")) < 0 ||
      (r = set_path(&c->tmp_ca_cert, dir, "tmp-ca.cert")) < 0 ||
      (r = set_path(&c->tmp_ca_key, dir, "tmp-ca.key")) < 0 || (r = set_str(&c->tee, "sim")) < 0 ||
      (r = set_str(&c->sim_dir, sim_dir)) < 0 || (r = set_str(&c->simulator_dir, sim_dir)) < 0 ||
      (r = policy_dev(&c->apps, mrtd, rtmr)) < 0 || (r = policy_dev(&c->onboard, mrtd, rtmr)) < 0)
    goto fail;
  return 0;
fail:
  kms_config_free(c);
  return r;
}

void kms_config_free(struct kms_config *c) {
  if (!c)
    return;
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
    void *f = field(c, &opts[i]);
    if (opts[i].type == OPT_STR) {
      free(*(char **)f);
      *(char **)f = NULL;
    } else if (is_list(opts[i].type)) {
      strv_free(*(char ***)f);
      *(char ***)f = NULL;
    }
  }
}

_printf_(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static bool is_section(const char *s) {
  for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
    if (str_eq(sections[i], s))
      return true;
  return false;
}

static const struct opt *find_opt(const char *section, const char *key) {
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
    if (str_eq(opts[i].section, section) && str_eq(opts[i].key, key))
      return &opts[i];
  return NULL;
}

static const char *where(const struct opt *o, char *buf, size_t n) {
  if (o->section[0])
    snprintf(buf, n, "[%s] %s", o->section, o->key);
  else
    snprintf(buf, n, "%s", o->key);
  return buf;
}

/* A hex value of an OPT_HEXV list: even length, 2*hexlen chars (or 2..128 when hexlen is 0),
 * optional 0x; lowercased copy in *ret. */
static int hex_item(const struct opt *o, const char *s, char **ret) {
  if (str_startswith(s, "0x") || str_startswith(s, "0X"))
    s += 2;
  size_t n = strlen(s);
  if (n == 0 || n % 2 || (o->hexlen && n != 2 * o->hexlen) || (!o->hexlen && n > 128))
    return -EINVAL;
  for (const char *p = s; *p; p++)
    if (!strchr("0123456789abcdefABCDEF", *p))
      return -EINVAL;
  char *c = strdup(s);
  if (!c)
    return -ENOMEM;
  *ret = str_ascii_lower(c);
  return 0;
}

static int apply_value(struct kms_config *c, const struct opt *o, const struct toml_value *v,
                       char *err, size_t errlen) {
  void *f = field(c, o);
  char w[96];
  int64_t i;
  const char *s;
  size_t slen;
  switch (o->type) {
  case OPT_STR:
    if (toml_value_string(v, &s, &slen) < 0 || strlen(s) != slen)
      return fail(err, errlen, "%s: expected a string", where(o, w, sizeof(w)));
    return set_str((char **)f, s);
  case OPT_BOOL:
    if (toml_value_bool(v, (bool *)f) < 0)
      return fail(err, errlen, "%s: expected a boolean", where(o, w, sizeof(w)));
    return 0;
  case OPT_U16:
  case OPT_U32: {
    uint64_t max = o->type == OPT_U32 ? UINT32_MAX : UINT16_MAX;
    if (toml_value_int(v, &i) < 0 || i < 0 || (uint64_t)i > max)
      return fail(err, errlen, "%s: expected an integer 0..%llu", where(o, w, sizeof(w)),
                  (unsigned long long)max);
    if (o->type == OPT_U32)
      *(uint32_t *)f = (uint32_t)i;
    else
      *(uint16_t *)f = (uint16_t)i;
    return 0;
  }
  case OPT_STRV:
  case OPT_HEXV: {
    if (toml_type(v) != TOML_ARRAY)
      return fail(err, errlen, "%s: expected an array of strings", where(o, w, sizeof(w)));
    _cleanup_strv_free_ char **l = NULL;
    for (size_t k = 0; k < toml_array_len(v); k++) {
      if (toml_value_string(toml_array_at(v, k), &s, &slen) < 0 || strlen(s) != slen)
        return fail(err, errlen, "%s: expected an array of strings", where(o, w, sizeof(w)));
      int r;
      if (o->type == OPT_HEXV) {
        char *h = NULL;
        r = hex_item(o, s, &h);
        if (r == -EINVAL) {
          if (o->hexlen)
            return fail(err, errlen, "%s: item %zu: expected %zu hex characters",
                        where(o, w, sizeof(w)), k, 2 * o->hexlen);
          return fail(err, errlen, "%s: item %zu: expected hex (1..64 bytes)",
                      where(o, w, sizeof(w)), k);
        }
        if (r >= 0)
          r = strv_push(&l, h);
      } else {
        r = strv_push_dup(&l, s);
      }
      if (r < 0)
        return r;
    }
    return set_strv((char ***)f, TAKE_PTR(l));
  }
  }
  return -EINVAL;
}

static int apply_table(struct kms_config *c, const char *section, const struct toml_value *t,
                       char *err, size_t errlen) {
  for (size_t i = 0; i < toml_table_len(t); i++) {
    const char *key = toml_table_key_at(t, i);
    const struct toml_value *v = toml_table_value_at(t, i);
    if (toml_type(v) == TOML_TABLE) {
      _cleanup_free_ char *sub = section[0] ? str_printf("%s.%s", section, key) : strdup(key);
      if (!sub)
        return -ENOMEM;
      if (!is_section(sub))
        return fail(err, errlen, "unknown table [%s]", sub);
      int r = apply_table(c, sub, v, err, errlen);
      if (r < 0)
        return r;
      continue;
    }
    const struct opt *o = find_opt(section, key);
    if (!o) {
      if (section[0])
        return fail(err, errlen, "unknown key '%s' in [%s]", key, section);
      return fail(err, errlen, "unknown top-level key '%s'", key);
    }
    int r = apply_value(c, o, v, err, errlen);
    if (r < 0)
      return r;
  }
  return 0;
}

int kms_config_apply(struct kms_config *c, const char *text, size_t len, char *err, size_t errlen) {
  _cleanup_toml_ struct toml_value *root = NULL;
  struct toml_error te = {0};
  int r = toml_parse(text, len, &root, &te);
  if (r < 0) {
    if (err && errlen)
      snprintf(err, errlen, "line %u:%u: %s", te.line, te.col, te.msg);
    return r;
  }
  return apply_table(c, "", root, err, errlen);
}

int kms_config_apply_file(struct kms_config *c, const char *path, char *err, size_t errlen) {
  _cleanup_toml_ struct toml_value *root = NULL;
  struct toml_error te = {0};
  int r = toml_parse_file(path, &root, &te);
  if (r < 0) {
    if (err && errlen) {
      if (te.line)
        snprintf(err, errlen, "%s:%u:%u: %s", path, te.line, te.col, te.msg);
      else
        snprintf(err, errlen, "%s: %s", path, te.msg[0] ? te.msg : strerror(-r));
    }
    return r;
  }
  r = apply_table(c, "", root, err, errlen);
  if (r < 0 && err && errlen) {
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
    snprintf(err, errlen, "%s", tmp);
  }
  return r;
}

bool kms_config_uses_simulator(const struct kms_config *c) {
  return c->apps.allow_simulator || c->onboard.allow_simulator;
}

static int check_policy(const char *sec, const struct kms_policy *p, char *err, size_t errlen) {
  for (size_t i = 0; p->tcb_statuses && p->tcb_statuses[i]; i++) {
    enum dcap_status s;
    if (dcap_status_from_name(p->tcb_statuses[i], &s) < 0)
      return fail(err, errlen, "[%s] tcb_statuses: unknown TCB status '%s'", sec,
                  p->tcb_statuses[i]);
    if (s == DCAP_STATUS_REVOKED)
      return fail(err, errlen, "[%s] tcb_statuses: Revoked can never be accepted", sec);
  }
  if (p->out_of_date_grace_days > 3650)
    return fail(err, errlen, "[%s] out_of_date_grace_days: at most 3650", sec);
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
    return fail(err, errlen, "address: '%s' is not an IP address", c->address);
  if (c->max_conns == 0)
    return fail(err, errlen, "max_conns: must be > 0");
  if (c->request_timeout == 0)
    return fail(err, errlen, "request_timeout: must be > 0");
  if (!c->tls_ra && (str_isempty(c->tls_key) || str_isempty(c->tls_certs)))
    return fail(err, errlen, "[tls] needs key and certs, or ra_tls = true");
  for (size_t i = 0; c->tls_alt_names && c->tls_alt_names[i]; i++)
    if (str_isempty(c->tls_alt_names[i]) || strlen(c->tls_alt_names[i]) > 253 ||
        !str_is_printable_ascii(c->tls_alt_names[i]) || strchr(c->tls_alt_names[i], ' '))
      return fail(err, errlen, "[tls] alt_names: bad name '%s'", c->tls_alt_names[i]);
  if (c->mutual_mandatory && str_isempty(c->mutual_ca_certs))
    return fail(err, errlen, "[tls.mutual] mandatory needs ca_certs");
  const char *need[][2] = {{"root_ca_cert", c->root_ca_cert}, {"root_ca_key", c->root_ca_key},
                           {"k256_key", c->k256_key},         {"tmp_ca_cert", c->tmp_ca_cert},
                           {"tmp_ca_key", c->tmp_ca_key}};
  for (size_t i = 0; i < ARRAY_SIZE(need); i++)
    if (str_isempty(need[i][1]))
      return fail(err, errlen, "[core] %s: a file path is required", need[i][0]);
  if (!str_isempty(c->tee) && !str_eq(c->tee, "tdx") && !str_eq(c->tee, "sim"))
    return fail(err, errlen, "[core] tee: expected \"tdx\", \"sim\" or \"\" (auto)");
  if (str_eq_ptr(c->tee, "sim") && str_isempty(c->sim_dir))
    return fail(err, errlen, "[core] tee = \"sim\" needs sim_dir");
  if (!str_isempty(c->pccs_url) && !str_startswith(c->pccs_url, "http://") &&
      !str_startswith(c->pccs_url, "https://"))
    return fail(err, errlen, "[core.quote] pccs_url: expected an http(s) URL");
  if (kms_config_uses_simulator(c) && str_isempty(c->simulator_dir))
    return fail(err, errlen, "allow_simulator needs [core.quote] simulator_dir (the simulated "
                             "platform to trust)");
  if ((r = check_policy("core.allowed_mr", &c->apps, err, errlen)) < 0 ||
      (r = check_policy("core.onboard.allowed_mr", &c->onboard, err, errlen)) < 0)
    return r;
  return 0;
}

static int dump_section_header(struct buf *out, const char *section) {
  _cleanup_strv_free_ char **parts = NULL;
  int r = buf_append_str(out, "\n[");
  if (r >= 0)
    r = str_split(section, ".", false, &parts);
  for (size_t k = 0; r >= 0 && parts[k]; k++) {
    if (k)
      r = buf_append_u8(out, '.');
    if (r >= 0)
      r = toml_append_key(out, parts[k]);
  }
  if (r >= 0)
    r = buf_append_str(out, "]\n");
  return r;
}

int kms_config_dump(const struct kms_config *c, struct buf *out) {
  const char *cur = "";
  int r = 0;
  for (size_t i = 0; i < ARRAY_SIZE(opts) && r >= 0; i++) {
    const struct opt *o = &opts[i];
    const void *f = cfield(c, o);
    if (!str_eq(cur, o->section)) {
      r = dump_section_header(out, o->section);
      cur = o->section;
    }
    if (r >= 0)
      r = toml_append_key(out, o->key);
    if (r >= 0)
      r = buf_append_str(out, " = ");
    if (r < 0)
      break;
    switch (o->type) {
    case OPT_STR:
      r = toml_append_string(out, *(char *const *)f ? *(char *const *)f : "");
      break;
    case OPT_BOOL:
      r = buf_append_str(out, *(const bool *)f ? "true" : "false");
      break;
    case OPT_U16:
      r = buf_printf(out, "%u", (unsigned)*(const uint16_t *)f);
      break;
    case OPT_U32:
      r = buf_printf(out, "%u", *(const uint32_t *)f);
      break;
    case OPT_STRV:
    case OPT_HEXV: {
      char *const *l = *(char **const *)f;
      r = buf_append_u8(out, '[');
      for (size_t k = 0; r >= 0 && l && l[k]; k++) {
        if (k)
          r = buf_append_str(out, ", ");
        if (r >= 0)
          r = toml_append_string(out, l[k]);
      }
      if (r >= 0)
        r = buf_append_u8(out, ']');
      break;
    }
    }
    if (r >= 0)
      r = buf_append_u8(out, '\n');
  }
  return r < 0 ? r : 0;
}
