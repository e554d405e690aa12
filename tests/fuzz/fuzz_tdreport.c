/* TDREPORT parser: parse, re-encode, compare; JSON view. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/tdreport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tdreport r;
  uint8_t out[TDREPORT_SIZE];
  if (tdreport_parse(data, size, &r) < 0)
    return 0;
  tdreport_encode(&r, out);
  if (size != TDREPORT_SIZE || memcmp(out, data, size) != 0)
    abort();
  json_t *j = NULL;
  if (tdreport_to_json(&r, &j) < 0)
    abort();
  json_decref(j);
  return 0;
}
