/* DCAP verification collateral: the CRLs, TCB info and QE identity (with their issuer chains)
 * a quote is checked against. Accepted forms:
 *   - dcap-qvl's collateral JSON (the signed texts as strings, DER CRLs and signatures in hex);
 *   - Intel PCS / PCCS API responses: TCB info {"tcbInfo":{...},"signature":"hex"}, QE identity
 *     {"enclaveIdentity":{...},"signature":"hex"} (the signed text is the exact bytes of the
 *     inner object as they appear in the body), issuer chains in PEM (URL-decoded), CRLs in DER
 *     or PEM (or hex of DER, as PCCS serves them);
 *   - a directory of such files (dcap_collateral_from_dir lists the names).
 * Nothing here verifies anything: dcap_verify() does. Parsing is strict and capped.
 *
 * Errors: -EINVAL bad argument, -EBADMSG malformed input, -ENOBUFS over a cap, -ENOENT missing
 * file or field, -ENOMEM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define DCAP_COLLATERAL_MAX_JSON ((size_t)1024 * 1024) /* one TCB info / QE identity body */
#define DCAP_COLLATERAL_MAX_CRL ((size_t)4 * 1024 * 1024)
#define DCAP_COLLATERAL_MAX_CHAIN ((size_t)64 * 1024)

struct dcap_collateral {
  char *pck_crl_issuer_chain;     /* PEM: PCK platform/processor CA [+ root] */
  struct buf root_ca_crl;         /* DER */
  struct buf pck_crl;             /* DER */
  char *tcb_info_issuer_chain;    /* PEM: TCB signing cert [+ root] */
  char *tcb_info;                 /* the exact signed JSON text of the tcbInfo object */
  uint8_t tcb_info_signature[64]; /* ECDSA P-256 r||s */
  char *qe_identity_issuer_chain;
  char *qe_identity; /* the exact signed JSON text of the enclaveIdentity object */
  uint8_t qe_identity_signature[64];
};

/* Frees the members and zeroes c (c itself is not freed). NULL is fine. */
void dcap_collateral_free(struct dcap_collateral *c);
/* Deep copy into ret (ret is overwritten, not freed first). */
int dcap_collateral_copy(const struct dcap_collateral *c, struct dcap_collateral *ret);

/* dcap-qvl collateral JSON: pck_crl_issuer_chain, root_ca_crl (hex DER), pck_crl (hex DER),
 * tcb_info_issuer_chain, tcb_info, tcb_info_signature (hex r||s), qe_identity_issuer_chain,
 * qe_identity, qe_identity_signature. Unknown keys are ignored. */
int dcap_collateral_from_qvl_json(const char *text, size_t len, struct dcap_collateral *ret);
/* The same JSON (compact, keys in the order above), appended to out. */
int dcap_collateral_to_qvl_json(const struct dcap_collateral *c, struct buf *out);

/* Intel PCS / PCCS responses. tcb_info_body / qe_identity_body are the response bodies;
 * the chains are the (URL-decoded) issuer-chain headers; CRLs DER, PEM or hex of DER. */
int dcap_collateral_from_pcs(const char *tcb_info_body, size_t tcb_info_len,
                             const char *tcb_chain_pem, const char *qe_identity_body,
                             size_t qe_identity_len, const char *qe_chain_pem,
                             const uint8_t *root_crl, size_t root_crl_len, const uint8_t *pck_crl,
                             size_t pck_crl_len, const char *pck_crl_chain_pem,
                             struct dcap_collateral *ret);

/* A directory. First DIR/collateral.json (dcap-qvl JSON) if present; otherwise PCS files, the
 * first existing name of each set:
 *   TCB info:     tcb_info.json, tcbinfo.json, tcbInfo.json, sample_tcbInfo_response,
 *                 tcbinfov3_*.json (exactly one match; _from_dir_quote: the quote's FMSPC)
 *   QE identity:  qe_identity.json, qeidentity.json, qeIdentity.json, sample_qeIdentity_response,
 *                 qeidentityv2_tdx.json / qeidentityv2_sgx.json (by the TCB info id)
 *   root CA CRL:  root_ca_crl.der, intel_root_ca_crl.der, rootcrl.der, root_ca_crl.pem
 *   PCK CRL:      pck_crl.der, pck_platform_crl.der, pckcrl, pck_crl.pem
 *                 (pck_processor_crl.der when the CA name is "processor", see _from_dir_ca)
 *   TCB chain:    tcb_signing_chain.pem, tcb_info_issuer_chain.pem, tcbInfoIssuerChain.pem,
 *                 tcb_signing_cert.pem
 *   QE chain:     qe_identity_issuer_chain.pem, qeIdentityIssuerChain.pem, else the TCB chain
 *   PCK CRL chain: pck_crl_issuer_chain.pem, pckCrlIssuerChain.pem, else the CA cert(s) are
 *                 taken from the quote's PCK chain at verification time (chain left empty "")
 * The zkdcap, go-tdx-guest and simulator (DIR/collateral) layouts all load. */
int dcap_collateral_from_dir(const char *dir, struct dcap_collateral *ret);
/* Same, choosing the PCK CRL for a CA type: "platform" or "processor" (NULL = platform). */
int dcap_collateral_from_dir_ca(const char *dir, const char *ca, struct dcap_collateral *ret);

/* Same for a quote: the PCK CRL for the CA that issued the quote's PCK certificate, and the
 * tcbinfov3_<FMSPC>.json matching its FMSPC when several TCB info files are there. */
struct quote;
int dcap_collateral_from_dir_quote(const char *dir, const struct quote *q,
                                   struct dcap_collateral *ret);

/* The earliest nextUpdate of TCB info, QE identity and both CRLs (unix seconds), without
 * verifying anything (for caches that must not serve stale entries). */
int dcap_collateral_next_update(const struct dcap_collateral *c, int64_t *ret);

/* Extracts the exact text of a top-level member's value (an object) from a JSON body, e.g.
 * "tcbInfo" from a PCS response; ret points into body. -ENOENT when absent. */
int dcap_json_member_raw(const char *body, size_t len, const char *key, const char **ret,
                         size_t *ret_len);

/* "2025-07-19T09:00:53Z" (also with fractional seconds or "+00:00") → unix seconds. */
int dcap_parse_date(const char *s, int64_t *ret);
/* unix seconds → "2025-07-19T09:00:53Z" (out >= 21 bytes). */
void dcap_format_date(int64_t t, char out[32]);
