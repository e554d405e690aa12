/* IPv4 address pool for WireGuard clients: the usable hosts of client_ip_range, ascending,
 * without the network address, the broadcast address and the server's own address (wg.ip). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPV4_STR_MAX 16 /* "255.255.255.255" + NUL */

/* Addresses are kept in host byte order. */
struct addrpool {
  uint32_t network;   /* network address (host bits cleared) */
  unsigned prefix;    /* 0..30 */
  uint32_t first;     /* network + 1 */
  uint32_t last;      /* broadcast - 1 */
  uint32_t server;    /* excluded address (wg.ip); only meaningful when has_server */
  bool has_server;
};

/* Strict dotted quad "a.b.c.d": decimal octets 0..255, no leading zeros, no spaces. -EINVAL otherwise. */
int ipv4_parse(const char *s, uint32_t *ret);
/* Formats ip as a dotted quad into out (at least IPV4_STR_MAX bytes); returns out. */
char *ipv4_format(uint32_t ip, char out[static IPV4_STR_MAX]);
/* Strict "a.b.c.d/n" (n decimal 0..32, no leading zeros). Host bits may be set, as in upstream's
 * config ("10.0.0.1/24" means 10.0.0.0/24); they are returned as written in ret_addr. */
int ipv4_cidr_parse(const char *s, uint32_t *ret_addr, unsigned *ret_prefix);

/* cidr = client_ip_range; server_ip = wg.ip or NULL. Prefixes /31 and /32 have no usable hosts
 * once network and broadcast are excluded and are refused with -EINVAL. */
int addrpool_init(struct addrpool *p, const char *cidr, const char *server_ip);
/* True when ip may be handed to a client (inside the range, not network/broadcast/server). */
bool addrpool_contains(const struct addrpool *p, uint32_t ip);
/* Number of addresses clients can get. */
uint64_t addrpool_size(const struct addrpool *p);
/* Lowest usable address strictly greater than after (pass 0 with after_valid=false for the
 * first one). -ENOSPC when there is none. */
int addrpool_next(const struct addrpool *p, bool after_valid, uint32_t after, uint32_t *ret);
/* Lowest usable address not in used[0..n) (any order, duplicates and foreign addresses allowed).
 * -ENOSPC when the pool is exhausted, -ENOMEM. */
int addrpool_first_free(const struct addrpool *p, const uint32_t *used, size_t n, uint32_t *ret);
