/* The certificate blocks of a PEM text together with the exact DER bytes each block holds (an
 * X509 re-encoded by OpenSSL need not be the bytes it came from), for verifiers that compare a
 * certificate byte for byte with a pinned one. Our own reader, with one grammar:
 *
 *   block := "-----BEGIN CERTIFICATE-----" EOL (b64line EOL)+ "-----END CERTIFICATE-----" EOL
 *   EOL   := "\n" | "\r\n"        b64line := one or more of A-Z a-z 0-9 + / =
 *
 * The base64 of a block must be the canonical encoding of its DER (base64_decode_buf), and the
 * DER one certificate without trailing bytes (not checked with X509_PEM_DER_ONLY). Another PEM
 * type, headers, blank lines or whitespace inside a block are malformed. The last END line may
 * lack its EOL. Outside the blocks text is ignored, except with X509_PEM_STRICT: then the text
 * is the blocks and nothing else, but for one optional NUL at its very end (Intel's QE ends
 * the PCK chain with one).
 *
 * Errors: -EBADMSG malformed, -ENOENT no block, -ENOBUFS over X509_CHAIN_MAX blocks or
 * X509_INPUT_MAX bytes, -EINVAL, -ENOMEM. */
#pragma once

#include <openssl/x509.h>
#include <stddef.h>

#include "base/buf.h"
#include "crypto/x509.h"

enum {
  X509_PEM_STRICT = 1 << 0,
  X509_PEM_DER_ONLY = 1 << 1, /* blocks decoded to DER only; c[i].cert stays NULL */
};

struct x509_pem_cert {
  X509 *cert;     /* owned by the list (NULL once taken, or with X509_PEM_DER_ONLY) */
  size_t der_off; /* its DER: der.data[der_off .. der_off + der_len) */
  size_t der_len;
};

struct x509_pem_certs {
  struct buf der; /* the DER of every block, one after the other */
  size_t n;
  struct x509_pem_cert c[X509_CHAIN_MAX];
};

int x509_pem_certs_parse(const void *text, size_t len, unsigned flags,
                         struct x509_pem_certs *ret);
void x509_pem_certs_free(struct x509_pem_certs *l);
static inline void x509_pem_certs_freep(struct x509_pem_certs *l) {
  x509_pem_certs_free(l);
}
#define _cleanup_x509_pem_certs_ _cleanup_(x509_pem_certs_freep)

/* The exact DER of certificate i (points into l). */
static inline struct slice x509_pem_cert_der(const struct x509_pem_certs *l, size_t i) {
  return SLICE(l->der.data + l->c[i].der_off, l->c[i].der_len);
}
