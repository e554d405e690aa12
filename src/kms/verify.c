/* The KMS's verifier and policy input on top of the shared RA-TLS verifier. */
#include "kms_verify.h"

#include <stdio.h>

#include "base/str.h"
#include "kms_config.h"

int kms_verifier_new(const struct kms_config *c, bool on_loop, struct ratls_verifier **ret,
                     char *err, size_t errlen) {
  struct ratls_verifier_opts o = {
      .no_blocking_fetch = on_loop,
      .pccs_url = c->pccs_url,
      .cache_dir = c->cache_dir,
      .simulator_dir = kms_config_uses_simulator(c) && !str_isempty(c->simulator_dir)
                           ? c->simulator_dir
                           : NULL,
  };
  return ratls_verifier_new(&o, ret, err, errlen);
}

enum kms_reason kms_identity_from_log(const struct kms_config *c, const struct eventlog *log,
                                      struct ratls_app_identity *ret, char *why, size_t whylen) {
  unsigned flags = c && c->allow_seed_event_log ? RATLS_ID_ALLOW_SEED : 0;
  enum ratls_reason r = ratls_identity_from_log(log, flags, ret, why, whylen);
  if (r != RATLS_OK)
    return (enum kms_reason)r;
  if (ret->era == RATLS_ERA_SEED && !ret->has_rootfs_hash) {
    if (why && whylen)
      snprintf(why, whylen, "no rootfs-hash event on RTMR3 (needed for the seed-era disk key)");
    return KMS_R_MISSING_EVENT;
  }
  return KMS_OK;
}

void kms_peer_policy_input(const struct ratls_peer *p, const struct ratls_app_identity *id,
                           struct kms_policy_input *ret) {
  *ret = (struct kms_policy_input){
      .mrtd = p->dcap.quote.td.mr_td,
      .rtmr = (const uint8_t(*)[48])p->dcap.quote.td.rt_mr,
      .status = p->dcap.status,
      .simulated = p->dcap.simulated,
      .tcb_uptodate_since = p->tcb_uptodate_since,
      .id = id,
  };
}
