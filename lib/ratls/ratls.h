/* RA-TLS certificates: X.509 certificates that carry a TDX quote (whose report_data binds the
 * certificate's public key), the event log and app info in private extensions.
 *
 * Extensions (all non-critical); each extnValue OCTET STRING holds a DER OCTET STRING with the
 * raw bytes (double-wrapped):
 *   1.3.6.1.4.1.62397.1.1  quote       (raw DCAP quote)
 *   1.3.6.1.4.1.62397.1.2  event log   (seed-era JSON lines, or the newest JSON array)
 *   1.3.6.1.4.1.62397.1.3  app info    (opaque bytes, usually empty)
 * Binding: quote.report_data = SHA-512(uncompressed public point 04||X||Y, 65 bytes).
 *
 * Errors: 0 or negative errno. -ENOENT no attestation (no quote extension), -EBADMSG malformed
 * extension (bad inner OCTET STRING, trailing bytes, duplicated extension), -ENOBUFS an
 * extension over its cap, -EPERM a report_data that does not bind the key, -EINVAL bad
 * arguments, -ENOMEM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/buf.h"

struct tee;

#define RATLS_OID_QUOTE "1.3.6.1.4.1.62397.1.1"
#define RATLS_OID_EVENT_LOG "1.3.6.1.4.1.62397.1.2"
#define RATLS_OID_APP_INFO "1.3.6.1.4.1.62397.1.3"

/* Caps on extension contents (after unwrapping). */
#define RATLS_MAX_QUOTE ((size_t)64 * 1024)
#define RATLS_MAX_EVENT_LOG ((size_t)1024 * 1024)
#define RATLS_MAX_APP_INFO ((size_t)64 * 1024)

#define RATLS_DEFAULT_CN "RA-TLS TEMP Cert"

struct ratls_cert_params {
  const char *subject_cn;  /* NULL = RATLS_DEFAULT_CN */
  const char *org_name;    /* subject O; NULL = none */
  const char *alt_subject; /* one DNS subjectAltName; NULL = none */
  int ca_level;            /* < 0: not a CA; >= 0: BasicConstraints CA:TRUE, pathLen = ca_level */
  const uint8_t *app_info; /* app info extension when app_info_len > 0 */
  size_t app_info_len;
  int64_t not_before;      /* unix seconds; both 0 = rcgen defaults (1975-01-01 .. 4096-01-01) */
  int64_t not_after;
};

/* Defaults: CN RATLS_DEFAULT_CN, no O, no SAN, not a CA, no app info, default validity. */
void ratls_cert_params_default(struct ratls_cert_params *p);

/* Evidence placed into a certificate. */
struct ratls_evidence {
  const uint8_t *quote; /* required, 1..RATLS_MAX_QUOTE bytes */
  size_t quote_len;
  const uint8_t *event_log; /* may be NULL/0: the extension is then present and empty */
  size_t event_log_len;
};

/* report_data that binds key: SHA-512 of its 65-byte uncompressed P-256 public point. */
int ratls_report_data_for_key(EVP_PKEY *key, uint8_t ret[64]);

/* Builds a certificate for key carrying ev (extensions quote, event log, app info in that
 * order), signed by issuer/issuer_key, or self-signed when issuer is NULL (issuer_key must
 * then be NULL or key). Does not check the quote. */
int ratls_cert_build(const struct ratls_cert_params *p, EVP_PKEY *key,
                     const struct ratls_evidence *ev, X509 *issuer, EVP_PKEY *issuer_key,
                     X509 **ret);

/* Fresh P-256 key; a quote from tee with report_data = ratls_report_data_for_key(key); the
 * event log = bytes of the TEE's event-log file (empty when missing); then ratls_cert_build().
 * p NULL = defaults. */
int ratls_cert_generate(const struct ratls_cert_params *p, struct tee *tee, X509 *issuer,
                        EVP_PKEY *issuer_key, X509 **ret_cert, EVP_PKEY **ret_key);

struct ratls_attestation {
  struct buf quote;
  struct buf event_log;
  struct buf app_info;
};

void ratls_attestation_init(struct ratls_attestation *a);
/* Frees the buffers; a stays usable (empty). NULL is fine. */
void ratls_attestation_free(struct ratls_attestation *a);
static inline void ratls_attestation_freep(struct ratls_attestation *a) {
  ratls_attestation_free(a);
}
#define _cleanup_ratls_attestation_ _cleanup_(ratls_attestation_freep)

/* Unwraps the DER OCTET STRING inside an extension's extnValue: strict DER length, no trailing
 * bytes. -EBADMSG malformed, -ENOBUFS content longer than max. *ret points into der. */
int ratls_ext_unwrap(const uint8_t *der, size_t len, size_t max, struct slice *ret);
/* DER OCTET STRING wrapping data, appended to out. */
int ratls_ext_wrap(const void *data, size_t len, struct buf *out);

/* Extracts the attestation of cert. ret is initialised here. The attestation is present iff
 * the quote extension is (-ENOENT otherwise); event log and app info default to empty. Fails
 * on a malformed, oversized or duplicated RA-TLS extension. Nothing is verified. */
int ratls_cert_attestation(X509 *cert, struct ratls_attestation *ret);

/* 0 when the quote in a parses and its report_data equals SHA-512 of cert's public point;
 * -EPERM when it does not; -EBADMSG/-ENOTSUP when the quote does not parse; -EINVAL when the
 * certificate key is not an EC P-256 key. Compares in constant time. */
int ratls_report_data_binds_key(X509 *cert, const struct ratls_attestation *a);

