/* Waiting until the authoritative servers answer a TXT record. */
#pragma once

#include <stddef.h>

/* Polls every server ("host:port", "[v6]:port") until each one answers a TXT record name
 * whose value is value, for at most max_wait_ms in total. 0 when all do; -ETIMEDOUT (with
 * the servers that did not in err) otherwise. */
int certbot_dns_wait_txt(char *const *servers, const char *name, const char *value,
                         unsigned max_wait_ms, char *err, size_t errlen);
