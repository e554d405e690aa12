/* Intel DCAP quotes: TDX v4 and v5 (TD 1.0 / TD 1.5 bodies) and SGX v3.
 *
 * Layout: header 48 B; [v5: u16 body_type, u32 body_size]; body (SGX 384 / TD10 584 / TD15 648);
 * u32 signature-data length; then
 *   v3:    sig 64, attestation key 64, QE report 384, QE report sig 64, u16 auth size + data,
 *          cert data {u16 type, u32 size, data}  (type 5 = PCK chain PEM)
 *   v4/v5: sig 64, attestation key 64, cert data {u16 type = 6, u32 size, data = QE report 384,
 *          QE report sig 64, u16 auth size + data, cert data {u16 type, u32 size, data}}.
 * Trailing bytes after the signature data are ignored (real quotes are zero padded); total_len
 * says how many bytes were used. quote_encode(quote_parse(q)) == q[0..total_len]. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"

#define QUOTE_MAX_SIZE ((size_t)64 * 1024)
#define QUOTE_MAX_PCK_CHAIN ((size_t)16 * 1024)
#define QUOTE_HEADER_SIZE 48
#define QUOTE_SGX_BODY_SIZE 384
#define QUOTE_TD10_BODY_SIZE 584
#define QUOTE_TD15_BODY_SIZE 648
#define QUOTE_QE_REPORT_SIZE 384

#define QUOTE_TEE_SGX 0x00000000u
#define QUOTE_TEE_TDX 0x00000081u
#define QUOTE_ATT_KEY_ECDSA_P256 2
#define QUOTE_CERT_PCK_CHAIN 5
#define QUOTE_CERT_QE_REPORT 6

enum quote_body_type {
  QUOTE_BODY_SGX = 1,
  QUOTE_BODY_TD10 = 2,
  QUOTE_BODY_TD15 = 3,
};

/* SGX enclave report body (384 B): the SGX quote body and the QE report. */
struct sgx_report_body {
  uint8_t cpu_svn[16];
  uint32_t misc_select;
  uint8_t reserved1[28];
  uint8_t attributes[16];
  uint8_t mr_enclave[32];
  uint8_t reserved2[32];
  uint8_t mr_signer[32];
  uint8_t reserved3[96];
  uint16_t isv_prod_id;
  uint16_t isv_svn;
  uint8_t reserved4[60];
  uint8_t report_data[64];
};

/* TD report body: TD 1.0 is everything up to report_data (584 B); TD 1.5 adds the last two. */
struct td_report_body {
  uint8_t tee_tcb_svn[16];
  uint8_t mr_seam[48];
  uint8_t mr_signer_seam[48];
  uint8_t seam_attributes[8];
  uint8_t td_attributes[8];
  uint8_t xfam[8];
  uint8_t mr_td[48];
  uint8_t mr_config_id[48];
  uint8_t mr_owner[48];
  uint8_t mr_owner_config[48];
  uint8_t rt_mr[4][48];
  uint8_t report_data[64];
  uint8_t tee_tcb_svn2[16];  /* TD 1.5 only (zero otherwise) */
  uint8_t mr_service_td[48]; /* TD 1.5 only (zero otherwise) */
};

struct quote {
  /* header */
  uint16_t version;      /* 3, 4 or 5 */
  uint16_t att_key_type; /* 2 = ECDSA P-256 */
  uint32_t tee_type;     /* 0 = SGX, 0x81 = TDX */
  uint16_t qe_svn;
  uint16_t pce_svn;
  uint8_t qe_vendor_id[16];
  uint8_t user_data[20];
  /* body */
  enum quote_body_type body_type;
  uint32_t body_size;         /* bytes of the body (v5: from the descriptor) */
  struct sgx_report_body sgx; /* body_type == QUOTE_BODY_SGX */
  struct td_report_body td;   /* body_type == QUOTE_BODY_TD10 / TD15 */
  /* signature data */
  uint32_t sig_data_len;
  uint8_t signature[64];            /* ECDSA P-256 r||s over the first signed_len bytes */
  uint8_t attest_key[64];           /* X||Y */
  uint16_t outer_cert_type;         /* v4/v5: 6; v3: same as cert_type */
  struct sgx_report_body qe_report; /* quote_encode writes this one */
  uint8_t qe_report_raw[QUOTE_QE_REPORT_SIZE]; /* set by parse: the bytes qe_report_sig covers */
  uint8_t qe_report_sig[64];
  struct slice qe_auth_data;
  uint16_t cert_type;         /* innermost certification data type (5 = PCK chain) */
  struct slice cert_data;     /* its data */
  struct slice pck_chain_pem; /* == cert_data when cert_type == 5, else empty */
  struct slice signed_data;   /* header+body: data[0..signed_len] */
  size_t signed_len;
  size_t total_len; /* bytes used, up to the end of the signature data */
};

/* Parses a quote; slices point into data (keep it alive). Errors: -EBADMSG malformed or
 * truncated, -ENOTSUP unsupported version / key type / body type, -ENOBUFS over the caps. */
int quote_parse(const uint8_t *data, size_t len, struct quote *ret);
/* Same, and on failure writes a one-line reason ("unsupported quote version 7",
 * "certification data size 4166 beyond signature data", ...) into msg when msg != NULL. */
int quote_parse_msg(const uint8_t *data, size_t len, struct quote *ret, char *msg, size_t msg_size);
/* Exact inverse of quote_parse (lengths recomputed from the slices). */
int quote_encode(const struct quote *q, struct buf *out);
/* Only the signed part: header [+ v5 body descriptor] + body (what `signature` covers). */
int quote_encode_signed(const struct quote *q, struct buf *out);
void sgx_report_body_parse(const uint8_t in[QUOTE_SGX_BODY_SIZE], struct sgx_report_body *ret);
void sgx_report_body_encode(const struct sgx_report_body *b, uint8_t out[QUOTE_SGX_BODY_SIZE]);
/* report_data of whichever body the quote has. */
const uint8_t *quote_report_data(const struct quote *q);
const char *quote_body_type_name(enum quote_body_type t); /* "sgx", "td10", "td15" */
/* JSON view (defined in quote_json.c; see quote_json.h for the keys). */
int quote_to_json(const struct quote *q, json_t **ret);
