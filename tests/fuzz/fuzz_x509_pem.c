/* PEM certificate lists: the strict grammar accepts a subset of what the lenient one does, with
 * the same certificates; DER slices stay inside the list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/x509_pem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct x509_pem_certs lenient, strict;
  int rl = x509_pem_certs_parse(data, size, 0, &lenient);
  int rs = x509_pem_certs_parse(data, size, X509_PEM_STRICT | X509_PEM_DER_ONLY, &strict);
  if (rl >= 0)
    for (size_t i = 0; i < lenient.n; i++)
      if (!lenient.c[i].cert || lenient.c[i].der_off + lenient.c[i].der_len > lenient.der.len)
        abort();
  if (rs >= 0) {
    /* DER_ONLY does not parse the certificates, so only a parsing failure may differ */
    if (rl >= 0 && (rl != 0 || lenient.n != strict.n || lenient.der.len != strict.der.len ||
                    memcmp(lenient.der.data, strict.der.data, strict.der.len) != 0))
      abort();
    x509_pem_certs_free(&strict);
  }
  if (rl >= 0)
    x509_pem_certs_free(&lenient);
  return 0;
}
