/* The DNS provider interface of certbot: its ACME DNS-01 flow and its CAA procedure use only
 * this small vtable. Providers: Cloudflare (certbot_dns_cf.c) and RFC 2136 dynamic update with
 * TSIG (certbot_dns_rfc2136.c). */
#pragma once
#include <stddef.h>

struct certbot_dns;

struct certbot_dns_record {
  char *id;    /* provider's id of the record (Cloudflare record id; for RFC 2136 a string that
                * identifies it for deletion, e.g. "TXT <value>" or "CAA 0 issue <value>") */
  char *type;  /* "TXT", "CAA" */
  char *name;  /* fully qualified, no trailing dot */
  char *value; /* TXT: the string; CAA: "<flags> <tag> <value>" e.g. "0 issue \"letsencrypt.org\"" */
};

struct certbot_dns_ops {
  const char *name; /* "cloudflare", "rfc2136" */
  /* Adds a TXT record name = value (ttl 120 unless the provider says otherwise). *ret_id
   * (malloc'ed) identifies it for certbot_dns_del. */
  int (*txt_add)(struct certbot_dns *d, const char *name, const char *value, char **ret_id,
                 char *err, size_t errlen);
  /* Adds a CAA record: flags, tag ("issue", "issuewild", "iodef"), value. */
  int (*caa_add)(struct certbot_dns *d, const char *name, unsigned flags, const char *tag,
                 const char *value, char **ret_id, char *err, size_t errlen);
  /* Deletes one record by the id txt_add/caa_add/list gave. Deleting a record that is already
   * gone is success (reruns after a crash must converge). */
  int (*del)(struct certbot_dns *d, const char *name, const char *id, char *err, size_t errlen);
  /* Lists the records of exactly this name (type NULL: all types). *ret is a malloc'ed array
   * of *ret_n records (free with certbot_dns_records_free). */
  int (*list)(struct certbot_dns *d, const char *name, const char *type,
              struct certbot_dns_record **ret, size_t *ret_n, char *err, size_t errlen);
  /* The zone's authoritative name servers as "host:port" strings (NULL-terminated, malloc'ed),
   * for the propagation check. */
  int (*authoritative)(struct certbot_dns *d, const char *name, char ***ret, char *err,
                       size_t errlen);
  void (*free)(struct certbot_dns *d);
};

struct certbot_dns {
  const struct certbot_dns_ops *ops;
};

void certbot_dns_records_free(struct certbot_dns_record *r, size_t n);
