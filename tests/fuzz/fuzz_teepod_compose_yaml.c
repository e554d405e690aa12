/* The compose file check (teepod_compose_yaml_check, libyaml's event parser): any text an
 * operator sends to CreateVm. Invariants: it returns 0 or -EINVAL (-ENOMEM aside), a refusal
 * has a reason and an acceptance none; what teepod_compose_build makes from an accepted text
 * is a document that passes app_compose_check. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "teepod_compose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  char *why = NULL;
  int r = teepod_compose_yaml_check(text, size, &why);
  if (r != 0 && r != -EINVAL && r != -ENOMEM)
    __builtin_trap();
  if ((r == -EINVAL && !why) || (r == 0 && why))
    __builtin_trap();
  free(why);

  struct buf doc = BUF_INIT(4 * APP_COMPOSE_MAX);
  struct app_compose_info info;
  bool wrapped = false;
  why = NULL;
  int b = teepod_compose_build(text, size, "fuzz", &doc, &info, &wrapped, &why);
  if (b == 0) {
    char *why2 = NULL;
    struct app_compose_info info2;
    if (why || app_compose_check((const char *)doc.data, doc.len, &info2, &why2) != 0 ||
        memcmp(info.compose_hash, info2.compose_hash, 32) != 0)
      __builtin_trap();
    /* a bare compose file is wrapped only when the YAML check took it */
    if (wrapped && r != 0)
      __builtin_trap();
    /* a document is kept byte for byte */
    if (!wrapped && (doc.len != size || memcmp(doc.data, data, size) != 0))
      __builtin_trap();
  } else {
    if (b != -ENOMEM && !why)
      __builtin_trap();
    free(why);
  }
  buf_free(&doc);
  return 0;
}
