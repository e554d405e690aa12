/* Policy checks on verified measurements. */
#include "kms_policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/hex.h"
#include "base/str.h"
#include "kms_config.h"
#include "kms_derive.h"

static const char *const codes[_KMS_R_MAX] = {
    [KMS_R_TCB_STATUS_NOT_ALLOWED] = "tcb_status_not_allowed",
    [KMS_R_MEASUREMENT_NOT_ALLOWED] = "measurement_not_allowed",
    [KMS_R_APP_NOT_ALLOWED] = "app_not_allowed",
    [KMS_R_ONBOARDING_DISABLED] = "onboarding_disabled",
    [KMS_R_BAD_REQUEST] = "bad_request",
};

const char *kms_reason_code(enum kms_reason r) {
  if ((unsigned)r < _RATLS_R_MAX)
    return ratls_reason_code((enum ratls_reason)r);
  if ((unsigned)r >= _KMS_R_MAX || !codes[r])
    return "internal";
  return codes[r];
}

/* The reason r, with its explanation in why. */
#define refuse(r, why, whylen, ...) ((enum kms_reason)str_err(why, whylen, (int)(r), __VA_ARGS__))

/* Lists hold lowercase hex (config.c lowercases). */
static bool list_has(char *const *l, const uint8_t *v, size_t len) {
  char hx[2 * 64 + 1];
  if (len > 64)
    return false;
  hex_encode(v, len, hx);
  return l && strv_contains(l, hx);
}

static bool status_listed(char *const *l, enum dcap_status s) {
  return l && strv_contains(l, dcap_status_name(s));
}

static bool is_out_of_date(enum dcap_status s) {
  return s == DCAP_STATUS_OUT_OF_DATE || s == DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED;
}

enum kms_reason kms_policy_check(const struct kms_policy *p, const struct kms_policy_input *in,
                                 int64_t now, char *why, size_t whylen) {
  if (!p || !in || !in->mrtd || !in->rtmr)
    return refuse(KMS_R_INTERNAL, why, whylen, "no policy input");
  if (in->simulated && !p->allow_simulator)
    return refuse(KMS_R_SIMULATOR_NOT_ALLOWED, why, whylen,
                  "the quote comes from a simulated TDX platform and allow_simulator is off");
  if (in->status == DCAP_STATUS_REVOKED)
    return refuse(KMS_R_TCB_STATUS_NOT_ALLOWED, why, whylen, "TCB status Revoked");
  if (!status_listed(p->tcb_statuses, in->status)) {
    bool grace = false;
    if (is_out_of_date(in->status) && p->out_of_date_grace_days > 0 &&
        in->tcb_uptodate_since > 0 &&
        now < in->tcb_uptodate_since + (int64_t)p->out_of_date_grace_days * 86400)
      grace = true;
    if (!grace)
      return refuse(KMS_R_TCB_STATUS_NOT_ALLOWED, why, whylen, "TCB status %s is not accepted",
                    dcap_status_name(in->status));
  }
  if (p->allow_all)
    return KMS_OK;
  if (!list_has(p->mrtd, in->mrtd, 48))
    return refuse(KMS_R_MEASUREMENT_NOT_ALLOWED, why, whylen, "MRTD is not in the allowed list");
  char *const *rl[3] = {p->rtmr0, p->rtmr1, p->rtmr2};
  for (int i = 0; i < 3; i++)
    if (!list_has(rl[i], in->rtmr[i], 48))
      return refuse(KMS_R_MEASUREMENT_NOT_ALLOWED, why, whylen,
                    "RTMR%d is not in the allowed list", i);
  bool have_ch = p->compose_hashes && p->compose_hashes[0];
  bool have_ids = p->app_ids && p->app_ids[0];
  if (!have_ch && !have_ids)
    return KMS_OK;
  const struct ratls_app_identity *id = in->id;
  if (!id)
    return refuse(KMS_R_APP_NOT_ALLOWED, why, whylen, "no app identity in the event log");
  if (have_ch && id->has_compose_hash && list_has(p->compose_hashes, id->compose_hash, 32))
    return KMS_OK;
  if (have_ids && list_has(p->app_ids, id->app_id, id->app_id_len))
    return KMS_OK;
  if (have_ch && have_ids)
    return refuse(KMS_R_APP_NOT_ALLOWED, why, whylen,
                  "neither the compose hash nor the app id is allowed");
  if (have_ch)
    return refuse(KMS_R_APP_NOT_ALLOWED, why, whylen,
                  id->has_compose_hash ? "compose hash is not allowed"
                                       : "no compose hash in the event log");
  return refuse(KMS_R_APP_NOT_ALLOWED, why, whylen, "app id is not allowed");
}
