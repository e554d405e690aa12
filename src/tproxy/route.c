/* SNI → backend routing rules and the custom-domain TXT record value. */
#include "tproxy_route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/tls_hello.h"

static bool is_hex_lower(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Decimal port 1..65535, no sign, no leading zero. */
static int port_parse(const char *s, size_t n, uint16_t *ret) {
  if (n < 1 || n > 5 || s[0] == '0')
    return -EBADMSG;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EBADMSG;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v > 65535)
    return -EBADMSG;
  *ret = (uint16_t)v;
  return 0;
}

static int app_id_set(struct tproxy_route *r, const char *s, size_t n, bool fold_case) {
  if (n < 1 || n > TPROXY_APP_ID_MAX)
    return -EBADMSG;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (fold_case && c >= 'A' && c <= 'F')
      c = (char)(c - 'A' + 'a');
    if (!is_hex_lower(c))
      return -EBADMSG;
    r->app_id[i] = c;
  }
  r->app_id[n] = 0;
  return 0;
}

/* base domain without a leading/trailing dot, lowercased into out. */
static int base_normalize(const char *base, char out[TLS_HELLO_SNI_MAX + 1]) {
  size_t n = strlen(base);
  if (n > 0 && base[0] == '.')
    base++, n--;
  if (n > 0 && base[n - 1] == '.')
    n--;
  if (n < 1 || n > TLS_HELLO_SNI_MAX)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    char c = base[i];
    out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  out[n] = 0;
  return tls_hello_hostname_valid(out, n) ? 0 : -EINVAL;
}

int tproxy_route_parse(const char *sni, const char *base_domain, struct tproxy_route *ret) {
  char base[TLS_HELLO_SNI_MAX + 1];
  struct tproxy_route r = {0};
  int e;

  if (!sni || !base_domain || !ret)
    return -EINVAL;
  e = base_normalize(base_domain, base);
  if (e < 0)
    return e;
  size_t n = strlen(sni), bn = strlen(base);
  if (!tls_hello_hostname_valid(sni, n))
    return -EBADMSG;

  if (n <= bn + 1 || sni[n - bn - 1] != '.' || memcmp(sni + n - bn, base, bn) != 0) {
    r.custom = true;
    r.mode = ROUTE_PASSTHROUGH;
    *ret = r;
    return 0;
  }

  const char *sub = sni;
  size_t sn = n - bn - 1;
  if (memchr(sub, '.', sn))
    return -EBADMSG; /* one label below the base only */
  const char *dash = memchr(sub, '-', sn);
  if (!dash) {
    e = app_id_set(&r, sub, sn, false);
    if (e < 0)
      return e;
    r.port = 80;
    r.mode = ROUTE_TERMINATE;
    *ret = r;
    return 0;
  }
  e = app_id_set(&r, sub, (size_t)(dash - sub), false);
  if (e < 0)
    return e;
  const char *p = dash + 1;
  size_t pn = sn - (size_t)(p - sub);
  if (pn == 0)
    return -EBADMSG;
  r.mode = ROUTE_TERMINATE;
  uint16_t def = 0;
  if (p[pn - 1] == 's') {
    r.mode = ROUTE_PASSTHROUGH;
    def = 443;
    pn--;
  } else if (p[pn - 1] == 'g') {
    r.mode = ROUTE_H2;
    def = 80;
    pn--;
  }
  if (pn == 0 && def)
    r.port = def;
  else if ((e = port_parse(p, pn, &r.port)) < 0)
    return e; /* also rejects a second '-' and stacked suffixes */
  *ret = r;
  return 0;
}

int tproxy_route_parse_txt(const char *txt, size_t len, struct tproxy_route *ret) {
  struct tproxy_route r = {0};
  int e;

  if ((!txt && len) || !ret)
    return -EINVAL;
  const char *colon = txt ? memchr(txt, ':', len) : NULL;
  if (!colon)
    return -EBADMSG;
  e = app_id_set(&r, txt, (size_t)(colon - txt), true);
  if (e < 0)
    return e;
  e = port_parse(colon + 1, len - (size_t)(colon + 1 - txt), &r.port);
  if (e < 0)
    return e;
  r.custom = true;
  r.mode = ROUTE_PASSTHROUGH;
  *ret = r;
  return 0;
}

int tproxy_route_txt_name(const char *sni, bool legacy, char *out, size_t n) {
  if (!sni || !out)
    return -EINVAL;
  int l = snprintf(out, n, "%s.%s", legacy ? TPROXY_TXT_PREFIX_LEGACY : TPROXY_TXT_PREFIX, sni);
  if (l < 0 || (size_t)l >= n || l > TLS_HELLO_SNI_MAX)
    return -ENAMETOOLONG;
  return 0;
}

const char *tproxy_route_mode_name(enum tproxy_route_mode m) {
  switch (m) {
  case ROUTE_TERMINATE:
    return "terminate";
  case ROUTE_PASSTHROUGH:
    return "passthrough";
  case ROUTE_H2:
    return "h2";
  }
  return "unknown";
}
