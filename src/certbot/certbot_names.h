/* The names a certificate is requested for: the configured list, or on renewal the SANs of the
 * certificate in place (as upstream renews). Which one a renewal asks for is decided in
 * certbot_bot.c; this holds the checks and comparisons. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* At most this many names in one order (Let's Encrypt's limit). */
#define CERTBOT_NAMES_MAX 100

/* A DNS name an order may hold: 1..253 characters, labels of 1..63 of [A-Za-z0-9-] not
 * starting or ending with '-', at least two labels; "*." allowed only as the first label. */
bool certbot_name_valid(const char *s);

/* The same names in any order and case (duplicates ignored). */
bool certbot_names_same(char *const *a, char *const *b);

/* The names to request from a certificate's dNSName SANs (n of them, as x509_cert_dns_sans
 * gives them): lowercased, duplicates dropped, in their order. -ENOENT: none; -EBADMSG: a name
 * that is not valid; -E2BIG: more than CERTBOT_NAMES_MAX. */
int certbot_names_from_sans(char *const *sans, size_t n, char ***ret);
