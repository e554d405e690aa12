/* The RFC 2136 provider: TXT and CAA records changed by DNS UPDATE over TCP, signed with TSIG
 * (hmac-sha256), records listed by a plain query to the same server. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "certbot_dns.h"

struct certbot_rfc2136_opts {
  const char *server; /* address or host name */
  uint16_t port;
  const char *zone;
  const char *tsig_key_name;
  const char *tsig_algorithm; /* "hmac-sha256" only */
  const char *tsig_secret;    /* base64; a secret */
  unsigned timeout_ms;        /* per exchange; 0 = 10 s */
};

int certbot_dns_rfc2136_new(const struct certbot_rfc2136_opts *o, struct certbot_dns **ret,
                            char *err, size_t errlen);
