/* What every DNS provider shares. */
#include <stdlib.h>

#include "certbot_dns.h"

void certbot_dns_records_free(struct certbot_dns_record *r, size_t n) {
  if (!r)
    return;
  for (size_t i = 0; i < n; i++) {
    free(r[i].id);
    free(r[i].type);
    free(r[i].name);
    free(r[i].value);
  }
  free(r);
}
