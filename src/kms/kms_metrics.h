/* Per-phase CPU accounting for the KMS, served as Prometheus text on GET /metrics:
 *   kms_tls_handshake_cpu_seconds  CPU inside the TLS handshake state machine of the listener
 *                                  (key exchange, certificates, the client-certificate check),
 *                                  measured between OpenSSL's handshake callbacks of one call
 *                                  into the state machine (waiting for the peer never counts)
 *   kms_verify_cpu_seconds         caller verification: RA-TLS evidence, DCAP quote
 *                                  verification with collateral, event-log replay, identity and
 *                                  policy (GetAppKey, GetKmsKey)
 *   kms_derive_cpu_seconds         key derivation and building the reply (app certificate,
 *                                  PEM encodings; env key of GetAppEnvEncryptPubKey, root key
 *                                  encoding of GetKmsKey)
 * each as a summary (_sum seconds, _count), plus process_cpu_seconds_total, so the rest
 * (HTTP, pRPC/JSON, record-layer I/O, event loop) is the difference. The KMS serves from one
 * thread: the counters are plain integers and CPU time is the thread's
 * (CLOCK_THREAD_CPUTIME_ID). */
#pragma once

#include <openssl/ssl.h>
#include <stdint.h>

#include "base/buf.h"

struct kms_phase {
  uint64_t count;
  uint64_t ns;
};

struct kms_metrics {
  struct kms_phase tls;
  struct kms_phase verify;
  struct kms_phase derive;
  /* handshake accounting state: the connection inside the state machine and since when */
  const SSL *hs_ssl;
  uint64_t hs_t;
};

/* CPU time of the calling thread, nanoseconds. */
uint64_t kms_cpu_ns(void);

/* Adds the CPU time since t0 (a kms_cpu_ns() value) to phase p and counts one. */
void kms_phase_add(struct kms_phase *p, uint64_t t0);

/* Accounts the handshakes of ctx's connections in m (an info callback; m must outlive ctx's
 * connections). Replaces any info callback ctx had. */
int kms_metrics_attach_tls(SSL_CTX *ctx, struct kms_metrics *m);

/* Prometheus text exposition of m plus the given counters, appended to out. */
struct kms_stats;
int kms_metrics_render(const struct kms_metrics *m, const struct kms_stats *st, int64_t started,
                       struct buf *out);
