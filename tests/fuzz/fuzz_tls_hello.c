/* ClientHello parser (lib/net/tls_hello.c): arbitrary first bytes of a connection. Checks the
 * result's invariants and that every prefix of an accepted hello asks for more bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tls_hello h;
  int r = tls_hello_parse(data, size, &h);
  if (r != 0 && r != -EAGAIN && r != -EBADMSG && r != -ENOBUFS)
    abort();
  if (r == -EAGAIN && size >= TLS_HELLO_MAX_INPUT)
    abort();
  if (r < 0)
    return 0;
  size_t n = strlen(h.sni);
  if (n > 0 && !tls_hello_hostname_valid(h.sni, n))
    abort();
  if (h.hello_len == 0 || h.hello_len > size || h.alpn_len > TLS_HELLO_ALPN_MAX)
    abort();
  struct slice s;
  size_t k = 0;
  while (tls_hello_alpn_get(&h, k, &s) == 0) {
    if (s.len == 0)
      abort();
    k++;
  }
  if (k != h.n_alpn)
    abort();
  /* the hello ends at hello_len: shorter prefixes are incomplete */
  struct tls_hello h2;
  if (tls_hello_parse(data, h.hello_len, &h2) != 0 || strcmp(h2.sni, h.sni) != 0)
    abort();
  if (tls_hello_parse(data, h.hello_len - 1, &h2) != -EAGAIN)
    abort();
  return 0;
}
