#include "base/str.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"

size_t str_utf8_seq_len(const void *p, size_t n) {
  const unsigned char *s = p;
  if (n == 0)
    return 0;
  unsigned c = s[0];
  size_t need;
  unsigned lo = 0x80, hi = 0xbf;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    need = 1;
  } else if (c >= 0xe0 && c <= 0xef) {
    need = 2;
    if (c == 0xe0)
      lo = 0xa0; /* overlong */
    if (c == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3;
    if (c == 0xf0)
      lo = 0x90; /* overlong */
    if (c == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (n < need + 1 || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i <= need; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return need + 1;
}

int str_utf8_sanitize(const char *s, size_t len, char **ret, size_t *ret_len) {
  static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
  if ((!s && len) || !ret)
    return -EINVAL;
  if (len > (SIZE_MAX - 1) / 3)
    return -ENOMEM;
  char *out = malloc(3 * len + 1); /* every byte replaced, at most */
  if (!out)
    return -ENOMEM;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = str_utf8_seq_len(s + i, len - i);
    if (n == 0) {
      memcpy(out + o, repl, 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
    }
  }
  out[o] = '\0';
  if (ret_len)
    *ret_len = o;
  *ret = out;
  return 0;
}

int str_pct_decode(const char *s, size_t len, unsigned flags, char **ret, size_t *ret_len) {
  if ((!s && len) || !ret || len == SIZE_MAX)
    return -EINVAL;
  char *out = malloc(len + 1);
  if (!out)
    return -ENOMEM;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == '%') {
      int hi = len - i >= 3 ? hex_digit_value(s[i + 1]) : -1;
      int lo = len - i >= 3 ? hex_digit_value(s[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        c = (char)(hi << 4 | lo);
        i += 2;
      } else if (!(flags & PCT_LENIENT)) {
        free(out);
        return -EBADMSG;
      }
    } else if (c == '+' && (flags & PCT_PLUS_SPACE)) {
      c = ' ';
    }
    if (c == '\0') {
      free(out);
      return -EBADMSG;
    }
    out[o++] = c;
  }
  out[o] = '\0';
  if (ret_len)
    *ret_len = o;
  *ret = out;
  return 0;
}

bool str_startswith(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_endswith(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return m <= n && memcmp(s + n - m, suffix, m) == 0;
}

const char *str_after_prefix(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* Digits only, at least one, all below base. */
static int parse_digits(const char *s, size_t len, unsigned base, uint64_t *ret) {
  uint64_t v = 0;
  bool overflow = false;
  if (len == 0)
    return -EINVAL;
  for (size_t i = 0; i < len; i++) {
    int d = hex_digit_value(s[i]); /* bases up to 16 */
    if (d < 0 || d >= (int)base)
      return -EINVAL;
    if (__builtin_mul_overflow(v, (uint64_t)base, &v) ||
        __builtin_add_overflow(v, (uint64_t)d, &v))
      overflow = true; /* keep scanning: garbage later still means -EINVAL */
  }
  if (overflow)
    return -ERANGE;
  *ret = v;
  return 0;
}

int str_to_u64_n(const char *s, size_t len, uint64_t *ret) {
  if (!s)
    return -EINVAL;
  return parse_digits(s, len, 10, ret);
}

int str_to_u64(const char *s, uint64_t *ret) {
  if (!s)
    return -EINVAL;
  return parse_digits(s, strlen(s), 10, ret);
}

int str_to_u64_base(const char *s, unsigned base, uint64_t *ret) {
  if (!s)
    return -EINVAL;
  if (base == 0) {
    base = 10;
    if (s[0] == '0' && s[1]) {
      switch (s[1]) {
      case 'x':
      case 'X':
        base = 16;
        break;
      case 'o':
      case 'O':
        base = 8;
        break;
      case 'b':
      case 'B':
        base = 2;
        break;
      default:
        return -EINVAL; /* no ambiguous leading zeros */
      }
      s += 2;
    }
  } else if (base != 2 && base != 8 && base != 10 && base != 16)
    return -EINVAL;
  return parse_digits(s, strlen(s), base, ret);
}

int str_to_u32(const char *s, uint32_t *ret) {
  uint64_t v;
  int r = str_to_u64(s, &v);
  if (r < 0)
    return r;
  if (v > UINT32_MAX)
    return -ERANGE;
  *ret = (uint32_t)v;
  return 0;
}

int str_to_u16(const char *s, uint16_t *ret) {
  uint64_t v;
  int r = str_to_u64(s, &v);
  if (r < 0)
    return r;
  if (v > UINT16_MAX)
    return -ERANGE;
  *ret = (uint16_t)v;
  return 0;
}

int str_to_i64(const char *s, int64_t *ret) {
  if (!s)
    return -EINVAL;
  bool neg = false;
  if (*s == '-' || *s == '+') {
    neg = *s == '-';
    s++;
  }
  uint64_t v;
  int r = str_to_u64(s, &v);
  if (r < 0)
    return r;
  if (neg) {
    if (v > (uint64_t)INT64_MAX + 1)
      return -ERANGE;
    *ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  } else {
    if (v > INT64_MAX)
      return -ERANGE;
    *ret = (int64_t)v;
  }
  return 0;
}

int str_to_i32(const char *s, int32_t *ret) {
  int64_t v;
  int r = str_to_i64(s, &v);
  if (r < 0)
    return r;
  if (v < INT32_MIN || v > INT32_MAX)
    return -ERANGE;
  *ret = (int32_t)v;
  return 0;
}

int str_to_bool(const char *s, bool *ret) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  if (!s)
    return -EINVAL;
  for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *ret = true;
      return 0;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *ret = false;
      return 0;
    }
  }
  return -EINVAL;
}

int str_to_size(const char *s, uint64_t *ret) {
  if (!s)
    return -EINVAL;
  size_t n = 0;
  while (s[n] >= '0' && s[n] <= '9')
    n++;
  uint64_t v;
  int r = str_to_u64_n(s, n, &v);
  if (r < 0)
    return r;
  const char *suf = s + n;
  unsigned shift = 0;
  static const char units[] = "KMGTPE";
  if (*suf && *suf != 'B' && *suf != 'b') {
    const char *u = strchr(units, *suf >= 'a' && *suf <= 'z' ? *suf - 32 : *suf);
    if (!u)
      return -EINVAL;
    shift = 10 * (unsigned)(u - units + 1);
    suf++;
    /* optional "i" then optional "B" */
    if (*suf == 'i')
      suf++;
    if (*suf == 'B' || (*suf == 'b' && suf[-1] != 'i'))
      suf++;
  } else if (*suf) {
    suf++;
  }
  if (*suf)
    return -EINVAL;
  if (shift && v > (UINT64_MAX >> shift))
    return -ERANGE;
  *ret = v << shift;
  return 0;
}

char *str_strip(char *s) {
  while (char_is_space(*s))
    s++;
  size_t n = strlen(s);
  while (n && char_is_space(s[n - 1]))
    n--;
  s[n] = 0;
  return s;
}

struct slice slice_strip(struct slice s) {
  while (s.len && char_is_space((char)s.ptr[0])) {
    s.ptr++;
    s.len--;
  }
  while (s.len && char_is_space((char)s.ptr[s.len - 1]))
    s.len--;
  return s;
}

char *str_ascii_lower(char *s) {
  for (char *p = s; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p + 32);
  return s;
}

bool str_is_printable_ascii(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
      return false;
  return true;
}

char *str_printf(const char *fmt, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

int str_err(char *err, size_t errlen, int r, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return r;
}

void strv_free(char **l) {
  if (!l)
    return;
  for (char **p = l; *p; p++)
    free(*p);
  free(l);
}

size_t strv_length(char *const *l) {
  size_t n = 0;
  if (l)
    while (l[n])
      n++;
  return n;
}

bool strv_contains(char *const *l, const char *s) {
  if (l)
    for (; *l; l++)
      if (strcmp(*l, s) == 0)
        return true;
  return false;
}

int strv_push(char ***l, char *s) {
  size_t n = strv_length(*l);
  char **t = n < SIZE_MAX / sizeof(char *) - 2 ? realloc(*l, (n + 2) * sizeof(char *)) : NULL;
  if (!t) {
    free(s);
    return -ENOMEM;
  }
  t[n] = s;
  t[n + 1] = NULL;
  *l = t;
  return 0;
}

int strv_push_dup(char ***l, const char *s) {
  char *d = strdup(s);
  if (!d)
    return -ENOMEM;
  return strv_push(l, d);
}

int str_split(const char *s, const char *seps, bool skip_empty, char ***ret) {
  char **l = calloc(1, sizeof(char *));
  if (!l)
    return -ENOMEM;
  size_t n = 0, cap = 1;
  const char *p = s;
  for (;;) {
    size_t k = strcspn(p, seps);
    if (k || !skip_empty) {
      if (n + 1 >= cap) {
        size_t nc = cap * 2;
        char **t = realloc(l, nc * sizeof(char *));
        if (!t)
          goto oom;
        l = t;
        cap = nc;
      }
      l[n] = strndup(p, k);
      if (!l[n])
        goto oom;
      l[++n] = NULL;
    }
    if (!p[k])
      break;
    p += k + 1;
  }
  *ret = l;
  return 0;
oom:
  strv_free(l);
  return -ENOMEM;
}

int strv_join(char *const *l, const char *sep, char **ret) {
  size_t total = 1, sl = strlen(sep), n = strv_length(l);
  for (size_t i = 0; i < n; i++)
    if (!size_add(total, strlen(l[i]), &total) || (i && !size_add(total, sl, &total)))
      return -ENOMEM;
  char *s = malloc(total), *p = s;
  if (!s)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (i)
      p = mempcpy(p, sep, sl);
    p = mempcpy(p, l[i], strlen(l[i]));
  }
  *p = 0;
  *ret = s;
  return 0;
}

int str_reason(char **ret, int r, const char *fmt, ...) {
  if (ret && !*ret) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(ret, fmt, ap) < 0)
      *ret = NULL;
    va_end(ap);
  }
  return r;
}

bool str_utf8_valid(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    size_t n = str_utf8_seq_len(s + i, len - i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

int strv_copy(char *const *l, char ***ret) {
  *ret = NULL;
  for (size_t i = 0; l && l[i]; i++) {
    int r = strv_push_dup(ret, l[i]);
    if (r < 0) {
      strv_free(*ret);
      *ret = NULL;
      return r;
    }
  }
  return 0;
}
