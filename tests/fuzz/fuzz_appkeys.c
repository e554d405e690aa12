/* appkeys.json loading of tappd (src/tappd/appkeys.c): arbitrary text in any of the three
 * shapes (guest AppKeys, KMS AppKeyResponse, seed-era KMS reply). Accepted keys must be
 * self-consistent: a CA key only with its certificate, a k256 key that is a valid secret. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tappd_appkeys.h"
#include "crypto/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct appkeys k;
  char err[200] = "";
  int r = appkeys_parse_json((const char *)data, size, &k, err, sizeof(err));
  if (r < 0) {
    if (!err[0] && r != -ENOMEM)
      abort();
    return 0;
  }
  if (k.ca_key && (!k.ca_cert || !k.ca_pem))
    abort();
  if (k.ca_cert && !k.ca_pem)
    abort();
  if (k.has_k256) {
    uint8_t pub[33];
    if (key_secp256k1_public_from_secret(k.k256_key, pub) < 0)
      abort();
  }
  if (k.format == APPKEYS_GUEST && !k.key_provider)
    abort();
  appkeys_free(&k);
  return 0;
}
