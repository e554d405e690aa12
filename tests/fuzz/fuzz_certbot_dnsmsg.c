/* The DNS response parser of certbot (certbot_dnsmsg_parse in src/certbot/certbot_dnsmsg.c) and
 * what reads the records it returns: TXT and CAA rdata decoders and the TSIG check. Every
 * record must lie inside the input, and errors must be one of the documented codes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certbot_dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > CERTBOT_DNSMSG_MAX)
    return 0;
  uint8_t *p = malloc(size ? size : 1);
  if (!p)
    return 0;
  memcpy(p, data, size);
  struct certbot_dns_msg m = {0};
  int r = certbot_dnsmsg_parse(p, size, &m);
  if (r < 0) {
    if (r != -EBADMSG && r != -ENOBUFS && r != -ENOMEM)
      abort();
    free(p);
    return 0;
  }
  for (size_t i = 0; i < m.n_rrs; i++) {
    const struct certbot_dns_rr *rr = &m.rrs[i];
    if (rr->rdata.ptr < p || rr->rdata.ptr + rr->rdata.len > p + size || strlen(rr->name) > 253)
      abort();
    char *v = NULL;
    if (certbot_dns_txt_rdata_decode(rr->rdata, &v) == 0)
      free(v);
    v = NULL;
    if (certbot_dns_caa_rdata_decode(rr->rdata, &v) == 0)
      free(v);
  }
  static const uint8_t secret[32] = {1};
  static const uint8_t mac[32] = {2};
  const struct certbot_tsig_key k = {"certbot-key", secret, sizeof(secret)};
  r = certbot_tsig_verify(p, size, &m, &k, mac, 1700000000);
  if (r != 0 && r != -EPERM)
    abort();
  certbot_dnsmsg_free(&m);
  free(p);
  return 0;
}
