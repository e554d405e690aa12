/* Verifying a peer's RA-TLS certificate (shared by every daemon that admits CVMs):
 *   1. the certificate carries a quote (RA-TLS extension) whose report_data binds its key;
 *   2. the quote is a TDX quote and passes full DCAP verification against collateral from the
 *      configured PCCS, or, for quotes chained to the configured simulator root (only when a
 *      simulator directory is given), the simulator's collateral; expired collateral fails;
 *   3. the event log parses and replays to the verified RTMRs: RTMR3 always, RTMR0..2 when the
 *      log has events for them;
 *   4. the app identity comes from the RTMR3 events only (ratls_identity_from_log).
 * Nothing is written anywhere (the collateral fetcher's disk cache aside, which only holds
 * Intel-signed collateral that was fetched fresh). A verifier is used by one thread at a time. */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "attest/dcap.h"
#include "attest/eventlog.h"
#include "base/buf.h"
#include "ratls/ratls.h"

#define RATLS_APP_ID_MAX 64
#define RATLS_INSTANCE_ID_MAX 64
#define RATLS_OS_IMAGE_HASH_MAX 64

/* Which guest generation measured the app: the seed flow's event lines or newest runtime
 * events (upstream dstack). */
enum ratls_era {
  RATLS_ERA_SEED = 0,
  RATLS_ERA_NEWEST = 1,
};

/* What the verified RTMR3 events say about the app. */
struct ratls_app_identity {
  enum ratls_era era;
  uint8_t app_id[RATLS_APP_ID_MAX];
  size_t app_id_len;
  char app_id_hex[2 * RATLS_APP_ID_MAX + 1];
  bool has_compose_hash;
  uint8_t compose_hash[32];
  uint8_t instance_id[RATLS_INSTANCE_ID_MAX];
  size_t instance_id_len;
  bool has_rootfs_hash;
  char rootfs_hash_hex[65];
  uint8_t os_image_hash[RATLS_OS_IMAGE_HASH_MAX];
  size_t os_image_hash_len;
};

/* Why a peer was refused; ratls_reason_code gives the stable text clients see. */
enum ratls_reason {
  RATLS_OK = 0,
  RATLS_R_NO_CLIENT_CERT,         /* no client certificate on the connection */
  RATLS_R_NO_ATTESTATION,         /* the certificate carries no quote */
  RATLS_R_BAD_ATTESTATION,        /* malformed RA-TLS extensions or quote */
  RATLS_R_KEY_NOT_BOUND,          /* report_data does not bind the certificate's key */
  RATLS_R_UNSUPPORTED_QUOTE,      /* not a TDX quote */
  RATLS_R_COLLATERAL_UNAVAILABLE, /* no collateral source or fetching failed */
  RATLS_R_COLLATERAL_EXPIRED,     /* the collateral's nextUpdate has passed */
  RATLS_R_SIMULATOR_NOT_ALLOWED,  /* a simulated quote where no simulator is trusted */
  RATLS_R_QUOTE_INVALID,          /* DCAP verification failed */
  RATLS_R_BAD_EVENT_LOG,          /* the event log does not parse */
  RATLS_R_EVENT_LOG_MISMATCH,     /* the event log does not replay to the quote's RTMRs */
  RATLS_R_MISSING_EVENT,          /* a required RTMR3 event (app-id, boot-mr-done) is absent */
  RATLS_R_INTERNAL,
  RATLS_R_SEED_LOG_NOT_ALLOWED,   /* a seed-era log (unbound names) where it is not accepted */
  _RATLS_R_MAX,
};

/* "no_client_cert", "quote_invalid", ...; "internal" for anything unknown. */
const char *ratls_reason_code(enum ratls_reason r);

struct ratls_verifier_opts {
  const char *pccs_url;      /* collateral source for real quotes ("" / NULL: none) */
  const char *cache_dir;     /* disk cache of fetched collateral (NULL: none) */
  const char *simulator_dir; /* trust this simulator's root and collateral (NULL: never) */
  /* Never fetch collateral inside ratls_verify_peer (which would stall an event loop for up to
   * the fetch timeout): fetches happen only through ratls_verifier_prefetch, and a quote whose
   * collateral is not there yet is refused as collateral_unavailable. */
  bool no_blocking_fetch;
};

struct ratls_verifier;

/* Reads the simulator root when one is given; err (when errlen > 0) says what failed. */
int ratls_verifier_new(const struct ratls_verifier_opts *o, struct ratls_verifier **ret,
                       char *err, size_t errlen);
void ratls_verifier_free(struct ratls_verifier *v);

/* ---- fetching collateral off the event loop ----
 * A server on an event loop calls ratls_verifier_prefetch before it verifies a request's
 * certificate. Only a quote whose certificate binds it and that passes every check that needs no
 * collateral (dcap_verify_no_collateral: PCK chain to a trusted root, QE report and quote
 * signatures: only a real platform's QE can make one), and whose collateral is neither cached
 * nor failed in the last FETCH_FAIL_TTL_S (30 s, counted from the end of the failed fetch),
 * makes a fetch. It runs on pool (one per platform, i.e. TEE type + FMSPC + PCK CA, at a time;
 * later requests for it wait for that one; at most 16 at once), and cb(ud) runs on the loop
 * thread when it ended, whatever its result: the verification that follows uses the collateral
 * or reports the failure.
 * Returns 1 (cb will run; *ret is the wait, which ratls_prefetch_cancel ends early, e.g. when
 * the client went away; it is freed just before cb runs), 0 when there is nothing to wait for
 * (cb never runs), <0 bad arguments. The pool must be freed (offload_free) before the
 * verifier. On the loop thread, like every other call on the verifier. */
struct offload;
struct ratls_prefetch;
typedef void (*ratls_prefetch_fn)(void *ud);
int ratls_verifier_prefetch(struct ratls_verifier *v, struct offload *pool, X509 *cert,
                            int64_t now, ratls_prefetch_fn cb, void *ud,
                            struct ratls_prefetch **ret);
/* The same for a quote whose binding the caller checked already (or does not need). */
int ratls_verifier_prefetch_quote(struct ratls_verifier *v, struct offload *pool,
                                  const uint8_t *quote, size_t len, int64_t now,
                                  ratls_prefetch_fn cb, void *ud, struct ratls_prefetch **ret);
void ratls_prefetch_cancel(struct ratls_prefetch *w);
/* Prefetches running now. */
size_t ratls_verifier_fetches(const struct ratls_verifier *v);

/* A verified peer. */
struct ratls_peer {
  struct ratls_attestation att;
  struct dcap_result dcap; /* dcap.quote.td: the verified TD report body */
  struct eventlog log;
  int64_t tcb_uptodate_since; /* tcbDate of the newest UpToDate TCB level (0 = unknown) */
  bool verified;              /* the quote passed DCAP (dcap is filled) */
};

void ratls_peer_init(struct ratls_peer *p);
void ratls_peer_free(struct ratls_peer *p);

/* Steps 1..3 at unix time now. RATLS_OK or a reason (why explains). p is filled as far as it
 * got (ratls_peer_free it either way). */
enum ratls_reason ratls_verify_peer(struct ratls_verifier *v, X509 *cert, int64_t now,
                                    struct ratls_peer *p, char *why, size_t whylen);

/* Steps 2 and 3 for a bare quote and its event log (event_log may be empty; over
 * RATLS_MAX_EVENT_LOG it is refused), as evidence that came without a certificate: what
 * report_data binds is the caller's to check (in p->dcap.quote.td.report_data once verified).
 * p->att stays empty. RATLS_OK or a reason, as ratls_verify_peer. */
enum ratls_reason ratls_verify_quote(struct ratls_verifier *v, const uint8_t *quote, size_t len,
                                     const uint8_t *event_log, size_t log_len, int64_t now,
                                     struct ratls_peer *p, char *why, size_t whylen);

/* Evidence that a quote vouches for something (attest/quoted_key.h: certbot's account and
 * certificate keys), checked against the report data it must bind, at unix time now: RATLS_OK,
 * or RATLS_R_BAD_ATTESTATION (malformed evidence), RATLS_R_KEY_NOT_BOUND (the quote binds
 * something else: refused before any DCAP work or collateral fetch), or what
 * ratls_verify_quote refuses. p is filled as far as it got (ratls_peer_free it either way). */
enum ratls_reason ratls_verify_quoted_key(struct ratls_verifier *v, const char *text, size_t len,
                                          const uint8_t want[64], int64_t now,
                                          struct ratls_peer *p, char *why, size_t whylen);

/* ratls_identity_from_log flags. */
enum {
  RATLS_ID_ALLOW_SEED = 1 << 0, /* accept seed-era event logs (names not bound to digests) */
};

/* Step 4 on a replayed log, under the rules of attest/boot_events.h: identity only from the
 * boot's own events. Newest era: app id = payload of the boot's app-id event, compose hash,
 * instance id and rootfs hash (32-byte payload) from before boot-mr-done, os image hash from
 * between boot-mr-done and system-ready. Seed era (only with RATLS_ID_ALLOW_SEED): app id =
 * digest[0..20] and compose hash = digest[0..32] of the second RTMR3 event (app-id), rootfs hash
 * = digest[0..32] of the first (rootfs-hash). Events on other IMRs never count.
 * RATLS_R_MISSING_EVENT without an app-id (or, newest, a boot-mr-done) event,
 * RATLS_R_SEED_LOG_NOT_ALLOWED for a seed-era log without the flag, RATLS_R_BAD_EVENT_LOG for a
 * log that breaks a rule (an unbound RTMR3 event in a newest-era log, a boot event out of place
 * or twice) or malformed values. */
enum ratls_reason ratls_identity_from_log(const struct eventlog *log, unsigned flags,
                                          struct ratls_app_identity *ret, char *why,
                                          size_t whylen);

/* The identity ratls_identity_from_log would take from the attestation's event log, for display
 * (tdxctl ratls-info): the log is parsed but NOT replayed against a verified quote, so the
 * result proves nothing on its own. RATLS_R_BAD_EVENT_LOG when the log does not parse. */
enum ratls_reason ratls_attestation_identity(const struct ratls_attestation *a, unsigned flags,
                                             struct ratls_app_identity *ret, char *why,
                                             size_t whylen);

/* One line of measured values for the log: mrtd=.. rtmr0..3=.. tcb=.. [app_id=.. compose_hash=..]
 * (whatever is known), appended to out. */
int ratls_peer_describe(const struct ratls_peer *p, const struct ratls_app_identity *id,
                        struct buf *out);

/* An OpenSSL verify callback for servers that admit RA-TLS clients: lets a self-signed leaf
 * through when it carries a quote (the quote is judged per request), refuses the rest as
 * OpenSSL decided. */
int ratls_tls_verify_cb(int ok, X509_STORE_CTX *x);
