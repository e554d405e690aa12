/* Simulated DCAP collateral in Intel's own formats: TCB info v3 (TDX), QE identity v2 (TD_QE),
 * root CA and PCK Platform CA CRLs, issuer chains, and the same bundle as one dcap-qvl
 * collateral JSON. The JSON objects are written as text here so that the signed bytes are
 * exactly the bytes in the files. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/sim.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "crypto/keys.h"
#include "crypto/x509.h"

#define SIM_TCB_DATE_CURRENT "2024-03-13T00:00:00Z"
#define SIM_TCB_DATE_OLD "2023-08-09T00:00:00Z"
#define SIM_ADVISORY "\"DSTACK-SIM-SA-00001\""

static int fmt_time(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm))
    return -EINVAL;
  if (strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    return -EINVAL;
  return 0;
}

/* Uppercase hex, as Intel writes identities and masks. */
static int hex_upper(struct buf *b, const void *data, size_t len) {
  const uint8_t *p = data;
  for (size_t i = 0; i < len; i++) {
    int r = buf_printf(b, "%02X", p[i]);
    if (r < 0)
      return r;
  }
  return 0;
}

static const char *const sgx_comp_labels[16] = {
    "\"category\":\"BIOS\",\"type\":\"Early Microcode Update\"",
    "\"category\":\"OS/VMM\",\"type\":\"SGX Late Microcode Update\"",
    "\"category\":\"OS/VMM\",\"type\":\"TXT SINIT\"",
    "\"category\":\"BIOS\"",
    "\"category\":\"BIOS\"",
    "\"category\":\"BIOS\"",
    NULL,
    "\"category\":\"OS/VMM\",\"type\":\"SEAMLDR ACM\"",
};
static const char *const tdx_comp_labels[16] = {
    "\"category\":\"OS/VMM\",\"type\":\"TDX Module\"",
    "\"category\":\"OS/VMM\",\"type\":\"TDX Module\"",
    "\"category\":\"OS/VMM\",\"type\":\"TDX Late Microcode Update\"",
};

static int components(struct buf *b, const char *key, const uint8_t svn[16],
                      const char *const labels[16]) {
  int r = buf_printf(b, "\"%s\":[", key);
  for (size_t i = 0; r >= 0 && i < 16; i++) {
    if (labels[i])
      r = buf_printf(b, "%s{\"svn\":%u,%s}", i ? "," : "", svn[i], labels[i]);
    else
      r = buf_printf(b, "%s{\"svn\":%u}", i ? "," : "", svn[i]);
  }
  if (r >= 0)
    r = buf_append_str(b, "]");
  return r;
}

static int tcb_level(struct buf *b, const uint8_t sgx[16], unsigned pcesvn, const uint8_t tdx[16],
                     const char *date, const char *status, const char *advisories) {
  int r = buf_append_str(b, "{\"tcb\":{");
  if (r >= 0)
    r = components(b, "sgxtcbcomponents", sgx, sgx_comp_labels);
  if (r >= 0)
    r = buf_printf(b, ",\"pcesvn\":%u,", pcesvn);
  if (r >= 0)
    r = components(b, "tdxtcbcomponents", tdx, tdx_comp_labels);
  if (r >= 0)
    r = buf_printf(b, "},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"", date, status);
  if (r >= 0 && advisories)
    r = buf_printf(b, ",\"advisoryIDs\":[%s]", advisories);
  if (r >= 0)
    r = buf_append_str(b, "}");
  return r;
}

static int isv_level(struct buf *b, unsigned isvsvn, const char *date, const char *status,
                     const char *advisories) {
  int r = buf_printf(b, "{\"tcb\":{\"isvsvn\":%u},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"", isvsvn,
                     date, status);
  if (r >= 0 && advisories)
    r = buf_printf(b, ",\"advisoryIDs\":[%s]", advisories);
  if (r >= 0)
    r = buf_append_str(b, "}");
  return r;
}

static uint8_t dec(uint8_t v) {
  return v ? (uint8_t)(v - 1) : 0;
}

/* The tcbInfo object text: an UpToDate level equal to the simulated platform's SVNs and an
 * older OutOfDate one. */
int sim_tcb_info_text(const struct sim_params *p, const uint8_t mr_signer_seam[48],
                      const uint8_t seam_attributes[8], struct buf *b) {
  char issue[32], next[32];
  int r = fmt_time(p->not_before, issue);
  if (r >= 0)
    r = fmt_time(p->not_after, next);
  if (r < 0)
    return r;
  static const uint8_t ones[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  uint8_t tdx_cur[16], tdx_old[16], sgx_old[16];
  memcpy(tdx_cur, p->tee_tcb_svn, 16);
  tdx_cur[1] = 0; /* the module's major version is matched through tdxModuleIdentities */
  memcpy(tdx_old, tdx_cur, 16);
  tdx_old[0] = dec(tdx_old[0]);
  tdx_old[2] = dec(tdx_old[2]);
  memcpy(sgx_old, p->sgx_tcb_comp, 16);
  sgx_old[0] = dec(sgx_old[0]);
  sgx_old[1] = dec(sgx_old[1]);
  unsigned module_version = p->tee_tcb_svn[1] ? p->tee_tcb_svn[1] : 1;

  r = buf_printf(b,
                 "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
                 "\"fmspc\":\"",
                 issue, next);
  if (r >= 0)
    r = hex_upper(b, p->fmspc, 6);
  if (r >= 0)
    r = buf_append_str(b, "\",\"pceId\":\"");
  if (r >= 0)
    r = hex_upper(b, p->pceid, 2);
  if (r >= 0)
    r = buf_printf(b, "\",\"tcbType\":0,\"tcbEvaluationDataNumber\":%u,", p->tcb_eval_num);
  /* tdxModule, then one identity for the module's major version */
  for (int pass = 0; r >= 0 && pass < 2; pass++) {
    if (pass == 0)
      r = buf_append_str(b, "\"tdxModule\":{\"mrsigner\":\"");
    else
      r = buf_printf(b, ",\"tdxModuleIdentities\":[{\"id\":\"TDX_%02X\",\"mrsigner\":\"",
                     module_version);
    if (r >= 0)
      r = hex_upper(b, mr_signer_seam, 48);
    if (r >= 0)
      r = buf_append_str(b, "\",\"attributes\":\"");
    if (r >= 0)
      r = hex_upper(b, seam_attributes, 8);
    if (r >= 0)
      r = buf_append_str(b, "\",\"attributesMask\":\"");
    if (r >= 0)
      r = hex_upper(b, ones, 8);
    if (r >= 0)
      r = buf_append_str(b, "\"");
    if (r >= 0 && pass == 1) {
      r = buf_append_str(b, ",\"tcbLevels\":[");
      if (r >= 0)
        r = isv_level(b, p->tee_tcb_svn[0], SIM_TCB_DATE_CURRENT, "UpToDate", NULL);
      if (r >= 0 && p->tee_tcb_svn[0] > 0) {
        r = buf_append_str(b, ",");
        if (r >= 0)
          r = isv_level(b, dec(p->tee_tcb_svn[0]), SIM_TCB_DATE_OLD, "OutOfDate", NULL);
      }
      if (r >= 0)
        r = buf_append_str(b, "]}]");
    } else if (r >= 0) {
      r = buf_append_str(b, "}");
    }
  }
  if (r >= 0)
    r = buf_append_str(b, ",\"tcbLevels\":[");
  if (r >= 0)
    r = tcb_level(b, p->sgx_tcb_comp, p->pcesvn, tdx_cur, SIM_TCB_DATE_CURRENT, "UpToDate", NULL);
  if (r >= 0)
    r = buf_append_str(b, ",");
  if (r >= 0)
    r = tcb_level(b, sgx_old, p->pcesvn ? p->pcesvn - 1u : 0, tdx_old, SIM_TCB_DATE_OLD,
                  "OutOfDate", SIM_ADVISORY);
  if (r >= 0)
    r = buf_append_str(b, "]}");
  return r;
}

/* The enclaveIdentity object text of the simulated TD QE. */
int sim_qe_identity_text(const struct sim_params *p, const struct sgx_report_body *qe,
                         struct buf *b) {
  static const uint8_t attr_mask[16] = {0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t misc_mask[4] = {0xff, 0xff, 0xff, 0xff};
  char issue[32], next[32];
  int r = fmt_time(p->not_before, issue);
  if (r >= 0)
    r = fmt_time(p->not_after, next);
  if (r < 0)
    return r;
  uint8_t attr[16], misc[4];
  for (size_t i = 0; i < 16; i++)
    attr[i] = qe->attributes[i] & attr_mask[i];
  /* miscselect is shown big-endian as a u32, like Intel's */
  misc[0] = (uint8_t)(qe->misc_select >> 24);
  misc[1] = (uint8_t)(qe->misc_select >> 16);
  misc[2] = (uint8_t)(qe->misc_select >> 8);
  misc[3] = (uint8_t)qe->misc_select;

  r = buf_printf(b,
                 "{\"id\":\"TD_QE\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
                 "\"tcbEvaluationDataNumber\":%u,\"miscselect\":\"",
                 issue, next, p->tcb_eval_num);
  if (r >= 0)
    r = hex_upper(b, misc, 4);
  if (r >= 0)
    r = buf_append_str(b, "\",\"miscselectMask\":\"");
  if (r >= 0)
    r = hex_upper(b, misc_mask, 4);
  if (r >= 0)
    r = buf_append_str(b, "\",\"attributes\":\"");
  if (r >= 0)
    r = hex_upper(b, attr, 16);
  if (r >= 0)
    r = buf_append_str(b, "\",\"attributesMask\":\"");
  if (r >= 0)
    r = hex_upper(b, attr_mask, 16);
  if (r >= 0)
    r = buf_append_str(b, "\",\"mrsigner\":\"");
  if (r >= 0)
    r = hex_upper(b, qe->mr_signer, 32);
  if (r >= 0)
    r = buf_printf(b, "\",\"isvprodid\":%u,\"tcbLevels\":[", qe->isv_prod_id);
  if (r >= 0)
    r = isv_level(b, qe->isv_svn, SIM_TCB_DATE_CURRENT, "UpToDate", NULL);
  if (r >= 0 && qe->isv_svn > 0) {
    r = buf_append_str(b, ",");
    if (r >= 0)
      r = isv_level(b, qe->isv_svn - 1u, SIM_TCB_DATE_OLD, "OutOfDate", SIM_ADVISORY);
  }
  if (r >= 0)
    r = buf_append_str(b, "]}");
  return r;
}

/* {"<key>":<text>,"signature":"<hex r||s>"}, and the signature hex for collateral.json. */
static int sign_wrap(EVP_PKEY *key, const char *wrap_key, const struct buf *text, struct buf *out,
                     char sig_hex[129]) {
  uint8_t sig[64];
  int r = key_ecdsa_sign_raw(key, text->data, text->len, sig);
  if (r < 0)
    return r;
  hex_encode(sig, sizeof(sig), sig_hex);
  r = buf_printf(out, "{\"%s\":", wrap_key);
  if (r >= 0)
    r = buf_append(out, text->data, text->len);
  if (r >= 0)
    r = buf_printf(out, ",\"signature\":\"%s\"}", sig_hex);
  return r;
}

static int asn1_time_set(ASN1_TIME **ret, int64_t t) {
  *ret = ASN1_TIME_set(NULL, (time_t)t);
  return *ret ? 0 : -EIO;
}

/* A v2 CRL by issuer (CRL number, authority key id) with one revoked serial that is none of
 * ours, DER-encoded into out. */
int sim_crl_build(X509 *issuer, EVP_PKEY *issuer_key, int64_t last, int64_t next,
                  struct buf *out) {
  _cleanup_(X509_CRL_freep) X509_CRL *crl = X509_CRL_new();
  _cleanup_(ASN1_TIME_freep) ASN1_TIME *t1 = NULL;
  _cleanup_(ASN1_TIME_freep) ASN1_TIME *t2 = NULL;
  _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *num = ASN1_INTEGER_new();
  _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = ASN1_INTEGER_new();
  if (!crl || !num || !serial)
    return -ENOMEM;
  int r = asn1_time_set(&t1, last);
  if (r >= 0)
    r = asn1_time_set(&t2, next);
  if (r < 0)
    return r;
  if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) != 1 ||
      X509_CRL_set1_lastUpdate(crl, t1) != 1 || X509_CRL_set1_nextUpdate(crl, t2) != 1 ||
      ASN1_INTEGER_set(num, 1) != 1 || X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
    return -EIO;

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
  _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *akid =
      X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
  if (!akid || X509_CRL_add_ext(crl, akid, -1) != 1)
    return -EIO;

  X509_REVOKED *rev = X509_REVOKED_new();
  if (!rev)
    return -ENOMEM;
  static const uint8_t revoked_serial[] = {0x5e, 0x51, 0x3d, 0x5a, 0xc0, 0xff, 0xee};
  if (!ASN1_STRING_set(serial, revoked_serial, sizeof(revoked_serial)) ||
      X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
      X509_REVOKED_set_revocationDate(rev, t1) != 1 || X509_CRL_add0_revoked(crl, rev) != 1) {
    X509_REVOKED_free(rev);
    return -EIO;
  }
  if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, issuer_key, EVP_sha256()) <= 0)
    return -EIO;
  int n = i2d_X509_CRL(crl, NULL);
  if (n <= 0)
    return -EIO;
  r = buf_reserve(out, (size_t)n);
  if (r < 0)
    return r;
  uint8_t *p = out->data + out->len;
  if (i2d_X509_CRL(crl, &p) != n)
    return -EIO;
  out->len += (size_t)n;
  return 0;
}

static int chain_pem(X509 *a, X509 *b, struct buf *out) {
  int r = x509_cert_to_pem(a, out);
  if (r >= 0)
    r = x509_cert_to_pem(b, out);
  return r;
}

static int set_hex_or_text(json_t *j, const char *key, const struct buf *b, bool hex) {
  if (hex)
    return json_set_hex(j, key, b->data, b->len);
  return json_set_strn(j, key, (const char *)b->data, b->len);
}

int sim_collateral_write(const char *dir, const struct sim_params *p, const struct sim_pki *pki,
                         const struct sgx_report_body *qe_report,
                         const uint8_t mr_signer_seam[48], const uint8_t seam_attributes[8]) {
  _cleanup_buf_ struct buf tcb_text = BUF_INIT(BUF_MAX_SMALL), qe_text = BUF_INIT(BUF_MAX_SMALL),
                           tcb_file = BUF_INIT(BUF_MAX_SMALL), qe_file = BUF_INIT(BUF_MAX_SMALL),
                           root_crl = BUF_INIT(BUF_MAX_SMALL), pck_crl = BUF_INIT(BUF_MAX_SMALL),
                           tcb_chain = BUF_INIT(BUF_MAX_SMALL),
                           pck_chain = BUF_INIT(BUF_MAX_SMALL), root_pem = BUF_INIT(BUF_MAX_SMALL),
                           coll = BUF_INIT(BUF_MAX_FILE);
  char tcb_sig[129], qe_sig[129];
  int r = sim_tcb_info_text(p, mr_signer_seam, seam_attributes, &tcb_text);
  if (r >= 0)
    r = sim_qe_identity_text(p, qe_report, &qe_text);
  if (r >= 0)
    r = sign_wrap(pki->tcb_key, "tcbInfo", &tcb_text, &tcb_file, tcb_sig);
  if (r >= 0)
    r = sign_wrap(pki->tcb_key, "enclaveIdentity", &qe_text, &qe_file, qe_sig);
  if (r >= 0)
    r = sim_crl_build(pki->root, pki->root_key, p->not_before, p->not_after, &root_crl);
  if (r >= 0)
    r = sim_crl_build(pki->pck_ca, pki->pck_ca_key, p->not_before, p->not_after, &pck_crl);
  if (r >= 0)
    r = chain_pem(pki->tcb, pki->root, &tcb_chain);
  if (r >= 0)
    r = chain_pem(pki->pck_ca, pki->root, &pck_chain);
  if (r >= 0)
    r = x509_cert_to_pem(pki->root, &root_pem);
  if (r < 0)
    return r;

  _cleanup_json_ json_t *j = json_object();
  if (!j)
    return -ENOMEM;
  const struct {
    const char *key;
    const struct buf *b;
    bool hex;
  } fields[] = {
      {"pck_crl_issuer_chain", &pck_chain, false},
      {"root_ca_crl", &root_crl, true},
      {"pck_crl", &pck_crl, true},
      {"tcb_info_issuer_chain", &tcb_chain, false},
      {"tcb_info", &tcb_text, false},
      {"tcb_info_signature", NULL, false},
      {"qe_identity_issuer_chain", &tcb_chain, false},
      {"qe_identity", &qe_text, false},
      {"qe_identity_signature", NULL, false},
  };
  for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(fields); i++) {
    if (fields[i].b)
      r = set_hex_or_text(j, fields[i].key, fields[i].b, fields[i].hex);
    else
      r = json_set_str(j, fields[i].key, i == 5 ? tcb_sig : qe_sig);
  }
  if (r >= 0)
    r = json_dump_buf(j, JSON_INDENT(2), &coll);
  if (r >= 0)
    r = buf_append_str(&coll, "\n");
  if (r < 0)
    return r;

  if ((r = sim_write_file(dir, SIM_FILE_TCB_INFO, tcb_file.data, tcb_file.len, 0644)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_QE_IDENTITY, qe_file.data, qe_file.len, 0644)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_ROOT_CRL, root_crl.data, root_crl.len, 0644)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_PCK_CRL, pck_crl.data, pck_crl.len, 0644)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_TCB_CHAIN, tcb_chain.data, tcb_chain.len, 0644)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_PCK_CRL_CHAIN, pck_chain.data, pck_chain.len, 0644)) <
          0 ||
      (r = sim_write_file(dir, SIM_FILE_COLL_ROOT_CA, root_pem.data, root_pem.len, 0644)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_COLLATERAL, coll.data, coll.len, 0644)) < 0)
    return r;
  return 0;
}
