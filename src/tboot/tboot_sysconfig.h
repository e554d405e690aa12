/* `.sys-config.json` from the config disk (written by the host): where the KMS, the gateway,
 * PCCS, the docker registry and the host API are, and the VM's configuration as teepod passes
 * it to the KMS. Every field is checked and bounded, and the parsed result is what tboot
 * measures (sysconfig_payload), so the host cannot change it unseen.
 *
 * Errors: -EBADMSG (with a one-sentence reason in why) for a malformed file, -ENOBUFS over
 * SYSCONFIG_MAX_BYTES, -EINVAL bad arguments, -ENOMEM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define SYSCONFIG_MAX_BYTES ((size_t)64 * 1024)
#define SYSCONFIG_MAX_URL 2048
#define SYSCONFIG_MAX_URLS 8
#define SYSCONFIG_MAX_VM_CONFIG ((size_t)16 * 1024)

struct sysconfig {
  char **kms_urls; /* NULL-terminated too; n_kms_urls of them */
  size_t n_kms_urls;
  char **gateway_urls;
  size_t n_gateway_urls;
  char *pccs_url;        /* "" when absent */
  char *docker_registry; /* host[:port] ("" when absent) */
  char *host_api_url;    /* http(s)://, vsock://CID:PORT/..., or virtio-serial:PORTNAME ("") */
  char *vm_config;       /* the raw JSON object text ("" when absent) */
  bool docker_registry_insecure; /* the registry was given as an http:// URL */
};

/* Keys: kms_urls[], gateway_urls[], pccs_url, docker_registry, host_api_url, vm_config (a
 * string holding a JSON object, at most SYSCONFIG_MAX_VM_CONFIG bytes). The seed's single
 * kms_url and tproxy_url stand for the lists when those are absent (or empty). Each URL is
 * http:// or https:// with a host, at most SYSCONFIG_MAX_URL bytes, without spaces or control
 * characters, at most SYSCONFIG_MAX_URLS per list. docker_registry is host[:port] or an
 * http(s) URL of one (then normalised to host[:port], http setting docker_registry_insecure).
 * Unknown keys are ignored; a known key of the wrong type is refused. ret is zeroed first and
 * left empty on failure. */
int sysconfig_parse(const char *text, size_t len, struct sysconfig *ret, char *why,
                    size_t whylen);
void sysconfig_free(struct sysconfig *c);

/* The canonical JSON (sorted keys, compact, all fields above, absent = "" or [], the insecure
 * flag as docker_registry_insecure) tboot measures into RTMR3 as the `sys-config` event, so a
 * verifier can see exactly which KMS, gateway, PCCS and registry the boot used. Appended to
 * out. */
int sysconfig_payload(const struct sysconfig *c, struct buf *out);
