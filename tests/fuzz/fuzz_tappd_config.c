/* tappd.toml loading (src/tappd/config.c on the TOML parser): arbitrary text applied on top of
 * the defaults. An accepted configuration is dumped, the dump applied to fresh defaults must be
 * accepted and dump to the same text again (--dump-config round trip). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tappd_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tappd_config c, c2;
  char err[512] = "";
  if (tappd_config_init(&c) < 0)
    abort();
  int r = tappd_config_apply(&c, (const char *)data, size, err, sizeof(err));
  if (r < 0) {
    if (!err[0] && r != -ENOMEM)
      abort();
    tappd_config_free(&c);
    return 0;
  }
  char cerr[512] = "";
  if (tappd_config_check(&c, cerr, sizeof(cerr)) < 0 && !cerr[0])
    abort();
  struct buf d1 = BUF_INIT(1 << 22), d2 = BUF_INIT(1 << 22);
  if (tappd_config_dump(&c, &d1) == 0) {
    if (tappd_config_init(&c2) < 0)
      abort();
    if (tappd_config_apply(&c2, (const char *)d1.data, d1.len, err, sizeof(err)) < 0) {
      fprintf(stderr, "dump not accepted: %s\n%.*s\n", err, (int)d1.len, (const char *)d1.data);
      abort();
    }
    if (tappd_config_dump(&c2, &d2) < 0 || d1.len != d2.len ||
        memcmp(d1.data, d2.data, d1.len) != 0) {
      fprintf(stderr, "dump differs:\n%.*s\n---\n%.*s\n", (int)d1.len, (const char *)d1.data,
              (int)d2.len, (const char *)d2.data);
      abort();
    }
    tappd_config_free(&c2);
  }
  buf_free(&d1);
  buf_free(&d2);
  tappd_config_free(&c);
  return 0;
}
