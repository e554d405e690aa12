/* The TDX simulator: a software platform (simulated PCK chain, QE, collateral) and a software TD
 * (MRTD, RTMRs, ...) kept in one directory, so that the same code paths as on real TDX run
 * without hardware. Nothing trusts the simulated root implicitly: a verifier must be told
 * explicitly (DIR/root_ca.pem) to accept it.
 *
 * Directory layout made by sim_platform_init(dir) (dir 0700, private keys 0600 PKCS#8 PEM,
 * collateral/ 0755, everything else 0644 unless noted):
 *   DIR/sim.json                  marker + parameters (version, fmspc, svns, seed, validity)
 *   DIR/root_ca.pem               simulated root CA cert (what a verifier must be told to trust)
 *   DIR/root_ca.key               0600
 *   DIR/pck_ca.pem                simulated "PCK Platform CA" cert (signed by root)
 *   DIR/pck_ca.key                0600
 *   DIR/pck.pem                   PCK leaf (SGX extension OID 1.2.840.113741.1.13.1)
 *   DIR/pck.key                   0600
 *   DIR/pck_chain.pem             leaf, platform CA, root (as put in quotes, cert data type 5)
 *   DIR/tcb_signing.pem           TCB signing cert (signed by root)
 *   DIR/tcb_signing.key           0600
 *   DIR/qe_attest.key             0600, QE attestation key (P-256)
 *   DIR/qe_report.bin             384-byte QE report body (SGX report body)
 *   DIR/qe_report.sig             64-byte r||s by the PCK key over qe_report.bin
 *   DIR/qe_auth.bin               32-byte QE authentication data
 *   DIR/report_mac.key            0600, 32-byte secret for TDREPORT MACs
 *   DIR/td.json                   the TD state (measurements, RTMRs), replaced atomically
 *   DIR/td.lock                   0600, flock(2) target serialising td.json updates
 *   DIR/eventlog.jsonl            0600, seed-era JSON lines, all IMRs (boot events on 0..2, then
 *                                 RTMR3); tee_extend_event() flocks it around extend + append
 *   DIR/collateral/tcb_info.json          {"tcbInfo":{...},"signature":"hex"} (Intel PCS format)
 *   DIR/collateral/qe_identity.json       {"enclaveIdentity":{...},"signature":"hex"}
 *   DIR/collateral/root_ca_crl.der        CRL signed by the root (DER)
 *   DIR/collateral/pck_crl.der            CRL signed by the platform CA (DER)
 *   DIR/collateral/tcb_signing_chain.pem  TCB signing cert + root (issuer chain of TCB info and
 *                                         QE identity)
 *   DIR/collateral/pck_crl_issuer_chain.pem  platform CA + root
 *   DIR/collateral/root_ca.pem            copy of DIR/root_ca.pem
 *   DIR/collateral/collateral.json        the same, in the dcap-qvl collateral JSON format
 *                                         (tcb_info / qe_identity = the exact signed texts)
 * Re-running sim_platform_init on a directory replaces every key and resets the TD (RTMR3 = 0,
 * a fresh event log); it must not race with processes using the simulator.
 *
 * The simulated platform (defaults): FMSPC 00806f050000, PCE-ID 0000, SGX TCB components
 * 02 02 02 02 03 01 00 05 0.., PCESVN 11, TEE_TCB_SVN 06 01 03 0.. (TDX module 1.x, SVN 6),
 * QE ISVSVN 4 / ISVPRODID 2. Collateral has an UpToDate TCB level equal to these SVNs and an
 * older OutOfDate one, so a DCAP verifier told to trust DIR/root_ca.pem returns UpToDate. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/quote.h"
#include "attest/tee.h"
#include "base/buf.h"

#define SIM_FILE_MARKER "sim.json"
#define SIM_FILE_ROOT_CA "root_ca.pem"
#define SIM_FILE_ROOT_KEY "root_ca.key"
#define SIM_FILE_PCK_CA "pck_ca.pem"
#define SIM_FILE_PCK_CA_KEY "pck_ca.key"
#define SIM_FILE_PCK "pck.pem"
#define SIM_FILE_PCK_KEY "pck.key"
#define SIM_FILE_PCK_CHAIN "pck_chain.pem"
#define SIM_FILE_TCB_SIGNING "tcb_signing.pem"
#define SIM_FILE_TCB_SIGNING_KEY "tcb_signing.key"
#define SIM_FILE_QE_KEY "qe_attest.key"
#define SIM_FILE_QE_REPORT "qe_report.bin"
#define SIM_FILE_QE_REPORT_SIG "qe_report.sig"
#define SIM_FILE_QE_AUTH "qe_auth.bin"
#define SIM_FILE_MAC_KEY "report_mac.key"
#define SIM_FILE_TD "td.json"
#define SIM_FILE_TD_LOCK "td.lock"
#define SIM_FILE_EVENTLOG "eventlog.jsonl"
#define SIM_DIR_COLLATERAL "collateral"
#define SIM_FILE_TCB_INFO "collateral/tcb_info.json"
#define SIM_FILE_QE_IDENTITY "collateral/qe_identity.json"
#define SIM_FILE_ROOT_CRL "collateral/root_ca_crl.der"
#define SIM_FILE_PCK_CRL "collateral/pck_crl.der"
#define SIM_FILE_TCB_CHAIN "collateral/tcb_signing_chain.pem"
#define SIM_FILE_PCK_CRL_CHAIN "collateral/pck_crl_issuer_chain.pem"
#define SIM_FILE_COLL_ROOT_CA "collateral/root_ca.pem"
#define SIM_FILE_COLLATERAL "collateral/collateral.json"

/* Subject names: shaped like Intel's, clearly marked simulated. */
#define SIM_ORG "dstack simulator (NOT Intel)"
#define SIM_ROOT_CN "Simulated SGX Root CA"
#define SIM_PCK_CA_CN "Simulated SGX PCK Platform CA"
#define SIM_PCK_CN "Simulated SGX PCK Certificate"
#define SIM_TCB_CN "Simulated SGX TCB Signing"

/* Quote header values of the simulated QE. */
#define SIM_QE_SVN 4  /* QE ISVSVN, also the quote header qe_svn */
#define SIM_PCE_SVN 11 /* default PCESVN */
#define SIM_QE_AUTH_SIZE 32
#define SIM_MAC_KEY_SIZE 32
#define SIM_QE_ISVPRODID 2

struct sim_params {
  uint8_t fmspc[6];           /* default 00806f050000 */
  uint8_t pceid[2];           /* default 0000 */
  uint8_t sgx_tcb_comp[16];   /* PCK cert TCB components (CPUSVN), default Intel-like */
  uint16_t pcesvn;            /* default SIM_PCE_SVN */
  uint8_t tee_tcb_svn[16];    /* TD TEE_TCB_SVN, default Intel-like */
  int64_t not_before;         /* collateral/cert validity (unix s), 0 = now - 1 h */
  int64_t not_after;          /* 0 = now + 30 days */
  uint32_t tcb_eval_num;      /* tcbEvaluationDataNumber, default 17 */
  const char *seed;           /* derives the TD's MRTD etc.; NULL = "dstack-sim" */
};

/* Fills p with the defaults described above. */
void sim_params_default(struct sim_params *p);

/* Creates (or re-creates) a simulator platform in dir (made 0700 if missing). p NULL =
 * defaults. Fresh keys every time; TD measurements are deterministic in p->seed. RTMR0..2 are
 * set by replaying simulated boot events written to DIR/eventlog.jsonl, RTMR3 starts zero.
 * Returns 0, -EINVAL, -EIO, -ENOMEM, or what file operations return. */
int sim_platform_init(const char *dir, const struct sim_params *p);

/* 0 when dir looks initialised (marker present), -ENOENT otherwise. */
int sim_platform_check(const char *dir);
/* The simulated platform a daemon's dev mode uses: $DSTACK_SIM_DIR when set (it must be an
 * initialised platform; its absolute path), else DIR/sim, initialised when it is not yet.
 * *ret is malloc'ed; err (when errlen > 0) says what failed. 1 when DIR/sim was created now,
 * 0 when an existing platform is used, negative errno on failure. */
int sim_platform_for_dev(const char *dir, char **ret, char *err, size_t errlen);

/* --- simulated TD state (sim_td.c) --- */

struct sim_td {
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
  uint8_t rtmr[4][48];
};

/* Deterministic initial TD from seed (RTMRs zero). */
void sim_td_default(const char *seed, const uint8_t tee_tcb_svn[16], struct sim_td *ret);
/* Reads DIR/td.json under a shared lock. */
int sim_td_load(const char *dir, struct sim_td *ret);
/* sim_td_load that remembers the last text it parsed: the file is still read under the lock
 * on every call (other processes extend RTMRs), only an unchanged text skips the parse. cache
 * starts zeroed and is owned by one caller at a time (no locking inside). */
struct sim_td_cache {
  bool valid;
  struct buf text;
  struct sim_td td;
};
int sim_td_load_cached(const char *dir, struct sim_td_cache *cache, struct sim_td *ret);
void sim_td_cache_free(struct sim_td_cache *c);
/* Writes DIR/td.json (atomic replace with fsync) under an exclusive lock. */
int sim_td_store(const char *dir, const struct sim_td *td);
/* Read-modify-write of RTMR[index] = SHA-384(RTMR || digest) under LOCK_EX. */
int sim_td_extend(const char *dir, unsigned index, const uint8_t digest[48]);

/* --- internal helpers shared by the sim_*.c files --- */

#define SIM_DEFAULT_SEED "dstack-sim"

/* Allocated "dir/name". */
int sim_path(const char *dir, const char *name, char **ret);
/* SHA-384("dstack-sim/" label "/" seed): every simulated measurement comes from this. */
void sim_derive48(const char *label, const char *seed, uint8_t out[48]);
/* rtmr = SHA-384(rtmr || digest) */
void sim_rtmr_extend(uint8_t rtmr[48], const uint8_t digest[48]);
/* Atomically writes DIR/name with the exact mode. */
int sim_write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode);
/* The simulated QE's report body without report_data. */
void sim_qe_report_default(const struct sim_params *p, struct sgx_report_body *qe);
/* The QE authentication data put in quotes (32 bytes 00 01 .. 1f, as Intel's QE does). */
void sim_qe_auth_data(uint8_t out[SIM_QE_AUTH_SIZE]);

/* The simulated PKI while sim_platform_init runs. */
struct sim_pki {
  X509 *root, *pck_ca, *pck, *tcb;
  EVP_PKEY *root_key, *pck_ca_key, *pck_key, *tcb_key;
};
/* Writes everything under DIR/collateral (TCB info, QE identity, CRLs, chains, collateral.json)
 * for a TD whose TEE_TCB_SVN is tee_tcb_svn and whose QE report body is qe_report. */
int sim_collateral_write(const char *dir, const struct sim_params *p, const struct sim_pki *pki,
                         const struct sgx_report_body *qe_report,
                         const uint8_t mr_signer_seam[48], const uint8_t seam_attributes[8]);
/* The signed object texts (appended to b) and a DER CRL (appended to out). */
int sim_tcb_info_text(const struct sim_params *p, const uint8_t mr_signer_seam[48],
                      const uint8_t seam_attributes[8], struct buf *b);
int sim_qe_identity_text(const struct sim_params *p, const struct sgx_report_body *qe,
                         struct buf *b);
int sim_crl_build(X509 *issuer, EVP_PKEY *issuer_key, int64_t last, int64_t next,
                  struct buf *out);
