/* Fetching DCAP collateral from a PCCS or the Intel PCS (v4 API), with a cache.
 *
 * Base URL: the service root, e.g. "https://pccs.example:8081" or
 * "https://api.trustedservices.intel.com". A trailing "/sgx/certification/v4" or
 * "/tdx/certification/v4" (with or without a final '/') is accepted and stripped, so the
 * PCCS-style "https://host:8081/sgx/certification/v4/" works too. Any other path prefix is kept.
 *
 * Requests (tee = "tdx" for TDX quotes, "sgx" for SGX quotes):
 *   GET {base}/{tee}/certification/v4/tcb?fmspc=<hex12>        body {"tcbInfo":..,"signature":..}
 *       chain header TCB-Info-Issuer-Chain (or the older SGX-TCB-Info-Issuer-Chain)
 *   GET {base}/{tee}/certification/v4/qe/identity             body {"enclaveIdentity":..}
 *       chain header SGX-Enclave-Identity-Issuer-Chain (or Enclave-Identity-Issuer-Chain)
 *   GET {base}/sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der
 *       chain header SGX-PCK-CRL-Issuer-Chain (or PCK-CRL-Issuer-Chain); body DER (or PEM)
 *   Root CA CRL: opts->root_ca_crl_url when set; otherwise
 *   GET {base}/sgx/certification/v4/rootcacrl (PCCS; body DER, PEM or hex text of the DER);
 *   when that answers 404 (Intel PCS has no such endpoint), the first http(s) CRL distribution
 *   point of the root certificate at the end of the PCK CRL issuer chain
 *   (for Intel: https://certificates.trustedservices.intel.com/IntelSGXRootCA.der).
 * Chain headers are URL-encoded PEM. Every non-200 status is an error (-EIO for 5xx and
 * unexpected codes, -ENOENT for 404 on TCB info / QE identity / PCK CRL).
 *
 * FMSPC and the PCK CA type come from the quote's PCK certificate chain: FMSPC from the PCK
 * leaf's SGX extension, the CA type from the CN of the intermediate (issuer of the leaf):
 * "Intel SGX PCK Platform CA" -> platform, "Intel SGX PCK Processor CA" -> processor.
 *
 * Cache (dcap_cache.h): entries keyed by tee + FMSPC + CA type, valid until the earliest
 * nextUpdate of TCB info, QE identity, PCK CRL and root CA CRL. A stale entry is never
 * returned: it is re-fetched, and if that fetch fails the call fails. The key does not include
 * the base URL (the collateral is Intel-signed, the same from every PCCS). Freshly fetched
 * collateral that has already expired at `now` is returned (dcap_verify reports it) but not
 * cached. A failing disk write only costs the disk copy.
 * The fetched collateral is NOT verified here (signatures, chains): dcap_verify() does that. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "net/http_client.h"

struct quote;
struct dcap_collateral;
struct dcap_cache;

enum dcap_tee {
  DCAP_TEE_SGX = 0,
  DCAP_TEE_TDX = 1,
};

enum dcap_pck_ca {
  DCAP_PCK_CA_PLATFORM = 0,
  DCAP_PCK_CA_PROCESSOR = 1,
};

struct dcap_fetch_opts {
  /* Transport: timeouts, CA file, mTLS, unix socket. max_body 0 = 4 MiB here. */
  struct http_client_opts http;
  /* Explicit cache to use. NULL = a process-wide cache for cache_dir (memory only when
   * cache_dir is NULL too). */
  struct dcap_cache *cache;
  /* On-disk cache directory (created 0700; files 0600). NULL = $DSTACK_DCAP_CACHE_DIR when
   * set, else no disk cache. Ignored when cache is set. */
  const char *cache_dir;
  bool no_cache;               /* always fetch, store nothing */
  bool cache_only;             /* never fetch: what the cache holds, else -ENOENT */
  const char *root_ca_crl_url; /* fixed root CA CRL URL (skips /rootcacrl and the CDP) */
  int64_t now;                 /* unix seconds for cache validity; 0 = time(NULL) */
};

/* Fetches (or takes from the cache) the collateral for a parsed quote. o may be NULL.
 * -EINVAL bad URL / no PCK chain in the quote, -EBADMSG malformed responses, and the
 * http_request() errors. */
int dcap_fetch_collateral(const char *base_url, const struct quote *q,
                          const struct dcap_fetch_opts *o, struct dcap_collateral *ret);

/* Same, with FMSPC / CA type given directly. */
int dcap_fetch_collateral_for(const char *base_url, enum dcap_tee tee, const uint8_t fmspc[6],
                              enum dcap_pck_ca ca, const struct dcap_fetch_opts *o,
                              struct dcap_collateral *ret);

/* TEE type, FMSPC and PCK CA type of a quote (from its PCK chain). -EINVAL when the quote carries
 * no PCK chain, -EBADMSG when the chain or its extension is malformed or the CA is unknown. */
int dcap_quote_fetch_params(const struct quote *q, enum dcap_tee *ret_tee, uint8_t ret_fmspc[6],
                            enum dcap_pck_ca *ret_ca);

/* The base URL with any "/{sgx,tdx}/certification/v4[/]" suffix and trailing '/' removed.
 * -EINVAL unless it starts with http:// or https://. */
int dcap_fetch_base_url(const char *base_url, char **ret);

/* The first http(s) CRL distribution point URI of the last certificate (the root) of a PEM
 * chain, allocated. -ENOENT when it has none. */
int dcap_fetch_root_crl_url(const char *chain_pem, char **ret);

const char *dcap_tee_name(enum dcap_tee t);       /* "sgx", "tdx" */
const char *dcap_pck_ca_name(enum dcap_pck_ca c); /* "platform", "processor" */

/* Frees the process-wide caches (tests, clean exit). */
void dcap_fetch_caches_free(void);
