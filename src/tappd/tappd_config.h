/* tappd configuration: tappd.toml with upstream's profile tables.
 *
 *   [default]               workers, max_blocking, ident, keep_alive, log_level (upstream Rocket
 *                           keys; keep_alive is the idle timeout) and our limits max_body,
 *                           max_header, request_timeout, max_conns, max_conns_per_source (one
 *                           IPv4 address or IPv6 /64; unix sockets exempt), handshake_timeout
 *                           (s, accept .. first request byte; at most keep_alive)
 *   [default.core]          keys_file, cert_file, key_file, compose_file, sys_config_file,
 *                           public_logs, public_sysinfo, public_tcbinfo (unset: from the compose
 *                           file), docker_socket, tee, sim_dir, ccel_file, data_disks
 *   [internal]              address = "unix:/var/run/tappd.sock" (service Tappd under /prpc/)
 *   [dstack]                address = "unix:/var/run/dstack.sock" (DstackGuest at the root)
 *   [external]              address = "0.0.0.0", port = 8090 (dashboard, logs, Worker.*)
 *   [external-https]        the same routes over TLS; [external-https.tls] key, certs
 * An empty address disables a listener. Unix addresses take an optional mode (octal string).
 * External-https is only served when both TLS files are set.
 * No option holds a secret itself (key_file, keys_file and [external-https.tls] key are paths),
 * so nothing is hidden from --dump-config; a secret value added here must be a
 * CONFTAB_SECRET_STR entry (see base/conftab.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

struct tappd_listen {
  char *address; /* "unix:/path", an IP address, or "" (disabled) */
  uint16_t port;
  char *mode; /* unix sockets: octal permission bits, e.g. "0666" */
};

struct tappd_config {
  /* [default] */
  uint32_t workers;
  uint32_t max_blocking;
  char *ident;
  uint32_t keep_alive;
  char *log_level;
  uint64_t max_body;
  uint64_t max_header;
  uint32_t request_timeout;
  uint32_t max_conns;
  uint32_t max_conns_per_source;
  uint32_t handshake_timeout;
  /* [default.core] */
  char *keys_file;
  char *cert_file;
  char *key_file;
  char *compose_file;
  char *sys_config_file;
  char *public_logs; /* "", "true" or "false" ("" = from the compose file) */
  char *public_sysinfo;
  char *public_tcbinfo;
  char *docker_socket;
  /* "" (auto: tdx when present), "tdx", "sim", or "hostch" (TDX played by the host over the
   * host channel, attest/tee_hostch.h; never auto-detected) */
  char *tee;
  char *sim_dir; /* with tee = "sim" */
  char *ccel_file;
  char **data_disks;
  /* listeners */
  struct tappd_listen internal, dstack, external, external_https;
  char *tls_key;
  char *tls_certs;
};

struct conftab;
/* The option table behind this file (for tests that walk every option). */
const struct conftab *tappd_config_table(void);

/* Fills c with the built-in defaults (production paths). */
int tappd_config_init(struct tappd_config *c);
/* Fills c with the defaults of dev mode, everything under dir (see tappd --dev); err (when
 * errlen > 0) says what failed. */
int tappd_config_init_dev(struct tappd_config *c, const char *dir, char *err, size_t errlen);
void tappd_config_free(struct tappd_config *c);

/* Applies a TOML text on top of c. Unknown tables or keys and wrong types are errors
 * (-EINVAL / -EBADMSG) with a message in err. */
int tappd_config_apply(struct tappd_config *c, const char *text, size_t len, char *err,
                       size_t errlen);
int tappd_config_apply_file(struct tappd_config *c, const char *path, char *err, size_t errlen);

/* Semantic checks (addresses, modes, booleans, tee name); -EINVAL with a message. */
int tappd_config_check(const struct tappd_config *c, char *err, size_t errlen);

/* The effective configuration as TOML that tappd_config_apply() reads back. */
int tappd_config_dump(const struct tappd_config *c, struct buf *out);

/* Tri-state booleans: -1 unset, 0 false, 1 true. */
int tappd_config_tribool(const char *s);

/* Parses "unix:/path" into a path (pointer into address) or returns NULL for TCP. */
const char *tappd_listen_unix_path(const struct tappd_listen *l);
int tappd_listen_mode(const struct tappd_listen *l, mode_t *ret);
