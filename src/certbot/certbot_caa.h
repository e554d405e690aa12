/* CAA records that let only one CA, one ACME account and the dns-01 method issue certificates
 * for certbot's domains (RFC 8659, RFC 8657 accounturi/validationmethods). */
#pragma once

#include <stddef.h>

#include "certbot_dns.h"

#define CERTBOT_CAA_DEFAULT_CA "letsencrypt.org"
#define CERTBOT_CAA_MAX_DOMAINS 100

/* For each domain (a leading "*." stripped, a final dot dropped, lowercased, each name once):
 *   1. add the guards CAA 0 issue ";" and CAA 0 issuewild ";" (unless present), so that the
 *      name never lacks an issue property while it changes;
 *   2. delete its issue and issuewild records other than the guards and the wanted ones,
 *      keeping every other tag (iodef, contactemail, ...);
 *   3. add CAA 0 issue and CAA 0 issuewild "<ca_domain>;validationmethods=dns-01;
 *      accounturi=<account_uri>" (unless present);
 *   4. delete the guards.
 * Running it twice leaves the same records. A failure after step 1 leaves the guards, which
 * forbid any issuance, and a rerun completes. ca_domain NULL or "": CERTBOT_CAA_DEFAULT_CA.
 * -EINVAL bad arguments (a URI or CA name with ';', '"', '\', spaces or control characters),
 * -EBADMSG a CAA record of the name that cannot be read, or the provider's error. */
int certbot_caa_set(struct certbot_dns *d, char *const *domains, const char *account_uri,
                    const char *ca_domain, char *err, size_t errlen);

/* Reads a record value "<flags> <tag> <value>" (value quoted with \-escapes, or bare). tag is
 * 1-15 letters and digits. -EBADMSG otherwise. *ret_tag and *ret_value are malloc'ed. */
int certbot_caa_value_parse(const char *s, unsigned *ret_flags, char **ret_tag, char **ret_value);
