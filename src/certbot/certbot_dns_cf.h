/* The Cloudflare DNS provider of certbot (API v4 over HTTPS, libcurl through lib/net).
 *
 * Every call carries "Authorization: Bearer <api_token>"; the token is never logged nor put
 * into an error message. Answers use Cloudflare's envelope
 * {"success":bool,"errors":[{"code":n,"message":s}],"result":...}: a call succeeds only with a
 * 2xx status and "success":true; otherwise the error text names the call, the status and
 * Cloudflare's errors. 429 and 5xx answers (and connection failures) are retried a bounded
 * number of times with a doubling pause; a delete answered 404 is success (already gone).
 * Response bodies are capped (CERTBOT_DNS_CF_MAX_BODY). */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "certbot_dns.h"

#define CERTBOT_DNS_CF_DEFAULT_API_URL "https://api.cloudflare.com/client/v4"
#define CERTBOT_DNS_CF_MAX_BODY ((size_t)4 * 1024 * 1024)
/* Listing follows result_info.total_pages up to this many pages. */
#define CERTBOT_DNS_CF_MAX_PAGES 100

struct certbot_dns_cf_opts {
  const char *api_url;   /* NULL or "": CERTBOT_DNS_CF_DEFAULT_API_URL */
  const char *api_token; /* secret; required */
  const char *zone_id;   /* NULL or "": found with GET /zones?name=, walking up the labels */
  const char *ca_file;   /* PEM bundle for the API's certificate; NULL: system CAs */
  unsigned timeout_ms;   /* per HTTP request; 0: 30 s */
  unsigned retries;      /* extra tries after a 429/5xx/connection failure; 0: 4 */
  unsigned backoff_ms;   /* first pause (at most 10 s), doubled up to 8x; 0: 500 ms */
  /* When set ("host:port", NULL-terminated), authoritative() returns these instead of the
   * zone's name servers from the API. */
  char *const *name_servers;
};

/* A provider; the options are copied. -EINVAL (with a message in err) for missing or bad
 * options, -ENOMEM. */
int certbot_dns_cf_new(const struct certbot_dns_cf_opts *o, struct certbot_dns **ret, char *err,
                       size_t errlen);

/* Parsers of Cloudflare's answers (exposed for the tests and the fuzz target). */

/* Checks an answer body against the envelope: JSON object, "success" true, no "errors".
 * status is the HTTP status (non-2xx is an error even with "success":true). On success
 * *ret_root (may be NULL) holds the parsed document. -EBADMSG malformed or not an envelope,
 * -EREMOTEIO an envelope reporting failure (err holds Cloudflare's messages), -ENOBUFS too
 * long. */
int certbot_dns_cf_envelope_parse(long status, const char *body, size_t len, json_t **ret_root,
                                  char *err, size_t errlen);
/* The records of one page of a dns_records listing (root: a checked envelope), keeping those
 * whose name equals name (ASCII case-insensitive, a final dot ignored) and, when type is not
 * NULL, whose type equals type. Appends to *recs / *n (an array grown with realloc; free with
 * certbot_dns_records_free). *ret_total_pages: result_info.total_pages (1 when absent).
 * -EBADMSG when a record lacks id, type or name, or a field has the wrong type. */
int certbot_dns_cf_records_parse(const json_t *root, const char *name, const char *type,
                                 struct certbot_dns_record **recs, size_t *n,
                                 unsigned *ret_total_pages);
