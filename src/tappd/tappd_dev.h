/* Dev mode (tappd --dev DIR): the drop-in for upstream's simulator. Creates, when absent,
 *   DIR/sim/              a simulated TDX platform (tdxctl sim init)
 *   DIR/appkeys.json      demo app keys (newest AppKeys shape: demo app CA, k256 key signed by a
 *                         demo KMS key); derived from a public constant, so they are the same in
 *                         every dev directory and protect nothing
 *   DIR/app-compose.json  a demo app (public_logs, public_sysinfo, public_tcbinfo on)
 *   DIR/sys-config.json   a demo vm_config whose os_image_hash names a demo OS image
 *                         (a sys-config.json of an earlier dev version, without it, is replaced)
 * and, on a fresh simulated TD, the boot events a real CVM would have on RTMR3. */
#pragma once

#include <stdint.h>

#include "tappd.h"

/* The demo KMS root k256 key's compressed public key (verifies k256_signature). */
int tappd_dev_kms_pubkey(uint8_t ret[33]);

/* Creates the missing files under dir. */
int tappd_dev_prepare(const char *dir, char *err, size_t errlen);

/* SHA-256 of the demo image's digest text: the dev vm_config's os_image_hash. */
int tappd_dev_os_image_hash(uint8_t ret[32]);

/* Emits the boot events in the order of upstream's newest boot flow with a KMS
 * (system-preparing, app-id, compose-hash, instance-id, boot-mr-done, os-image-hash (the
 * vm_config's os_image_hash as the KMS confirms it; the demo image when vm_config has none),
 * key-provider, system-ready) unless the event log already has a system-ready event. */
int tappd_dev_boot(struct tappd *t);
