/* DNS TXT answer parser (src/tproxy/dns.c, tproxy_dns_parse_txt_answer): the input is a raw
 * response message to the question _dstack-app-address.a.example. It is parsed with a full
 * buffer and with a small one picked by the message ID's first byte; the two results must
 * agree, stay in bounds and be one of the documented codes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tproxy_dns.h"
#include "tproxy_route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QNAME "_dstack-app-address.a.example"

static void check_code(int r, size_t outlen) {
  if (r >= 0) {
    if ((size_t)r >= outlen)
      abort();
    return;
  }
  if (r != -ENOENT && r != -EIO && r != -EBADMSG && r != -EMSGSIZE)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65535)
    return 0;
  /* a heap copy of exactly size bytes, so ASan sees any read past the end */
  uint8_t *msg = malloc(size ? size : 1);
  if (!msg)
    return 0;
  if (size)
    memcpy(msg, data, size);

  char full[TPROXY_DNS_TXT_MAX + 1];
  uint32_t ttl_full = 0, ttl_small = 0;
  int r_full = tproxy_dns_parse_txt_answer(msg, size, QNAME, full, sizeof(full), &ttl_full);
  check_code(r_full, sizeof(full));
  if (r_full >= 0) {
    if (full[r_full] != 0 || ttl_full > INT32_MAX)
      abort();
    struct tproxy_route rt;
    int e = tproxy_route_parse_txt(full, (size_t)r_full, &rt);
    if (e != 0 && e != -EBADMSG)
      abort();
  }

  size_t small_len = size ? (size_t)(msg[0] % 16) + 1 : 1;
  char *small = malloc(small_len);
  if (!small)
    goto out;
  int r_small = tproxy_dns_parse_txt_answer(msg, size, QNAME, small, small_len, &ttl_small);
  check_code(r_small, small_len);
  if (r_small >= 0) {
    /* it fit in the small buffer: the same value and TTL with the big one */
    if (r_full != r_small || ttl_full != ttl_small || memcmp(full, small, (size_t)r_small + 1))
      abort();
  } else if (r_small == -EMSGSIZE) {
    /* the full parse got further: a longer value, or a malformed string after the cut */
    if (r_full >= 0 ? (size_t)r_full < small_len : r_full != -EMSGSIZE && r_full != -EBADMSG)
      abort();
  } else if (r_small != r_full) {
    abort();
  }
  free(small);
out:
  free(msg);
  return 0;
}
