/* Cloudflare answer parsers (src/certbot/certbot_dns_cf.c): the envelope check, then the
 * record listing of the checked document, filtered by a name and by a type picked from the
 * first byte. Every outcome must be a documented code; records returned must be complete. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certbot_dns_cf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 1 << 20)
    return 0;
  static const char *const types[] = {NULL, "TXT", "CAA", "caa"};
  const char *type = types[data[0] & 3];
  long status = (data[0] & 4) ? 200 : 429;
  char *copy = malloc(size - 1 ? size - 1 : 1);
  if (!copy)
    return 0;
  memcpy(copy, data + 1, size - 1);
  char err[256];
  json_t *root = NULL;
  int r = certbot_dns_cf_envelope_parse(status, copy, size - 1, &root, err, sizeof(err));
  if (r < 0) {
    if (r != -EBADMSG && r != -EREMOTEIO && r != -ENOBUFS && r != -ENOMEM)
      abort();
    if (root)
      abort();
    if (!memchr(err, '\0', sizeof(err)))
      abort();
    free(copy);
    return 0;
  }
  struct certbot_dns_record *recs = NULL;
  size_t n = 0;
  unsigned pages = 0;
  r = certbot_dns_cf_records_parse(root, "_acme-challenge.example.com", type, &recs, &n, &pages);
  if (r == 0) {
    if (pages < 1)
      abort();
    for (size_t i = 0; i < n; i++)
      if (!recs[i].id || !recs[i].type || !recs[i].name || !recs[i].value || !recs[i].id[0])
        abort();
  } else if (r != -EBADMSG && r != -ENOMEM) {
    abort();
  }
  certbot_dns_records_free(recs, n);
  json_decref(root);
  free(copy);
  return 0;
}
