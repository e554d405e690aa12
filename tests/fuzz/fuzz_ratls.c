/* Fuzzes RA-TLS extraction: the inner OCTET STRING unwrapping on raw input, and, when the input
 * parses as a DER certificate, the whole attestation extraction with the key-binding check and
 * the app identity the boot-event rules take from the extracted event log. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/x509.h>

#include "ratls/ratls.h"
#include "ratls/ratls_verify.h"

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
    struct ratls_app_identity id;
    for (unsigned flags = 0; flags <= RATLS_ID_ALLOW_SEED; flags++)
      if (ratls_attestation_identity(&a, flags, &id, NULL, 0) == RATLS_OK &&
          (id.app_id_len == 0 || id.app_id_len > RATLS_APP_ID_MAX ||
           strlen(id.app_id_hex) != 2 * id.app_id_len))
        __builtin_trap();
    ratls_attestation_free(&a);
  }
  X509_free(cert);
  return 0;
}
