/* Keys that certbot makes inside a TEE, each vouched for by a quote whose report_data binds it
 * (upstream dstack's newest gateway: AcmeInfoResponse.account_quote and quoted_hist_keys).
 * certbot writes the evidence, tproxy serves it as it is, ct_monitor checks it.
 *
 * Report data: 64 bytes, handed to the TEE as they are (tappd's GetQuote takes raw report
 * data), SHA-512 of a fixed ASCII prefix followed by what the quote vouches for:
 *   ACME account:     SHA-512("acme-account:" || account URI)   (the URI's bytes, no NUL; the
 *                     "account_id" of credentials.json)
 *   certificate key:  SHA-512("cert-pubkey:" || SPKI DER)      (the SubjectPublicKeyInfo of
 *                     the certificate's key, as X.509 encodes it)
 * The prefixes keep the two apart (a URI can never pass for a key) and apart from RA-TLS
 * certificates (SHA-512 of a bare public point).
 *
 * Evidence: a JSON object {"quote":"<hex>","event_log":"<event log JSON text>"}, which is what
 * tappd's GetQuote answers (other keys, e.g. report_data and vm_config, are ignored; the quote
 * may carry a 0x prefix). certbot keeps it in its workdir:
 *   <workdir>/acme-account.quote        next to credentials.json, for the account
 *   <workdir>/backup/<ts>/cert.quote    next to that backup's cert.pem, for its key
 *
 * Checking evidence (ratls_verify_quoted_key in lib/ratls) = the quote's report_data equals the
 * expected value, then full DCAP verification and event-log replay. Which TD made it is the
 * caller's policy.
 *
 * Errors: -EBADMSG malformed evidence, -ENOBUFS over a cap, -EINVAL bad arguments, -ENOMEM. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define QUOTED_KEY_ACCOUNT_PREFIX "acme-account:"
#define QUOTED_KEY_CERT_PREFIX "cert-pubkey:"
#define QUOTED_KEY_ACCOUNT_FILE "acme-account.quote"
#define QUOTED_KEY_CERT_FILE "cert.quote"

/* Caps: the quote, the event log text, the whole evidence text (a hex quote and an escaped
 * event log). */
#define QUOTED_KEY_MAX_QUOTE ((size_t)64 * 1024)
#define QUOTED_KEY_MAX_EVENT_LOG ((size_t)1024 * 1024)
#define QUOTED_KEY_MAX_TEXT ((size_t)4 * 1024 * 1024)
/* Largest SPKI accepted for binding (an RSA-16384 key's SPKI is ~2 KiB). */
#define QUOTED_KEY_MAX_SPKI ((size_t)16 * 1024)

/* SHA-512(prefix || data) for the two kinds above. */
int quoted_key_report_data_account(const char *account_uri, uint8_t ret[64]);
int quoted_key_report_data_cert(const uint8_t *spki, size_t len, uint8_t ret[64]);

struct quoted_key_evidence {
  struct buf quote;     /* raw quote bytes (cap QUOTED_KEY_MAX_QUOTE) */
  struct buf event_log; /* event log JSON text (cap QUOTED_KEY_MAX_EVENT_LOG; may be empty) */
};

/* Parses evidence text. "quote" is required (non-empty hex), "event_log" a string when present.
 * ret is initialised here (free it with quoted_key_evidence_free, also after an error). */
int quoted_key_evidence_parse(const char *text, size_t len, struct quoted_key_evidence *ret);
void quoted_key_evidence_free(struct quoted_key_evidence *e);

/* The evidence text certbot stores: {"quote":"<lowercase hex>","event_log":"<text>"},
 * appended to out. event_log may be NULL when log_len is 0. */
int quoted_key_evidence_format(const uint8_t *quote, size_t len, const char *event_log,
                               size_t log_len, struct buf *out);
