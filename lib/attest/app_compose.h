/* An app's identity document: app-compose.json (the newest format) and the rule that wraps a
 * bare docker-compose file into one, so that teepod, the guest, the KMS and tproxy compute the
 * same compose hash and app id byte for byte.
 *
 *   compose_hash = SHA-256 of the document's exact bytes (never re-serialised)
 *   app_id       = compose_hash[0..20], unless the VM's owner pinned another
 *   mrconfigid   = 0x01 || compose_hash || 15 zero bytes (upstream's version 1 layout)
 *
 * Wrapping (app_compose_wrap): the document the SDKs and upstream's console make for a plain
 * compose file, serialised as the SDKs' getComposeHash does (keys sorted by code unit at every
 * level, compact, strings escaped as JavaScript's JSON.stringify escapes them):
 *   {"allowed_envs":[],"docker_compose_file":<text>,"gateway_enabled":true,"kms_enabled":true,
 *    "local_key_provider_enabled":false,"manifest_version":2,"name":<name>,
 *    "no_instance_id":false,"public_logs":true,"public_sysinfo":true,"public_tcbinfo":true,
 *    "runner":"docker-compose","secure_time":false}
 *
 * Checking (app_compose_check): a JSON object (at most APP_COMPOSE_MAX bytes, no duplicate
 * keys); known fields must have their types (manifest_version a number 1/2 or an integer
 * string; runner one of docker-compose, nerdctl-compose, bash; booleans boolean; allowed_envs
 * an array of strings; init_script a string or at most 5 strings; key_provider one of none,
 * kms, local, tpm; key_provider_id hex); a compose runner needs docker_compose_file, bash
 * needs bash_script. Unknown fields are kept (the hash covers them). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define APP_COMPOSE_MAX ((size_t)1024 * 1024)
#define APP_ID_SIZE 20

struct app_compose_info {
  uint8_t compose_hash[32];
  uint8_t app_id[APP_ID_SIZE]; /* compose_hash[0..20] */
  bool kms_enabled;            /* default false as upstream's AppCompose */
  bool gateway_enabled;        /* gateway_enabled or its alias tproxy_enabled */
  bool local_key_provider_enabled;
  bool no_instance_id;
  bool public_logs, public_sysinfo, public_tcbinfo;
  char runner[24];
  char key_provider[8]; /* "" when absent */
};

/* True when text is a JSON object that names itself an app-compose document (it has "runner"
 * or "manifest_version"). Anything else is taken as a compose file. */
bool app_compose_is_document(const char *text, size_t len);

/* Checks doc (rules above) and fills ret. -EINVAL/-EBADMSG/-ENOBUFS with *ret_why (allocated)
 * naming the problem. */
int app_compose_check(const char *doc, size_t len, struct app_compose_info *ret, char **ret_why);

/* Appends the wrapped document for compose (any text; the caller checks it is YAML or JSON)
 * and name to out. -EINVAL when either is not valid UTF-8 or holds NUL. */
int app_compose_wrap(const char *compose, size_t compose_len, const char *name, struct buf *out);

/* Appends s as JavaScript's JSON.stringify writes a string (quotes included): ", \\ and the
 * C0 controls escaped (\b \f \n \r \t or \u00xx lowercase), everything else as is (UTF-8). */
int app_compose_json_string(const char *s, size_t len, struct buf *out);

/* mrconfigid (48 bytes) for a compose hash. */
void app_compose_mrconfigid(const uint8_t compose_hash[32], uint8_t ret[48]);
