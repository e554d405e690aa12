/* The KMS HTTPS listener and its routes:
 *   GET /          status page (text; first line "KMS Server is running!" as upstream)
 *   GET /health    {"status":"ok", ...}
 *   GET /metrics   Prometheus text: per-phase CPU time and counters (kms_metrics.h)
 *   /prpc/KMS.*    the pRPC service (kms_service.h)
 * TLS: the server certificate from [tls] key/certs, or (ra_tls) an RA-TLS certificate made from
 * the KMS's own TEE at startup and signed by the root CA. Client certificates are asked for
 * (required with [tls.mutual] mandatory): ones chaining to [tls.mutual] ca_certs, or
 * self-signed RA-TLS certificates (a quote extension is required for those; trust comes from
 * the quote, checked per request). */
#pragma once

#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>

#include "kms_service.h"

struct event_base;
struct rpc_server;
struct tee;

struct kms_server {
  struct kms *k;
  struct kms_api api;
  struct rpc_server *rpc;
  SSL_CTX *tls;
  uint16_t port;
};

/* Binds the listener and prints "listening https://ADDR:PORT" to out (may be NULL). */
int kms_server_new(struct kms *k, struct event_base *base, FILE *out, struct kms_server **ret,
                   char *err, size_t errlen);
void kms_server_free(struct kms_server *s);

/* The KMS's own TEE ([core] tee / sim_dir, else auto-detected). */
int kms_tee_open(const struct kms_config *c, struct tee **ret);

/* A fresh P-256 key and an RA-TLS certificate for it from tee: quote binding the key, the
 * TEE's event log (read under a shared lock on the log, so it matches the quote's RTMRs),
 * subjectAltNames localhost / 127.0.0.1 / ::1 plus alt_names. Signed by issuer (NULL =
 * self-signed). */
int kms_ratls_cert_make(struct tee *tee, const char *cn, char *const *alt_names, X509 *issuer,
                        EVP_PKEY *issuer_key, X509 **ret_cert, EVP_PKEY **ret_key);


/* The status page text. */
int kms_status_render(const struct kms *k, struct buf *out);
