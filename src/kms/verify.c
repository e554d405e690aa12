/* The KMS's verifier and policy input on top of the shared RA-TLS verifier. */
#include "kms_verify.h"

#include "base/str.h"
#include "kms_config.h"

int kms_verifier_new(const struct kms_config *c, struct ratls_verifier **ret, char *err,
                     size_t errlen) {
  struct ratls_verifier_opts o = {
      .pccs_url = c->pccs_url,
      .cache_dir = c->cache_dir,
      .simulator_dir = kms_config_uses_simulator(c) && !str_isempty(c->simulator_dir)
                           ? c->simulator_dir
                           : NULL,
  };
  return ratls_verifier_new(&o, ret, err, errlen);
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
