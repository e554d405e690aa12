/* The app a VM runs, from what the operator sends (CreateVm compose_file): an app-compose.json
 * document as is, or a docker-compose file (YAML or JSON) wrapped into one as the SDKs do
 * (lib/attest/app_compose.h). Anything else is refused with a reason. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "attest/app_compose.h"
#include "base/buf.h"

/* A compose file must parse as YAML (JSON is YAML) and be a mapping at the top. */
int teepod_compose_yaml_check(const char *text, size_t len, char **ret_why);

/* Fills doc with the app-compose.json bytes for text and info with what it says; *ret_wrapped
 * tells whether text was a bare compose file. -EINVAL with *ret_why. */
int teepod_compose_build(const char *text, size_t len, const char *name, struct buf *doc,
                         struct app_compose_info *info, bool *ret_wrapped, char **ret_why);
