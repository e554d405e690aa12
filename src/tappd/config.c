/* tappd.toml: one table of options drives the defaults, the parser and --dump-config. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/str.h"
#include "base/toml.h"

enum opt_type {
  OPT_STR,
  OPT_U32,
  OPT_U16,
  OPT_SIZE,
  OPT_STRV,
  OPT_TRIBOOL, /* stored as "", "true", "false" */
};

struct opt {
  const char *section; /* dotted table path */
  const char *key;
  enum opt_type type;
  size_t offset;
  const char *def; /* default as text ("" for none); STRV: comma-separated */
};

#define O(field) offsetof(struct tappd_config, field)

static const struct opt opts[] = {
    {"default", "workers", OPT_U32, O(workers), "8"},
    {"default", "max_blocking", OPT_U32, O(max_blocking), "64"},
    {"default", "ident", OPT_STR, O(ident), "Tappd Server"},
    {"default", "keep_alive", OPT_U32, O(keep_alive), "10"},
    {"default", "log_level", OPT_STR, O(log_level), "normal"},
    {"default", "max_body", OPT_SIZE, O(max_body), "10485760"},
    {"default", "max_header", OPT_SIZE, O(max_header), "65536"},
    {"default", "request_timeout", OPT_U32, O(request_timeout), "30"},
    {"default", "max_conns", OPT_U32, O(max_conns), "1024"},
    {"default.core", "keys_file", OPT_STR, O(keys_file), "/dstack/.host-shared/.appkeys.json"},
    {"default.core", "cert_file", OPT_STR, O(cert_file), "/etc/tappd/app-ca.cert"},
    {"default.core", "key_file", OPT_STR, O(key_file), "/etc/tappd/app-ca.key"},
    {"default.core", "compose_file", OPT_STR, O(compose_file),
     "/dstack/.host-shared/app-compose.json"},
    {"default.core", "sys_config_file", OPT_STR, O(sys_config_file),
     "/dstack/.host-shared/.sys-config.json"},
    {"default.core", "public_logs", OPT_TRIBOOL, O(public_logs), ""},
    {"default.core", "public_sysinfo", OPT_TRIBOOL, O(public_sysinfo), ""},
    {"default.core", "public_tcbinfo", OPT_TRIBOOL, O(public_tcbinfo), ""},
    {"default.core", "docker_socket", OPT_STR, O(docker_socket), "/var/run/docker.sock"},
    {"default.core", "tee", OPT_STR, O(tee), ""},
    {"default.core", "sim_dir", OPT_STR, O(sim_dir), ""},
    {"default.core", "ccel_file", OPT_STR, O(ccel_file), "/sys/firmware/acpi/tables/data/CCEL"},
    {"default.core", "data_disks", OPT_STRV, O(data_disks), "/"},
    {"internal", "address", OPT_STR, O(internal.address), "unix:/var/run/tappd.sock"},
    {"internal", "port", OPT_U16, O(internal.port), "0"},
    {"internal", "mode", OPT_STR, O(internal.mode), "0666"},
    {"dstack", "address", OPT_STR, O(dstack.address), "unix:/var/run/dstack.sock"},
    {"dstack", "port", OPT_U16, O(dstack.port), "0"},
    {"dstack", "mode", OPT_STR, O(dstack.mode), "0666"},
    {"external", "address", OPT_STR, O(external.address), "0.0.0.0"},
    {"external", "port", OPT_U16, O(external.port), "8090"},
    {"external", "mode", OPT_STR, O(external.mode), "0666"},
    {"external-https", "address", OPT_STR, O(external_https.address), "0.0.0.0"},
    {"external-https", "port", OPT_U16, O(external_https.port), "8043"},
    {"external-https", "mode", OPT_STR, O(external_https.mode), "0666"},
    {"external-https.tls", "key", OPT_STR, O(tls_key), ""},
    {"external-https.tls", "certs", OPT_STR, O(tls_certs), ""},
};

/* Tables and the sub-tables each may hold. */
static const char *const sections[] = {"default",  "default.core",   "internal",          "dstack",
                                       "external", "external-https", "external-https.tls"};

static void *field(struct tappd_config *c, const struct opt *o) {
  return (char *)c + o->offset;
}
static const void *cfield(const struct tappd_config *c, const struct opt *o) {
  return (const char *)c + o->offset;
}

static int set_str(char **dst, const char *v) {
  char *n = strdup(v);
  if (!n)
    return -ENOMEM;
  free(*dst);
  *dst = n;
  return 0;
}

static int set_default(struct tappd_config *c, const struct opt *o) {
  void *f = field(c, o);
  uint64_t v;
  switch (o->type) {
  case OPT_STR:
  case OPT_TRIBOOL:
    return set_str((char **)f, o->def);
  case OPT_U32:
    if (str_to_u64(o->def, &v) < 0)
      return -EINVAL;
    *(uint32_t *)f = (uint32_t)v;
    return 0;
  case OPT_U16:
    if (str_to_u64(o->def, &v) < 0)
      return -EINVAL;
    *(uint16_t *)f = (uint16_t)v;
    return 0;
  case OPT_SIZE:
    return str_to_u64(o->def, (uint64_t *)f);
  case OPT_STRV: {
    char **l = NULL;
    int r = str_split(o->def, ",", true, &l);
    if (r < 0)
      return r;
    strv_free(*(char ***)f);
    *(char ***)f = l;
    return 0;
  }
  }
  return -EINVAL;
}

int tappd_config_init(struct tappd_config *c) {
  memset(c, 0, sizeof(*c));
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
    int r = set_default(c, &opts[i]);
    if (r < 0) {
      tappd_config_free(c);
      return r;
    }
  }
  return 0;
}

static int set_path(char **dst, const char *dir, const char *name) {
  char *p = str_printf("%s%s%s", dir, name[0] ? "/" : "", name);
  if (!p)
    return -ENOMEM;
  free(*dst);
  *dst = p;
  return 0;
}

int tappd_config_init_dev(struct tappd_config *c, const char *dir) {
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
  if ((r = set_str(&c->external.address, "127.0.0.1")) < 0)
    goto fail;
  c->external.port = 0;
  if ((r = set_str(&c->external_https.address, "")) < 0 ||
      (r = set_path(&c->keys_file, dir, "appkeys.json")) < 0 ||
      (r = set_path(&c->cert_file, dir, "app-ca.cert")) < 0 ||
      (r = set_path(&c->key_file, dir, "app-ca.key")) < 0 ||
      (r = set_path(&c->compose_file, dir, "app-compose.json")) < 0 ||
      (r = set_path(&c->sys_config_file, dir, "sys-config.json")) < 0 ||
      (r = set_path(&c->sim_dir, dir, "sim")) < 0 || (r = set_str(&c->tee, "sim")) < 0 ||
      (r = set_str(&c->ccel_file, "")) < 0)
    goto fail;
  return 0;
fail:
  tappd_config_free(c);
  return r;
}

void tappd_config_free(struct tappd_config *c) {
  if (!c)
    return;
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
    void *f = field(c, &opts[i]);
    if (opts[i].type == OPT_STR || opts[i].type == OPT_TRIBOOL) {
      free(*(char **)f);
      *(char **)f = NULL;
    } else if (opts[i].type == OPT_STRV) {
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

static int apply_value(struct tappd_config *c, const struct opt *o, const struct toml_value *v,
                       char *err, size_t errlen) {
  void *f = field(c, o);
  int64_t i;
  bool b;
  const char *s;
  size_t slen;
  switch (o->type) {
  case OPT_STR:
    if (toml_value_string(v, &s, &slen) < 0 || strlen(s) != slen)
      return fail(err, errlen, "%s.%s: expected a string", o->section, o->key);
    return set_str((char **)f, s);
  case OPT_TRIBOOL:
    if (toml_value_bool(v, &b) < 0)
      return fail(err, errlen, "%s.%s: expected a boolean", o->section, o->key);
    return set_str((char **)f, b ? "true" : "false");
  case OPT_U32:
  case OPT_U16: {
    uint64_t max = o->type == OPT_U32 ? UINT32_MAX : UINT16_MAX;
    if (toml_value_int(v, &i) < 0 || i < 0 || (uint64_t)i > max)
      return fail(err, errlen, "%s.%s: expected an integer 0..%llu", o->section, o->key,
                  (unsigned long long)max);
    if (o->type == OPT_U32)
      *(uint32_t *)f = (uint32_t)i;
    else
      *(uint16_t *)f = (uint16_t)i;
    return 0;
  }
  case OPT_SIZE:
    if (toml_value_int(v, &i) == 0) {
      if (i < 0)
        return fail(err, errlen, "%s.%s: negative size", o->section, o->key);
      *(uint64_t *)f = (uint64_t)i;
      return 0;
    }
    /* At most INT64_MAX, so that --dump-config writes a TOML integer that reads back. */
    uint64_t sz;
    if (toml_value_string(v, &s, &slen) == 0 && str_to_size(s, &sz) == 0 && sz <= INT64_MAX) {
      *(uint64_t *)f = sz;
      return 0;
    }
    return fail(err, errlen, "%s.%s: expected a size (bytes, or \"10MiB\")", o->section, o->key);
  case OPT_STRV: {
    if (toml_type(v) != TOML_ARRAY)
      return fail(err, errlen, "%s.%s: expected an array of strings", o->section, o->key);
    char **l = NULL;
    for (size_t k = 0; k < toml_array_len(v); k++) {
      if (toml_value_string(toml_array_at(v, k), &s, &slen) < 0 || strlen(s) != slen) {
        strv_free(l);
        return fail(err, errlen, "%s.%s: expected an array of strings", o->section, o->key);
      }
      int r = strv_push_dup(&l, s);
      if (r < 0) {
        strv_free(l);
        return r;
      }
    }
    if (!l && (l = calloc(1, sizeof(char *))) == NULL)
      return -ENOMEM;
    strv_free(*(char ***)f);
    *(char ***)f = l;
    return 0;
  }
  }
  return -EINVAL;
}

/* Walks one table; nested tables recurse with a dotted section name. */
static int apply_table(struct tappd_config *c, const char *section, const struct toml_value *t,
                       char *err, size_t errlen) {
  for (size_t i = 0; i < toml_table_len(t); i++) {
    const char *key = toml_table_key_at(t, i);
    const struct toml_value *v = toml_table_value_at(t, i);
    if (toml_type(v) == TOML_TABLE) {
      _cleanup_free_ char *sub = section ? str_printf("%s.%s", section, key) : strdup(key);
      if (!sub)
        return -ENOMEM;
      if (!is_section(sub))
        return fail(err, errlen, "unknown table [%s]", sub);
      int r = apply_table(c, sub, v, err, errlen);
      if (r < 0)
        return r;
      continue;
    }
    if (!section)
      return fail(err, errlen, "unknown top-level key '%s' (options live in tables)", key);
    const struct opt *o = find_opt(section, key);
    if (!o)
      return fail(err, errlen, "unknown key '%s' in [%s]", key, section);
    int r = apply_value(c, o, v, err, errlen);
    if (r < 0)
      return r;
  }
  return 0;
}

int tappd_config_apply(struct tappd_config *c, const char *text, size_t len, char *err,
                       size_t errlen) {
  _cleanup_toml_ struct toml_value *root = NULL;
  struct toml_error te = {0};
  int r = toml_parse(text, len, &root, &te);
  if (r < 0) {
    if (err && errlen)
      snprintf(err, errlen, "line %u:%u: %s", te.line, te.col, te.msg);
    return r;
  }
  return apply_table(c, NULL, root, err, errlen);
}

int tappd_config_apply_file(struct tappd_config *c, const char *path, char *err, size_t errlen) {
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
  return apply_table(c, NULL, root, err, errlen);
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
      return fail(err, errlen, "[%s] address: unix socket path must be absolute", name);
    if (strlen(path) >= 108)
      return fail(err, errlen, "[%s] address: unix socket path too long", name);
    if (tappd_listen_mode(l, &m) < 0)
      return fail(err, errlen, "[%s] mode: expected octal permission bits like \"0666\"", name);
    return 0;
  }
  /* TCP: an IPv4 or IPv6 literal (names are not resolved). */
  for (const char *p = l->address; *p; p++)
    if (!strchr("0123456789abcdefABCDEF.:", *p))
      return fail(err, errlen, "[%s] address: '%s' is not an IP address or unix:/path", name,
                  l->address);
  return 0;
}

int tappd_config_check(const struct tappd_config *c, char *err, size_t errlen) {
  int r;
  if ((r = check_listen("internal", &c->internal, err, errlen)) < 0 ||
      (r = check_listen("dstack", &c->dstack, err, errlen)) < 0 ||
      (r = check_listen("external", &c->external, err, errlen)) < 0 ||
      (r = check_listen("external-https", &c->external_https, err, errlen)) < 0)
    return r;
  if (!str_isempty(c->tee) && !str_eq(c->tee, "tdx") && !str_eq(c->tee, "sim"))
    return fail(err, errlen, "[default.core] tee: expected \"tdx\", \"sim\" or \"\" (auto)");
  if (str_eq_ptr(c->tee, "sim") && str_isempty(c->sim_dir))
    return fail(err, errlen, "[default.core] tee = \"sim\" needs sim_dir");
  if (str_isempty(c->keys_file) && (str_isempty(c->cert_file) || str_isempty(c->key_file)))
    return fail(err, errlen, "[default.core] needs keys_file or cert_file + key_file");
  if (c->max_body < 1024 || c->max_body > ((uint64_t)1 << 30))
    return fail(err, errlen, "[default] max_body: must be 1 KiB .. 1 GiB");
  if (c->max_header < 1024 || c->max_header > ((uint64_t)16 << 20))
    return fail(err, errlen, "[default] max_header: must be 1 KiB .. 16 MiB");
  if (c->max_conns == 0)
    return fail(err, errlen, "[default] max_conns: must be > 0");
  if (c->request_timeout == 0)
    return fail(err, errlen, "[default] request_timeout: must be > 0");
  bool tls_any = !str_isempty(c->tls_key) || !str_isempty(c->tls_certs);
  bool tls_all = !str_isempty(c->tls_key) && !str_isempty(c->tls_certs);
  if (tls_any && !tls_all)
    return fail(err, errlen, "[external-https.tls] needs both key and certs");
  if (str_isempty(c->internal.address) && str_isempty(c->dstack.address) &&
      str_isempty(c->external.address) && !tls_all)
    return fail(err, errlen, "no listener configured");
  return 0;
}

int tappd_config_dump(const struct tappd_config *c, struct buf *out) {
  const char *cur = NULL;
  int r = 0;
  for (size_t i = 0; i < ARRAY_SIZE(opts) && r >= 0; i++) {
    const struct opt *o = &opts[i];
    const void *f = cfield(c, o);
    if (!cur || !str_eq(cur, o->section)) {
      r = buf_printf(out, "%s[", cur ? "\n" : "");
      if (r >= 0) {
        /* Dotted table names: each part as a key. */
        _cleanup_strv_free_ char **parts = NULL;
        r = str_split(o->section, ".", false, &parts);
        for (size_t k = 0; r >= 0 && parts[k]; k++) {
          if (k)
            r = buf_append_u8(out, '.');
          if (r >= 0)
            r = toml_append_key(out, parts[k]);
        }
      }
      if (r >= 0)
        r = buf_append_str(out, "]\n");
      cur = o->section;
    }
    if (r < 0)
      break;
    if (o->type == OPT_TRIBOOL && str_isempty(*(char *const *)f)) {
      r = buf_printf(out, "# %s: unset, taken from compose_file\n", o->key);
      continue;
    }
    r = toml_append_key(out, o->key);
    if (r >= 0)
      r = buf_append_str(out, " = ");
    if (r < 0)
      break;
    switch (o->type) {
    case OPT_STR:
      r = toml_append_string(out, *(char *const *)f ? *(char *const *)f : "");
      break;
    case OPT_TRIBOOL:
      r = buf_append_str(out, *(char *const *)f);
      break;
    case OPT_U32:
      r = buf_printf(out, "%u", *(const uint32_t *)f);
      break;
    case OPT_U16:
      r = buf_printf(out, "%u", (unsigned)*(const uint16_t *)f);
      break;
    case OPT_SIZE:
      r = buf_printf(out, "%llu", (unsigned long long)*(const uint64_t *)f);
      break;
    case OPT_STRV: {
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
