/* RA-TLS on an HTTP server's event loop: verify client certificates without stalling the loop.
 *
 * ratls_http_prefetch_then() goes in front of a handler that verifies the request's client
 * certificate (ratls_verify_peer): when that verification would need collateral that must be
 * fetched, the fetch runs on the offload pool (ratls_verifier_prefetch) and the handler runs
 * when it ended; otherwise the handler runs at once. Other clients are served meanwhile. A
 * client that goes away while it waits costs nothing more than its share of the fetch. */
#pragma once

#include <stdint.h>

#include "net/http_server.h"

struct offload;
struct ratls_verifier;

/* now: the clock the verification will use (unix seconds). pool NULL: nothing is prefetched
 * (no PCCS configured). */
void ratls_http_prefetch_then(struct http_request *req, struct ratls_verifier *v,
                              struct offload *pool, int64_t now, http_handler_fn next,
                              void *next_ud);
