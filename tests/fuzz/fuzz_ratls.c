/* Fuzzes RA-TLS extraction: the inner OCTET STRING unwrapping on raw input, and, when the input
 * parses as a DER certificate, the whole attestation extraction with the key-binding check and
 * the app id / rootfs hash lookups on the extracted event log. */
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ratls/ratls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct slice s;
  if (ratls_ext_unwrap(data, size, RATLS_MAX_EVENT_LOG, &s) == 0) {
    /* Unwrapped content lies inside the input. */
    if (s.len > size || (s.len && (s.ptr < data || s.ptr + s.len > data + size)))
      __builtin_trap();
  }

  const unsigned char *p = data;
  X509 *cert = d2i_X509(NULL, &p, (long)size);
  if (!cert)
    return 0;
  struct ratls_attestation a;
  if (ratls_cert_attestation(cert, &a) == 0) {
    if (a.quote.len > RATLS_MAX_QUOTE || a.event_log.len > RATLS_MAX_EVENT_LOG ||
        a.app_info.len > RATLS_MAX_APP_INFO)
      __builtin_trap();
    (void)ratls_report_data_binds_key(cert, &a);
    char id[41], rootfs[65];
    (void)ratls_app_id(&a, id);
    (void)ratls_rootfs_hash(&a, rootfs);
    ratls_attestation_free(&a);
  }
  X509_free(cert);
  return 0;
}
