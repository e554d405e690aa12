/* teepod's pRPC methods: the newest VMM service (Vmm.*, also without a prefix and under
 * Teepod.) and the seed's Teepod.* names. Every refusal is a 4xx with one clear sentence and
 * changes nothing on disk. */
#pragma once

#include <stddef.h>

#include "net/prpc.h"

struct teepod;

struct teepod_api {
  prpc_method_fn vmm[24];
  prpc_method_fn seed[8];
  struct prpc_service svcs[5];
  struct prpc_router router;
};

int teepod_api_init(struct teepod *tp, struct teepod_api *ret, char *err, size_t errlen);
