/* The monitored domain and the names of a certificate.
 *
 * ct_domain_valid: upstream ct_monitor's rule,
 *   ^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,}$
 * i.e. one or more labels of 1..63 letters, digits and inner hyphens, each followed by a dot,
 * then a top-level label of two or more letters; plus DNS's own limits (the whole name at most
 * 253 characters, the top-level label at most 63), which no real domain passes anyway.
 *
 * ct_name_in_domain: whether a certificate name (a dNSName or common name as crt.sh lists it,
 * maybe "*." wildcarded) is the domain itself or a name under it, ASCII case-insensitively. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CT_DOMAIN_MAX 253

bool ct_domain_valid(const char *domain);
bool ct_name_in_domain(const char *name, size_t len, const char *domain);
/* Whether any of the names in list (separated by newlines, as crt.sh's name_value, or a single
 * name) is in the domain. */
bool ct_names_in_domain(const char *list, const char *domain);
