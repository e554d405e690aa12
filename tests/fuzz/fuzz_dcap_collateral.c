/* DCAP collateral + quote: input = u16le quote length, quote bytes, then a collateral text.
 * The text goes through the dcap-qvl JSON loader, the PCS body loader (as TCB info and QE
 * identity body) and the raw member extractor; when the JSON loads, the quote is verified
 * against it at a fixed time (errors are fine, crashes and leaks are not). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/dcap.h"
#include "attest/dcap_collateral.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dcap_verifier *verifier;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  if (!verifier) {
    struct dcap_verifier_opts o = {.cache_max_entries = 4};
    if (dcap_verifier_new(&o, &verifier) < 0)
      abort();
  }
  size_t qlen = (size_t)data[0] | ((size_t)data[1] << 8);
  data += 2;
  size -= 2;
  if (qlen > size)
    qlen = size;
  const uint8_t *quote = data;
  const char *text = (const char *)data + qlen;
  size_t tlen = size - qlen;

  const char *raw;
  size_t raw_len;
  if (dcap_json_member_raw(text, tlen, "tcbInfo", &raw, &raw_len) == 0 &&
      (raw < text || raw + raw_len > text + tlen || raw[0] != '{' || raw[raw_len - 1] != '}'))
    abort();

  /* PCS form: the text as both bodies, CRLs from the quote bytes */
  struct dcap_collateral c;
  if (dcap_collateral_from_pcs(text, tlen, "", text, tlen, NULL, quote, qlen, quote, qlen, NULL,
                               &c) == 0)
    dcap_collateral_free(&c);

  if (dcap_collateral_from_qvl_json(text, tlen, &c) < 0)
    return 0;
  int64_t next;
  (void)dcap_collateral_next_update(&c, &next);
  struct dcap_result res;
  char err[256];
  if (dcap_verify(verifier, quote, qlen, &c, 1752919234, &res, err, sizeof(err)) == 0) {
    json_t *j = NULL;
    if (dcap_result_to_json(&res, true, &j) < 0)
      abort();
    json_decref(j);
    dcap_result_free(&res);
  } else if (!err[0]) {
    abort(); /* every failure says why */
  }
  dcap_collateral_free(&c);
  return 0;
}
