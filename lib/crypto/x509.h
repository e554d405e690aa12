/* X.509 certificates: a builder for the certificates this project issues (RA-TLS, app CA, KMS,
 * simulated Intel PCK chain) and parsing helpers over OpenSSL's X509.
 *
 * Errors: -EINVAL bad argument, -EBADMSG malformed input / signature that does not verify,
 * -ENOENT extension or field absent, -ENOBUFS input over a cap, -ENOMEM, -EIO OpenSSL failure. */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "crypto/ossl.h"

/* Caps on untrusted input. */
#define X509_INPUT_MAX ((size_t)1024 * 1024)
#define X509_CHAIN_MAX 16

/* rcgen's default validity: 1975-01-01T00:00:00Z .. 4096-01-01T00:00:00Z. */
#define X509_RCGEN_NOT_BEFORE ((int64_t)157766400)
#define X509_RCGEN_NOT_AFTER ((int64_t)67090118400)

/* KeyUsage bits (bit i = RFC 5280 KeyUsage bit i). */
#define X509_KU_DIGITAL_SIGNATURE (1u << 0)
#define X509_KU_NON_REPUDIATION (1u << 1)
#define X509_KU_KEY_ENCIPHERMENT (1u << 2)
#define X509_KU_DATA_ENCIPHERMENT (1u << 3)
#define X509_KU_KEY_AGREEMENT (1u << 4)
#define X509_KU_KEY_CERT_SIGN (1u << 5)
#define X509_KU_CRL_SIGN (1u << 6)
#define X509_KU_ENCIPHER_ONLY (1u << 7)
#define X509_KU_DECIPHER_ONLY (1u << 8)

/* ExtendedKeyUsage bits. */
#define X509_EKU_SERVER_AUTH (1u << 0)
#define X509_EKU_CLIENT_AUTH (1u << 1)

struct x509_ext {
  const char *oid; /* dotted form, e.g. "1.3.6.1.4.1.62397.1.1" */
  bool critical;
  const uint8_t *value; /* the DER bytes placed inside extnValue's OCTET STRING */
  size_t len;
};

struct x509_params {
  /* Subject DN, emitted in the order C, ST, L, O, CN; NULL fields are left out. */
  const char *subject_cn;
  const char *subject_org;
  const char *subject_country;
  const char *subject_locality;
  const char *subject_state;
  const char *const *dns_sans; /* SubjectAltName dNSName entries (none: no SAN extension) */
  size_t n_dns_sans;
  bool is_ca;        /* BasicConstraints CA:TRUE (critical) */
  int path_len;      /* with is_ca: pathLenConstraint, -1 = none */
  bool explicit_no_ca; /* without is_ca: emit BasicConstraints CA:FALSE instead of nothing */
  unsigned key_usage;     /* X509_KU_* bits, 0 = no KeyUsage extension; critical when present */
  unsigned ext_key_usage; /* X509_EKU_* bits, 0 = no ExtendedKeyUsage extension */
  int64_t not_before;     /* unix seconds; both 0 = rcgen defaults (X509_RCGEN_*) */
  int64_t not_after;
  const uint8_t *serial; /* big-endian serial bytes (1..20), or NULL: */
  size_t serial_len;
  bool serial_from_spki; /* serial == NULL: first 20 bytes of SHA-256(subject SPKI DER), top bit
                            cleared (rcgen 0.13); otherwise 16 random bytes, top bit cleared */
  const struct x509_ext *exts; /* custom extensions, added in order after the standard ones */
  size_t n_exts;
  bool skid_akid; /* SubjectKeyIdentifier (SHA-1 of the subject key bits) and
                     AuthorityKeyIdentifier (the issuer's SKID, or SHA-1 of its key bits when it
                     has none; self-signed: the same as the SKID) */
};

/* Builds and signs a v3 certificate for subject_key (its public part). issuer == NULL makes it
 * self-signed, then issuer_key must be NULL or subject_key's private key. Otherwise the issuer
 * DN comes from issuer and issuer_key (private) signs; it must match issuer's public key.
 * EC keys sign with ECDSA-SHA256, Ed25519 keys with Ed25519. */
int x509_cert_build(const struct x509_params *p, EVP_PKEY *subject_key, X509 *issuer,
                    EVP_PKEY *issuer_key, X509 **ret);

/* Parsing; inputs over X509_INPUT_MAX give -ENOBUFS. DER must not have trailing bytes. */
int x509_cert_from_pem(const void *data, size_t len, X509 **ret);
int x509_cert_from_der(const void *data, size_t len, X509 **ret);
/* All "CERTIFICATE" blocks of a PEM text, in order (other text between blocks is ignored).
 * -ENOENT when there is none, -ENOBUFS over X509_CHAIN_MAX certificates. */
int x509_chain_from_pem(const void *data, size_t len, STACK_OF(X509) * *ret);

/* Encodings, appended to out. */
int x509_cert_to_pem(X509 *c, struct buf *out);
int x509_cert_to_der(X509 *c, struct buf *out);
/* Concatenated PEM of every certificate of the chain. */
int x509_chain_to_pem(STACK_OF(X509) * chain, struct buf *out);

/* Extension lookup by dotted OID: the content of extnValue (the DER inside the OCTET STRING).
 * -ENOENT when absent, -EBADMSG when the OID occurs more than once. */
int x509_cert_ext_get(X509 *c, const char *oid, struct buf *ret_value);
/* Same without copying: ret_value points into c (valid while c lives). ret_critical may be NULL. */
int x509_cert_ext_find(X509 *c, const char *oid, struct slice *ret_value, bool *ret_critical);

/* "CN=..,O=.." on one line (RFC 2253 order reversed to the certificate's order, UTF-8), appended
 * to out. */
int x509_cert_subject_string(X509 *c, struct buf *out);
int x509_cert_issuer_string(X509 *c, struct buf *out);
/* The (first) subject commonName as UTF-8, appended to out; -ENOENT when there is none. */
int x509_cert_subject_cn(X509 *c, struct buf *out);
/* dNSName entries of SubjectAltName: a NULL-terminated array of strings (free with
 * x509_strv_free). No SAN: an empty array. Names containing NUL bytes: -EBADMSG. */
int x509_cert_dns_sans(X509 *c, char ***ret_names, size_t *ret_n);
void x509_strv_free(char **v);
/* BasicConstraints: -ENOENT when absent; ret_path_len = -1 when no pathLen. */
int x509_cert_basic_constraints(X509 *c, bool *ret_ca, int *ret_path_len);
/* KeyUsage as X509_KU_* bits; -ENOENT when absent. */
int x509_cert_key_usage(X509 *c, unsigned *ret_bits);
/* Serial number bytes (big-endian, minimal), appended to out. */
int x509_cert_serial(X509 *c, struct buf *out);
/* notBefore / notAfter as unix seconds (either pointer may be NULL). */
int x509_cert_validity(X509 *c, int64_t *ret_not_before, int64_t *ret_not_after);
/* The subject public key (a new reference). */
int x509_cert_public_key(X509 *c, EVP_PKEY **ret);
/* SubjectPublicKeyInfo DER of the certificate, appended to out. */
int x509_cert_spki_der(X509 *c, struct buf *out);
/* 0 when c's signature verifies with issuer_pub, -EBADMSG when not. */
int x509_cert_verify_signed_by(X509 *c, EVP_PKEY *issuer_pub);
