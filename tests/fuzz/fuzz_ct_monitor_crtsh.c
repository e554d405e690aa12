/* crt.sh JSON answers (src/ct_monitor/crtsh.c, ct_crtsh_parse): any input either parses into
 * entries with ids >= 1 and non-NULL strings, which sort into strictly ascending ids that
 * ct_entries_find locates, or fails with one of the documented codes. The entry cap is taken
 * from the first byte, so the cap's edge is reached too. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ct_monitor_crtsh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1024 * 1024)
    return 0;
  size_t max = size ? (size_t)(data[0] % 16) + 1 : 1;
  /* a heap copy of exactly size bytes, so ASan sees any read past the end */
  char *text = malloc(size ? size : 1);
  if (!text)
    return 0;
  if (size)
    memcpy(text, data, size);
  struct ct_entries e;
  char err[256];
  int r = ct_crtsh_parse(text, size, max, &e, err, sizeof(err));
  if (r < 0) {
    if (r != -EBADMSG && r != -E2BIG && r != -ENOBUFS && r != -ENOMEM)
      abort();
  } else {
    if (e.n > max)
      abort();
    for (size_t i = 0; i < e.n; i++)
      if (e.v[i].id < 1 || !e.v[i].serial || !e.v[i].common_name || !e.v[i].name_value ||
          !e.v[i].issuer_name || !e.v[i].not_before)
        abort();
    ct_entries_sort(&e);
    for (size_t i = 0; i < e.n; i++) {
      if (i && e.v[i].id <= e.v[i - 1].id)
        abort();
      if (ct_entries_find(&e, e.v[i].id) != (ssize_t)i)
        abort();
    }
  }
  ct_entries_free(&e);
  free(text);
  return 0;
}
