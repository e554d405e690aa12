/* The KMS daemon state and its pRPC service (package kms, service KMS, /prpc/KMS.<Method>):
 *   GetAppKey               mTLS with an RA-TLS client certificate: verify, apply the app
 *                           policy, derive (kms_derive.h), answer AppKeyResponse
 *   GetAppEnvEncryptPubKey  public: X25519 env key of an app id, signed by the root k256 key
 *   GetMeta                 public: root CA certificate, root k256 public key, dev flag
 *   GetTempCaCert           public: the temporary client CA (cert + key) and the root CA cert
 *   GetKmsKey               mTLS with an RA-TLS certificate passing the onboarding policy:
 *                           the root keys (only with [core.onboard] enabled)
 * Refusals answer HTTP 400 {"error": "<reason_code>: <explanation>"} (reason codes in
 * kms_policy.h) and log the measured values. */
#pragma once

#include <stdint.h>
#include <time.h>

#include "kms_config.h"
#include "kms_metrics.h"
#include "net/prpc.h"
#include "kms_rootkeys.h"

struct ratls_verifier;
struct kms_key_cache;

struct kms_stats {
  uint64_t granted;
  uint64_t refused;
  uint64_t onboarded;
};

struct kms {
  const struct kms_config *cfg; /* not owned */
  struct kms_root_keys keys;
  struct ratls_verifier *verifier;
  struct kms_key_cache *key_cache; /* per-app derived keys (kms_derive.h) */
  time_t started;
  struct kms_stats stats;
  struct kms_metrics metrics;
  /* Clock for verification (tests); NULL = time(NULL). */
  int64_t (*now)(void);
};

/* Loads the root keys and builds the verifier. */
int kms_new(const struct kms_config *cfg, struct kms **ret, char *err, size_t errlen);
/* Same with keys already in memory (taken over: *keys is emptied). */
int kms_new_with_keys(const struct kms_config *cfg, struct kms_root_keys *keys, struct kms **ret,
                      char *err, size_t errlen);
void kms_free(struct kms *k);

int64_t kms_now(const struct kms *k);

/* The pRPC services to route "/prpc/" to: GetAppKey and GetKmsKey answer JSON bytes as "0x" +
 * hex, as the seed-era guest scripts read them; the others plain hex. Each is mounted at
 * "/prpc/KMS.<Method>" and, as upstream's pRPC server also routes them (the npm SDK calls
 * /prpc/GetAppEnvEncryptPubKey), at "/prpc/<Method>". */
struct kms_api {
  prpc_method_fn secret_methods[8], public_methods[8];
  struct prpc_service svcs[4];
  struct prpc_router router;
};
/* The KMS service's method tables and routes; err says which method is missing. */
int kms_api_init(struct kms *k, struct kms_api *ret, char *err, size_t errlen);

/* Frees a reply message after wiping its secret fields. */
void kms_reply_free(ProtobufCMessage *m, void *ud);
