/* SNI routing (src/tproxy/route.c): input "<sni>\n<base>" for tproxy_route_parse, and the
 * whole input as a TXT record value. Accepted routes must satisfy the documented rules. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls_hello.h"
#include "tproxy_route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_app(const struct tproxy_route *r) {
  size_t n = strlen(r->app_id);
  if (n < 1 || n > TPROXY_APP_ID_MAX || r->port == 0)
    abort();
  for (size_t i = 0; i < n; i++)
    if (!strchr("0123456789abcdef", r->app_id[i]))
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tproxy_route r;
  if (size > 600)
    return 0;
  int e = tproxy_route_parse_txt((const char *)data, size, &r);
  if (e == 0) {
    check_app(&r);
    if (!r.custom || r.mode != ROUTE_PASSTHROUGH)
      abort();
  } else if (e != -EBADMSG) {
    abort();
  }

  char buf[601];
  memcpy(buf, data, size);
  buf[size] = 0;
  if (strlen(buf) != size)
    return 0;
  char *nl = strchr(buf, '\n');
  const char *base = "gw.example.com";
  if (nl) {
    *nl = 0;
    base = nl + 1;
  }
  e = tproxy_route_parse(buf, base, &r);
  if (e == -EINVAL || e == -EBADMSG)
    return 0;
  if (e != 0)
    abort();
  if (!tls_hello_hostname_valid(buf, strlen(buf)))
    abort();
  if (r.custom) {
    if (r.app_id[0] || r.port)
      abort();
    return 0;
  }
  check_app(&r);
  /* the name starts with the app id and lies under the base domain */
  if (strncmp(buf, r.app_id, strlen(r.app_id)) != 0)
    abort();
  char *dot = strchr(buf, '.');
  if (!dot || (dot[-1] == 's') != (r.mode == ROUTE_PASSTHROUGH) ||
      (dot[-1] == 'g') != (r.mode == ROUTE_H2))
    abort();
  return 0;
}
