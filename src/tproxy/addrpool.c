/* IPv4 client address pool: strict parsing and lowest-free-address search. */
#include "tproxy_addrpool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"

/* Parses a decimal number 0..max without sign, spaces or leading zeros; advances *s. */
static int parse_dec(const char **s, unsigned max, unsigned *ret) {
  const char *p = *s;
  unsigned v = 0;
  if (*p < '0' || *p > '9')
    return -EINVAL;
  if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
    return -EINVAL;
  for (; *p >= '0' && *p <= '9'; p++) {
    v = v * 10 + (unsigned)(*p - '0');
    if (v > max)
      return -EINVAL;
  }
  *s = p;
  *ret = v;
  return 0;
}

static int parse_quad(const char **s, uint32_t *ret) {
  uint32_t ip = 0;
  for (int i = 0; i < 4; i++) {
    unsigned o;
    if (i > 0) {
      if (**s != '.')
        return -EINVAL;
      (*s)++;
    }
    if (parse_dec(s, 255, &o) < 0)
      return -EINVAL;
    ip = (ip << 8) | o;
  }
  *ret = ip;
  return 0;
}

int ipv4_parse(const char *s, uint32_t *ret) {
  uint32_t ip;
  if (!s || !ret)
    return -EINVAL;
  if (parse_quad(&s, &ip) < 0 || *s != '\0')
    return -EINVAL;
  *ret = ip;
  return 0;
}

char *ipv4_format(uint32_t ip, char out[static IPV4_STR_MAX]) {
  snprintf(out, IPV4_STR_MAX, "%u.%u.%u.%u", (ip >> 24) & 0xff, (ip >> 16) & 0xff,
           (ip >> 8) & 0xff, ip & 0xff);
  return out;
}

int ipv4_cidr_parse(const char *s, uint32_t *ret_addr, unsigned *ret_prefix) {
  uint32_t ip;
  unsigned n;
  if (!s || !ret_addr || !ret_prefix)
    return -EINVAL;
  if (parse_quad(&s, &ip) < 0 || *s != '/')
    return -EINVAL;
  s++;
  if (parse_dec(&s, 32, &n) < 0 || *s != '\0')
    return -EINVAL;
  *ret_addr = ip;
  *ret_prefix = n;
  return 0;
}

static uint32_t prefix_mask(unsigned prefix) {
  return prefix == 0 ? 0 : (uint32_t)(0xffffffffu << (32 - prefix));
}

int addrpool_init(struct addrpool *p, const char *cidr, const char *server_ip) {
  uint32_t addr, mask;
  unsigned prefix;
  int r;
  if (!p)
    return -EINVAL;
  r = ipv4_cidr_parse(cidr, &addr, &prefix);
  if (r < 0)
    return r;
  if (prefix > 30)
    return -EINVAL;
  mask = prefix_mask(prefix);
  *p = (struct addrpool){
    .network = addr & mask,
    .prefix = prefix,
    .first = (addr & mask) + 1,
    .last = ((addr & mask) | ~mask) - 1,
  };
  if (server_ip) {
    r = ipv4_parse(server_ip, &p->server);
    if (r < 0)
      return r;
    p->has_server = true;
  }
  return 0;
}

bool addrpool_contains(const struct addrpool *p, uint32_t ip) {
  if (!p || ip < p->first || ip > p->last)
    return false;
  return !(p->has_server && ip == p->server);
}

uint64_t addrpool_size(const struct addrpool *p) {
  uint64_t n = (uint64_t)p->last - p->first + 1;
  if (p->has_server && p->server >= p->first && p->server <= p->last)
    n--;
  return n;
}

int addrpool_next(const struct addrpool *p, bool after_valid, uint32_t after, uint32_t *ret) {
  uint32_t c;
  if (!p || !ret)
    return -EINVAL;
  if (!after_valid || after < p->first)
    c = p->first;
  else if (after >= p->last)
    return -ENOSPC;
  else
    c = after + 1;
  if (p->has_server && c == p->server) {
    if (c == p->last)
      return -ENOSPC;
    c++;
  }
  *ret = c;
  return 0;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

int addrpool_first_free(const struct addrpool *p, const uint32_t *used, size_t n, uint32_t *ret) {
  _cleanup_free_ uint32_t *s = NULL;
  uint32_t cand;
  size_t bytes;
  int r;
  if (!p || !ret || (n > 0 && !used))
    return -EINVAL;
  r = addrpool_next(p, false, 0, &cand);
  if (r < 0)
    return r;
  if (n > 0) {
    if (!size_mul(n, sizeof(*s), &bytes))
      return -ENOMEM;
    s = malloc(bytes);
    if (!s)
      return -ENOMEM;
    memcpy(s, used, bytes);
    qsort(s, n, sizeof(*s), cmp_u32);
  }
  for (size_t i = 0; i < n; i++) {
    if (s[i] < cand)
      continue;
    if (s[i] > cand)
      break;
    r = addrpool_next(p, true, cand, &cand);
    if (r < 0)
      return r;
  }
  *ret = cand;
  return 0;
}
