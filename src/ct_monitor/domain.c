/* Domain validation and name matching. */
#include "ct_monitor_domain.h"

#include <string.h>
#include <strings.h>

static bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool ct_domain_valid(const char *domain) {
  if (!domain)
    return false;
  size_t n = strlen(domain);
  if (n == 0 || n > CT_DOMAIN_MAX)
    return false;
  const char *last_dot = strrchr(domain, '.');
  if (!last_dot || last_dot == domain)
    return false;
  /* the top-level label: two or more letters */
  size_t tld = n - (size_t)(last_dot + 1 - domain);
  if (tld < 2 || tld > 63)
    return false;
  for (const char *p = last_dot + 1; *p; p++)
    if (!is_alpha(*p))
      return false;
  /* every label before it: 1..63 of [a-zA-Z0-9-], not starting or ending with '-' */
  const char *p = domain;
  while (p <= last_dot) {
    const char *dot = memchr(p, '.', (size_t)(last_dot - p) + 1);
    size_t len = (size_t)(dot - p);
    if (len == 0 || len > 63 || !is_alnum(p[0]) || !is_alnum(p[len - 1]))
      return false;
    for (size_t i = 0; i < len; i++)
      if (!is_alnum(p[i]) && p[i] != '-')
        return false;
    p = dot + 1;
  }
  return true;
}

bool ct_name_in_domain(const char *name, size_t len, const char *domain) {
  size_t dn = strlen(domain);
  if (len >= 2 && name[0] == '*' && name[1] == '.') {
    name += 2;
    len -= 2;
  }
  while (len > 0 && name[len - 1] == '.') /* a fully qualified name's final dot */
    len--;
  if (len < dn || dn == 0)
    return false;
  if (strncasecmp(name + len - dn, domain, dn) != 0 || memchr(name, '\0', len))
    return false;
  return len == dn || name[len - dn - 1] == '.';
}

bool ct_names_in_domain(const char *list, const char *domain) {
  if (!list)
    return false;
  for (const char *p = list; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
      len--;
    if (ct_name_in_domain(p, len, domain))
      return true;
    if (!nl)
      break;
    p = nl + 1;
  }
  return false;
}
