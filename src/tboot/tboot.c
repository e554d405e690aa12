/* tboot's shared state and reporting. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/hostch_client.h"
#include "attest/tee.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "net/http_client.h"
#include "tboot_sysconfig.h"
#include "tboot.h"

const struct tboot_paths tboot_default_paths = {
    .config_serial = "dstack-config",
    .data_serial = "dstack-data",
    .shared_mnt = "/dstack/.host-shared",
    .work = "/run/dstack",
    .app_dir = "/tapp",
    .data_mnt = "/data",
    .data_mapper = "dstack_data",
};

const char *tboot_version(void) { return TBOOT_VERSION; }

void tboot_printable(const void *data, size_t len, char *out, size_t outlen) {
  const uint8_t *p = data;
  size_t n = 0;
  if (!outlen)
    return;
  for (size_t i = 0; i < len && n + 1 < outlen; i++)
    out[n++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
  out[n] = 0;
}

/* A host that answers Info but then lets every report time out would cost 5 s per line: after
 * one timeout, progress goes to the console only. */
static void host_notify(struct tboot *t, const char *event, const char *msg) {
  if (!t->have_host)
    return;
  int r = hostch_notify(event, msg, 5000);
  if (r == -ETIMEDOUT) {
    log_warn("the host channel timed out: further progress on the console only");
    t->have_host = false;
  }
}

void tboot_progress(struct tboot *t, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  log_info("progress: %s", msg);
  host_notify(t, "boot.progress", msg);
}

int tboot_fail(struct tboot *t, int r, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (r < 0 && n >= 0 && (size_t)n < sizeof(msg) - 40 && !strstr(msg, strerror(-r)))
    snprintf(msg + n, sizeof(msg) - (size_t)n, " (%s)", strerror(-r));
  log_error("%s", msg);
  host_notify(t, "boot.error", msg);
  return r < 0 ? r : -EIO;
}

void tboot_free(struct tboot *t) {
  buf_free(&t->compose);
  free(t->compose_file);
  free(t->app_name);
  for (size_t i = 0; i < t->n_allowed_envs; i++)
    free(t->allowed_envs[i]);
  free(t->allowed_envs);
  free(t->key_provider_id_pin);
  sysconfig_free(&t->sys);
  buf_free(&t->sys_payload);
  buf_free(&t->encrypted_env);
  buf_free(&t->user_config);
  json_decref(t->kms_reply);
  buf_free(&t->disk_key);
  explicit_bzero(t->env_key, sizeof(t->env_key));
  free(t->root_ca_pem);
  free(t->kms_root_pubkey_hex);
  free(t->kms_url);
  buf_free(&t->os_image_hash);
  free(t->wg_ip);
  if (t->tee)
    tee_free(t->tee);
}

int tboot_post_json(const char *url, const char *method, const char *body,
                    const struct http_client_opts *o, json_t **ret, char *why, size_t whylen) {
  _cleanup_free_ char *u = str_printf("%s/prpc/%s?json", url, method);
  if (!u)
    return -ENOMEM;
  struct http_response resp = {0};
  int r = http_post(u, "application/json", body, strlen(body), o, &resp);
  if (r < 0) {
    snprintf(why, whylen, "%s at %s: %s", method, url, strerror(-r));
    return r;
  }
  if (resp.status != 200) {
    char peer[301];
    tboot_printable(resp.body.data, resp.body.len, peer, sizeof(peer));
    snprintf(why, whylen, "%s at %s: HTTP %ld: %s", method, url, resp.status, peer);
    long status = resp.status;
    http_response_free(&resp);
    return status == 403 || status == 400 ? -EACCES : -EIO;
  }
  r = json_parse_buf((const char *)resp.body.data, resp.body.len, o->max_body, ret);
  http_response_free(&resp);
  if (r < 0 || !json_is_object(*ret)) {
    json_decref(*ret);
    *ret = NULL;
    snprintf(why, whylen, "%s at %s: the reply is not a JSON object", method, url);
    return -EBADMSG;
  }
  return 0;
}
