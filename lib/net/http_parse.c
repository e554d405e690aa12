/* HTTP/1.1 request-head parser. */
#include "net/http_parse.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "base/hex.h"

/* RFC 9110 tchar as a bitmap: DIGIT, ALPHA and !#$%&'*+-.^_`|~ */
static const uint8_t tchar_bits[32] = {
    0x00, 0x00, 0x00, 0x00, 0xfa, 0x6c, 0xff, 0x03,
    0xfe, 0xff, 0xff, 0xc7, 0xff, 0xff, 0xff, 0x57,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

bool http_is_tchar(unsigned char c) {
  return (tchar_bits[c >> 3] >> (c & 7)) & 1;
}

static bool is_vchar_or_obs(unsigned char c) {
  return (c >= 0x21 && c <= 0x7e) || c >= 0x80;
}

size_t http_head_find_end(const char *p, size_t len, size_t from) {
  /* Look for "\n\n" or "\n\r\n"; back up so a marker split across calls is found. */
  size_t i = from > 2 ? from - 2 : 0;
  for (; i < len; i++) {
    if (p[i] != '\n')
      continue;
    if (i + 1 < len && p[i + 1] == '\n')
      return i + 2;
    if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

/* Next line in p[*off..len): sets *ret_line and *ret_len (without the line end) and advances *off.
 * A CR is only allowed right before the LF. */
static int next_line(char *p, size_t len, size_t *off, char **ret_line, size_t *ret_len) {
  size_t start = *off;
  char *lf = memchr(p + start, '\n', len - start);
  if (!lf)
    return -EAGAIN;
  size_t end = (size_t)(lf - p);
  size_t l = end - start;
  if (l > 0 && p[end - 1] == '\r')
    l--;
  if (memchr(p + start, '\r', l) || memchr(p + start, '\0', l))
    return -EBADMSG;
  p[start + l] = '\0';
  *ret_line = p + start;
  *ret_len = l;
  *off = end + 1;
  return 0;
}

static int parse_request_line(char *line, size_t len, struct http_head *h) {
  char *sp1 = memchr(line, ' ', len);
  if (!sp1 || sp1 == line || (size_t)(sp1 - line) > HTTP_METHOD_MAX)
    return -EBADMSG;
  for (char *c = line; c < sp1; c++)
    if (!http_is_tchar((unsigned char)*c))
      return -EBADMSG;
  char *target = sp1 + 1;
  char *sp2 = memchr(target, ' ', len - (size_t)(target - line));
  if (!sp2 || sp2 == target)
    return -EBADMSG;
  for (char *c = target; c < sp2; c++)
    if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
      return -EBADMSG;
  char *ver = sp2 + 1;
  size_t vlen = len - (size_t)(ver - line);
  if (vlen != 8 || memcmp(ver, "HTTP/", 5) != 0 || ver[6] != '.' || ver[5] < '0' || ver[5] > '9' ||
      ver[7] < '0' || ver[7] > '9')
    return -EBADMSG;
  if (ver[5] != '1' || (ver[7] != '0' && ver[7] != '1'))
    return -EPROTONOSUPPORT;
  *sp1 = '\0';
  *sp2 = '\0';
  h->method = line;
  h->target = target;
  h->minor = ver[7] - '0';
  return 0;
}

static int parse_field(char *line, size_t len, struct http_head *h) {
  if (line[0] == ' ' || line[0] == '\t')
    return -EBADMSG; /* obs-fold */
  char *colon = memchr(line, ':', len);
  if (!colon || colon == line)
    return -EBADMSG;
  for (char *c = line; c < colon; c++)
    if (!http_is_tchar((unsigned char)*c))
      return -EBADMSG;
  char *v = colon + 1;
  char *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  for (char *c = v; c < end; c++)
    if (*c != ' ' && *c != '\t' && !is_vchar_or_obs((unsigned char)*c))
      return -EBADMSG;
  if (h->n_fields >= HTTP_HEAD_MAX_FIELDS)
    return -E2BIG;
  *colon = '\0';
  *end = '\0';
  h->fields[h->n_fields].name = line;
  h->fields[h->n_fields].value = v;
  h->n_fields++;
  return 0;
}

int http_head_parse(char *p, size_t len, struct http_head *ret) {
  if (!p || !ret)
    return -EINVAL;
  ret->n_fields = 0;
  ret->method = ret->target = NULL;
  size_t off = 0;
  char *line;
  size_t l;
  int r = next_line(p, len, &off, &line, &l);
  if (r < 0)
    return r;
  r = parse_request_line(line, l, ret);
  if (r < 0)
    return r;
  for (;;) {
    r = next_line(p, len, &off, &line, &l);
    if (r < 0)
      return r;
    if (l == 0)
      return 0;
    r = parse_field(line, l, ret);
    if (r < 0)
      return r;
  }
}

const char *http_head_get(const struct http_head *h, const char *name) {
  for (size_t i = 0; i < h->n_fields; i++)
    if (strcasecmp(h->fields[i].name, name) == 0)
      return h->fields[i].value;
  return NULL;
}

size_t http_head_count(const struct http_head *h, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < h->n_fields; i++)
    if (strcasecmp(h->fields[i].name, name) == 0)
      n++;
  return n;
}

int http_content_length_parse(const char *v, uint64_t *ret) {
  bool have = false;
  uint64_t first = 0;
  const char *p = v;
  for (;;) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p < '0' || *p > '9')
      return -EBADMSG;
    uint64_t n = 0;
    while (*p >= '0' && *p <= '9') {
      if (n > (UINT64_MAX - 9) / 10)
        return -EBADMSG;
      n = n * 10 + (uint64_t)(*p - '0');
      p++;
    }
    if (have && n != first)
      return -EBADMSG;
    first = n;
    have = true;
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p == '\0')
      break;
    if (*p != ',')
      return -EBADMSG;
    p++;
  }
  *ret = first;
  return 0;
}

bool http_list_has_token(const char *v, const char *token) {
  size_t tl = strlen(token);
  const char *p = v;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *s = p;
    while (*p && *p != ',')
      p++;
    const char *e = p;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
      return true;
  }
  return false;
}

int http_chunk_size_parse(const char *line, size_t len, uint64_t *ret) {
  size_t i = 0;
  uint64_t n = 0;
  for (; i < len; i++) {
    int d = hex_digit_value(line[i]);
    if (d < 0)
      break;
    if (n >> 56)
      return -EBADMSG;
    n = (n << 4) | (uint64_t)d;
  }
  if (i == 0)
    return -EBADMSG;
  /* Optional BWS and extensions; refuse control bytes. */
  size_t j = i;
  while (j < len && (line[j] == ' ' || line[j] == '\t'))
    j++;
  if (j < len && line[j] != ';')
    return -EBADMSG;
  for (; j < len; j++)
    if (line[j] != '\t' && !(line[j] >= 0x20 && line[j] != 0x7f))
      return -EBADMSG;
  *ret = n;
  return 0;
}
