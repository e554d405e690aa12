/* kms.toml: one table of options drives the defaults, the parser and --dump-config.
 *
 * Top level (upstream Rocket keys, not nested):
 *   address = "0.0.0.0", port = 8043, log_level = "normal"; and ours, the HTTP server's limits
 *   (lib/net/http_server.h): max_conns = 1024, max_conns_per_source = 128 (one IPv4 address or
 *   IPv6 /64), request_timeout = 30, handshake_timeout = 5 (s: accept .. first request byte)
 *   [tls]          key, certs (PEM files of the server certificate), or ra_tls = true: an RA-TLS
 *                  server certificate made from the TEE at startup, signed by the root CA, with
 *                  subjectAltNames localhost, 127.0.0.1, ::1 and alt_names (ours)
 *   [tls.mutual]   ca_certs (the temporary client CA), mandatory (false: public methods work
 *                  without a client certificate)
 *   [core]         root_ca_cert, root_ca_key, subject_postfix (upstream), and ours: k256_key (root
 *                  secp256k1 secret, 32 raw bytes), tmp_ca_cert, tmp_ca_key, gateway_app_id,
 *                  tee ("", "tdx", "sim") + sim_dir (the KMS's own TEE, for ra_tls and
 *                  onboarding), dev (reported by GetMeta)
 *   [core.quote]   pccs_url (collateral for Intel quotes), cache_dir (collateral disk cache),
 *                  simulator_dir (a simulated platform whose root and collateral are trusted for
 *                  policies with allow_simulator), allow_seed_event_log (accept seed-era
 *                  event logs, whose event names are not bound to their digests: anything
 *                  that can extend RTMR3 in a seed-era CVM can forge them; off, on in dev mode)
 *   [core.allowed_mr]          policy for apps (see struct kms_policy)
 *   [core.onboard]             enabled: serve GetKmsKey (the root keys) to replicas
 *   [core.onboard.allowed_mr]  policy for replica KMS instances
 * No option holds a secret itself: the keys are files named by path (0600, read into secret
 * buffers), so nothing is hidden from --dump-config. A secret value added here must be a
 * CONFTAB_SECRET_STR entry (see base/conftab.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Who gets keys. Measurement lists hold lowercase hex (48 bytes); an empty list matches
 * nothing (as upstream), unless allow_all. compose_hashes (32 bytes) and app_ids (hex of the
 * raw app id) restrict apps when either is non-empty: an app passes when it matches either
 * list. tcb_statuses are Intel's names; OutOfDate (and OutOfDateConfigurationNeeded) also pass
 * for out_of_date_grace_days after the newest UpToDate level of the TCB info took effect. */
struct kms_policy {
  bool allow_all; /* skip measurement and app checks (quote, TCB and simulator checks stay) */
  char **mrtd;
  char **rtmr0;
  char **rtmr1;
  char **rtmr2;
  char **compose_hashes;
  char **app_ids;
  char **tcb_statuses;
  uint32_t out_of_date_grace_days;
  bool allow_simulator;
};

struct kms_config {
  /* top level */
  char *address;
  uint16_t port;
  char *log_level;
  uint32_t max_conns;
  uint32_t max_conns_per_source;
  uint32_t request_timeout;
  uint32_t handshake_timeout;
  /* [tls], [tls.mutual] */
  char *tls_key;
  char *tls_certs;
  bool tls_ra;
  char **tls_alt_names;
  char *mutual_ca_certs;
  bool mutual_mandatory;
  /* [core] */
  char *root_ca_cert;
  char *root_ca_key;
  char *k256_key;
  char *tmp_ca_cert;
  char *tmp_ca_key;
  char *subject_postfix;
  char *gateway_app_id;
  char *tee;
  char *sim_dir;
  bool dev;
  /* [core.quote] */
  char *pccs_url;
  char *cache_dir;
  char *simulator_dir;
  bool allow_seed_event_log; /* seed-era logs (names not bound to digests; dev mode only) */
  /* policies */
  struct kms_policy apps;
  bool onboard_enabled;
  struct kms_policy onboard;
};

struct conftab;
/* The option table behind this file (for tests that walk every option). */
const struct conftab *kms_config_table(void);

/* Built-in defaults (production paths under /etc/kms/certs). */
int kms_config_init(struct kms_config *c);
/* Defaults of dev mode: files under dir, the simulated platform sim_dir trusted, the policies
 * allowing exactly the given measurements (MRTD, RTMR0..2 of that platform), onboarding on,
 * loopback address with a free port. */
int kms_config_init_dev(struct kms_config *c, const char *dir, const char *sim_dir,
                        const uint8_t mrtd[48], const uint8_t rtmr[3][48]);
void kms_config_free(struct kms_config *c);

/* Applies a TOML text on top of c. Unknown tables or keys, wrong types, bad hex are errors
 * (-EINVAL / -EBADMSG) with a message in err. */
int kms_config_apply(struct kms_config *c, const char *text, size_t len, char *err, size_t errlen);
int kms_config_apply_file(struct kms_config *c, const char *path, char *err, size_t errlen);

/* Semantic checks; -EINVAL with a message. */
int kms_config_check(const struct kms_config *c, char *err, size_t errlen);

/* The effective configuration as TOML that kms_config_apply() reads back. */
int kms_config_dump(const struct kms_config *c, struct buf *out);

/* True when either policy accepts simulated quotes (the onboarding policy also judges the
 * source KMS when this one is a replica, enabled or not). */
bool kms_config_uses_simulator(const struct kms_config *c);
