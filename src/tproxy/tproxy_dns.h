/* Custom-domain lookups of the TLS proxy: the DNS TXT record _dstack-app-address.<name> (then,
 * when legacy is set and that has no record, _tapp-address.<name>) whose value is
 * "<app_id>:<port>" (route.h), asked with c-ares on the worker's libevent loop and cached by
 * TTL in a cache all workers share.
 *
 * The answer message is read by our own parser (tproxy_dns_parse_txt_answer), never trusted
 * beyond its bounds: a DNS server is a peer like any other.
 *
 * Results: 0 with a route, -ENOENT no such record (NXDOMAIN or no TXT), -EBADMSG malformed
 * value or message, -ETIMEDOUT no answer in time, -EIO server failure, refusal or any other
 * resolver error. -ENOENT and -EBADMSG are cached for neg_ttl seconds; -ETIMEDOUT and -EIO are
 * not cached. */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tproxy_route.h"

/* Longest TXT value kept (a route value is at most 64 + 1 + 5 bytes). */
#define TPROXY_DNS_TXT_MAX 255
/* At most this many different names wait for an answer at once per worker; more fail with
 * -EBUSY. */
#define TPROXY_DNS_PENDING_MAX 1024

struct tproxy_dns_cache;

/* A cache of at most max_entries names (least recently used dropped first), keyed by the
 * lowercase name. Thread-safe: one mutex. */
int tproxy_dns_cache_new(size_t max_entries, struct tproxy_dns_cache **ret);
void tproxy_dns_cache_free(struct tproxy_dns_cache *c);
/* 1 and the cached result when name is cached and not expired, else 0. The route is zeroed
 * for a negative entry. */
int tproxy_dns_cache_get(struct tproxy_dns_cache *c, const char *name, struct tproxy_route *ret,
                         int *ret_status);
/* Caches a result (route ignored when status < 0) for ttl seconds; ttl 0 drops the name. */
int tproxy_dns_cache_put(struct tproxy_dns_cache *c, const char *name,
                         const struct tproxy_route *route, int status, uint32_t ttl);
/* Tests: the clock the cache uses (monotonic seconds); NULL restores the real one. Set it
 * before any other thread uses the cache. */
void tproxy_dns_cache_set_clock(struct tproxy_dns_cache *c, int64_t (*now)(void));

struct tproxy_dns_opts {
  const char *servers;       /* NULL or "": /etc/resolv.conf; else c-ares CSV "ip[:port],..." */
  int timeout_ms;            /* per try (<= 0: 3000) */
  int tries;                 /* <= 0: 2 */
  uint32_t min_ttl, max_ttl; /* the record's TTL is clamped to [min_ttl, max_ttl] */
  uint32_t neg_ttl;          /* seconds to cache -ENOENT / -EBADMSG (0: not cached) */
  bool legacy;               /* also try _tapp-address.<name> */
};

struct tproxy_dns;
struct tproxy_dns_query;

typedef void (*tproxy_dns_cb)(int status, const struct tproxy_route *route, void *arg);

/* A resolver on base (one per worker thread, used only from that thread). o is copied.
 * -EINVAL for bad servers or min_ttl > max_ttl. */
int tproxy_dns_new(struct event_base *base, struct tproxy_dns_cache *cache,
                   const struct tproxy_dns_opts *o, struct tproxy_dns **ret);
/* Drops pending lookups without calling their callbacks. NULL is fine. Not from a callback. */
void tproxy_dns_free(struct tproxy_dns *d);

/* sni: a host name (tls_hello_hostname_valid after lowercasing; one final dot is ignored).
 * 1: cache hit, *ret_route / *ret_status filled, cb not called, *ret_q = NULL.
 * 0: pending, *ret_q set; cb runs later from the loop exactly once (never inside this call)
 *    with 0 and the route or a negative status (see the top of this file).
 * <0: -EINVAL / -ENAMETOOLONG bad name, -EBUSY too many pending, -ENOMEM; cb not called.
 * Lookups of one name share one query. */
int tproxy_dns_resolve(struct tproxy_dns *d, const char *sni, tproxy_dns_cb cb, void *arg,
                       struct tproxy_route *ret_route, int *ret_status,
                       struct tproxy_dns_query **ret_q);
/* The caller no longer wants the answer: cb will not run. Only before cb ran. NULL is fine. */
void tproxy_dns_cancel(struct tproxy_dns_query *q);

/* Parses a DNS response message (RFC 1035 wire format) to the TXT question qname: checks the
 * header (a response, opcode QUERY) and the question (exactly one: qname, type TXT, class IN;
 * none is accepted only with an error rcode), follows CNAMEs of the answer section from qname
 * (at most 8) and takes the first TXT record of the final name, its character-strings
 * concatenated into out (NUL-terminated). *ret_ttl (may be NULL): the smallest TTL along the
 * chain. Returns the value's length; -ENOENT for NXDOMAIN or no TXT record, -EIO for another
 * error rcode, -EMSGSIZE when the value does not fit in outlen - 1, -EBADMSG for anything
 * malformed (names: labels of at most 63 bytes holding no '.' or NUL, 255 bytes in all,
 * compression pointers inside the message and at most 64 per name), -EINVAL for bad
 * arguments. */
int tproxy_dns_parse_txt_answer(const uint8_t *msg, size_t len, const char *qname, char *out,
                                size_t outlen, uint32_t *ret_ttl);
