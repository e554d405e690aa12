/* Verifying a caller's RA-TLS certificate:
 *   1. the certificate carries a quote (RA-TLS extension) whose report_data binds its key;
 *   2. the quote is a TDX quote and passes full DCAP verification against collateral from the
 *      configured PCCS, or, for quotes chained to the configured simulator root (only when a
 *      policy allows simulated quotes), the simulator's collateral; expired collateral fails;
 *   3. the event log parses and replays to the verified RTMRs: RTMR3 always, RTMR0..2 when the
 *      log has events for them;
 *   4. the app identity comes from the RTMR3 events only (kms_identity_from_log).
 * Nothing is written anywhere (the collateral fetcher's disk cache aside, which only holds
 * Intel-signed collateral that was fetched fresh). */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "attest/dcap.h"
#include "attest/eventlog.h"
#include "kms_derive.h"
#include "kms_policy.h"
#include "ratls/ratls.h"

struct kms_config;
struct kms_verifier;

/* Reads the simulator root when the configuration trusts a simulated platform. */
int kms_verifier_new(const struct kms_config *c, struct kms_verifier **ret, char *err,
                     size_t errlen);
void kms_verifier_free(struct kms_verifier *v);

/* A verified peer. */
struct kms_peer {
  struct ratls_attestation att;
  struct dcap_result dcap; /* dcap.quote.td: the verified TD report body */
  struct eventlog log;
  int64_t tcb_uptodate_since; /* tcbDate of the newest UpToDate TCB level (0 = unknown) */
  bool verified;              /* the quote passed DCAP (dcap is filled) */
};

void kms_peer_init(struct kms_peer *p);
void kms_peer_free(struct kms_peer *p);

/* Steps 1..3 at unix time now. KMS_OK or a reason (why explains). p is filled as far as it
 * got (kms_peer_free it either way). */
enum kms_reason kms_verify_peer(struct kms_verifier *v, X509 *cert, int64_t now,
                                struct kms_peer *p, char *why, size_t whylen);

/* Step 4 on a replayed log: app id from the first (3, "app-id") event (runtime event: its
 * payload; seed line: digest[0..20]), compose hash from (3, "compose-hash") (runtime payload,
 * 32 bytes) or, in the seed era, the app-id digest[0..32] (SHA-256 of the compose file),
 * instance id from (3, "instance-id"), rootfs hash from (3, "rootfs-hash") (seed digest[0..32]),
 * os image hash from (3, "os-image-hash"). Events on other IMRs never count.
 * KMS_R_MISSING_EVENT without an app-id event, KMS_R_BAD_EVENT_LOG for malformed values. */
enum kms_reason kms_identity_from_log(const struct eventlog *log, struct kms_app_identity *ret,
                                      char *why, size_t whylen);

/* The policy input of a verified peer (id may be NULL). */
void kms_peer_policy_input(const struct kms_peer *p, const struct kms_app_identity *id,
                           struct kms_policy_input *ret);

/* One line of measured values for the log: mrtd=.. rtmr0..3=.. tcb=.. [app_id=.. compose_hash=..]
 * (whatever is known), appended to out. */
int kms_peer_describe(const struct kms_peer *p, const struct kms_app_identity *id,
                      struct buf *out);
