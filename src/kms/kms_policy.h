/* Reasons for refusing a caller, and the policy check on verified measurements.
 *
 * Every refusal carries a stable reason code (kms_reason_code: what clients see, first in the
 * error message) and a one-line explanation; the measured values go to the log only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/dcap.h"
#include "ratls/ratls_verify.h"

struct kms_policy;
struct ratls_app_identity;

/* The verification reasons are ratls's (same values, same codes); the policy adds its own. */
enum kms_reason {
  KMS_OK = RATLS_OK,
  KMS_R_NO_CLIENT_CERT = RATLS_R_NO_CLIENT_CERT,
  KMS_R_NO_ATTESTATION = RATLS_R_NO_ATTESTATION,
  KMS_R_BAD_ATTESTATION = RATLS_R_BAD_ATTESTATION,
  KMS_R_KEY_NOT_BOUND = RATLS_R_KEY_NOT_BOUND,
  KMS_R_UNSUPPORTED_QUOTE = RATLS_R_UNSUPPORTED_QUOTE,
  KMS_R_COLLATERAL_UNAVAILABLE = RATLS_R_COLLATERAL_UNAVAILABLE,
  KMS_R_COLLATERAL_EXPIRED = RATLS_R_COLLATERAL_EXPIRED,
  KMS_R_SIMULATOR_NOT_ALLOWED = RATLS_R_SIMULATOR_NOT_ALLOWED, /* also: the policy forbids it */
  KMS_R_QUOTE_INVALID = RATLS_R_QUOTE_INVALID,
  KMS_R_BAD_EVENT_LOG = RATLS_R_BAD_EVENT_LOG,
  KMS_R_EVENT_LOG_MISMATCH = RATLS_R_EVENT_LOG_MISMATCH,
  KMS_R_MISSING_EVENT = RATLS_R_MISSING_EVENT,
  KMS_R_INTERNAL = RATLS_R_INTERNAL,
  KMS_R_SEED_LOG_NOT_ALLOWED = RATLS_R_SEED_LOG_NOT_ALLOWED,
  KMS_R_TCB_STATUS_NOT_ALLOWED = _RATLS_R_MAX,
  KMS_R_MEASUREMENT_NOT_ALLOWED,
  KMS_R_APP_NOT_ALLOWED,
  KMS_R_ONBOARDING_DISABLED,
  KMS_R_BAD_REQUEST,
  _KMS_R_MAX,
};

/* "no_client_cert", "no_attestation", ... ("internal" for out-of-range values). */
const char *kms_reason_code(enum kms_reason r);

/* What the policy looks at; everything comes from a verified quote and replayed event log. */
struct kms_policy_input {
  const uint8_t *mrtd;            /* 48 */
  const uint8_t (*rtmr)[48];      /* RTMR0..3 */
  enum dcap_status status;
  bool simulated;
  int64_t tcb_uptodate_since;     /* tcbDate of the newest UpToDate level; 0 = unknown */
  const struct ratls_app_identity *id; /* NULL: no app identity (app lists then refuse) */
};

/* KMS_OK, or the reason with an explanation in why. Order: simulator, TCB status, then (unless
 * allow_all) MRTD/RTMR0..2, then compose hash / app id lists. */
enum kms_reason kms_policy_check(const struct kms_policy *p, const struct kms_policy_input *in,
                                 int64_t now, char *why, size_t whylen);
