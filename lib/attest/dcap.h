/* Intel DCAP quote verification (TDX v4/v5, SGX v3), following Intel's Quote Verification
 * Library:
 *   - PCK chain (from the quote) up to the pinned Intel SGX Root CA (SHA-256 of its DER
 *     44a0196b...74d3), root CA CRL and PCK CRL checked, every certificate valid at `now`. The
 *     quote's chain text must be exactly its PEM certificates (and a final NUL), all of them on
 *     the chain, ending in the root, whose DER must be the pinned root's byte for byte;
 *   - every chain (PCK, TCB signing, PCK CRL issuer) is validated by OpenSSL's verifier with the
 *     pinned root as its only trust anchor, in X509_V_FLAG_X509_STRICT mode, with CRL checking
 *     where the collateral has the CRLs: signatures, CA flags, path lengths, issuers' key usage,
 *     unknown critical extensions (certificates and CRLs) are refused. On top of that a signing
 *     leaf (PCK, TCB signing) must not be a CA and its key usage must allow digitalSignature;
 *     the PCK CRL issuer must be a CA allowed to sign CRLs;
 *   - bytes after the quote's signature data (real quotes are often zero padded) are accepted
 *     and counted: dcap_result_trailing_bytes(), "trailing_bytes" in the JSON;
 *   - TCB info (v3) and QE identity (v2) signed by the TCB signing cert chained to the same
 *     root, issueDate <= now <= nextUpdate, FMSPC / PCE-ID equal to the PCK extension's;
 *   - QE report signed by the PCK key, report_data = SHA-256(attest key || QE auth data) || 0*32,
 *     QE identity match (MRSIGNER, ISVPRODID, masked MISCSELECT / ATTRIBUTES), QE TCB level;
 *   - quote signature by the attestation key over header + body;
 *   - platform TCB level, TDX module identity, status merge and advisory IDs.
 * Simulator quotes (lib/attest/sim.h) verify only when the verifier was given the simulator's
 * root explicitly; the result then says simulated = true.
 *
 * A verifier caches verified certificate chains and parsed+verified collateral by the SHA-256
 * of their bytes, with the validity windows (certificates, CRLs, TCB info and QE identity dates)
 * they hold: a cached result is used only while `now` lies inside every window, checked on each
 * use. A PCK chain remembers the collateral whose CRLs it passed. So repeated verifications
 * against the same collateral only parse the quote, check the QE report and quote signatures,
 * and match TCB levels. It is thread-safe: one verifier can be shared by worker threads; no
 * signature is checked under its lock.
 *
 * dcap_verify errors (negative errno, plus a one-line message in err):
 *   -EBADMSG malformed quote/collateral, bad signature, broken chain;
 *   -EACCES untrusted root, revoked certificate, expired / not yet valid collateral or cert;
 *   -ENOTSUP unsupported quote or collateral version;
 *   -ENOENT no matching TCB level / module identity;
 *   -EINVAL bad argument; -ENOMEM;
 *   -ENOBUFS input over a cap (quote size; more than 24 validity windows in the collateral, i.e.
 *   certificates, CRLs and documents: refused, never checked in part). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "attest/dcap_collateral.h"
#include "attest/quote.h"

/* SHA-256 of the DER of Intel's SGX Root CA. */
#define DCAP_INTEL_ROOT_SHA256_HEX                                                                 \
  "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

/* Ordered from best to worst (the merge picks the worse one). */
enum dcap_status {
  DCAP_STATUS_UP_TO_DATE = 0,
  DCAP_STATUS_SW_HARDENING_NEEDED,
  DCAP_STATUS_CONFIGURATION_NEEDED,
  DCAP_STATUS_CONFIGURATION_AND_SW_HARDENING_NEEDED,
  DCAP_STATUS_OUT_OF_DATE,
  DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED,
  DCAP_STATUS_REVOKED,
  _DCAP_STATUS_MAX,
};

/* "UpToDate", "SWHardeningNeeded", ... (Intel's spelling); "?" when out of range. */
const char *dcap_status_name(enum dcap_status s);
/* Inverse; -EINVAL for unknown names. */
int dcap_status_from_name(const char *name, enum dcap_status *ret);

struct dcap_verifier_opts {
  bool allow_simulator;                /* accept the simulator's root (one of the two below) */
  const char *simulator_root_pem;      /* file with the simulator root CA (DIR/root_ca.pem) */
  const char *simulator_root_pem_data; /* or the PEM text itself (NUL-terminated) */
  size_t cache_max_entries;            /* per cache; 0 = 64 */
};

struct dcap_verifier;

/* o NULL = defaults (Intel root only). -EINVAL when allow_simulator is set without a root,
 * -EBADMSG / -ENOENT when the simulator root cannot be read. */
int dcap_verifier_new(const struct dcap_verifier_opts *o, struct dcap_verifier **ret);
void dcap_verifier_free(struct dcap_verifier *v);
/* Drops all cached chains and collateral. */
void dcap_verifier_flush(struct dcap_verifier *v);

struct dcap_result {
  enum dcap_status status;          /* merged */
  enum dcap_status platform_status; /* the matched platform TCB level */
  enum dcap_status qe_status;       /* the matched QE identity TCB level */
  enum dcap_status module_status;   /* TDX module identity level (UpToDate when none applies) */
  char **advisory_ids;              /* sorted, unique; NULL-terminated (NULL when n == 0) */
  size_t n_advisory_ids;
  uint8_t fmspc[6];
  uint8_t pce_id[2];
  char pck_ca[16];           /* "platform" or "processor" */
  uint32_t tee_type;         /* QUOTE_TEE_SGX or QUOTE_TEE_TDX */
  int64_t collateral_expiry; /* earliest nextUpdate of TCB info, QE identity, CRLs */
  int64_t tcb_date;          /* tcbDate of the matched platform level */
  uint32_t tcb_eval_num;     /* tcbEvaluationDataNumber of the TCB info */
  bool simulated;            /* verified against the simulator's root */
  /* The verified quote: quote's slices point into quote_data (owned by the result). */
  struct quote quote;
  uint8_t *quote_data;
  size_t quote_len;
};

/* Verifies quote[0..len) against c at unix time now. On success fills ret (free with
 * dcap_result_free). On failure returns a negative errno, ret is left empty, and err (if
 * non-NULL) holds the reason, e.g. "PCK chain: certificate revoked", "TCB info expired at
 * 2025-08-18T09:00:53Z", "quote signature invalid", "no matching TCB level",
 * "root CA not trusted (Intel test root?)". */
int dcap_verify(struct dcap_verifier *v, const uint8_t *quote, size_t len,
                const struct dcap_collateral *c, int64_t now, struct dcap_result *ret, char *err,
                size_t errlen);

void dcap_result_free(struct dcap_result *r);

/* Bytes of the verified input after the quote's signature data (not covered by anything). */
size_t dcap_result_trailing_bytes(const struct dcap_result *r);

/* What dcap_verify checks without collateral, for callers that must know a quote is worth
 * fetching collateral for: the quote's PCK chain (signatures, CA flags, the PCK leaf and its SGX
 * extension) up to a trusted root, every certificate valid at now; the QE report signed by the
 * PCK key and binding the attestation key; the quote signed by the attestation key. So only a
 * real platform's QE can produce a quote that passes. Revocation, TCB levels and the QE
 * identity are not checked (they need the collateral); dcap_verify still does all of it. The
 * chain is cached as dcap_verify caches it. *ret_simulated (may be NULL): the root is the
 * simulator's. Errors as dcap_verify. */
int dcap_verify_no_collateral(struct dcap_verifier *v, const struct quote *q, int64_t now,
                              bool *ret_simulated, char *err, size_t errlen);

/* {"status","advisory_ids","fmspc","tee_type" ("TDX"/"SGX"),"simulated","collateral_expiry"
 * (date string),"platform_status","qe_status","module_status","pck_ca","quote_version",
 * "trailing_bytes"} and, with with_body, "body": quote_to_json(). */
int dcap_result_to_json(const struct dcap_result *r, bool with_body, json_t **ret);
