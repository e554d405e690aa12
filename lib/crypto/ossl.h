/* OpenSSL glue shared by every module: cleanup helpers for _cleanup_() and error-queue draining.
 * Only OpenSSL 3 non-deprecated APIs are used in this tree. */
#pragma once

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>

#include "base/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD *, EVP_MD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER *, EVP_CIPHER_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_KDF *, EVP_KDF_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_KDF_CTX *, EVP_KDF_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MAC *, EVP_MAC_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MAC_CTX *, EVP_MAC_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_CRL *, X509_CRL_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BASIC_CONSTRAINTS *, BASIC_CONSTRAINTS_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(GENERAL_NAMES *, GENERAL_NAMES_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EXTENDED_KEY_USAGE *, EXTENDED_KEY_USAGE_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(AUTHORITY_KEYID *, AUTHORITY_KEYID_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_BIT_STRING *, ASN1_BIT_STRING_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_INTEGER *, ASN1_INTEGER_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_TIME *, ASN1_TIME_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_TYPE *, ASN1_TYPE_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EC_GROUP *, EC_GROUP_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EC_POINT *, EC_POINT_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_clear_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BN_CTX *, BN_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)

/* OPENSSL_malloc'ed memory (e.g. from i2d_*(..., &p) with p == NULL, X509_NAME_oneline). */
static inline void ossl_freep(void *p) {
  OPENSSL_free(*(void **)p);
}
#define _cleanup_ossl_free_ _cleanup_(ossl_freep)

/* A STACK_OF(X509) together with the certificates it owns. NULL is fine. */
static inline void x509_chain_free(STACK_OF(X509) * s) {
  if (s)
    sk_X509_pop_free(s, X509_free);
}
static inline void x509_chain_freep(STACK_OF(X509) * *s) {
  x509_chain_free(*s);
}
#define _cleanup_x509_chain_ _cleanup_(x509_chain_freep)

/* Drains the OpenSSL error queue of this thread into buf as "lib:reason; lib:reason" (always
 * NUL-terminated when n > 0). Returns the number of errors drained (0: queue was empty, buf = "").
 * For debug logs only. */
static inline int ossl_error_string(char *buf, size_t n) {
  unsigned long e;
  int count = 0;
  size_t off = 0;
  if (buf && n)
    buf[0] = '\0';
  while ((e = ERR_get_error()) != 0) {
    count++;
    if (!buf || off + 1 >= n)
      continue;
    char one[256];
    ERR_error_string_n(e, one, sizeof(one));
    int w = snprintf(buf + off, n - off, "%s%s", off ? "; " : "", one);
    if (w < 0)
      continue;
    off += (size_t)w;
    if (off >= n)
      off = n - 1;
  }
  return count;
}
