/* certbot.toml: one table of options (lib/base/conftab) drives defaults, parsing and `cfg`. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

struct certbot_config {
  char *workdir;
  char *acme_url;
  char *acme_ca_file; /* PEM trusted for the ACME server ("" = system CAs) */
  char *domain;       /* upstream's single domain */
  char **domains;     /* when set, used instead of domain */
  bool auto_set_caa;
  char *caa_issuer; /* the CA's domain in the CAA issue/issuewild records */
  uint32_t renew_interval;    /* s */
  uint32_t renew_days_before; /* days */
  uint32_t renew_timeout;     /* s, one whole renewal */
  uint32_t max_dns_wait;      /* s, per challenge record */
  char *renewed_hook;         /* run by /bin/sh after a renewal ("" = none) */
  char *dns_provider;         /* "cloudflare" | "rfc2136" */
  char *cf_api_token;         /* secret */
  char *cf_zone_id;
  char *cf_api_url;
  char **cf_name_servers;     /* "host:port" asked by the propagation check instead of the
                               * zone's name servers from the API (empty: those) */
  struct {
    char *server;
    uint16_t port;
    char *zone;
    char *tsig_key_name;
    char *tsig_algorithm;
    char *tsig_secret; /* secret, base64 */
  } rfc2136;
};

int certbot_config_init(struct certbot_config *c);
int certbot_config_load_file(struct certbot_config *c, const char *path, char *err, size_t errlen);
int certbot_config_check(const struct certbot_config *c, char *err, size_t errlen);
/* The commented default TOML of `certbot cfg`. */
int certbot_config_default_toml(struct buf *out);
void certbot_config_free(struct certbot_config *c);
