#include "net/prpc_json.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "base/json.h"
#include "base/macro.h"
#include "base/str.h"

#define FIELD_PTR(m, off) ((void *)((char *)(m) + (off)))
#define FIELD_CPTR(m, off) ((const void *)((const char *)(m) + (off)))

/* Decoding state: options, the dotted path of the field being decoded, the error text. */
struct dec {
  unsigned flags;
  char path[256];
  size_t path_len;
  char *err;
  size_t errlen;
};

static int dec_fail(struct dec *c, int r, const char *fmt, ...) _printf_(3, 4);
static int dec_fail(struct dec *c, int r, const char *fmt, ...) {
  if (c->err && c->errlen) {
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->path_len)
      snprintf(c->err, c->errlen, "field '%s': %s", c->path, msg);
    else
      snprintf(c->err, c->errlen, "%s", msg);
  }
  return r;
}

static void path_append(struct dec *c, const char *s, size_t n) {
  size_t room = sizeof(c->path) - 1 - c->path_len;
  n = MIN(n, room);
  memcpy(c->path + c->path_len, s, n);
  c->path_len += n;
  c->path[c->path_len] = 0;
}

/* Appends ".name", "name" or "[i]" to the path (cut at the buffer's end); returns the old
 * length for path_pop(). Runs for every decoded field, so no printf. */
static size_t path_push(struct dec *c, const char *name, size_t index, bool is_index) {
  size_t old = c->path_len;
  if (is_index) {
    char digits[24], *e = digits + sizeof(digits), *q = e;
    do {
      *--q = (char)('0' + index % 10);
      index /= 10;
    } while (index);
    path_append(c, "[", 1);
    path_append(c, q, (size_t)(e - q));
    path_append(c, "]", 1);
  } else {
    if (old)
      path_append(c, ".", 1);
    path_append(c, name, strlen(name));
  }
  return old;
}

static void path_pop(struct dec *c, size_t old) {
  c->path_len = old;
  c->path[old] = 0;
}

int prpc_message_new(const ProtobufCMessageDescriptor *d, ProtobufCMessage **ret) {
  if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !ret)
    return -EINVAL;
  ProtobufCMessage *m = malloc(d->sizeof_message);
  if (!m)
    return -ENOMEM;
  protobuf_c_message_init(d, m);
  *ret = m;
  return 0;
}

void prpc_message_free(ProtobufCMessage *m) {
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
}

bool prpc_descriptor_is_empty(const ProtobufCMessageDescriptor *d) {
  return d && d->n_fields == 0 && d->short_name && strcmp(d->short_name, "Empty") == 0;
}

static size_t elem_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_ENUM:
    return 4;
  case PROTOBUF_C_TYPE_FLOAT:
    return sizeof(float);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return 8;
  case PROTOBUF_C_TYPE_DOUBLE:
    return sizeof(double);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(ProtobufCMessage *);
  }
  return 0;
}

/* ---- JSON -> message ---------------------------------------------------------------- */

/* A signed integer from a JSON integer (or, with PRPC_JSON_SCALAR_STRINGS, decimal text). */
static int dec_int(struct dec *c, const json_t *v, int64_t min, int64_t max, int64_t *ret) {
  int64_t x;
  if (json_is_integer(v))
    x = (int64_t)json_integer_value(v);
  else if (json_is_string(v) && (c->flags & PRPC_JSON_SCALAR_STRINGS)) {
    const char *s = json_string_value(v);
    char *end;
    if (!*s || *s == ' ' || *s == '+')
      return dec_fail(c, -EINVAL, "expected integer");
    errno = 0;
    long long ll = strtoll(s, &end, 10);
    if (*end)
      return dec_fail(c, -EINVAL, "expected integer");
    if (errno == ERANGE)
      return dec_fail(c, -EINVAL, "integer out of range");
    x = ll;
  } else
    return dec_fail(c, -EINVAL, "expected integer");
  if (x < min || x > max)
    return dec_fail(c, -EINVAL, "integer out of range");
  *ret = x;
  return 0;
}

static int dec_uint(struct dec *c, const json_t *v, uint64_t max, uint64_t *ret) {
  uint64_t x;
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0)
      return dec_fail(c, -EINVAL, "integer out of range");
    x = (uint64_t)i;
  } else if (json_is_string(v) && (c->flags & PRPC_JSON_SCALAR_STRINGS)) {
    const char *s = json_string_value(v);
    char *end;
    if (*s < '0' || *s > '9')
      return dec_fail(c, -EINVAL, "expected unsigned integer");
    errno = 0;
    unsigned long long ull = strtoull(s, &end, 10);
    if (*end)
      return dec_fail(c, -EINVAL, "expected unsigned integer");
    if (errno == ERANGE)
      return dec_fail(c, -EINVAL, "integer out of range");
    x = ull;
  } else
    return dec_fail(c, -EINVAL, "expected integer");
  if (x > max)
    return dec_fail(c, -EINVAL, "integer out of range");
  *ret = x;
  return 0;
}

static int dec_double(struct dec *c, const json_t *v, double *ret) {
  if (json_is_number(v)) {
    *ret = json_number_value(v);
    return 0;
  }
  if (json_is_string(v) && (c->flags & PRPC_JSON_SCALAR_STRINGS)) {
    const char *s = json_string_value(v);
    char *end;
    if (!*s || *s == ' ')
      return dec_fail(c, -EINVAL, "expected number");
    errno = 0;
    double d = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(d))
      return dec_fail(c, -EINVAL, "expected number");
    *ret = d;
    return 0;
  }
  return dec_fail(c, -EINVAL, "expected number");
}

static int dec_bool(struct dec *c, const json_t *v, protobuf_c_boolean *ret) {
  if (json_is_boolean(v)) {
    *ret = json_is_true(v);
    return 0;
  }
  if (json_is_string(v) && (c->flags & PRPC_JSON_SCALAR_STRINGS)) {
    const char *s = json_string_value(v);
    /* An empty value is a flag given without "=value" in a query string. */
    if (!*s || strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
      *ret = 1;
      return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
      *ret = 0;
      return 0;
    }
  }
  return dec_fail(c, -EINVAL, "expected boolean");
}

static int dec_enum(struct dec *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                    int32_t *ret) {
  if (json_is_string(v)) {
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(v));
    if (ev) {
      *ret = ev->value;
      return 0;
    }
    if (!(c->flags & PRPC_JSON_SCALAR_STRINGS))
      return dec_fail(c, -EINVAL, "unknown enum value");
  }
  int64_t x;
  int r = dec_int(c, v, INT32_MIN, INT32_MAX, &x);
  if (r < 0)
    return json_is_string(v) ? dec_fail(c, -EINVAL, "unknown enum value") : r;
  *ret = (int32_t)x;
  return 0;
}

static int dec_string(struct dec *c, const json_t *v, char **ret) {
  if (!json_is_string(v))
    return dec_fail(c, -EINVAL, "expected string");
  size_t n = json_string_length(v);
  const char *s = json_string_value(v);
  if (memchr(s, 0, n))
    return dec_fail(c, -EINVAL, "NUL in string");
  char *copy = strndup(s, n);
  if (!copy)
    return dec_fail(c, -ENOMEM, "out of memory");
  *ret = copy;
  return 0;
}

static int dec_bytes(struct dec *c, const json_t *v, ProtobufCBinaryData *ret) {
  if (!json_is_string(v))
    return dec_fail(c, -EINVAL, "expected hex string");
  const char *s = json_string_value(v);
  size_t n = json_string_length(v), digits = n;
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    digits -= 2;
  if (digits % 2)
    return dec_fail(c, -EINVAL, "odd number of hex digits");
  if (digits == 0) {
    *ret = (ProtobufCBinaryData){0};
    return 0;
  }
  uint8_t *data = malloc(digits / 2);
  if (!data)
    return dec_fail(c, -ENOMEM, "out of memory");
  if (hex_decode_exact(s, n, data, digits / 2) < 0) {
    free(data);
    return dec_fail(c, -EINVAL, "invalid hex");
  }
  *ret = (ProtobufCBinaryData){.len = digits / 2, .data = data};
  return 0;
}

static int dec_message(struct dec *c, const ProtobufCMessageDescriptor *d, const json_t *obj,
                       unsigned depth, ProtobufCMessage **ret);

/* Decodes one value of field f into dst (a field slot or an array element). dst is written
 * only on success, and then holds a complete value. */
static int dec_value(struct dec *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                     unsigned depth, void *dst) {
  int64_t i;
  uint64_t u;
  double d;
  int r;

  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if ((r = dec_int(c, v, INT32_MIN, INT32_MAX, &i)) < 0)
      return r;
    *(int32_t *)dst = (int32_t)i;
    return 0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if ((r = dec_int(c, v, INT64_MIN, INT64_MAX, &i)) < 0)
      return r;
    *(int64_t *)dst = i;
    return 0;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if ((r = dec_uint(c, v, UINT32_MAX, &u)) < 0)
      return r;
    *(uint32_t *)dst = (uint32_t)u;
    return 0;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if ((r = dec_uint(c, v, UINT64_MAX, &u)) < 0)
      return r;
    *(uint64_t *)dst = u;
    return 0;
  case PROTOBUF_C_TYPE_FLOAT:
    if ((r = dec_double(c, v, &d)) < 0)
      return r;
    if (fabs(d) > FLT_MAX)
      return dec_fail(c, -EINVAL, "number out of range");
    *(float *)dst = (float)d;
    return 0;
  case PROTOBUF_C_TYPE_DOUBLE:
    if ((r = dec_double(c, v, &d)) < 0)
      return r;
    *(double *)dst = d;
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    return dec_bool(c, v, dst);
  case PROTOBUF_C_TYPE_ENUM:
    return dec_enum(c, f, v, dst);
  case PROTOBUF_C_TYPE_STRING:
    return dec_string(c, v, dst);
  case PROTOBUF_C_TYPE_BYTES:
    return dec_bytes(c, v, dst);
  case PROTOBUF_C_TYPE_MESSAGE:
    return dec_message(c, f->descriptor, v, depth + 1, dst);
  }
  return dec_fail(c, -EINVAL, "unsupported field type");
}

static int dec_repeated(struct dec *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        const json_t *v, unsigned depth) {
  if (!json_is_array(v))
    return dec_fail(c, -EINVAL, "expected array");
  size_t n = json_array_size(v), esz = elem_size(f->type);
  if (n == 0)
    return 0;
  if (n > PRPC_JSON_MAX_REPEATED)
    return dec_fail(c, -ENOBUFS, "more than %d elements", PRPC_JSON_MAX_REPEATED);
  uint8_t *arr = calloc(n, esz);
  if (!arr)
    return dec_fail(c, -ENOMEM, "out of memory");
  /* The message owns the array from here; the count grows with each complete element so a
   * failure half-way leaves a message protobuf_c_message_free_unpacked() can release. */
  *(void **)FIELD_PTR(m, f->offset) = arr;
  size_t *count = FIELD_PTR(m, f->quantifier_offset);
  *count = 0;
  for (size_t k = 0; k < n; k++) {
    const json_t *e = json_array_get(v, k);
    size_t old = path_push(c, NULL, k, true);
    int r = json_is_null(e) ? dec_fail(c, -EINVAL, "null array element")
                            : dec_value(c, f, e, depth, arr + k * esz);
    path_pop(c, old);
    if (r < 0)
      return r;
    (*count)++;
  }
  return 0;
}

static int dec_message(struct dec *c, const ProtobufCMessageDescriptor *d, const json_t *obj,
                       unsigned depth, ProtobufCMessage **ret) {
  if (depth > PRPC_JSON_MAX_DEPTH)
    return dec_fail(c, -ENOBUFS, "messages nested deeper than %d", PRPC_JSON_MAX_DEPTH);
  if (!json_is_object(obj))
    return dec_fail(c, -EINVAL, "expected object");

  ProtobufCMessage *m;
  int r = prpc_message_new(d, &m);
  if (r < 0)
    return dec_fail(c, r, "out of memory");

  for (unsigned k = 0; k < d->n_fields; k++) {
    const ProtobufCFieldDescriptor *f = &d->fields[k];
    const json_t *v = json_object_get(obj, f->name);
    if (!v || json_is_null(v))
      continue;
    size_t old = path_push(c, f->name, 0, false);
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
      r = dec_repeated(c, m, f, v, depth);
    else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t *which = FIELD_PTR(m, f->quantifier_offset);
      if (*which != 0)
        r = dec_fail(c, -EINVAL, "more than one member of a oneof is set");
      else {
        /* Members share storage: decode into a scratch slot, then select the member. */
        union {
          uint64_t u;
          double dbl;
          void *p;
          ProtobufCBinaryData b;
        } tmp = {0};
        r = dec_value(c, f, v, depth, &tmp);
        if (r >= 0) {
          memcpy(FIELD_PTR(m, f->offset), &tmp, elem_size(f->type));
          *which = f->id;
        }
      }
    } else {
      void *dst = FIELD_PTR(m, f->offset);
      r = dec_value(c, f, v, depth, dst);
      if (r >= 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
          f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)FIELD_PTR(m, f->quantifier_offset) = 1;
    }
    path_pop(c, old);
    if (r < 0) {
      prpc_message_free(m);
      return r;
    }
  }
  *ret = m;
  return 0;
}

int prpc_json_to_message_full(const ProtobufCMessageDescriptor *d, const json_t *j,
                              unsigned flags, ProtobufCMessage **ret, char *err, size_t errlen) {
  struct dec c = {.flags = flags, .err = err, .errlen = errlen};
  if (err && errlen)
    err[0] = 0;
  if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !ret)
    return dec_fail(&c, -EINVAL, "invalid arguments");
  if (!j || json_is_null(j)) {
    int r = prpc_message_new(d, ret);
    return r < 0 ? dec_fail(&c, r, "out of memory") : 0;
  }
  if (!json_is_object(j))
    return dec_fail(&c, -EINVAL, "expected a JSON object");
  return dec_message(&c, d, j, 0, ret);
}

int prpc_json_to_message(const ProtobufCMessageDescriptor *d, const json_t *j,
                         ProtobufCMessage **ret, char *err, size_t errlen) {
  return prpc_json_to_message_full(d, j, 0, ret, err, errlen);
}

/* ---- JSON text -> message, the common case without a tree ----
 * Request bodies are nearly always one flat object of plain strings, integers, booleans and
 * nulls. Those are decoded here straight into the message; anything else (escapes, non-ASCII,
 * reals, arrays, nested objects, duplicate keys, a value the field does not take, any syntax
 * error) is left to the jansson path, which stays the reference for what is accepted and for
 * every error message. So this path only ever succeeds where that one would have built the
 * same message. */
#define FAST_MAX_MEMBERS 32
#define FAST_MAX_DIGITS 18

enum fast_type { FV_NULL, FV_TRUE, FV_FALSE, FV_INT, FV_STR };

struct fast_member {
  const char *key;
  size_t key_len;
  enum fast_type type;
  int64_t i;
  const char *s; /* FV_STR: printable ASCII, no escapes */
  size_t n;
};

static const char *fast_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* A string without escapes of printable ASCII; p is past the opening quote. */
static const char *fast_str(const char *p, const char *end, const char **ret, size_t *ret_n) {
  const char *start = p;
  while (p < end && *p != '"') {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c > 0x7e || c == '\\')
      return NULL;
    p++;
  }
  if (p == end)
    return NULL;
  *ret = start;
  *ret_n = (size_t)(p - start);
  return p + 1;
}

static const char *fast_value(const char *p, const char *end, struct fast_member *m) {
  if (p == end)
    return NULL;
  static const struct {
    const char *lit;
    size_t n;
    enum fast_type t;
  } lits[] = {{"true", 4, FV_TRUE}, {"false", 5, FV_FALSE}, {"null", 4, FV_NULL}};
  if (*p == '"') {
    m->type = FV_STR;
    return fast_str(p + 1, end, &m->s, &m->n);
  }
  for (size_t k = 0; k < ARRAY_SIZE(lits); k++)
    if ((size_t)(end - p) >= lits[k].n && memcmp(p, lits[k].lit, lits[k].n) == 0) {
      m->type = lits[k].t;
      return p + lits[k].n;
    }
  bool neg = *p == '-';
  if (neg)
    p++;
  const char *digits = p;
  uint64_t v = 0;
  while (p < end && *p >= '0' && *p <= '9' && p - digits < FAST_MAX_DIGITS)
    v = v * 10 + (uint64_t)(*p++ - '0');
  size_t nd = (size_t)(p - digits);
  /* no digits, a leading zero, more digits than kept, or a real: the reference path decides */
  if (nd == 0 || (digits[0] == '0' && nd > 1) ||
      (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E')))
    return NULL;
  m->type = FV_INT;
  m->i = neg ? -(int64_t)v : (int64_t)v;
  return p;
}

/* 1: parsed into m[0..*ret_n); 0: not for this path. */
static int fast_parse(const char *text, size_t len, struct fast_member *m, size_t *ret_n) {
  const char *p = fast_ws(text, text + len), *end = text + len;
  size_t n = 0;
  if (p == end || *p++ != '{')
    return 0;
  p = fast_ws(p, end);
  if (p < end && *p == '}') {
    p++;
  } else {
    for (;;) {
      if (n == FAST_MAX_MEMBERS || p == end || *p != '"')
        return 0;
      struct fast_member *cur = &m[n];
      if (!(p = fast_str(p + 1, end, &cur->key, &cur->key_len)))
        return 0;
      for (size_t k = 0; k < n; k++) /* duplicates: the reference path rejects them */
        if (m[k].key_len == cur->key_len && memcmp(m[k].key, cur->key, cur->key_len) == 0)
          return 0;
      p = fast_ws(p, end);
      if (p == end || *p++ != ':')
        return 0;
      if (!(p = fast_value(fast_ws(p, end), end, cur)))
        return 0;
      n++;
      p = fast_ws(p, end);
      if (p == end)
        return 0;
      if (*p == '}') {
        p++;
        break;
      }
      if (*p++ != ',')
        return 0;
      p = fast_ws(p, end);
    }
  }
  if (fast_ws(p, end) != end)
    return 0;
  *ret_n = n;
  return 1;
}

static bool fast_int_in(const struct fast_member *v, int64_t min, int64_t max) {
  return v->type == FV_INT && v->i >= min && v->i <= max;
}

/* One member into its field, as dec_value would; false when that needs the reference path. */
static bool fast_set(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                     const struct fast_member *v) {
  void *dst = FIELD_PTR(msg, f->offset);
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if (!fast_int_in(v, INT32_MIN, INT32_MAX))
      return false;
    *(int32_t *)dst = (int32_t)v->i;
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if (v->type != FV_INT)
      return false;
    *(int64_t *)dst = v->i;
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if (!fast_int_in(v, 0, UINT32_MAX))
      return false;
    *(uint32_t *)dst = (uint32_t)v->i;
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if (!fast_int_in(v, 0, INT64_MAX))
      return false;
    *(uint64_t *)dst = (uint64_t)v->i;
    break;
  case PROTOBUF_C_TYPE_ENUM:
    if (v->type == FV_STR) {
      char name[128];
      if (v->n >= sizeof(name))
        return false;
      memcpy(name, v->s, v->n);
      name[v->n] = 0;
      const ProtobufCEnumValue *ev =
          protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, name);
      if (!ev)
        return false;
      *(int32_t *)dst = ev->value;
    } else if (fast_int_in(v, INT32_MIN, INT32_MAX)) {
      *(int32_t *)dst = (int32_t)v->i;
    } else {
      return false;
    }
    break;
  case PROTOBUF_C_TYPE_BOOL:
    if (v->type != FV_TRUE && v->type != FV_FALSE)
      return false;
    *(protobuf_c_boolean *)dst = v->type == FV_TRUE;
    break;
  case PROTOBUF_C_TYPE_STRING: {
    if (v->type != FV_STR)
      return false;
    char *copy = strndup(v->s, v->n);
    if (!copy)
      return false;
    *(char **)dst = copy;
    break;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    if (v->type != FV_STR)
      return false;
    size_t digits = v->n;
    if (v->n >= 2 && v->s[0] == '0' && (v->s[1] == 'x' || v->s[1] == 'X'))
      digits -= 2;
    if (digits % 2)
      return false;
    ProtobufCBinaryData *b = dst;
    if (digits == 0) {
      *b = (ProtobufCBinaryData){0};
      break;
    }
    uint8_t *data = malloc(digits / 2);
    if (!data)
      return false;
    if (hex_decode_exact(v->s, v->n, data, digits / 2) < 0) {
      free(data);
      return false;
    }
    *b = (ProtobufCBinaryData){.len = digits / 2, .data = data};
    break;
  }
  default: /* reals, messages: the reference path */
    return false;
  }
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
      f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
    *(protobuf_c_boolean *)FIELD_PTR(msg, f->quantifier_offset) = 1;
  return true;
}

/* The message of text when this path can build it; NULL otherwise. */
static ProtobufCMessage *fast_decode(const ProtobufCMessageDescriptor *d, const char *text,
                                     size_t len) {
  struct fast_member m[FAST_MAX_MEMBERS];
  size_t n = 0;
  ProtobufCMessage *msg = NULL;
  if (!fast_parse(text, len, m, &n) || prpc_message_new(d, &msg) < 0)
    return NULL;
  for (size_t k = 0; k < n; k++) {
    char name[128];
    if (m[k].key_len >= sizeof(name))
      continue; /* longer than any field name here: an unknown key, ignored */
    memcpy(name, m[k].key, m[k].key_len);
    name[m[k].key_len] = 0;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    if (!f || m[k].type == FV_NULL)
      continue; /* unknown keys are ignored, null is the default */
    if (f->label == PROTOBUF_C_LABEL_REPEATED || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
        !fast_set(msg, f, &m[k])) {
      prpc_message_free(msg);
      return NULL;
    }
  }
  return msg;
}

int prpc_json_text_to_message(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                              size_t max_len, unsigned flags, ProtobufCMessage **ret, char *err,
                              size_t errlen) {
  if (err && errlen)
    err[0] = 0;
  if (len > max_len) {
    if (err && errlen)
      snprintf(err, errlen, "JSON body larger than %zu bytes", max_len);
    return -ENOBUFS;
  }
  size_t k = 0;
  while (k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r' || text[k] == '\n'))
    k++;
  if (k == len)
    return prpc_json_to_message_full(d, NULL, flags, ret, err, errlen);
  if (flags == 0 && d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC && ret) {
    ProtobufCMessage *m = fast_decode(d, text, len);
    if (m) {
      *ret = m;
      return 0;
    }
  }

  _cleanup_json_ json_t *j = NULL;
  json_error_t je;
  int r = json_parse_buf_full(text, len, max_len, JSON_DECODE_ANY, &j, &je);
  if (r < 0) {
    if (err && errlen)
      snprintf(err, errlen, "invalid JSON: %s (line %d, column %d)", je.text, je.line,
               je.column);
    return r == -ENOBUFS ? r : -EINVAL;
  }
  return prpc_json_to_message_full(d, j, flags, ret, err, errlen);
}

/* ---- query string -> message -------------------------------------------------------- */

/* Percent-decodes s[0..n) ('+' = space) into a new JSON string. */
static int qs_decode(const char *s, size_t n, json_t **ret) {
  _cleanup_free_ char *out = NULL;
  size_t o = 0;
  int r = str_pct_decode(s, n, PCT_PLUS_SPACE, &out, &o);
  if (r < 0)
    return r == -ENOMEM ? r : -EINVAL;
  json_t *j = json_stringn(out, o);
  if (!j)
    return -EINVAL; /* not UTF-8 */
  *ret = j;
  return 0;
}

/* Splits "name", "name[]" or "name[123]" into the field name; sets *list when bracketed. */
static int qs_key_name(const char *key, char *name, size_t namelen, bool *list) {
  const char *br = strchr(key, '[');
  size_t n = br ? (size_t)(br - key) : strlen(key);
  if (n == 0 || n >= namelen)
    return -EINVAL;
  if (br) {
    const char *p = br + 1;
    while (*p >= '0' && *p <= '9')
      p++;
    if (p[0] != ']' || p[1] != 0)
      return -EINVAL;
  }
  memcpy(name, key, n);
  name[n] = 0;
  *list = br != NULL;
  return 0;
}

int prpc_query_to_message(const ProtobufCMessageDescriptor *d, const char *query,
                          ProtobufCMessage **ret, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = 0;
  if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !ret)
    return -EINVAL;
  _cleanup_json_ json_t *obj = json_object();
  if (!obj)
    return -ENOMEM;

  const char *p = query ? query : "";
  while (*p) {
    size_t n = strcspn(p, "&");
    const char *eq = memchr(p, '=', n);
    size_t klen = eq ? (size_t)(eq - p) : n;
    _cleanup_json_ json_t *key = NULL, *val = NULL;
    int r;
    if (n == 0)
      goto next;
    r = qs_decode(p, klen, &key);
    if (r >= 0)
      r = eq ? qs_decode(eq + 1, n - klen - 1, &val) : ((val = json_string("")) ? 0 : -ENOMEM);
    if (r < 0) {
      if (err && errlen)
        snprintf(err, errlen, "invalid query string encoding");
      return r;
    }

    char name[128];
    bool list;
    if (qs_key_name(json_string_value(key), name, sizeof(name), &list) < 0)
      goto next; /* cannot name a field */
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    if (!f)
      goto next; /* unknown keys (such as "json") are ignored */
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      if (err && errlen)
        snprintf(err, errlen, "field '%s': cannot be set from a query string", name);
      return -EINVAL;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      json_t *arr = json_object_get(obj, name);
      if (!arr) {
        if (json_object_set_new(obj, name, arr = json_array()) < 0 || !arr)
          return -ENOMEM;
      }
      if (json_array_size(arr) >= PRPC_JSON_MAX_REPEATED) {
        if (err && errlen)
          snprintf(err, errlen, "field '%s': more than %d elements", name,
                   PRPC_JSON_MAX_REPEATED);
        return -ENOBUFS;
      }
      if (json_array_append(arr, val) < 0)
        return -ENOMEM;
    } else {
      if (list) {
        if (err && errlen)
          snprintf(err, errlen, "field '%s': not a list", name);
        return -EINVAL;
      }
      if (json_object_set(obj, name, val) < 0)
        return -ENOMEM;
    }
  next:
    p += n;
    if (*p == '&')
      p++;
  }
  return prpc_json_to_message_full(d, obj, PRPC_JSON_SCALAR_STRINGS, ret, err, errlen);
}

/* ---- message -> JSON ---------------------------------------------------------------- */

static int enc_message(const ProtobufCMessage *m, unsigned flags, unsigned depth, json_t **ret);

static int enc_value(const ProtobufCFieldDescriptor *f, const void *src, unsigned flags,
                     unsigned depth, json_t **ret) {
  json_t *j = NULL;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_ENUM:
    j = json_integer(*(const int32_t *)src);
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    j = json_integer(*(const uint32_t *)src);
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    j = json_integer(*(const int64_t *)src);
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: {
    uint64_t u = *(const uint64_t *)src;
    if (u > (uint64_t)INT64_MAX)
      return -ERANGE;
    j = json_integer((json_int_t)u);
    break;
  }
  case PROTOBUF_C_TYPE_FLOAT: {
    float x = *(const float *)src;
    j = isfinite(x) ? json_real(x) : json_null();
    break;
  }
  case PROTOBUF_C_TYPE_DOUBLE: {
    double x = *(const double *)src;
    j = isfinite(x) ? json_real(x) : json_null();
    break;
  }
  case PROTOBUF_C_TYPE_BOOL:
    j = json_boolean(*(const protobuf_c_boolean *)src);
    break;
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)src;
    j = json_string(s ? s : "");
    if (!j)
      return -EBADMSG; /* not UTF-8 */
    break;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *b = src;
    size_t pre = (flags & PRPC_JSON_BYTES_0X) ? 2 : 0, n;
    if (!size_mul(b->len, 2, &n) || !size_add(n, pre + 1, &n))
      return -ENOMEM;
    _cleanup_free_ char *s = malloc(n);
    if (!s)
      return -ENOMEM;
    memcpy(s, "0x", pre);
    hex_encode(b->len ? b->data : (const uint8_t *)"", b->len, s + pre);
    j = json_stringn(s, n - 1);
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)src;
    if (!sub)
      j = json_null();
    else
      return enc_message(sub, flags, depth + 1, ret);
    break;
  }
  default:
    return -EINVAL;
  }
  if (!j)
    return -ENOMEM;
  *ret = j;
  return 0;
}

static int enc_message(const ProtobufCMessage *m, unsigned flags, unsigned depth, json_t **ret) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (depth > PRPC_JSON_MAX_DEPTH)
    return -ENOBUFS;
  if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
    return -EINVAL;
  _cleanup_json_ json_t *obj = json_object();
  if (!obj)
    return -ENOMEM;

  for (unsigned k = 0; k < d->n_fields; k++) {
    const ProtobufCFieldDescriptor *f = &d->fields[k];
    json_t *v = NULL;
    int r;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)FIELD_CPTR(m, f->quantifier_offset) != f->id)
      continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)FIELD_CPTR(m, f->quantifier_offset), esz = elem_size(f->type);
      const uint8_t *arr = *(const void *const *)FIELD_CPTR(m, f->offset);
      if (n && !arr)
        return -EINVAL;
      v = json_array();
      if (!v)
        return -ENOMEM;
      for (size_t e = 0; e < n; e++) {
        json_t *ev;
        r = enc_value(f, arr + e * esz, flags, depth, &ev);
        if (r >= 0)
          r = json_array_append_new(v, ev) < 0 ? -ENOMEM : 0;
        if (r < 0) {
          json_decref(v);
          return r;
        }
      }
    } else {
      r = enc_value(f, FIELD_CPTR(m, f->offset), flags, depth, &v);
      if (r < 0)
        return r;
    }
    if (json_object_set_new(obj, f->name, v) < 0)
      return -ENOMEM;
  }
  *ret = TAKE_PTR(obj);
  return 0;
}

int prpc_message_to_json_full(const ProtobufCMessage *m, unsigned flags, json_t **ret) {
  if (!m || !ret)
    return -EINVAL;
  return enc_message(m, flags, 0, ret);
}

int prpc_message_to_json(const ProtobufCMessage *m, json_t **ret) {
  return prpc_message_to_json_full(m, 0, ret);
}

/* ---- message -> JSON text, directly ------------------------------------------------- */

/* Writes n bytes of reserved space. */
static inline void put(struct buf *out, const void *p, size_t n) {
  memcpy(out->data + out->len, p, n);
  out->len += n;
}

static int put_lit(struct buf *out, const char *s, size_t n) {
  return buf_append(out, s, n);
}

static int put_i64(struct buf *out, int64_t v) {
  char tmp[24], *e = tmp + sizeof(tmp), *p = e;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    *--p = '-';
  return buf_append(out, p, (size_t)(e - p));
}

/* A finite real exactly as jansson prints it (its own formatting rules). */
static int put_real(struct buf *out, double x) {
  _cleanup_json_ json_t *j = json_real(x);
  if (!j)
    return -ENOMEM;
  _cleanup_free_ char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!s)
    return -ENOMEM;
  return buf_append_str(out, s);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid: no overlong forms,
 * no surrogates, nothing above U+10FFFF (the rules jansson applies to strings). */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c < 0xc2)
    return 0;
  if (c < 0xe0) {
    len = 2;
    cp = c & 0x1f;
  } else if (c < 0xf0) {
    len = 3;
    cp = c & 0x0f;
  } else if (c < 0xf5) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (len == 3 && cp < 0x800) ||
      (len == 4 && cp < 0x10000))
    return 0;
  return len;
}

/* Bytes a JSON string adds for each input byte beyond the byte itself: 1 for \" \\ \b \f \n
 * \r \t, 5 for the other control characters (\u00XX), 0 otherwise (bytes >= 0x80 included:
 * they are copied as they are, once the UTF-8 they form is checked). */
static const uint8_t json_extra[256] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* A JSON string as jansson's compact dump writes it: '"', '\\' and control characters
 * escaped (\b \f \n \r \t, else \u00XX upper-case), everything else as is. -EBADMSG when s is
 * not UTF-8. The output size is counted first (and any non-ASCII checked as UTF-8), then the
 * bytes go into space reserved once. */
static int put_string(struct buf *out, const char *s, size_t n) {
  static const char hexu[] = "0123456789ABCDEF";
  const unsigned char *p = (const unsigned char *)s;
  size_t extra = 0;
  unsigned high = 0;
  for (size_t i = 0; i < n; i++) {
    extra += json_extra[p[i]];
    high |= p[i];
  }
  if (high & 0x80)
    for (size_t i = 0; i < n;) {
      if (p[i] < 0x80) {
        i++;
        continue;
      }
      size_t k = utf8_seq(p + i, n - i);
      if (!k)
        return -EBADMSG;
      i += k;
    }
  int r = buf_reserve(out, n + extra + 2);
  if (r < 0)
    return r;
  char *o = (char *)out->data + out->len;
  *o++ = '"';
  if (extra == 0) {
    memcpy(o, s, n); /* nothing to escape */
    o += n;
  } else {
    for (size_t i = 0; i < n; i++) {
      unsigned char c = p[i];
      switch (json_extra[c]) {
      case 0:
        *o++ = (char)c;
        break;
      case 1:
        *o++ = '\\';
        *o++ = c == '"' ? '"' : c == '\\' ? '\\' : c == '\b' ? 'b' : c == '\f' ? 'f'
                 : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        break;
      default:
        memcpy(o, "\\u00", 4);
        o[4] = hexu[c >> 4];
        o[5] = hexu[c & 15];
        o += 6;
      }
    }
  }
  *o++ = '"';
  out->len = (size_t)(o - (char *)out->data);
  return 0;
}

/* Lower-case hex of n bytes at o (2n bytes, no NUL), two digits per table entry. */
static void put_hex(char *o, const uint8_t *p, size_t n) {
  static const char pairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
  for (size_t i = 0; i < n; i++)
    memcpy(o + 2 * i, pairs + 2 * p[i], 2);
}

static int text_message(const ProtobufCMessage *m, unsigned flags, unsigned depth,
                        struct buf *out);

static int text_value(const ProtobufCFieldDescriptor *f, const void *src, unsigned flags,
                      unsigned depth, struct buf *out) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_ENUM:
    return put_i64(out, *(const int32_t *)src);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return put_i64(out, *(const uint32_t *)src);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return put_i64(out, *(const int64_t *)src);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: {
    uint64_t u = *(const uint64_t *)src;
    if (u > (uint64_t)INT64_MAX)
      return -ERANGE;
    return put_i64(out, (int64_t)u);
  }
  case PROTOBUF_C_TYPE_FLOAT: {
    float x = *(const float *)src;
    return isfinite(x) ? put_real(out, x) : put_lit(out, "null", 4);
  }
  case PROTOBUF_C_TYPE_DOUBLE: {
    double x = *(const double *)src;
    return isfinite(x) ? put_real(out, x) : put_lit(out, "null", 4);
  }
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)src ? put_lit(out, "true", 4) : put_lit(out, "false", 5);
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)src;
    s = s ? s : "";
    return put_string(out, s, strlen(s));
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *b = src;
    size_t pre = (flags & PRPC_JSON_BYTES_0X) ? 2 : 0, n;
    if (!size_mul(b->len, 2, &n) || !size_add(n, pre + 2, &n))
      return -ENOMEM;
    int r = buf_reserve(out, n);
    if (r < 0)
      return r;
    put(out, "\"0x", pre + 1);
    if (b->len)
      put_hex((char *)out->data + out->len, b->data, b->len);
    out->len += 2 * b->len;
    put(out, "\"", 1);
    return 0;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)src;
    return sub ? text_message(sub, flags, depth + 1, out) : put_lit(out, "null", 4);
  }
  }
  return -EINVAL;
}

static int text_message(const ProtobufCMessage *m, unsigned flags, unsigned depth,
                        struct buf *out) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (depth > PRPC_JSON_MAX_DEPTH)
    return -ENOBUFS;
  if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
    return -EINVAL;
  int r = buf_append(out, "{", 1);
  bool first = true;
  for (unsigned k = 0; r >= 0 && k < d->n_fields; k++) {
    const ProtobufCFieldDescriptor *f = &d->fields[k];
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)FIELD_CPTR(m, f->quantifier_offset) != f->id)
      continue;
    if (!first && (r = buf_append(out, ",", 1)) < 0)
      break;
    first = false;
    if ((r = put_string(out, f->name, strlen(f->name))) < 0 || (r = buf_append(out, ":", 1)) < 0)
      break;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
      r = text_value(f, FIELD_CPTR(m, f->offset), flags, depth, out);
      continue;
    }
    size_t n = *(const size_t *)FIELD_CPTR(m, f->quantifier_offset), esz = elem_size(f->type);
    const uint8_t *arr = *(const void *const *)FIELD_CPTR(m, f->offset);
    if (n && !arr)
      return -EINVAL;
    r = buf_append(out, "[", 1);
    for (size_t e = 0; r >= 0 && e < n; e++) {
      if (e && (r = buf_append(out, ",", 1)) < 0)
        break;
      r = text_value(f, arr + e * esz, flags, depth, out);
    }
    if (r >= 0)
      r = buf_append(out, "]", 1);
  }
  if (r >= 0)
    r = buf_append(out, "}", 1);
  return r;
}

int prpc_message_to_json_text(const ProtobufCMessage *m, unsigned flags, struct buf *out) {
  if (!m || !out)
    return -EINVAL;
  size_t start = out->len;
  int r = text_message(m, flags, 0, out);
  if (r < 0)
    out->len = start;
  return r;
}

int prpc_bytes_set(ProtobufCBinaryData *b, const void *p, size_t n) {
  b->data = NULL;
  b->len = 0;
  if (n == 0)
    return 0;
  b->data = malloc(n);
  if (!b->data)
    return -ENOMEM;
  memcpy(b->data, p, n);
  b->len = n;
  return 0;
}
