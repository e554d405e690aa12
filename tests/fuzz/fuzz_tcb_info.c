/* TCB info / QE identity JSON and the TCB evaluation. The input is parsed as both; whatever
 * parses is evaluated against synthetic quotes (TDX with module version 0 and 3, and SGX) and
 * a PCK extension whose SVNs come from the first input bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/dcap_tcb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void evaluate(const struct dcap_tcb_info *ti, const uint8_t *data, size_t size) {
  struct pck_ext p = {.fmspc = {0}, .pcesvn = 11};
  memcpy(p.fmspc, ti->fmspc, 6);
  memcpy(p.pceid, ti->pce_id, 2);
  for (size_t i = 0; i < 16; i++)
    p.tcb_comp[i] = i < size ? data[i] : 2;
  static const struct dcap_isv_level qe = {.isvsvn = 4, .status = DCAP_STATUS_OUT_OF_DATE};
  for (int k = 0; k < 3; k++) {
    struct quote q = {.version = 4, .tee_type = QUOTE_TEE_TDX, .body_type = QUOTE_BODY_TD10};
    if (k == 2)
      q = (struct quote){.version = 3, .tee_type = QUOTE_TEE_SGX, .body_type = QUOTE_BODY_SGX};
    for (size_t i = 0; i < 16; i++)
      q.td.tee_tcb_svn[i] = 16 + i < size ? data[16 + i] : 3;
    q.td.tee_tcb_svn[1] = k == 1 ? 3 : 0;
    memcpy(q.td.mr_signer_seam, ti->module_mrsigner, 48);
    struct dcap_tcb_outcome o;
    char msg[160];
    int r = dcap_tcb_evaluate(ti, &q, &p, &qe, &o, msg, sizeof(msg));
    if (r == 0 && ((unsigned)o.status >= _DCAP_STATUS_MAX || !o.platform_level ||
                   o.platform_level < ti->levels || o.platform_level >= ti->levels + ti->n_levels))
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dcap_tcb_info ti;
  if (dcap_tcb_info_parse((const char *)data, size, &ti) == 0) {
    if (ti.n_levels == 0 || ti.version != 3)
      abort();
    evaluate(&ti, data, size);
    dcap_tcb_info_free(&ti);
  }
  struct dcap_qe_identity qi;
  if (dcap_qe_identity_parse((const char *)data, size, &qi) == 0) {
    struct sgx_report_body r = {.isv_prod_id = qi.isvprodid, .isv_svn = 5};
    memcpy(r.mr_signer, qi.mrsigner, 32);
    memcpy(r.attributes, qi.attributes, 16);
    const struct dcap_isv_level *l;
    char msg[160];
    (void)dcap_qe_identity_check(&qi, QUOTE_TEE_TDX, &r, &l, msg, sizeof(msg));
    (void)dcap_qe_identity_check(&qi, QUOTE_TEE_SGX, &r, &l, msg, sizeof(msg));
    dcap_qe_identity_free(&qi);
  }
  return 0;
}
