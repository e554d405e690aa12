/* tappd core: the state every endpoint shares and the handler logic as plain functions (the
 * pRPC / HTTP glue lives in tappd_api.c, guest_api.c, worker_api.c and server.c).
 *
 * Handlers return 0 or a negative errno; on a failure caused by the request they also set
 * *ret_error to an allocated message for the client (HTTP 400). */
#pragma once

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tappd_appkeys.h"
#include "attest/eventlog.h"
#include "net/prpc.h"
#include "base/buf.h"
#include "tappd_config.h"

struct tee;
struct tappd_key_cache;
struct tappd_log_cache;

#define TAPPD_MAX_PATH 4096           /* key derivation path bytes */
#define TAPPD_MAX_SUBJECT 256
#define TAPPD_MAX_ALT_NAMES 64
#define TAPPD_MAX_ALT_NAME 253
#define TAPPD_MAX_EVENT_PAYLOAD ((size_t)64 * 1024)
#define TAPPD_MAX_SIGN_DATA ((size_t)1024 * 1024)
#define TAPPD_EVENTLOG_MAX EVENTLOG_MAX_LOG

struct tappd {
  struct tappd_config *cfg; /* not owned */
  struct appkeys keys;
  struct tee *tee;
  char *eventlog_path; /* the TEE's runtime event log (flock'ed around extends) */
  char *compose_raw;   /* app-compose.json text ("" when absent) */
  char *app_name;
  char *vm_config;
  bool public_logs, public_sysinfo, public_tcbinfo;
  struct tappd_key_cache *key_cache; /* GetKey / DeriveKey keys (keys.c); NULL: no caching */
  struct tappd_log_cache *log_cache; /* the event log quotes go with (quote.c) */
  /* The event log does not replay to RTMR3 and dropping trailing lines cannot fix it: quotes
   * are refused (reconcile.c). */
  atomic_bool eventlog_unrecoverable;
};

/* Opens the TEE (cfg->tee / sim_dir, else auto), loads the app keys and the app files. */
int tappd_new(struct tappd_config *cfg, struct tappd **ret, char *err, size_t errlen);
void tappd_free(struct tappd *t);

/* ---- keys (keys.c) ---- */

struct tappd_cert_req {
  const char *subject;
  char *const *alt_names;
  size_t n_alt_names;
  bool usage_ra_tls;
  bool usage_server_auth;
  bool usage_client_auth;
  bool has_not_before, has_not_after;
  uint64_t not_before, not_after;
  bool with_app_info;
};

struct tappd_tls_key {
  char *key_pem;
  char **chain; /* NULL-terminated PEM strings */
};
void tappd_tls_key_free(struct tappd_tls_key *k);

/* Tappd.DeriveKey: P-256 key = HKDF(k256 app key, path) (newest), HKDF(app CA scalar, path)
 * without a k256 key (seed era), or HKDF(random seed, path) with random_seed; certificate issued
 * by the app CA. */
int tappd_derive_key(struct tappd *t, const char *path, bool random_seed,
                     const struct tappd_cert_req *req, struct tappd_tls_key *ret,
                     char **ret_error);
/* DstackGuest.GetTlsKey: a random P-256 key, certificate issued by the app CA. */
int tappd_get_tls_key(struct tappd *t, const struct tappd_cert_req *req, struct tappd_tls_key *ret,
                      char **ret_error);

enum tappd_key_alg {
  TAPPD_KEY_SECP256K1,
  TAPPD_KEY_ED25519,
};
int tappd_key_alg_from_name(const char *name, enum tappd_key_alg *ret);

struct tappd_key {
  uint8_t key[32];       /* secret */
  uint8_t pub[33];       /* compressed secp256k1, or the 32-byte ed25519 key */
  size_t pub_len;
  uint8_t sig[65];       /* app k256 key over Keccak256("<purpose>:<pub hex>"), r||s||v */
  struct buf kms_sig;    /* the KMS signature of the app k256 key (k256_signature) */
};
void tappd_key_free(struct tappd_key *k);
/* The cache of derived keys (see keys.c), and its release (wiped; NULL is fine). */
int tappd_key_cache_new(struct tappd_key_cache **ret);
void tappd_key_cache_free(struct tappd_key_cache *c);
/* DstackGuest.GetKey / Tappd.DeriveK256Key. */
int tappd_get_key(struct tappd *t, const char *path, const char *purpose, const char *algorithm,
                  struct tappd_key *ret, char **ret_error);

struct tappd_signature {
  uint8_t sig[64];
  uint8_t pub[33];
  size_t pub_len;
  struct tappd_key key; /* the signing key's GetKey result (chain entries 1 and 2) */
};
void tappd_signature_free(struct tappd_signature *s);
/* DstackGuest.Sign: algorithm ed25519 | secp256k1 (ECDSA over SHA-256(data)) |
 * secp256k1_prehashed (data is the 32-byte digest); the key is GetKey("vms", "signing"). */
int tappd_sign(struct tappd *t, const char *algorithm, const uint8_t *data, size_t len,
               struct tappd_signature *ret, char **ret_error);
/* DstackGuest.Verify: *ret_valid; errors only for malformed keys/signatures/algorithms. */
int tappd_verify(const char *algorithm, const uint8_t *data, size_t len, const uint8_t *sig,
                 size_t sig_len, const uint8_t *pub, size_t pub_len, bool *ret_valid,
                 char **ret_error);

/* ---- quotes and the event log (quote.c) ---- */

/* Report data of Tappd.TdxQuote: H(prefix ":" data) zero-padded to 64 bytes, H one of sha256,
 * sha384, sha512 (default, ""), sha3-256/384/512, keccak256/384/512; prefix "" = "app-data";
 * "raw": data must be exactly 64 bytes and is used as is (no prefix). */
int tappd_report_data(const char *hash_algorithm, const char *prefix, const uint8_t *data,
                      size_t len, uint8_t ret[64], char **ret_error);
/* The hash name echoed back ("" becomes "sha512") and the prefix actually used. */
const char *tappd_report_data_hash_name(const char *hash_algorithm);
const char *tappd_report_data_prefix(const char *hash_algorithm, const char *prefix);

/* DstackGuest.GetQuote: data ≤ 64 bytes, right-padded with zeros, not hashed. */
int tappd_pad_report_data(const uint8_t *data, size_t len, uint8_t ret[64], char **ret_error);

/* A quote over report_data together with the event log that replays to its RTMRs: both are
 * taken under a shared lock on the event log, so no extend happens in between. quote and
 * ret_log (may be NULL) are filled; eventlog_json (may be NULL) gets the API JSON array.
 * -ENOTRECOVERABLE when the log does not replay to the quote's RTMR3, even after
 * tappd_eventlog_reconcile(): such a quote is not served. */
int tappd_quote(struct tappd *t, const uint8_t report_data[64], struct buf *quote,
                struct eventlog *ret_log, struct buf *eventlog_json);

/* The error text for a tappd_quote() failure (-ENOTRECOVERABLE: the event log is not RTMR3's). */
const char *tappd_quote_strerror(int r);

/* Boot events from the CCEL (real TDX; none when ccel_file is unset or missing): RTMR0..2,
 * without EV_NO_ACTION and MRTD entries, appended to out. */
int tappd_ccel_read(struct tappd *t, struct eventlog *out);

/* After a crash (reconcile.c): drops the trailing event-log lines RTMR3 never got (a writer
 * killed between append and extend; tee_eventlog_reconcile), logging what it dropped. When
 * that cannot make the log replay to RTMR3, logs the error once, sets eventlog_unrecoverable
 * and returns -ENOTRECOVERABLE: quotes are refused from then on. Called by tappd_new and by
 * tappd_quote when a quote's RTMR3 is not the log's. */
int tappd_eventlog_reconcile(struct tappd *t);

/* What quotes keep of the event log between calls (see quote.c), and its release. */
int tappd_log_cache_new(struct tappd_log_cache **ret);
void tappd_log_cache_free(struct tappd_log_cache *c);

/* The current event log (boot events from CCEL when the runtime log has none, then the runtime
 * log), without taking the lock. ret is initialised here. */
int tappd_eventlog_read(struct tappd *t, struct eventlog *ret);

/* Extends RTMR3 with the V1 runtime event digest and appends the event to the event log, both
 * under the event-log lock (the same flock tee_extend_event uses). Any valid name: for the
 * boot's own events (dev mode). */
int tappd_emit_event(struct tappd *t, const char *event, const uint8_t *payload, size_t len,
                     char **ret_error);
/* DstackGuest.EmitEvent, an app's event: tappd_emit_event, except that the names only the boot
 * may measure (boot_event_name_reserved: app-id, compose-hash, instance-id, system-ready, ...)
 * are refused with -EPERM, so an app cannot make its events look like the boot's. */
int tappd_emit_app_event(struct tappd *t, const char *event, const uint8_t *payload, size_t len,
                         char **ret_error);

/* DstackGuest.Attest: the versioned dstack attestation, SCALE-encoded:
 * VersionedAttestation::V0 { Attestation { quote: AttestationQuote::DstackTdx(TdxQuote { quote,
 * event_log: Vec<TdxEvent{imr,event_type,digest,event,event_payload}> }), runtime_events:
 * Vec<RuntimeEvent{event,payload}> (the RTMR3 runtime events), report_data [u8; 64],
 * config: vm_config } }. */
int tappd_attest(struct tappd *t, const uint8_t report_data[64], struct buf *out,
                 char **ret_error);
/* SCALE compact integer, appended. */
int tappd_scale_compact(struct buf *out, uint64_t v);

/* Event names EmitEvent accepts: 1..EVENTLOG_MAX_NAME printable ASCII bytes. */
bool tappd_event_name_valid(const char *name);

/* ---- info (info.c) ---- */

struct tappd_info {
  struct buf app_id, instance_id, device_id, mr_aggregated, os_image_hash, compose_hash;
  char *app_cert;
  char *tcb_info; /* pretty JSON, "" when hidden */
  char *app_name;
  char *key_provider_info;
  char *vm_config; /* "" when hidden */
  char *cloud_vendor, *cloud_product;
  /* Also kept for the dashboard and metrics. */
  uint8_t mrtd[48];
  uint8_t rtmr[4][48];
  /* SHA-256(MRTD || RTMR0..2 || SHA-256(key-provider payload), or 32 zero bytes without one):
   * the measurement of everything but the app (upstream AppInfo.mr_system). */
  uint8_t mr_system[32];
};
void tappd_info_free(struct tappd_info *i);
/* Info (dstack.sock, tappd.sock: external = false) and Worker.Info (external = true: tcb_info
 * and vm_config hidden unless public_tcbinfo). */
int tappd_info(struct tappd *t, bool external, struct tappd_info *ret, char **ret_error);

const char *tappd_version(void);
const char *tappd_git_rev(void);
