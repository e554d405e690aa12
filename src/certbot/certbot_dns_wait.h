/* The propagation check of certbot's DNS-01 flow: asks name servers directly (c-ares, one
 * server at a time) for the TXT records of a name until every one of them serves the value. */
#pragma once

#include <stddef.h>

/* The longest wait between two rounds of questions. */
#define CERTBOT_DNS_WAIT_MAX_PAUSE_MS 8000u

/* servers: "host:port" (or "host", port 53; "[v6]:port"), NULL-terminated, at most 16; a host
 * that is not an address literal is resolved once at the start. Asks each server that has not
 * yet shown the value, pauses (250 ms, doubling up to CERTBOT_DNS_WAIT_MAX_PAUSE_MS), and asks
 * again until every server has answered with a TXT record whose strings, concatenated, equal
 * value. 0 when they all did; -ETIMEDOUT after max_wait_ms (err names the first server still
 * missing the value and what it last answered); -EINVAL bad arguments; -ENOENT a server host
 * that does not resolve; -EIO c-ares failed to start. */
int certbot_dns_wait_txt(char *const *servers, const char *name, const char *value,
                         unsigned max_wait_ms, char *err, size_t errlen);

/* Whether a DNS answer message (wire format) holds a TXT record equal to value: 1 yes, 0 no
 * (no TXT record or none equal), -EBADMSG malformed. Exposed for the tests. */
int certbot_dns_wait_txt_match(const unsigned char *msg, size_t len, const char *value);
