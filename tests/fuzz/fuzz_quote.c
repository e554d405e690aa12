/* Quote parser: parse; when accepted, re-encoding must give back the bytes used. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"
#include "attest/quote_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct quote q;
  char msg[200];
  if (quote_parse_msg(data, size, &q, msg, sizeof(msg)) < 0)
    return 0;
  struct buf out = BUF_INIT(BUF_MAX_QUOTE);
  if (quote_encode(&q, &out) < 0 || out.len != q.total_len ||
      memcmp(out.data, data, q.total_len) != 0)
    abort();
  buf_free(&out);
  json_t *j = NULL;
  if (quote_to_json(&q, &j) < 0)
    abort();
  json_decref(j);
  return 0;
}
