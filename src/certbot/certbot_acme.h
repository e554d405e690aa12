/* ACME (RFC 8555) client: directory, nonces, account, orders with DNS-01 challenges through a
 * certbot_dns provider, finalization with a CSR, certificate download.
 *
 * Every request and wait is bounded: a badNonce is retried with the fresh nonce at most
 * CERTBOT_ACME_NONCE_RETRIES times, rateLimited and serverInternal problems are retried after a
 * back-off at most CERTBOT_ACME_BUSY_RETRIES times, and polling stops at the deadline given to
 * certbot_acme_new (-ETIMEDOUT). Errors carry the server's problem type and detail in err. */
#pragma once

#include <openssl/evp.h>
#include <stdint.h>

#include "base/buf.h"
#include "certbot_dns.h"

#define CERTBOT_ACME_NONCE_RETRIES 5
#define CERTBOT_ACME_BUSY_RETRIES 3
#define CERTBOT_ACME_MAX_BODY ((size_t)1024 * 1024)

struct certbot_acme;

struct certbot_acme_opts {
  const char *directory_url;
  const char *ca_file;         /* PEM to trust for the ACME server; NULL = system CAs */
  unsigned request_timeout_ms; /* per request; 0 = 30 s */
  int64_t deadline_ms;         /* CLOCK_MONOTONIC ms after which nothing more is started */
};

/* Fetches the directory. */
int certbot_acme_new(const struct certbot_acme_opts *o, struct certbot_acme **ret, char *err,
                     size_t errlen);
void certbot_acme_free(struct certbot_acme *a);

/* Uses key as the account key (a owns it from now on, also on failure). kid NULL: registers (or
 * finds) the account with newAccount (termsOfServiceAgreed, no contact) and returns its URL in
 * *ret_kid; else uses kid. */
int certbot_acme_account(struct certbot_acme *a, EVP_PKEY *key, const char *kid, char **ret_kid,
                         char *err, size_t errlen);

/* Orders a certificate for domains (NULL-terminated) with cert_key, answering DNS-01
 * challenges through dns and waiting at most max_dns_wait_ms for each TXT to show on the
 * provider's authoritative servers. TXT records it adds are removed before it returns, also on
 * failure. ret_chain gets the PEM chain. */
int certbot_acme_issue(struct certbot_acme *a, char *const *domains, EVP_PKEY *cert_key,
                       struct certbot_dns *dns, unsigned max_dns_wait_ms, struct buf *ret_chain,
                       char *err, size_t errlen);

/* The CSR (DER): empty subject, SANs = domains, signed by key with SHA-256. */
int certbot_csr_build(char *const *domains, EVP_PKEY *key, struct buf *ret_der);

/* Parses an application/problem+json body into "type: detail" (the urn prefix kept). */
int certbot_acme_problem_parse(const char *body, size_t len, char **ret_type, char **ret_detail);
