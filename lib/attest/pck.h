/* The Intel SGX PCK certificate extension (OID 1.2.840.113741.1.13.1): a SEQUENCE of
 * {OID, value} pairs: PPID (.1), TCB (.2: comp 1..16 INTEGER, .17 PCESVN INTEGER,
 * .18 CPUSVN OCTET STRING 16), PCE-ID (.3), FMSPC (.4), SGX Type (.5 ENUMERATED), and for
 * Platform CA certs PlatformInstanceID (.6) and Configuration (.7: dynamicPlatform .1,
 * cachedKeys .2, SMTEnabled .3, all BOOLEAN, each optional). Strict DER; encode reproduces
 * Intel's layout byte for byte. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "base/buf.h"

#define PCK_EXT_OID "1.2.840.113741.1.13.1"

enum pck_sgx_type {
  PCK_SGX_TYPE_STANDARD = 0,
  PCK_SGX_TYPE_SCALABLE = 1,
  PCK_SGX_TYPE_SCALABLE_WITH_INTEGRITY = 2,
};

struct pck_ext {
  uint8_t ppid[16];
  uint8_t tcb_comp[16]; /* SGX TCB comp SVN 1..16 (index 0 = comp 1) */
  uint16_t pcesvn;
  uint8_t cpusvn[16];
  uint8_t pceid[2];
  uint8_t fmspc[6];
  int sgx_type; /* enum pck_sgx_type */
  bool has_platform_instance_id;
  uint8_t platform_instance_id[16];
  bool has_configuration;
  bool has_dynamic_platform, has_cached_keys, has_smt_enabled;
  bool dynamic_platform, cached_keys, smt_enabled;
};

/* der = the extnValue content of OID 1.2.840.113741.1.13.1. -EBADMSG on anything malformed. */
int pck_ext_parse(const uint8_t *der, size_t len, struct pck_ext *ret);
int pck_ext_encode(const struct pck_ext *e, struct buf *out);
/* Finds and parses the extension of a PCK certificate; -ENOENT when it has none. */
int pck_cert_ext(X509 *pck, struct pck_ext *ret);
/* Parses the first certificate of a PEM chain (the PCK leaf) and its extension. */
int pck_chain_leaf_ext(const uint8_t *pem, size_t len, struct pck_ext *ret);
