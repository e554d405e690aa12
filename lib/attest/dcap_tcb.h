/* Intel TCB info (v3, "SGX" and "TDX") and enclave identity (v2, "QE" / "TD_QE" / "QVE") JSON,
 * and the TCB evaluation of Intel's Quote Verification Library: platform TCB level matching
 * (SGX components + PCESVN from the PCK certificate, TDX components from TEE_TCB_SVN with the
 * TDX module rule), TDX module identity, QE identity, and the status merge.
 *
 * Parsing is strict: every field Intel defines for these versions must be present with the
 * right type and form. Errors: -EBADMSG malformed, -ENOTSUP unsupported id/version,
 * -ENOBUFS over a cap, -ENOMEM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/dcap.h"
#include "attest/pck.h"
#include "attest/quote.h"

#define DCAP_TCB_MAX_LEVELS 512
#define DCAP_TCB_MAX_MODULES 64
#define DCAP_TCB_MAX_ADVISORIES 256 /* per level */
#define DCAP_TCB_MAX_ADVISORY_LEN 64

enum dcap_tcb_id {
  DCAP_TCB_ID_SGX = 0,
  DCAP_TCB_ID_TDX = 1,
};

enum dcap_enclave_id {
  DCAP_ENCLAVE_QE = 0,
  DCAP_ENCLAVE_TD_QE = 1,
  DCAP_ENCLAVE_QVE = 2,
};

struct dcap_tcb_level {
  uint8_t sgx_comp[16];
  uint16_t pcesvn;
  uint8_t tdx_comp[16]; /* TDX TCB info only */
  int64_t tcb_date;
  enum dcap_status status;
  char **advisory_ids; /* NULL-terminated or NULL */
  size_t n_advisory_ids;
};

/* A TCB level of an enclave or TDX module identity: keyed by ISVSVN only. */
struct dcap_isv_level {
  uint16_t isvsvn;
  int64_t tcb_date;
  enum dcap_status status; /* UpToDate, OutOfDate or Revoked */
  char **advisory_ids;
  size_t n_advisory_ids;
};

struct dcap_tdx_module_identity {
  char id[16]; /* "TDX_01" ... */
  uint8_t mrsigner[48];
  uint8_t attributes[8];
  uint8_t attributes_mask[8];
  struct dcap_isv_level *levels;
  size_t n_levels;
};

struct dcap_tcb_info {
  enum dcap_tcb_id id;
  uint32_t version; /* 3 */
  int64_t issue_date, next_update;
  uint8_t fmspc[6];
  uint8_t pce_id[2];
  uint32_t tcb_type;
  uint32_t tcb_eval_num;
  /* TDX only */
  uint8_t module_mrsigner[48];
  uint8_t module_attributes[8];
  uint8_t module_attributes_mask[8];
  struct dcap_tdx_module_identity *modules; /* tdxModuleIdentities (may be absent: n = 0) */
  size_t n_modules;
  struct dcap_tcb_level *levels;
  size_t n_levels;
};

struct dcap_qe_identity {
  enum dcap_enclave_id id;
  uint32_t version; /* 2 */
  int64_t issue_date, next_update;
  uint32_t tcb_eval_num;
  uint8_t miscselect[4]; /* bytes as in the JSON hex = the report's little-endian bytes */
  uint8_t miscselect_mask[4];
  uint8_t attributes[16];
  uint8_t attributes_mask[16];
  uint8_t mrsigner[32];
  uint16_t isvprodid;
  struct dcap_isv_level *levels;
  size_t n_levels;
};

/* text = the tcbInfo object itself (what the signature covers), not the PCS wrapper. */
int dcap_tcb_info_parse(const char *text, size_t len, struct dcap_tcb_info *ret);
void dcap_tcb_info_free(struct dcap_tcb_info *t);
/* text = the enclaveIdentity object. */
int dcap_qe_identity_parse(const char *text, size_t len, struct dcap_qe_identity *ret);
void dcap_qe_identity_free(struct dcap_qe_identity *q);

/* Status merges as Intel's QVL does: the platform level with the TDX module identity status,
 * and the result with the QE identity status. */
enum dcap_status dcap_status_merge_module(enum dcap_status platform, enum dcap_status module);
enum dcap_status dcap_status_merge_qe(enum dcap_status platform, enum dcap_status qe);

/* The outcome of the TCB evaluation. Advisory pointers point into the TCB info / QE identity. */
struct dcap_tcb_outcome {
  enum dcap_status status;
  enum dcap_status platform_status;
  enum dcap_status qe_status;
  enum dcap_status module_status;
  const struct dcap_tcb_level *platform_level;
  const struct dcap_isv_level *qe_level;
  const struct dcap_isv_level *module_level; /* NULL when no module identity applies */
};

/* The QE report against the QE identity: id for the TEE type, masked MISCSELECT and
 * ATTRIBUTES, MRSIGNER, ISVPRODID, then the first level with ISVSVN <= the report's.
 * -EPERM on a mismatch, -ENOENT when no level matches; msg says which. */
int dcap_qe_identity_check(const struct dcap_qe_identity *qi, uint32_t tee_type,
                           const struct sgx_report_body *qe_report,
                           const struct dcap_isv_level **ret_level, char *msg, size_t msglen);

/* TCB info id for the TEE type, FMSPC / PCE-ID against the PCK extension, TDX module identity
 * (MRSIGNERSEAM, masked SEAM attributes; TDX_%02X of tdxModuleIdentities when
 * tee_tcb_svn[1] > 0 on v4/v5 quotes, else tdxModule), platform level, module level, QE level
 * (qe_level from dcap_qe_identity_check) and the merge. -EPERM on a mismatch, -ENOENT when no
 * level matches ("no matching TCB level"); msg says which. */
int dcap_tcb_evaluate(const struct dcap_tcb_info *ti, const struct quote *q,
                      const struct pck_ext *pck, const struct dcap_isv_level *qe_level,
                      struct dcap_tcb_outcome *ret, char *msg, size_t msglen);
