/* `.sys-config.json` (sysconfig_parse) as a host could write it: no crash, and what is accepted
 * obeys the caps and has a canonical payload that parses back as the same object. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "tboot_sysconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sysconfig c;
  char why[128];
  int r = sysconfig_parse((const char *)data, size, &c, why, sizeof(why));
  if (r < 0) {
    if (c.kms_urls || c.pccs_url || c.vm_config)
      abort();
    return 0;
  }
  if (c.n_kms_urls > SYSCONFIG_MAX_URLS || c.n_gateway_urls > SYSCONFIG_MAX_URLS ||
      strlen(c.vm_config) > SYSCONFIG_MAX_VM_CONFIG)
    abort();
  for (size_t i = 0; i < c.n_kms_urls; i++)
    if (strlen(c.kms_urls[i]) > SYSCONFIG_MAX_URL || strchr(c.kms_urls[i], ' '))
      abort();
  struct buf b = BUF_INIT(4 * SYSCONFIG_MAX_BYTES);
  if (sysconfig_payload(&c, &b) < 0)
    abort();
  struct sysconfig again;
  if (sysconfig_parse((const char *)b.data, b.len, &again, NULL, 0) < 0 ||
      again.n_kms_urls != c.n_kms_urls || strcmp(again.docker_registry, c.docker_registry) != 0 ||
      strcmp(again.vm_config, c.vm_config) != 0)
    abort();
  sysconfig_free(&again);
  buf_free(&b);
  sysconfig_free(&c);
  return 0;
}
