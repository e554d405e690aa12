/* Reasons for refusing a caller, and the policy check on verified measurements.
 *
 * Every refusal carries a stable reason code (kms_reason_code: what clients see, first in the
 * error message) and a one-line explanation; the measured values go to the log only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/dcap.h"

struct kms_policy;
struct kms_app_identity;

enum kms_reason {
  KMS_OK = 0,
  KMS_R_NO_CLIENT_CERT,        /* no client certificate on the connection */
  KMS_R_NO_ATTESTATION,        /* the certificate carries no quote */
  KMS_R_BAD_ATTESTATION,       /* malformed RA-TLS extensions or quote */
  KMS_R_KEY_NOT_BOUND,         /* report_data does not bind the certificate's key */
  KMS_R_UNSUPPORTED_QUOTE,     /* not a TDX quote */
  KMS_R_COLLATERAL_UNAVAILABLE,/* no collateral source or fetching failed */
  KMS_R_COLLATERAL_EXPIRED,    /* the collateral's nextUpdate has passed */
  KMS_R_SIMULATOR_NOT_ALLOWED, /* a simulated quote where the policy does not allow it */
  KMS_R_QUOTE_INVALID,         /* DCAP verification failed */
  KMS_R_BAD_EVENT_LOG,         /* the event log does not parse */
  KMS_R_EVENT_LOG_MISMATCH,    /* the event log does not replay to the quote's RTMRs */
  KMS_R_MISSING_EVENT,         /* a required RTMR3 event (app-id, rootfs-hash) is absent */
  KMS_R_TCB_STATUS_NOT_ALLOWED,
  KMS_R_MEASUREMENT_NOT_ALLOWED,
  KMS_R_APP_NOT_ALLOWED,
  KMS_R_ONBOARDING_DISABLED,
  KMS_R_BAD_REQUEST,
  KMS_R_INTERNAL,
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
  const struct kms_app_identity *id; /* NULL: no app identity (app lists then refuse) */
};

/* KMS_OK, or the reason with an explanation in why. Order: simulator, TCB status, then (unless
 * allow_all) MRTD/RTMR0..2, then compose hash / app id lists. */
enum kms_reason kms_policy_check(const struct kms_policy *p, const struct kms_policy_input *in,
                                 int64_t now, char *why, size_t whylen);
