/* Fuzzes the binary parsers of offline TD measurement: the PE/COFF Authenticode walk and the
 * TDVF metadata walk, on the same input (a kernel or a firmware image). Invariants: only
 * -EBADMSG or -ENOENT as failures, and the same input gives the same digest twice. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/td_measure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t a[48], b[48];
  int r = pe_authenticode_sha384(data, size, a);
  if (r < 0 && r != -EBADMSG)
    __builtin_trap();
  if (r == 0 && (pe_authenticode_sha384(data, size, b) != 0 || memcmp(a, b, 48) != 0))
    __builtin_trap();
  r = td_mrtd_from_tdvf(data, size, a);
  if (r < 0 && r != -EBADMSG && r != -ENOENT)
    __builtin_trap();
  return 0;
}
