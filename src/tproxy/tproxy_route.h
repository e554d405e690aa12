/* SNI routing of the TLS ingress proxy (upstream dstack plus the newer gateway suffixes).
 *
 * Names under the base domain, one label "<app_id>[-[<port>][s|g]]":
 *   <app_id>.<base>          → terminate TLS, plain TCP to port 80
 *   <app_id>-<port>.<base>   → terminate TLS, to <port>
 *   <app_id>-<port>s.<base>  → TLS passthrough to <port> (default 443 for "<app_id>-s")
 *   <app_id>-<port>g.<base>  → terminate TLS with ALPN h2, HTTP/2 to <port> (default 80)
 * Any other valid name is a custom domain: custom = true, resolved through the TXT record
 * _dstack-app-address.<name> (legacy _tapp-address.<name>) whose value is "<app_id>:<port>".
 *
 * app_id: 1..64 hex digits (upstream's are 40 or 64); port: 1..65535, decimal, no sign and no
 * leading zero. Errors: -EINVAL for a bad base domain or argument, -EBADMSG for a malformed
 * name or TXT value. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TPROXY_APP_ID_MAX 64
#define TPROXY_TXT_PREFIX "_dstack-app-address"
#define TPROXY_TXT_PREFIX_LEGACY "_tapp-address"

enum tproxy_route_mode {
  ROUTE_TERMINATE,
  ROUTE_PASSTHROUGH,
  ROUTE_H2,
};

struct tproxy_route {
  char app_id[TPROXY_APP_ID_MAX + 1]; /* lowercase hex; "" for an unresolved custom domain */
  uint16_t port;                      /* 0 for an unresolved custom domain */
  enum tproxy_route_mode mode;
  bool custom; /* not under the base domain: look up the TXT record */
};

/* sni: the (lowercase) server name; base_domain: e.g. "app.example.com", a leading and a
 * trailing dot are ignored, case-insensitive. */
int tproxy_route_parse(const char *sni, const char *base_domain, struct tproxy_route *ret);

/* Value of a TXT record (one character-string, may hold any byte): "<app_id>:<port>".
 * Result: custom = true, mode = ROUTE_PASSTHROUGH. */
int tproxy_route_parse_txt(const char *txt, size_t len, struct tproxy_route *ret);

/* "<prefix>.<sni>" into out (legacy picks _tapp-address). -ENAMETOOLONG if it does not fit
 * in n bytes or exceeds 253 characters. */
int tproxy_route_txt_name(const char *sni, bool legacy, char *out, size_t n);

const char *tproxy_route_mode_name(enum tproxy_route_mode m);
