/* Onboarding a replica (kms onboard --source URL): get the root keys from a running KMS over
 * mutually attested RA-TLS.
 *   - this KMS makes a self-signed RA-TLS client certificate from its own TEE;
 *   - it connects to SOURCE/prpc/KMS.GetKmsKey; the source's TLS server certificate must be an
 *     RA-TLS certificate that passes full verification and the [core.onboard.allowed_mr] policy
 *     of THIS configuration, checked after the handshake and before the request is sent;
 *   - the source checks our certificate under ITS onboarding policy and answers the root keys;
 *   - the keys are validated (key matches certificate, k256 valid) and returned; the caller
 *     writes them (kms_root_keys_store: 0600) and serves them. */
#pragma once

#include <stddef.h>

#include "kms_config.h"
#include "kms_policy.h"
#include "kms_rootkeys.h"

/* On a refusal by either side err says why (our reason code first when we refused the
 * source; the source's error text when it refused us). */
int kms_onboard(const struct kms_config *c, const char *source_url, int64_t now,
                struct kms_root_keys *ret, char *err, size_t errlen);
