#include "base/toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/hex.h"
#include "base/str.h"

/* Upper bound on the number of values in one document, so memory stays proportional. */
#define TOML_MAX_VALUES 262144
/* Tables this large get a hash index; smaller ones are searched linearly. */
#define TOML_INDEX_MIN 8

enum {
  TF_IMPLICIT = 1 << 0, /* created as a parent by a [header]; may still be defined once */
  TF_DEFINED = 1 << 1,  /* defined by a [header] or [[header]] */
  TF_DOTTED = 1 << 2,   /* created by a dotted key */
  TF_INLINE = 1 << 3,   /* inline table: closed */
  TF_AOT = 1 << 4,      /* array created by [[header]] */
};

struct toml_kv {
  char *key;
  size_t klen;
  uint32_t hash;
  struct toml_value *val;
};

struct toml_value {
  enum toml_type type;
  unsigned line, col;
  unsigned flags;
  unsigned depth;
  union {
    struct {
      char *s;
      size_t len;
    } str;
    int64_t i;
    double f;
    bool b;
    struct {
      struct toml_kv *kv;
      size_t n, cap;
      uint32_t *idx; /* slot = item index + 1, 0 = empty */
      size_t idx_cap;
    } tab;
    struct {
      struct toml_value **v;
      size_t n, cap;
    } arr;
  } u;
};

struct pos {
  unsigned line, col;
};

struct parser {
  const unsigned char *s;
  size_t len, pos;
  unsigned line;
  size_t lstart;
  size_t nvalues;
  struct toml_error *err;
  struct toml_value *root, *cur;
};

#define MAX_KEY_PARTS TOML_MAX_DEPTH

struct key_part {
  char *s;
  size_t len;
  struct pos at;
};

struct key {
  struct key_part p[MAX_KEY_PARTS];
  size_t n;
};

/* ---- values ---- */

void toml_free(struct toml_value *v) {
  if (!v)
    return;
  switch (v->type) {
  case TOML_STRING:
    /* values may be secrets (a key in a config file) */
    secure_wipe(v->u.str.s, v->u.str.len);
    free(v->u.str.s);
    break;
  case TOML_TABLE:
    for (size_t i = 0; i < v->u.tab.n; i++) {
      free(v->u.tab.kv[i].key);
      toml_free(v->u.tab.kv[i].val);
    }
    free(v->u.tab.kv);
    free(v->u.tab.idx);
    break;
  case TOML_ARRAY:
    for (size_t i = 0; i < v->u.arr.n; i++)
      toml_free(v->u.arr.v[i]);
    free(v->u.arr.v);
    break;
  default:
    break;
  }
  free(v);
}

static uint32_t key_hash(const char *k, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)k[i];
    h *= 16777619u;
  }
  return h;
}

static struct toml_value *table_find_n(const struct toml_value *t, const char *key, size_t n) {
  if (!t || t->type != TOML_TABLE)
    return NULL;
  uint32_t h = key_hash(key, n);
  if (t->u.tab.idx) {
    size_t mask = t->u.tab.idx_cap - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
      uint32_t k = t->u.tab.idx[s];
      if (!k)
        return NULL;
      const struct toml_kv *kv = &t->u.tab.kv[k - 1];
      if (kv->hash == h && kv->klen == n && memcmp(kv->key, key, n) == 0)
        return kv->val;
    }
  }
  for (size_t i = 0; i < t->u.tab.n; i++) {
    const struct toml_kv *kv = &t->u.tab.kv[i];
    if (kv->hash == h && kv->klen == n && memcmp(kv->key, key, n) == 0)
      return kv->val;
  }
  return NULL;
}

static void index_put(uint32_t *idx, size_t cap, uint32_t h, uint32_t item) {
  size_t mask = cap - 1;
  size_t s = h & mask;
  while (idx[s])
    s = (s + 1) & mask;
  idx[s] = item;
}

/* Adds key (taking ownership of key and val, also on failure). The key must be new. */
static int table_add(struct toml_value *t, char *key, size_t klen, struct toml_value *val) {
  if (t->u.tab.n == t->u.tab.cap) {
    size_t nc = t->u.tab.cap ? t->u.tab.cap * 2 : 4;
    struct toml_kv *kv = reallocarray(t->u.tab.kv, nc, sizeof(*kv));
    if (!kv)
      goto oom;
    t->u.tab.kv = kv;
    t->u.tab.cap = nc;
  }
  uint32_t h = key_hash(key, klen);
  size_t i = t->u.tab.n;
  t->u.tab.kv[i] = (struct toml_kv){.key = key, .klen = klen, .hash = h, .val = val};
  t->u.tab.n++;
  if (t->u.tab.n >= TOML_INDEX_MIN) {
    if (t->u.tab.idx_cap < 2 * t->u.tab.n) {
      size_t nc = 16;
      while (nc < 4 * t->u.tab.n)
        nc *= 2;
      uint32_t *idx = calloc(nc, sizeof(*idx));
      if (!idx)
        return -ENOMEM; /* the item is in the table already and freed with it */
      for (size_t k = 0; k < t->u.tab.n; k++)
        index_put(idx, nc, t->u.tab.kv[k].hash, (uint32_t)k + 1);
      free(t->u.tab.idx);
      t->u.tab.idx = idx;
      t->u.tab.idx_cap = nc;
    } else {
      index_put(t->u.tab.idx, t->u.tab.idx_cap, h, (uint32_t)i + 1);
    }
  }
  return 0;
oom:
  free(key);
  toml_free(val);
  return -ENOMEM;
}

static int array_push(struct toml_value *a, struct toml_value *v) {
  if (a->u.arr.n == a->u.arr.cap) {
    size_t nc = a->u.arr.cap ? a->u.arr.cap * 2 : 4;
    struct toml_value **nv = reallocarray(a->u.arr.v, nc, sizeof(*nv));
    if (!nv) {
      toml_free(v);
      return -ENOMEM;
    }
    a->u.arr.v = nv;
    a->u.arr.cap = nc;
  }
  a->u.arr.v[a->u.arr.n++] = v;
  return 0;
}

/* ---- errors and positions ---- */

static struct pos here(const struct parser *p) {
  return (struct pos){p->line, (unsigned)(p->pos - p->lstart + 1)};
}

static int fail_at(struct parser *p, struct pos at, const char *fmt, ...) _printf_(3, 4);
static int fail_at(struct parser *p, struct pos at, const char *fmt, ...) {
  if (p->err) {
    p->err->line = at.line;
    p->err->col = at.col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
  }
  return -EBADMSG;
}

#define fail(p, ...) fail_at((p), here(p), __VA_ARGS__)

/* A printable, shortened copy of a key for error messages. */
static const char *key_show(const char *k, size_t n, char out[48]) {
  size_t o = 0;
  for (size_t i = 0; i < n && o < 40; i++)
    out[o++] = (k[i] >= 0x20 && k[i] < 0x7f) ? k[i] : '?';
  if (n > 40) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = 0;
  return out;
}

static const char *type_article(enum toml_type t) {
  switch (t) {
  case TOML_TABLE:
    return "a table";
  case TOML_ARRAY:
    return "an array";
  case TOML_STRING:
    return "a string";
  case TOML_INTEGER:
    return "an integer";
  case TOML_FLOAT:
    return "a float";
  case TOML_BOOL:
    return "a boolean";
  }
  return "a value";
}

static int new_value(struct parser *p, struct pos at, enum toml_type type, unsigned depth,
                     struct toml_value **ret) {
  if (depth > TOML_MAX_DEPTH)
    return fail_at(p, at, "nesting deeper than %d levels", TOML_MAX_DEPTH);
  if (p->nvalues >= TOML_MAX_VALUES)
    return fail_at(p, at, "more than %d values", TOML_MAX_VALUES);
  struct toml_value *v = calloc(1, sizeof(*v));
  if (!v)
    return -ENOMEM;
  p->nvalues++;
  v->type = type;
  v->line = at.line;
  v->col = at.col;
  v->depth = depth;
  *ret = v;
  return 0;
}

/* ---- lexing helpers ---- */

static int peek(const struct parser *p, size_t k) {
  return p->pos + k < p->len ? p->s[p->pos + k] : -1;
}

static bool at_eof(const struct parser *p) {
  return p->pos >= p->len;
}

/* Length of a newline at the current position: 1 (LF), 2 (CRLF) or 0. */
static size_t newline_len(const struct parser *p) {
  int c = peek(p, 0);
  if (c == '\n')
    return 1;
  if (c == '\r' && peek(p, 1) == '\n')
    return 2;
  return 0;
}

static void consume_newline(struct parser *p, size_t n) {
  p->pos += n;
  p->line++;
  p->lstart = p->pos;
}

static void skip_ws(struct parser *p) {
  while (!at_eof(p) && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
    p->pos++;
}

static bool is_bare_key_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

static bool is_control(int c) {
  return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static int utf8_put(struct buf *b, uint32_t cp) {
  uint8_t t[4];
  size_t n;
  if (cp < 0x80) {
    t[0] = (uint8_t)cp;
    n = 1;
  } else if (cp < 0x800) {
    t[0] = (uint8_t)(0xc0 | cp >> 6);
    t[1] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    t[0] = (uint8_t)(0xe0 | cp >> 12);
    t[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    t[2] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    t[0] = (uint8_t)(0xf0 | cp >> 18);
    t[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    t[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    t[3] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 4;
  }
  return buf_append(b, t, n);
}

/* At '#': skips the comment up to (not including) the newline. */
static int skip_comment(struct parser *p) {
  p->pos++;
  while (!at_eof(p)) {
    int c = p->s[p->pos];
    if (c == '\n' || newline_len(p) == 2)
      return 0;
    if (is_control(c))
      return fail(p, "control character in comment");
    if (c >= 0x80) {
      size_t n = str_utf8_seq_len(p->s + p->pos, p->len - p->pos);
      if (!n)
        return fail(p, "invalid UTF-8");
      p->pos += n;
    } else
      p->pos++;
  }
  return 0;
}

/* Skips whitespace, comments and newlines (inside arrays). */
static int skip_ws_comments_newlines(struct parser *p) {
  for (;;) {
    skip_ws(p);
    int c = peek(p, 0);
    size_t nl = newline_len(p);
    if (nl)
      consume_newline(p, nl);
    else if (c == '#') {
      int r = skip_comment(p);
      if (r < 0)
        return r;
    } else
      return 0;
  }
}

/* ---- strings ---- */

static int hex4(struct parser *p, size_t off, size_t ndig, uint32_t *ret) {
  uint32_t v = 0;
  for (size_t i = 0; i < ndig; i++) {
    int c = peek(p, off + i);
    int d = c < 0 ? -1 : hex_digit_value((char)c);
    if (d < 0)
      return -1;
    v = v << 4 | (uint32_t)d;
  }
  *ret = v;
  return 0;
}

/* Parses a basic ("...", """...""") or literal ('...', '''...''') string at the current
 * position into out. */
static int parse_string(struct parser *p, bool allow_multi, struct buf *out) {
  struct pos start = here(p);
  int q = p->s[p->pos];
  bool literal = q == '\'';
  bool multi = peek(p, 1) == q && peek(p, 2) == q;
  int r;
  if (multi && !allow_multi)
    return fail(p, "multi-line strings cannot be keys");
  if (multi) {
    p->pos += 3;
    size_t nl = newline_len(p);
    if (nl) /* a newline right after the opening delimiter is trimmed */
      consume_newline(p, nl);
  } else
    p->pos++;

  for (;;) {
    if (at_eof(p))
      return fail_at(p, start, "unterminated string");
    int c = p->s[p->pos];
    if (c == q) {
      if (!multi) {
        p->pos++;
        return 0;
      }
      size_t n = 0;
      while (peek(p, n) == q)
        n++;
      if (n >= 3) {
        /* up to two quotes may sit right before the closing delimiter */
        size_t extra = MIN(n - 3, (size_t)2);
        for (size_t i = 0; i < extra; i++)
          if ((r = buf_append_u8(out, (uint8_t)q)) < 0)
            return r;
        p->pos += extra + 3;
        return 0;
      }
      for (size_t i = 0; i < n; i++)
        if ((r = buf_append_u8(out, (uint8_t)q)) < 0)
          return r;
      p->pos += n;
      continue;
    }
    size_t nl = newline_len(p);
    if (nl) {
      if (!multi)
        return fail_at(p, start, "unterminated string");
      if ((r = buf_append_u8(out, '\n')) < 0)
        return r;
      consume_newline(p, nl);
      continue;
    }
    if (c == '\\' && !literal) {
      struct pos esc = here(p);
      int e = peek(p, 1);
      char ch = 0;
      switch (e) {
      case 'b':
        ch = '\b';
        break;
      case 't':
        ch = '\t';
        break;
      case 'n':
        ch = '\n';
        break;
      case 'f':
        ch = '\f';
        break;
      case 'r':
        ch = '\r';
        break;
      case '"':
        ch = '"';
        break;
      case '\\':
        ch = '\\';
        break;
      case 'u':
      case 'U': {
        size_t nd = e == 'u' ? 4 : 8;
        uint32_t cp;
        if (hex4(p, 2, nd, &cp) < 0)
          return fail_at(p, esc, "invalid \\%c escape: expected %zu hex digits", e, nd);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
          return fail_at(p, esc, "escape \\%c is not a Unicode scalar value", e);
        if ((r = utf8_put(out, cp)) < 0)
          return r;
        p->pos += 2 + nd;
        continue;
      }
      default:
        if (multi && (e == ' ' || e == '\t' || e == '\n' || e == '\r')) {
          /* line-ending backslash: only whitespace may follow it on its line */
          p->pos++;
          skip_ws(p);
          nl = newline_len(p);
          if (!nl)
            return fail_at(p, esc, "invalid escape: '\\' followed by whitespace must end the line");
          while ((nl = newline_len(p)) || peek(p, 0) == ' ' || peek(p, 0) == '\t') {
            if (nl)
              consume_newline(p, nl);
            else
              p->pos++;
          }
          continue;
        }
        if (e >= 0x20 && e < 0x7f)
          return fail_at(p, esc, "invalid escape sequence '\\%c'", e);
        return fail_at(p, esc, "invalid escape sequence");
      }
      if ((r = buf_append_u8(out, (uint8_t)ch)) < 0)
        return r;
      p->pos += 2;
      continue;
    }
    if (is_control(c))
      return fail(p, c == '\r' ? "carriage return without line feed in string"
                               : "control character in string");
    if (c >= 0x80) {
      size_t n = str_utf8_seq_len(p->s + p->pos, p->len - p->pos);
      if (!n)
        return fail(p, "invalid UTF-8");
      if ((r = buf_append(out, p->s + p->pos, n)) < 0)
        return r;
      p->pos += n;
      continue;
    }
    if ((r = buf_append_u8(out, (uint8_t)c)) < 0)
      return r;
    p->pos++;
  }
}

/* ---- keys ---- */

static void key_clear(struct key *k) {
  for (size_t i = 0; i < k->n; i++)
    free(k->p[i].s);
  k->n = 0;
}

static int parse_simple_key(struct parser *p, struct key_part *ret) {
  struct pos at = here(p);
  int c = peek(p, 0);
  struct buf b = BUF_INIT(p->len + 1);
  int r;
  if (c == '"' || c == '\'') {
    r = parse_string(p, false, &b);
    if (r < 0)
      goto out;
    if (b.len && memchr(b.data, 0, b.len)) {
      r = fail_at(p, at, "key contains a NUL character");
      goto out;
    }
  } else {
    size_t s = p->pos;
    while (is_bare_key_char(peek(p, 0)))
      p->pos++;
    if (p->pos == s) {
      if (c == '=')
        r = fail(p, "missing key before '='");
      else if (c < 0 || c == '\n' || c == '\r')
        r = fail(p, "expected a key");
      else if (c >= 0x20 && c < 0x7f)
        r = fail(p, "expected a key, found '%c'", c);
      else
        r = fail(p, "invalid character in key");
      goto out;
    }
    if ((r = buf_append(&b, p->s + s, p->pos - s)) < 0)
      goto out;
  }
  if ((r = buf_terminate(&b)) < 0)
    goto out;
  ret->at = at;
  ret->len = b.len;
  ret->s = (char *)buf_steal(&b, NULL);
  if (!ret->s)
    r = -ENOMEM;
out:
  buf_free(&b);
  return r;
}

/* key = simple-key *( ws "." ws simple-key ); the caller skipped leading whitespace. */
static int parse_key(struct parser *p, struct key *k) {
  k->n = 0;
  for (;;) {
    if (k->n == MAX_KEY_PARTS)
      return fail(p, "key has more than %d parts", MAX_KEY_PARTS);
    int r = parse_simple_key(p, &k->p[k->n]);
    if (r < 0)
      return r;
    k->n++;
    skip_ws(p);
    if (peek(p, 0) != '.')
      return 0;
    p->pos++;
    skip_ws(p);
  }
}

/* ---- values ---- */

static int parse_value(struct parser *p, unsigned depth, struct toml_value **ret);
static int parse_keyval(struct parser *p, struct toml_value *table);

static bool is_digit(int c) {
  return c >= '0' && c <= '9';
}

/* Digits of the given base with single '_' between digits. Advances *i. */
static bool scan_digits(const char *t, size_t n, size_t *i, unsigned base) {
  size_t s = *i;
  bool prev_digit = false;
  while (*i < n) {
    char c = t[*i];
    int d = hex_digit_value(c);
    if (d >= 0 && d < (int)base) {
      prev_digit = true;
      (*i)++;
    } else if (c == '_') {
      if (!prev_digit || *i + 1 >= n)
        return false;
      prev_digit = false;
      (*i)++;
    } else
      break;
  }
  return *i > s && prev_digit;
}

static int parse_number(struct parser *p, unsigned depth, struct toml_value **ret) {
  struct pos at = here(p);
  size_t s = p->pos;

  /* date-times: 4 digits and '-', or 2 digits and ':' */
  size_t nd = 0;
  while (is_digit(peek(p, nd)))
    nd++;
  if ((nd == 4 && peek(p, 4) == '-') || (nd == 2 && peek(p, 2) == ':'))
    return fail_at(p, at, "date-time values are not supported");

  while (!at_eof(p)) {
    int c = p->s[p->pos];
    if (is_bare_key_char(c) || c == '.' || c == '+')
      p->pos++;
    else
      break;
  }
  const char *t = (const char *)p->s + s;
  size_t n = p->pos - s, i = 0;
  bool neg = false, sign = false;
  if (n && (t[0] == '+' || t[0] == '-')) {
    sign = true;
    neg = t[0] == '-';
    i = 1;
  }
  const char *body = t + i;
  size_t blen = n - i;
  enum toml_type type = TOML_INTEGER;
  double f = 0;
  int64_t iv = 0;

  if ((blen == 3 && memcmp(body, "inf", 3) == 0) || (blen == 3 && memcmp(body, "nan", 3) == 0)) {
    type = TOML_FLOAT;
    f = body[0] == 'i' ? INFINITY : NAN;
    if (neg)
      f = -f;
  } else if (blen >= 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'o' || body[1] == 'b')) {
    unsigned base = body[1] == 'x' ? 16 : body[1] == 'o' ? 8 : 2;
    if (sign)
      return fail_at(p, at, "a sign is not allowed on hexadecimal, octal or binary integers");
    size_t k = 2;
    if (!scan_digits(body, blen, &k, base) || k != blen)
      return fail_at(p, at, "invalid %s integer",
                     base == 16 ? "hexadecimal" : base == 8 ? "octal" : "binary");
    uint64_t v = 0;
    for (k = 2; k < blen; k++) {
      if (body[k] == '_')
        continue;
      unsigned d = (unsigned)hex_digit_value(body[k]); /* checked by scan_digits */
      if (v > ((uint64_t)INT64_MAX - d) / base)
        return fail_at(p, at, "integer out of range");
      v = v * base + d;
    }
    iv = (int64_t)v;
  } else {
    size_t k = 0;
    if (!scan_digits(body, blen, &k, 10))
      return fail_at(p, at, blen ? "invalid number" : "missing value");
    if (body[0] == '0' && k > 1)
      return fail_at(p, at, "leading zeros are not allowed");
    size_t int_end = k;
    if (k < blen && body[k] == '.') {
      k++;
      if (!scan_digits(body, blen, &k, 10))
        return fail_at(p, at, "invalid float: expected digits after '.'");
      type = TOML_FLOAT;
    }
    if (k < blen && (body[k] == 'e' || body[k] == 'E')) {
      k++;
      if (k < blen && (body[k] == '+' || body[k] == '-'))
        k++;
      if (!scan_digits(body, blen, &k, 10))
        return fail_at(p, at, "invalid float: expected digits in the exponent");
      type = TOML_FLOAT;
    }
    if (k != blen)
      return fail_at(p, at, "invalid number");
    if (type == TOML_FLOAT) {
      char tmp[128];
      size_t o = 0;
      for (size_t j = 0; j < n; j++) {
        if (t[j] == '_')
          continue;
        if (o + 1 >= sizeof(tmp))
          return fail_at(p, at, "float literal too long");
        tmp[o++] = t[j];
      }
      tmp[o] = 0;
      char *end;
      errno = 0;
      f = strtod(tmp, &end);
      if (*end)
        return fail_at(p, at, "invalid float");
      if (errno == ERANGE && isinf(f))
        return fail_at(p, at, "float out of range");
    } else {
      uint64_t v = 0;
      for (size_t j = 0; j < int_end; j++) {
        if (body[j] == '_')
          continue;
        unsigned d = (unsigned)(body[j] - '0');
        if (v > (UINT64_MAX - d) / 10)
          return fail_at(p, at, "integer out of range");
        v = v * 10 + d;
      }
      if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
          return fail_at(p, at, "integer out of range");
        iv = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
      } else {
        if (v > INT64_MAX)
          return fail_at(p, at, "integer out of range");
        iv = (int64_t)v;
      }
    }
  }
  struct toml_value *v;
  int r = new_value(p, at, type, depth, &v);
  if (r < 0)
    return r;
  if (type == TOML_FLOAT)
    v->u.f = f;
  else
    v->u.i = iv;
  *ret = v;
  return 0;
}

static int parse_array(struct parser *p, unsigned depth, struct toml_value **ret) {
  struct pos at = here(p);
  struct toml_value *a;
  int r = new_value(p, at, TOML_ARRAY, depth, &a);
  if (r < 0)
    return r;
  p->pos++;
  for (;;) {
    if ((r = skip_ws_comments_newlines(p)) < 0)
      goto fail;
    if (at_eof(p)) {
      r = fail_at(p, at, "unterminated array");
      goto fail;
    }
    if (peek(p, 0) == ']') {
      p->pos++;
      break;
    }
    if (peek(p, 0) == ',') {
      r = fail(p, "expected a value");
      goto fail;
    }
    struct toml_value *v;
    if ((r = parse_value(p, depth + 1, &v)) < 0)
      goto fail;
    if ((r = array_push(a, v)) < 0)
      goto fail;
    if ((r = skip_ws_comments_newlines(p)) < 0)
      goto fail;
    int c = peek(p, 0);
    if (c == ',') {
      p->pos++;
    } else if (c == ']') {
      p->pos++;
      break;
    } else if (c < 0) {
      r = fail_at(p, at, "unterminated array");
      goto fail;
    } else {
      r = fail(p, "expected ',' or ']' in array");
      goto fail;
    }
  }
  *ret = a;
  return 0;
fail:
  toml_free(a);
  return r;
}

static int parse_inline_table(struct parser *p, unsigned depth, struct toml_value **ret) {
  struct pos at = here(p);
  struct toml_value *t;
  int r = new_value(p, at, TOML_TABLE, depth, &t);
  if (r < 0)
    return r;
  p->pos++;
  skip_ws(p);
  if (peek(p, 0) == '}') {
    p->pos++;
    goto done;
  }
  for (;;) {
    skip_ws(p);
    if (at_eof(p)) {
      r = fail_at(p, at, "unterminated inline table");
      goto fail;
    }
    if (newline_len(p)) {
      r = fail(p, "newline in inline table");
      goto fail;
    }
    if ((r = parse_keyval(p, t)) < 0)
      goto fail;
    skip_ws(p);
    int c = peek(p, 0);
    if (c == ',') {
      p->pos++;
      skip_ws(p);
      if (peek(p, 0) == '}') {
        r = fail(p, "trailing comma in inline table");
        goto fail;
      }
    } else if (c == '}') {
      p->pos++;
      break;
    } else if (c < 0) {
      r = fail_at(p, at, "unterminated inline table");
      goto fail;
    } else if (newline_len(p)) {
      r = fail(p, "newline in inline table");
      goto fail;
    } else {
      r = fail(p, "expected ',' or '}' in inline table");
      goto fail;
    }
  }
done:
  t->flags |= TF_INLINE;
  *ret = t;
  return 0;
fail:
  toml_free(t);
  return r;
}

static bool match_word(const struct parser *p, const char *w) {
  size_t n = strlen(w);
  return p->len - p->pos >= n && memcmp(p->s + p->pos, w, n) == 0;
}

static int parse_value(struct parser *p, unsigned depth, struct toml_value **ret) {
  struct pos at = here(p);
  int c = peek(p, 0);
  int r;
  struct toml_value *v;
  switch (c) {
  case '"':
  case '\'': {
    struct buf b = BUF_INIT_SECRET(p->len + 1); /* the value may be a secret */
    r = parse_string(p, true, &b);
    if (r >= 0)
      r = new_value(p, at, TOML_STRING, depth, &v);
    if (r >= 0) {
      v->u.str.len = b.len;
      v->u.str.s = (char *)buf_steal(&b, NULL);
      if (!v->u.str.s) {
        toml_free(v);
        r = -ENOMEM;
      }
    }
    buf_free(&b);
    if (r < 0)
      return r;
    *ret = v;
    return 0;
  }
  case '[':
    return parse_array(p, depth, ret);
  case '{':
    return parse_inline_table(p, depth, ret);
  case 't':
  case 'f': {
    bool val = c == 't';
    if (!match_word(p, val ? "true" : "false"))
      return fail(p, "invalid value");
    if ((r = new_value(p, at, TOML_BOOL, depth, &v)) < 0)
      return r;
    v->u.b = val;
    p->pos += val ? 4 : 5;
    *ret = v;
    return 0;
  }
  default:
    if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n')
      return parse_number(p, depth, ret);
    if (c < 0 || c == '\n' || c == '\r' || c == '#')
      return fail(p, "missing value");
    return fail(p, "invalid value");
  }
}

/* Walks/creates the tables of a dotted key (all parts but the last) below t. */
static int dotted_descend(struct parser *p, struct toml_value *t, struct key *k,
                          struct toml_value **ret) {
  char show[48];
  for (size_t i = 0; i + 1 < k->n; i++) {
    struct key_part *kp = &k->p[i];
    struct toml_value *c = table_find_n(t, kp->s, kp->len);
    if (!c) {
      int r = new_value(p, kp->at, TOML_TABLE, t->depth + 1, &c);
      if (r < 0)
        return r;
      c->flags = TF_DOTTED;
      r = table_add(t, TAKE_PTR(kp->s), kp->len, c);
      if (r < 0)
        return r;
    } else if (c->type != TOML_TABLE) {
      return fail_at(p, kp->at, "key '%s' is already defined as %s",
                     key_show(kp->s, kp->len, show), type_article(c->type));
    } else if (c->flags & TF_INLINE) {
      return fail_at(p, kp->at, "cannot add keys to inline table '%s'",
                     key_show(kp->s, kp->len, show));
    } else if (!(c->flags & TF_DOTTED)) {
      return fail_at(p, kp->at, "table '%s' is defined by a header; dotted keys cannot extend it",
                     key_show(kp->s, kp->len, show));
    }
    t = c;
  }
  *ret = t;
  return 0;
}

/* key = value, inserted into table (the current table or an inline table being built). */
static int parse_keyval(struct parser *p, struct toml_value *table) {
  struct key k;
  char show[48];
  int r = parse_key(p, &k);
  if (r < 0)
    goto out;
  if (peek(p, 0) != '=') {
    r = fail(p, "expected '=' after key");
    goto out;
  }
  p->pos++;
  skip_ws(p);
  struct toml_value *t = NULL;
  if ((r = dotted_descend(p, table, &k, &t)) < 0)
    goto out;
  struct key_part *last = &k.p[k.n - 1];
  struct toml_value *old = table_find_n(t, last->s, last->len);
  if (old) {
    r = fail_at(p, last->at, "duplicate key '%s'", key_show(last->s, last->len, show));
    goto out;
  }
  struct toml_value *v;
  if ((r = parse_value(p, t->depth + 1, &v)) < 0)
    goto out;
  r = table_add(t, TAKE_PTR(last->s), last->len, v);
out:
  key_clear(&k);
  return r;
}

/* [a.b.c] or [[a.b.c]] at the current position. */
static int parse_header(struct parser *p) {
  struct pos at = here(p);
  bool aot = peek(p, 1) == '[';
  struct key k = {.n = 0};
  char show[48];
  int r;
  p->pos += aot ? 2 : 1;
  skip_ws(p);
  if ((r = parse_key(p, &k)) < 0)
    goto out;
  if (peek(p, 0) != ']' || (aot && peek(p, 1) != ']')) {
    r = fail(p, aot ? "expected ']]' after table name" : "expected ']' after table name");
    goto out;
  }
  p->pos += aot ? 2 : 1;

  struct toml_value *t = p->root;
  for (size_t i = 0; i + 1 < k.n; i++) {
    struct key_part *kp = &k.p[i];
    struct toml_value *c = table_find_n(t, kp->s, kp->len);
    if (!c) {
      if ((r = new_value(p, kp->at, TOML_TABLE, t->depth + 1, &c)) < 0)
        goto out;
      c->flags = TF_IMPLICIT;
      if ((r = table_add(t, TAKE_PTR(kp->s), kp->len, c)) < 0)
        goto out;
    } else if (c->type == TOML_TABLE) {
      if (c->flags & TF_INLINE) {
        r = fail_at(p, kp->at, "cannot extend inline table '%s'", key_show(kp->s, kp->len, show));
        goto out;
      }
    } else if (c->type == TOML_ARRAY && (c->flags & TF_AOT)) {
      c = c->u.arr.v[c->u.arr.n - 1];
    } else {
      r = fail_at(p, kp->at, "key '%s' is already defined as %s", key_show(kp->s, kp->len, show),
                  type_article(c->type));
      goto out;
    }
    t = c;
  }

  struct key_part *last = &k.p[k.n - 1];
  struct toml_value *c = table_find_n(t, last->s, last->len);
  if (!aot) {
    if (!c) {
      if ((r = new_value(p, at, TOML_TABLE, t->depth + 1, &c)) < 0)
        goto out;
      c->flags = TF_DEFINED;
      if ((r = table_add(t, TAKE_PTR(last->s), last->len, c)) < 0)
        goto out;
    } else if (c->type == TOML_TABLE && c->flags == TF_IMPLICIT) {
      c->flags = TF_DEFINED;
    } else if (c->type == TOML_TABLE) {
      r = fail_at(p, last->at, "table '%s' is already defined", key_show(last->s, last->len, show));
      goto out;
    } else {
      r = fail_at(p, last->at, "key '%s' is already defined as %s",
                  key_show(last->s, last->len, show), type_article(c->type));
      goto out;
    }
    p->cur = c;
  } else {
    if (!c) {
      if ((r = new_value(p, at, TOML_ARRAY, t->depth + 1, &c)) < 0)
        goto out;
      c->flags = TF_AOT;
      if ((r = table_add(t, TAKE_PTR(last->s), last->len, c)) < 0)
        goto out;
    } else if (c->type == TOML_ARRAY && !(c->flags & TF_AOT)) {
      r = fail_at(p, last->at, "cannot append to static array '%s'",
                  key_show(last->s, last->len, show));
      goto out;
    } else if (c->type != TOML_ARRAY) {
      r = fail_at(p, last->at, "key '%s' is already defined as %s",
                  key_show(last->s, last->len, show), type_article(c->type));
      goto out;
    }
    struct toml_value *e;
    if ((r = new_value(p, at, TOML_TABLE, c->depth + 1, &e)) < 0)
      goto out;
    e->flags = TF_DEFINED;
    if ((r = array_push(c, e)) < 0)
      goto out;
    p->cur = e;
  }
  r = 0;
out:
  key_clear(&k);
  return r;
}

/* After an expression: optional whitespace and comment, then a newline or the end. */
static int expect_line_end(struct parser *p, const char *what) {
  skip_ws(p);
  if (peek(p, 0) == '#') {
    int r = skip_comment(p);
    if (r < 0)
      return r;
  }
  if (at_eof(p))
    return 0;
  size_t nl = newline_len(p);
  if (nl) {
    consume_newline(p, nl);
    return 0;
  }
  if (peek(p, 0) == '\r')
    return fail(p, "carriage return without line feed");
  return fail(p, "expected a newline after %s", what);
}

int toml_parse(const char *text, size_t len, struct toml_value **ret_root, struct toml_error *err) {
  struct parser p = {.s = (const unsigned char *)text, .len = len, .line = 1, .err = err};
  int r;
  if (err)
    *err = (struct toml_error){0};
  if (len > TOML_MAX_INPUT) {
    if (err)
      snprintf(err->msg, sizeof(err->msg), "input larger than %zu bytes", TOML_MAX_INPUT);
    return -ENOBUFS;
  }
  if (!text && len)
    return -EINVAL;
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
    p.pos = p.lstart = 3; /* byte order mark */
  if ((r = new_value(&p, (struct pos){1, 1}, TOML_TABLE, 0, &p.root)) < 0)
    return r;
  p.root->flags = TF_DEFINED;
  p.cur = p.root;
  while (!at_eof(&p)) {
    skip_ws(&p);
    int c = peek(&p, 0);
    size_t nl = newline_len(&p);
    if (nl) {
      consume_newline(&p, nl);
      continue;
    }
    if (c < 0)
      break;
    if (c == '#') {
      r = expect_line_end(&p, "a comment");
    } else if (c == '[') {
      if ((r = parse_header(&p)) >= 0)
        r = expect_line_end(&p, "a table header");
    } else if (c == '\r') {
      r = fail(&p, "carriage return without line feed");
    } else {
      if ((r = parse_keyval(&p, p.cur)) >= 0)
        r = expect_line_end(&p, "a value");
    }
    if (r < 0)
      goto fail;
  }
  *ret_root = p.root;
  return 0;
fail:
  if (r == -ENOMEM && err) {
    struct pos at = here(&p);
    err->line = at.line;
    err->col = at.col;
    snprintf(err->msg, sizeof(err->msg), "out of memory");
  }
  toml_free(p.root);
  return r;
}

int toml_parse_file(const char *path, struct toml_value **ret_root, struct toml_error *err) {
  /* a config file may hold secrets */
  _cleanup_buf_ struct buf b = BUF_INIT_SECRET(TOML_MAX_INPUT);
  int r = file_read_all(path, TOML_MAX_INPUT, &b);
  if (r < 0) {
    if (err) {
      *err = (struct toml_error){0};
      /* No path here: the caller names the file, as for errors with a position. */
      snprintf(err->msg, sizeof(err->msg), "%s", r == -EFBIG ? "file too large" : strerror(-r));
    }
    return r;
  }
  return toml_parse((const char *)b.data, b.len, ret_root, err);
}

/* ---- access ---- */

enum toml_type toml_type(const struct toml_value *v) {
  return v->type;
}

const char *toml_type_name(enum toml_type t) {
  switch (t) {
  case TOML_TABLE:
    return "table";
  case TOML_ARRAY:
    return "array";
  case TOML_STRING:
    return "string";
  case TOML_INTEGER:
    return "integer";
  case TOML_FLOAT:
    return "float";
  case TOML_BOOL:
    return "boolean";
  }
  return "unknown";
}

unsigned toml_value_line(const struct toml_value *v) {
  return v ? v->line : 0;
}

unsigned toml_value_col(const struct toml_value *v) {
  return v ? v->col : 0;
}

const struct toml_value *toml_get(const struct toml_value *table, const char *key) {
  if (!key)
    return NULL;
  return table_find_n(table, key, strlen(key));
}

const struct toml_value *toml_get_path(const struct toml_value *root, const char *path) {
  if (!path)
    return NULL;
  const struct toml_value *v = root;
  for (;;) {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    v = table_find_n(v, path, n);
    if (!v || !dot)
      return v;
    path = dot + 1;
  }
}

static int get_typed(const struct toml_value *t, const char *path, enum toml_type type,
                     const struct toml_value **ret) {
  const struct toml_value *v = toml_get_path(t, path);
  if (!v)
    return -ENOENT;
  if (v->type != type)
    return -EINVAL;
  *ret = v;
  return 0;
}

int toml_value_string(const struct toml_value *v, const char **ret, size_t *ret_len) {
  if (!v || v->type != TOML_STRING)
    return -EINVAL;
  *ret = v->u.str.s;
  if (ret_len)
    *ret_len = v->u.str.len;
  return 0;
}

int toml_value_int(const struct toml_value *v, int64_t *ret) {
  if (!v || v->type != TOML_INTEGER)
    return -EINVAL;
  *ret = v->u.i;
  return 0;
}

int toml_value_float(const struct toml_value *v, double *ret) {
  if (!v || (v->type != TOML_FLOAT && v->type != TOML_INTEGER))
    return -EINVAL;
  *ret = v->type == TOML_FLOAT ? v->u.f : (double)v->u.i;
  return 0;
}

int toml_value_bool(const struct toml_value *v, bool *ret) {
  if (!v || v->type != TOML_BOOL)
    return -EINVAL;
  *ret = v->u.b;
  return 0;
}

int toml_get_string(const struct toml_value *t, const char *path, const char **ret) {
  const struct toml_value *v;
  int r = get_typed(t, path, TOML_STRING, &v);
  if (r < 0)
    return r;
  if (strlen(v->u.str.s) != v->u.str.len)
    return -EINVAL;
  *ret = v->u.str.s;
  return 0;
}

int toml_get_int(const struct toml_value *t, const char *path, int64_t *ret) {
  const struct toml_value *v;
  int r = get_typed(t, path, TOML_INTEGER, &v);
  if (r < 0)
    return r;
  *ret = v->u.i;
  return 0;
}

static int get_unsigned(const struct toml_value *t, const char *path, uint64_t max,
                        uint64_t *ret) {
  int64_t v;
  int r = toml_get_int(t, path, &v);
  if (r < 0)
    return r;
  if (v < 0 || (uint64_t)v > max)
    return -ERANGE;
  *ret = (uint64_t)v;
  return 0;
}

int toml_get_u64(const struct toml_value *t, const char *path, uint64_t *ret) {
  return get_unsigned(t, path, UINT64_MAX, ret);
}

int toml_get_u32(const struct toml_value *t, const char *path, uint32_t *ret) {
  uint64_t v;
  int r = get_unsigned(t, path, UINT32_MAX, &v);
  if (r == 0)
    *ret = (uint32_t)v;
  return r;
}

int toml_get_u16(const struct toml_value *t, const char *path, uint16_t *ret) {
  uint64_t v;
  int r = get_unsigned(t, path, UINT16_MAX, &v);
  if (r == 0)
    *ret = (uint16_t)v;
  return r;
}

int toml_get_bool(const struct toml_value *t, const char *path, bool *ret) {
  const struct toml_value *v;
  int r = get_typed(t, path, TOML_BOOL, &v);
  if (r < 0)
    return r;
  *ret = v->u.b;
  return 0;
}

int toml_get_float(const struct toml_value *t, const char *path, double *ret) {
  const struct toml_value *v = toml_get_path(t, path);
  if (!v)
    return -ENOENT;
  return toml_value_float(v, ret);
}

int toml_get_table(const struct toml_value *t, const char *path, const struct toml_value **ret) {
  return get_typed(t, path, TOML_TABLE, ret);
}

int toml_get_array(const struct toml_value *t, const char *path, const struct toml_value **ret) {
  return get_typed(t, path, TOML_ARRAY, ret);
}

int toml_get_strv(const struct toml_value *t, const char *path, char ***ret) {
  const struct toml_value *a;
  int r = get_typed(t, path, TOML_ARRAY, &a);
  if (r < 0)
    return r;
  for (size_t i = 0; i < a->u.arr.n; i++) {
    const struct toml_value *e = a->u.arr.v[i];
    if (e->type != TOML_STRING || strlen(e->u.str.s) != e->u.str.len)
      return -EINVAL;
  }
  char **l = calloc(a->u.arr.n + 1, sizeof(char *));
  if (!l)
    return -ENOMEM;
  for (size_t i = 0; i < a->u.arr.n; i++) {
    l[i] = strdup(a->u.arr.v[i]->u.str.s);
    if (!l[i]) {
      strv_free(l);
      return -ENOMEM;
    }
  }
  *ret = l;
  return 0;
}

size_t toml_array_len(const struct toml_value *v) {
  return v && v->type == TOML_ARRAY ? v->u.arr.n : 0;
}

const struct toml_value *toml_array_at(const struct toml_value *v, size_t i) {
  return v && v->type == TOML_ARRAY && i < v->u.arr.n ? v->u.arr.v[i] : NULL;
}

size_t toml_table_len(const struct toml_value *v) {
  return v && v->type == TOML_TABLE ? v->u.tab.n : 0;
}

const char *toml_table_key_at(const struct toml_value *v, size_t i) {
  return v && v->type == TOML_TABLE && i < v->u.tab.n ? v->u.tab.kv[i].key : NULL;
}

const struct toml_value *toml_table_value_at(const struct toml_value *v, size_t i) {
  return v && v->type == TOML_TABLE && i < v->u.tab.n ? v->u.tab.kv[i].val : NULL;
}

int toml_table_check_keys(const struct toml_value *t, const char *const *allowed,
                          const char **ret_key) {
  if (!t || t->type != TOML_TABLE)
    return -EINVAL;
  for (size_t i = 0; i < t->u.tab.n; i++) {
    bool ok = false;
    for (const char *const *a = allowed; a && *a; a++)
      if (strcmp(*a, t->u.tab.kv[i].key) == 0) {
        ok = true;
        break;
      }
    if (!ok) {
      if (ret_key)
        *ret_key = t->u.tab.kv[i].key;
      return -EINVAL;
    }
  }
  return 0;
}

int toml_append_string(struct buf *out, const char *s) {
  size_t start = out->len;
  int r = buf_append_u8(out, '"');
  const unsigned char *end = (const unsigned char *)s + strlen(s);
  for (const unsigned char *c = (const unsigned char *)s; r >= 0 && *c; c++) {
    switch (*c) {
    case '"':
      r = buf_append_str(out, "\\\"");
      break;
    case '\\':
      r = buf_append_str(out, "\\\\");
      break;
    case '\b':
      r = buf_append_str(out, "\\b");
      break;
    case '\t':
      r = buf_append_str(out, "\\t");
      break;
    case '\n':
      r = buf_append_str(out, "\\n");
      break;
    case '\f':
      r = buf_append_str(out, "\\f");
      break;
    case '\r':
      r = buf_append_str(out, "\\r");
      break;
    default:
      if (*c < 0x20 || *c == 0x7f) {
        r = buf_printf(out, "\\u%04X", *c);
      } else if (*c < 0x80) {
        r = buf_append_u8(out, *c);
      } else {
        /* TOML text is UTF-8: anything else would not read back */
        size_t n = str_utf8_seq_len(c, (size_t)(end - c));
        if (n == 0)
          r = -EILSEQ;
        else
          r = buf_append(out, c, n);
        c += n ? n - 1 : 0;
      }
    }
  }
  if (r >= 0)
    r = buf_append_u8(out, '"');
  if (r < 0)
    out->len = start;
  return r;
}

int toml_append_key(struct buf *out, const char *key) {
  bool bare = *key != 0;
  for (const char *c = key; *c; c++)
    if (!is_bare_key_char((unsigned char)*c)) {
      bare = false;
      break;
    }
  return bare ? buf_append_str(out, key) : toml_append_string(out, key);
}
