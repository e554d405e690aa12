/* The Tproxy pRPC service: RegisterCvm (attested CVMs only), List, AcmeInfo, Info. */
#pragma once

#include "net/prpc.h"
#include "tproxy.h"

struct tproxy_api {
  prpc_method_fn methods[8];
  struct prpc_service svcs[2]; /* mounted at /prpc/Tproxy. and /prpc/ */
  struct prpc_router router;
};

/* The Tproxy service's method table and routes; err says which method is missing. */
int tproxy_api_init(struct tproxy *t, struct tproxy_api *ret, char *err, size_t errlen);

/* Verifier options from the config (simulator trusted only with [core.quote] simulator_dir). */
int tproxy_verifier_new(const struct tproxy_config *c, struct ratls_verifier **ret, char *err,
                        size_t errlen);

/* The port clients reach the proxy on: the configured one, or the one bound for port 0. */
uint32_t tproxy_external_port(const struct tproxy *t);
