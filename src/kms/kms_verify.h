/* The KMS's use of the shared RA-TLS verifier (lib/ratls/ratls_verify.h): a verifier built
 * from the KMS configuration, the verification results as KMS reasons, and a verified peer as
 * the policy's input. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms_derive.h"
#include "kms_policy.h"
#include "ratls/ratls_verify.h"

struct kms_config;

/* Trusts the simulator (its root and collateral under simulator_dir) only when the configuration
 * allows simulated platforms. on_loop: the verifier serves an event loop, so it never fetches
 * collateral itself (the server prefetches it on its offload pool: ratls_http.h). */
int kms_verifier_new(const struct kms_config *c, bool on_loop, struct ratls_verifier **ret,
                     char *err, size_t errlen);

static inline enum kms_reason kms_verify_peer(struct ratls_verifier *v, X509 *cert, int64_t now,
                                              struct ratls_peer *p, char *why, size_t whylen) {
  return (enum kms_reason)ratls_verify_peer(v, cert, now, p, why, whylen);
}

/* ratls_identity_from_log (seed-era logs only with [core.quote] allow_seed_event_log), and a
 * seed-era app must have measured its rootfs hash (the seed-era disk key is derived from it):
 * KMS_R_MISSING_EVENT otherwise. */
enum kms_reason kms_identity_from_log(const struct kms_config *c, const struct eventlog *log,
                                      struct ratls_app_identity *ret, char *why, size_t whylen);

/* True for the kms_identity_from_log results that only mean "no identity to take" (no boot
 * events, or a seed-era log where those are not accepted), as opposed to a log that breaks the
 * boot-event rules: where identity is optional (onboarding), only these are tolerated. */
static inline bool kms_reason_no_identity(enum kms_reason r) {
  return r == KMS_R_MISSING_EVENT || r == KMS_R_SEED_LOG_NOT_ALLOWED;
}

/* The policy input of a verified peer (id may be NULL). */
void kms_peer_policy_input(const struct ratls_peer *p, const struct ratls_app_identity *id,
                           struct kms_policy_input *ret);
