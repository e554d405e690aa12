/* Names of an order: checks and comparisons. */
#include "certbot_names.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "base/str.h"

static bool label_valid(const char *s, size_t n) {
  if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-'))
      return false;
  }
  return true;
}

bool certbot_name_valid(const char *s) {
  if (!s)
    return false;
  if (str_startswith(s, "*."))
    s += 2;
  size_t n = strlen(s), labels = 0;
  if (n == 0 || n > 253)
    return false;
  for (const char *p = s;;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (!label_valid(p, len))
      return false;
    labels++;
    if (!dot)
      break;
    p = dot + 1;
  }
  return labels >= 2;
}

static bool has_ci(char *const *l, const char *s) {
  for (size_t i = 0; l && l[i]; i++)
    if (strcasecmp(l[i], s) == 0)
      return true;
  return false;
}

bool certbot_names_same(char *const *a, char *const *b) {
  for (size_t i = 0; a && a[i]; i++)
    if (!has_ci(b, a[i]))
      return false;
  for (size_t i = 0; b && b[i]; i++)
    if (!has_ci(a, b[i]))
      return false;
  return true;
}

int certbot_names_from_sans(char *const *sans, size_t n, char ***ret) {
  _cleanup_strv_free_ char **l = NULL;
  size_t count = 0;
  int r;
  *ret = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!certbot_name_valid(sans[i]))
      return -EBADMSG;
    if (has_ci(l, sans[i]))
      continue;
    if (++count > CERTBOT_NAMES_MAX)
      return -E2BIG;
    if ((r = strv_push_dup(&l, sans[i])) < 0)
      return r;
    for (char *p = l[count - 1]; *p; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
  }
  if (!count)
    return -ENOENT;
  *ret = TAKE_PTR(l);
  return 0;
}
