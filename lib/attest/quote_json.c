/* JSON view of a parsed quote. */
#include "attest/quote_json.h"

#include "attest/pck.h"
#include "base/hex.h"
#include "crypto/x509.h"

static int put(json_t *o, const char *key, json_t *v) {
  if (!v)
    return -ENOMEM;
  return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

static int put_hex(json_t *o, const char *key, const void *p, size_t n) {
  char *h = hex_encode_alloc(p, n);
  if (!h)
    return -ENOMEM;
  int r = put(o, key, json_string(h));
  free(h);
  return r;
}

#define HEX(o, key, field)                                                                         \
  do {                                                                                             \
    if ((r = put_hex(o, key, field, sizeof(field))) < 0)                                           \
      goto fail;                                                                                   \
  } while (0)
#define INT(o, key, v)                                                                             \
  do {                                                                                             \
    if ((r = put(o, key, json_integer((json_int_t)(v)))) < 0)                                      \
      goto fail;                                                                                   \
  } while (0)
#define STR(o, key, v)                                                                             \
  do {                                                                                             \
    if ((r = put(o, key, json_string(v))) < 0)                                                     \
      goto fail;                                                                                   \
  } while (0)

static int sgx_body_fill(json_t *o, const struct sgx_report_body *b) {
  int r;
  HEX(o, "cpu_svn", b->cpu_svn);
  INT(o, "misc_select", b->misc_select);
  HEX(o, "attributes", b->attributes);
  HEX(o, "mr_enclave", b->mr_enclave);
  HEX(o, "mr_signer", b->mr_signer);
  INT(o, "isv_prod_id", b->isv_prod_id);
  INT(o, "isv_svn", b->isv_svn);
  HEX(o, "report_data", b->report_data);
  return 0;
fail:
  return r;
}

int sgx_report_body_to_json(const struct sgx_report_body *b, json_t **ret) {
  json_t *o = json_object();
  if (!o)
    return -ENOMEM;
  int r = sgx_body_fill(o, b);
  if (r < 0) {
    json_decref(o);
    return r;
  }
  *ret = o;
  return 0;
}

static int td_body_fill(json_t *o, const struct td_report_body *b, bool td15) {
  static const char *const rtmr_names[4] = {"rt_mr0", "rt_mr1", "rt_mr2", "rt_mr3"};
  int r;
  HEX(o, "tee_tcb_svn", b->tee_tcb_svn);
  HEX(o, "mr_seam", b->mr_seam);
  HEX(o, "mr_signer_seam", b->mr_signer_seam);
  HEX(o, "seam_attributes", b->seam_attributes);
  HEX(o, "td_attributes", b->td_attributes);
  HEX(o, "xfam", b->xfam);
  HEX(o, "mr_td", b->mr_td);
  HEX(o, "mr_config_id", b->mr_config_id);
  HEX(o, "mr_owner", b->mr_owner);
  HEX(o, "mr_owner_config", b->mr_owner_config);
  for (size_t i = 0; i < 4; i++)
    HEX(o, rtmr_names[i], b->rt_mr[i]);
  HEX(o, "report_data", b->report_data);
  if (td15) {
    HEX(o, "tee_tcb_svn2", b->tee_tcb_svn2);
    HEX(o, "mr_service_td", b->mr_service_td);
  }
  return 0;
fail:
  return r;
}

/* Subjects of every certificate in the PEM text, in order (leaf first in a quote). A chain that
 * does not parse gives an empty array: the JSON view shows what is there. */
static int pck_chain_subjects(struct slice pem, json_t **ret) {
  _cleanup_x509_chain_ STACK_OF(X509) *chain = NULL;
  json_t *arr = json_array();
  int r;

  if (!arr)
    return -ENOMEM;
  r = x509_chain_from_pem(pem.ptr, pem.len, &chain);
  if (r == -ENOMEM)
    goto fail;
  for (int i = 0; r >= 0 && i < sk_X509_num(chain); i++) {
    _cleanup_buf_ struct buf s = BUF_INIT(BUF_MAX_SMALL);
    r = x509_cert_subject_string(sk_X509_value(chain, i), &s);
    if (r == -ENOMEM)
      goto fail;
    if (r < 0)
      break;
    if (json_array_append_new(arr, json_stringn((const char *)s.data, s.len)) < 0) {
      r = -ENOMEM;
      goto fail;
    }
  }
  *ret = arr;
  return 0;
fail:
  json_decref(arr);
  return r;
}

int quote_to_json(const struct quote *q, json_t **ret) {
  json_t *o = json_object(), *sub = NULL;
  struct pck_ext ext;
  int r = -ENOMEM;

  if (!o)
    return -ENOMEM;
  INT(o, "version", q->version);
  STR(o, "tee_type",
      q->tee_type == QUOTE_TEE_TDX   ? "TDX"
      : q->tee_type == QUOTE_TEE_SGX ? "SGX"
                                     : "unknown");
  INT(o, "tee_type_raw", q->tee_type);
  INT(o, "att_key_type", q->att_key_type);
  INT(o, "qe_svn", q->qe_svn);
  INT(o, "pce_svn", q->pce_svn);
  HEX(o, "qe_vendor_id", q->qe_vendor_id);
  HEX(o, "user_data", q->user_data);
  STR(o, "body_type", quote_body_type_name(q->body_type));
  r = q->body_type == QUOTE_BODY_SGX ? sgx_body_fill(o, &q->sgx)
                                     : td_body_fill(o, &q->td, q->body_type == QUOTE_BODY_TD15);
  if (r < 0)
    goto fail;
  HEX(o, "signature", q->signature);
  HEX(o, "attestation_key", q->attest_key);
  r = sgx_report_body_to_json(&q->qe_report, &sub);
  if (r < 0)
    goto fail;
  r = put(o, "qe_report", TAKE_PTR(sub));
  if (r < 0)
    goto fail;
  HEX(o, "qe_report_signature", q->qe_report_sig);
  if ((r = put_hex(o, "qe_auth_data", q->qe_auth_data.ptr, q->qe_auth_data.len)) < 0)
    goto fail;
  INT(o, "cert_type", q->cert_type);
  if (q->pck_chain_pem.len &&
      pck_chain_leaf_ext(q->pck_chain_pem.ptr, q->pck_chain_pem.len, &ext) == 0) {
    HEX(o, "fmspc", ext.fmspc);
    HEX(o, "pce_id", ext.pceid);
  } else {
    if ((r = put(o, "fmspc", json_null())) < 0 || (r = put(o, "pce_id", json_null())) < 0)
      goto fail;
  }
  if (q->pck_chain_pem.len) {
    r = pck_chain_subjects(q->pck_chain_pem, &sub);
    if (r < 0)
      goto fail;
    r = put(o, "pck_chain", TAKE_PTR(sub));
  } else
    r = put(o, "pck_chain", json_array());
  if (r < 0)
    goto fail;
  INT(o, "quote_size", q->total_len);
  *ret = o;
  return 0;
fail:
  json_decref(o);
  return r;
}
