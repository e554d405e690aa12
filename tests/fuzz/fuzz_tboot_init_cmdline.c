/* tboot-init's command line parser on arbitrary bytes: accepted input yields a well-formed
 * rootfs description whose verity table fits and names only what was parsed. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tboot_init_cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct init_rootfs r;
  const char *why = NULL;
  int err = init_cmdline_parse((const char *)data, size, &r, &why);
  if (err < 0) {
    if (!why || (err != -EINVAL && err != -ENOENT && err != -E2BIG))
      abort();
    return 0;
  }
  if (strlen(r.root_hash) != 64 || r.data_blocks == 0 || r.hash_start < r.data_blocks ||
      (strcmp(r.fs, "erofs") && strcmp(r.fs, "squashfs")))
    abort();
  char table[1024];
  if (init_verity_params(&r, "254:0", table, sizeof(table)) <= 0)
    abort();
  char line[8192];
  size_t n = size < 2000 ? size : 2000;
  char *msg = malloc(n + 1);
  if (!msg)
    return 0;
  memcpy(msg, data, n);
  msg[n] = '\0';
  if (init_notify_line(1, "boot.error", msg, line, sizeof(line)) < 0)
    abort();
  free(msg);
  return 0;
}
