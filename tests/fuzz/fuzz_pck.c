/* PCK certificate extension: strict DER parse; accepted input must re-encode byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/pck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct pck_ext e;
  if (pck_ext_parse(data, size, &e) < 0)
    return 0;
  struct buf out = BUF_INIT(BUF_MAX_SMALL);
  if (pck_ext_encode(&e, &out) < 0 || out.len != size || memcmp(out.data, data, size) != 0)
    abort();
  buf_free(&out);
  return 0;
}
