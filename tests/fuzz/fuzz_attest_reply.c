/* guest/apps/app/reply.c: any bytes as tappd's HTTP reply. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  int status;
  char *body;
  size_t len;
  const char *why;
  if (attest_reply_parse(buf, size, &status, &body, &len, &why) == 0) {
    if (body < buf || (size_t)(body - buf) + len > size || status < 100 || status > 599)
      abort();
    volatile char sink = len ? body[len - 1] : 0;
    (void)sink;
  }
  free(buf);
  return 0;
}
