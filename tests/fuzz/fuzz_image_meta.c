/* Fuzzes the JSON half of image metadata loading (image_meta_parse). Invariants: on success the
 * required paths are set and joined to the folder, every path passed the name rule, shared_mode
 * is one of the two values; on failure nothing is left allocated in the result and a reason is
 * given. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/image_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *p) {
  if (!p)
    return;
  if (strncmp(p, "img/", 4) != 0 || p[4] == '\0' || p[4] == '/' || strstr(p, "/../") ||
      (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
    __builtin_trap();
  for (const char *c = p; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct image_meta m;
  char *why = NULL;
  int r = image_meta_parse("img", (const char *)data, size, &m, &why);
  if (r < 0) {
    if (m.dir || m.kernel || m.initrd || m.cmdline || m.shared_mode || (r != -ENOMEM && !why))
      __builtin_trap();
    free(why);
    return 0;
  }
  if (why || !m.kernel || !m.initrd || !m.cmdline || !m.shared_mode || strcmp(m.name, "img") != 0)
    __builtin_trap();
  if (strcmp(m.shared_mode, "disk") != 0 && strcmp(m.shared_mode, "9p") != 0)
    __builtin_trap();
  check_path(m.kernel);
  check_path(m.initrd);
  check_path(m.rootfs);
  check_path(m.hda);
  check_path(m.bios);
  image_meta_free(&m);
  return 0;
}
