/* JSON view of a parsed quote (what `tdxctl quote-info` prints). Hex is lowercase.
 * Keys: version, tee_type ("TDX"/"SGX"), tee_type_raw, att_key_type, qe_svn, pce_svn,
 * qe_vendor_id, user_data, body_type ("td10"/"td15"/"sgx"), body fields (Intel names in
 * snake_case: tee_tcb_svn, mr_seam, ..., rt_mr0..rt_mr3, report_data[, tee_tcb_svn2,
 * mr_service_td] or cpu_svn, misc_select, attributes, mr_enclave, mr_signer, isv_prod_id,
 * isv_svn, report_data), signature, attestation_key, qe_report (object), qe_report_signature,
 * qe_auth_data, cert_type, fmspc, pce_id (from the PCK leaf, when the chain parses),
 * pck_chain (subject strings, leaf first), quote_size. */
#pragma once

#include <jansson.h>

#include "attest/quote.h"
#include "attest/tdreport.h"

int quote_to_json(const struct quote *q, json_t **ret);
int sgx_report_body_to_json(const struct sgx_report_body *b, json_t **ret);
