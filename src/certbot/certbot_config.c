/* certbot.toml. Keys keep upstream's names; rfc2136, acme_ca_file, domains, max_dns_wait and
 * renewed_hook are ours. */
#include "certbot_config.h"

#include <errno.h>
#include <string.h>

#include "base/conftab.h"
#include "base/str.h"

#define CFG struct certbot_config

static const struct conftab_opt opts[] = {
    CONFTAB_STR(CFG, "", "workdir", workdir, "."),
    CONFTAB_STR(CFG, "", "acme_url", acme_url,
                "https://acme-staging-v02.api.letsencrypt.org/directory"),
    CONFTAB_STR(CFG, "", "acme_ca_file", acme_ca_file, ""),
    CONFTAB_STR(CFG, "", "domain", domain, "example.com"),
    CONFTAB_STRV(CFG, "", "domains", domains, ""),
    CONFTAB_BOOL(CFG, "", "auto_set_caa", auto_set_caa, true),
    CONFTAB_STR(CFG, "", "caa_issuer", caa_issuer, "letsencrypt.org"),
    CONFTAB_U32(CFG, "", "renew_interval", renew_interval, 3600),
    CONFTAB_U32(CFG, "", "renew_days_before", renew_days_before, 10),
    CONFTAB_U32(CFG, "", "renew_timeout", renew_timeout, 120),
    CONFTAB_U32(CFG, "", "max_dns_wait", max_dns_wait, 60),
    CONFTAB_STR(CFG, "", "renewed_hook", renewed_hook, ""),
    CONFTAB_STR(CFG, "", "dns_provider", dns_provider, "cloudflare"),
    CONFTAB_SECRET_STR(CFG, "", "cf_api_token", cf_api_token, ""),
    CONFTAB_STR(CFG, "", "cf_zone_id", cf_zone_id, ""),
    CONFTAB_STR(CFG, "", "cf_api_url", cf_api_url, "https://api.cloudflare.com/client/v4"),
    CONFTAB_STRV(CFG, "", "cf_name_servers", cf_name_servers, ""),
    CONFTAB_STR(CFG, "rfc2136", "server", rfc2136.server, ""),
    CONFTAB_U16(CFG, "rfc2136", "port", rfc2136.port, 53),
    CONFTAB_STR(CFG, "rfc2136", "zone", rfc2136.zone, ""),
    CONFTAB_STR(CFG, "rfc2136", "tsig_key_name", rfc2136.tsig_key_name, ""),
    CONFTAB_STR(CFG, "rfc2136", "tsig_algorithm", rfc2136.tsig_algorithm, "hmac-sha256"),
    CONFTAB_SECRET_STR(CFG, "rfc2136", "tsig_secret", rfc2136.tsig_secret, ""),
};

static const struct conftab table = {opts, ARRAY_SIZE(opts)};

int certbot_config_init(struct certbot_config *c) {
  memset(c, 0, sizeof(*c));
  int r = conftab_defaults(&table, c);
  if (r < 0)
    certbot_config_free(c);
  return r;
}

int certbot_config_load_file(struct certbot_config *c, const char *path, char *err, size_t errlen) {
  return conftab_load_file(&table, c, path, err, errlen);
}

/* "host:port": a host of printable characters without ':', '/' or spaces, a port 1..65535. */
static bool host_port_valid(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || (size_t)(colon - s) > 253 || strpbrk(s, " /\t"))
    return false;
  for (const char *p = s; p < colon; p++)
    if (*p == ':' || *p < 0x21 || *p > 0x7e)
      return false;
  uint64_t port;
  return str_to_u64(colon + 1, &port) >= 0 && port >= 1 && port <= 65535;
}

int certbot_config_check(const struct certbot_config *c, char *err, size_t errlen) {
  if (str_isempty(c->workdir))
    return conftab_error(err, errlen, "workdir is empty");
  if (!str_startswith(c->acme_url, "https://") && !str_startswith(c->acme_url, "http://"))
    return conftab_error(err, errlen, "acme_url must be an http(s) URL");
  if (strv_length(c->domains) == 0 && str_isempty(c->domain))
    return conftab_error(err, errlen, "no domain");
  if (c->max_dns_wait > 86400 || c->renew_timeout > 86400)
    return conftab_error(err, errlen, "max_dns_wait and renew_timeout are at most 86400 s");
  if (c->renew_timeout == 0 || c->renew_interval == 0)
    return conftab_error(err, errlen, "renew_interval and renew_timeout must be > 0");
  if (strv_length(c->cf_name_servers) > 16)
    return conftab_error(err, errlen, "cf_name_servers: at most 16");
  for (size_t i = 0; c->cf_name_servers && c->cf_name_servers[i]; i++)
    if (!host_port_valid(c->cf_name_servers[i]))
      return conftab_error(err, errlen, "cf_name_servers: \"%s\" is not host:port",
                           c->cf_name_servers[i]);
  if (str_eq(c->dns_provider, "cloudflare")) {
    if (str_isempty(c->cf_api_token) || str_isempty(c->cf_zone_id))
      return conftab_error(err, errlen,
                           "dns_provider cloudflare needs cf_api_token and cf_zone_id");
  } else if (str_eq(c->dns_provider, "rfc2136")) {
    if (str_isempty(c->rfc2136.server) || str_isempty(c->rfc2136.zone) ||
        str_isempty(c->rfc2136.tsig_key_name) || str_isempty(c->rfc2136.tsig_secret))
      return conftab_error(err, errlen,
                           "dns_provider rfc2136 needs [rfc2136] server, zone, tsig_key_name "
                           "and tsig_secret");
    if (strcasecmp(c->rfc2136.tsig_algorithm, "hmac-sha256") != 0)
      return conftab_error(err, errlen, "[rfc2136] tsig_algorithm: only hmac-sha256");
  } else {
    return conftab_error(err, errlen, "dns_provider must be \"cloudflare\" or \"rfc2136\"");
  }
  return 0;
}

int certbot_config_default_toml(struct buf *out) {
  struct certbot_config c;
  int r = certbot_config_init(&c);
  if (r < 0)
    return r;
  r = buf_append_str(out, "# certbot.toml: ACME DNS-01 certificates for tproxy.\n"
                          "# workdir holds credentials.json, backup/<time>/ and live/.\n"
                          "# domains (a list) replaces domain when set.\n"
                          "# dns_provider: \"cloudflare\" (cf_*) or \"rfc2136\" ([rfc2136]).\n"
                          "# Times are in seconds; renew_days_before in days.\n");
  if (r >= 0)
    r = conftab_dump(&table, &c, 0, out);
  certbot_config_free(&c);
  return r;
}

void certbot_config_free(struct certbot_config *c) { conftab_free(&table, c); }
