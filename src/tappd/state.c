/* The tappd state: TEE, app keys, app-compose.json and sys-config.json. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/tee.h"
#include "attest/tee_hostch.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "tappd.h"

#define APP_FILE_MAX ((size_t)1024 * 1024)

static int open_tee(const struct tappd_config *cfg, struct tee **ret) {
  if (str_eq_ptr(cfg->tee, "sim"))
    return tee_sim_new(cfg->sim_dir, ret);
  if (str_eq_ptr(cfg->tee, "tdx"))
    return tee_tdx_new(NULL, ret);
  if (str_eq_ptr(cfg->tee, "hostch"))
    return tee_hostch_new(NULL, ret);
  return tee_open(NULL, ret);
}

/* The compose file's public_* flags unless the config sets them. */
static int load_compose(struct tappd *t, char *err, size_t errlen) {
  const char *path = t->cfg->compose_file;
  bool logs = false, sysinfo = false, tcbinfo = true;
  if (!str_isempty(path) && access(path, F_OK) == 0) {
    _cleanup_buf_ struct buf b = BUF_INIT(APP_FILE_MAX);
    int r = file_read_all(path, APP_FILE_MAX, &b);
    if (r < 0)
      return str_err(err, errlen, r, "%s: %s", path, strerror(-r));
    _cleanup_json_ json_t *j = NULL;
    r = json_parse_buf((const char *)b.data, b.len, APP_FILE_MAX, &j);
    if (r < 0 || !json_is_object(j))
      return str_err(err, errlen, -EBADMSG, "%s: not a JSON object", path);
    if ((r = buf_terminate(&b)) < 0)
      return r;
    t->compose_raw = strndup((const char *)b.data, b.len);
    const char *name = "";
    (void)json_get_str(j, "name", &name);
    t->app_name = strdup(name);
    if (!t->compose_raw || !t->app_name)
      return -ENOMEM;
    if ((r = json_get_bool(j, "public_logs", &logs)) < 0 && r != -ENOENT)
      return str_err(err, errlen, r, "%s: public_logs is not a boolean", path);
    if ((r = json_get_bool(j, "public_sysinfo", &sysinfo)) < 0 && r != -ENOENT)
      return str_err(err, errlen, r, "%s: public_sysinfo is not a boolean", path);
    if ((r = json_get_bool(j, "public_tcbinfo", &tcbinfo)) < 0 && r != -ENOENT)
      return str_err(err, errlen, r, "%s: public_tcbinfo is not a boolean", path);
  } else {
    t->compose_raw = strdup("");
    t->app_name = strdup("");
    if (!t->compose_raw || !t->app_name)
      return -ENOMEM;
  }
  int v;
  t->public_logs = (v = tappd_config_tribool(t->cfg->public_logs)) >= 0 ? v : logs;
  t->public_sysinfo = (v = tappd_config_tribool(t->cfg->public_sysinfo)) >= 0 ? v : sysinfo;
  t->public_tcbinfo = (v = tappd_config_tribool(t->cfg->public_tcbinfo)) >= 0 ? v : tcbinfo;
  return 0;
}

static int load_sys_config(struct tappd *t, char *err, size_t errlen) {
  const char *path = t->cfg->sys_config_file;
  const char *vm = "";
  _cleanup_json_ json_t *j = NULL;
  if (!str_isempty(path) && access(path, F_OK) == 0) {
    _cleanup_buf_ struct buf b = BUF_INIT(APP_FILE_MAX);
    int r = file_read_all(path, APP_FILE_MAX, &b);
    if (r < 0)
      return str_err(err, errlen, r, "%s: %s", path, strerror(-r));
    r = json_parse_buf((const char *)b.data, b.len, APP_FILE_MAX, &j);
    if (r < 0 || !json_is_object(j))
      return str_err(err, errlen, -EBADMSG, "%s: not a JSON object", path);
    r = json_get_str(j, "vm_config", &vm);
    if (r < 0 && r != -ENOENT)
      return str_err(err, errlen, r, "%s: vm_config is not a string", path);
  }
  t->vm_config = strdup(vm);
  return t->vm_config ? 0 : -ENOMEM;
}

int tappd_new(struct tappd_config *cfg, struct tappd **ret, char *err, size_t errlen) {
  struct tappd *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  t->cfg = cfg;
  int r = tappd_key_cache_new(&t->key_cache);
  if (r >= 0)
    r = tappd_log_cache_new(&t->log_cache);
  if (r < 0) {
    r = str_err(err, errlen, r, "allocating the caches: %s", strerror(-r));
    goto fail;
  }
  r = open_tee(cfg, &t->tee);
  if (r < 0) {
    r = str_err(err, errlen, r, "opening the TEE (%s): %s",
             str_isempty(cfg->tee) ? "auto" : cfg->tee, strerror(-r));
    goto fail;
  }
  r = tee_eventlog_path(t->tee, &t->eventlog_path);
  if (r < 0) {
    r = str_err(err, errlen, r, "the TEE has no event log: %s", strerror(-r));
    goto fail;
  }
  /* A crash may have left lines RTMR3 never got. Whatever this finds, tappd serves on (keys,
   * info); quotes check the log against RTMR3 themselves and are refused while it differs. */
  (void)tappd_eventlog_reconcile(t);
  r = appkeys_load(cfg->keys_file, cfg->cert_file, cfg->key_file, &t->keys, err, errlen);
  if (r < 0)
    goto fail;
  if ((r = load_compose(t, err, errlen)) < 0 || (r = load_sys_config(t, err, errlen)) < 0)
    goto fail;
  *ret = t;
  return 0;
fail:
  tappd_free(t);
  return r;
}

void tappd_free(struct tappd *t) {
  if (!t)
    return;
  tee_free(t->tee);
  free(t->eventlog_path);
  appkeys_free(&t->keys);
  tappd_key_cache_free(t->key_cache);
  tappd_log_cache_free(t->log_cache);
  free(t->compose_raw);
  free(t->app_name);
  free(t->vm_config);
  free(t);
}
