/* A reply line on the host channel (hostch_reply_parse) as a hostile host could send it: no
 * crash, exactly one outcome, and a result only for the id that was asked. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/hostch_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *res = NULL;
  char *err = NULL;
  int r = hostch_reply_parse((const char *)data, size, 42, &res, &err);
  switch (r) {
  case 0:
    if (!json_is_object(res) || err)
      abort();
    break;
  case -EREMOTEIO:
    if (res || !err || strlen(err) > HOSTCH_ERROR_MAX)
      abort();
    break;
  case -EAGAIN:
  case -EBADMSG:
    if (res || err)
      abort();
    break;
  default:
    if (r != -ENOMEM)
      abort();
  }
  json_decref(res);
  free(err);
  return 0;
}
