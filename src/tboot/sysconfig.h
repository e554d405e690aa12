/* .sys-config.json from the config disk (interface; the parser lands with its tests). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define SYSCONFIG_MAX_BYTES ((size_t)64 * 1024)
struct sysconfig {
  char **kms_urls;
  size_t n_kms_urls;
  char **gateway_urls;
  size_t n_gateway_urls;
  char *pccs_url;
  char *docker_registry;
  char *host_api_url;
  char *vm_config;
};
int sysconfig_parse(const char *text, size_t len, struct sysconfig *ret, char *why, size_t whylen);
void sysconfig_free(struct sysconfig *c);
int sysconfig_payload(const struct sysconfig *c, struct buf *out);
