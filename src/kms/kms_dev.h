/* Dev mode (kms --dev DIR): everything a local KMS needs, created when absent:
 *   the simulated platform   $DSTACK_SIM_DIR when set (it must be initialised), else DIR/sim
 *                            (created with `tdxctl sim init` defaults)
 *   DIR/kms.toml             the dev configuration (kms_config_init_dev: this platform's root
 *                            and measurements trusted, onboarding on, 127.0.0.1 port 0, RA-TLS
 *                            server certificate); when it exists it is used as it is
 *   DIR/root-ca.{cert,key}, DIR/root-k256.key, DIR/tmp-ca.{cert,key}
 *                            new root keys and temporary CA (not when onboarding: those come
 *                            from the source KMS)
 * The KMS then serves on a free loopback port and prints "listening https://127.0.0.1:PORT". */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kms_config.h"

/* dir must be absolute. Fills c (kms_config_free it) from DIR/kms.toml, creating it first. */
int kms_dev_config(struct kms_config *c, const char *dir, char *err, size_t errlen);

/* Creates the root keys named by c when none of them exists. -EEXIST when only some do. */
int kms_dev_keys(const struct kms_config *c, char *err, size_t errlen);
