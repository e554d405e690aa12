/* ClientHello parser: record layer reassembly first, then the handshake body. */
#include "net/tls_hello.h"

#include <errno.h>
#include <string.h>

#define TLS_RECORD_HANDSHAKE 22
#define TLS_HANDSHAKE_CLIENT_HELLO 1
#define TLS_RECORD_MAX 16384
#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_SUPPORTED_VERSIONS 43

static int need_more(size_t len) {
  return len >= TLS_HELLO_MAX_INPUT ? -ENOBUFS : -EAGAIN;
}

static int rd_u8(struct cursor *c, uint8_t *ret) {
  return cursor_u8(c, ret);
}

static int rd_u16(struct cursor *c, uint16_t *ret) {
  struct slice s;
  int r = cursor_slice(c, 2, &s);
  if (r < 0)
    return r;
  *ret = (uint16_t)((s.ptr[0] << 8) | s.ptr[1]);
  return 0;
}

bool tls_hello_hostname_valid(const char *s, size_t len) {
  if (len < 1 || len > TLS_HELLO_SNI_MAX)
    return false;
  size_t label = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (ch == '.') {
      if (label == 0)
        return false;
      label = 0;
      continue;
    }
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
      return false;
    if (++label > 63)
      return false;
  }
  return label > 0; /* no trailing dot */
}

static int parse_sni(struct slice ext, struct tls_hello *h) {
  struct cursor c;
  uint16_t list_len;
  cursor_init(&c, ext.ptr, ext.len);
  if (rd_u16(&c, &list_len) < 0 || list_len != cursor_left(&c) || list_len == 0)
    return -EBADMSG;
  bool have_host = false;
  while (cursor_left(&c) > 0) {
    uint8_t type;
    uint16_t n;
    struct slice name;
    if (rd_u8(&c, &type) < 0 || rd_u16(&c, &n) < 0 || cursor_slice(&c, n, &name) < 0)
      return -EBADMSG;
    if (type != 0)
      continue;
    if (have_host)
      return -EBADMSG; /* one host_name only (RFC 6066 §3) */
    have_host = true;
    if (n < 1 || n > TLS_HELLO_SNI_MAX)
      return -EBADMSG;
    char tmp[TLS_HELLO_SNI_MAX + 1];
    for (size_t i = 0; i < n; i++) {
      char ch = (char)name.ptr[i];
      tmp[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    tmp[n] = 0;
    if (!tls_hello_hostname_valid(tmp, n))
      return -EBADMSG;
    memcpy(h->sni, tmp, (size_t)n + 1);
  }
  return 0;
}

static int parse_alpn(struct slice ext, struct tls_hello *h) {
  struct cursor c;
  uint16_t list_len;
  cursor_init(&c, ext.ptr, ext.len);
  if (rd_u16(&c, &list_len) < 0 || list_len != cursor_left(&c) || list_len < 2)
    return -EBADMSG;
  if (list_len > TLS_HELLO_ALPN_MAX)
    return -ENOBUFS;
  size_t n = 0;
  while (cursor_left(&c) > 0) {
    uint8_t l;
    if (rd_u8(&c, &l) < 0 || l == 0 || cursor_skip(&c, l) < 0)
      return -EBADMSG;
    n++;
  }
  memcpy(h->alpn, ext.ptr + 2, list_len);
  h->alpn_len = list_len;
  h->n_alpn = n;
  return 0;
}

static int parse_supported_versions(struct slice ext, struct tls_hello *h) {
  if (ext.len < 3 || ext.ptr[0] != ext.len - 1 || (ext.ptr[0] & 1))
    return -EBADMSG;
  h->has_supported_versions = true;
  for (size_t i = 1; i + 1 < ext.len; i += 2)
    if (ext.ptr[i] == 0x03 && ext.ptr[i + 1] == 0x04)
      h->offers_tls13 = true;
  return 0;
}

static int parse_body(const uint8_t *p, size_t len, struct tls_hello *h) {
  struct cursor c;
  uint8_t n8;
  uint16_t n16;
  int r;

  cursor_init(&c, p, len);
  if (rd_u16(&c, &h->legacy_version) < 0 || (h->legacy_version >> 8) != 3 ||
      (h->legacy_version & 0xff) > 3)
    return -EBADMSG;
  if (cursor_skip(&c, 32) < 0)
    return -EBADMSG;
  if (rd_u8(&c, &n8) < 0 || n8 > 32 || cursor_skip(&c, n8) < 0)
    return -EBADMSG;
  if (rd_u16(&c, &n16) < 0 || n16 < 2 || (n16 & 1) || cursor_skip(&c, n16) < 0)
    return -EBADMSG;
  if (rd_u8(&c, &n8) < 0 || n8 < 1 || cursor_skip(&c, n8) < 0)
    return -EBADMSG;
  if (cursor_left(&c) == 0)
    return 0; /* no extensions at all */
  if (rd_u16(&c, &n16) < 0 || n16 != cursor_left(&c))
    return -EBADMSG;

  uint8_t seen[65536 / 8];
  memset(seen, 0, sizeof(seen));
  while (cursor_left(&c) > 0) {
    uint16_t type;
    struct slice ext;
    if (rd_u16(&c, &type) < 0 || rd_u16(&c, &n16) < 0 || cursor_slice(&c, n16, &ext) < 0)
      return -EBADMSG;
    if (seen[type >> 3] & (1u << (type & 7)))
      return -EBADMSG;
    seen[type >> 3] |= (uint8_t)(1u << (type & 7));
    h->n_extensions++;
    switch (type) {
    case EXT_SERVER_NAME:
      r = parse_sni(ext, h);
      break;
    case EXT_ALPN:
      r = parse_alpn(ext, h);
      break;
    case EXT_SUPPORTED_VERSIONS:
      r = parse_supported_versions(ext, h);
      break;
    default:
      r = 0;
    }
    if (r < 0)
      return r;
  }
  return 0;
}

int tls_hello_parse(const uint8_t *data, size_t len, struct tls_hello *ret) {
  /* Handshake message (4-byte header + body) reassembled from the record fragments. */
  uint8_t msg[4 + TLS_HELLO_MAX_MSG];
  size_t have = 0, need = 4; /* need grows to 4 + body length once the header is known */
  size_t off = 0;

  if (!ret || (!data && len > 0))
    return -EINVAL;
  memset(ret, 0, sizeof(*ret));

  for (;;) {
    size_t avail = len - off;
    if (avail == 0)
      return need_more(len);
    if (data[off] != TLS_RECORD_HANDSHAKE) /* also rejects SSLv2-style (high bit) hellos */
      return -EBADMSG;
    if (avail >= 2 && data[off + 1] != 3)
      return -EBADMSG;
    if (avail >= 3 && data[off + 2] > 4)
      return -EBADMSG;
    if (avail < 5)
      return need_more(len);
    size_t rlen = ((size_t)data[off + 3] << 8) | data[off + 4];
    if (rlen == 0 || rlen > TLS_RECORD_MAX)
      return -EBADMSG;
    off += 5;
    size_t take = MIN(rlen, len - off);
    for (size_t i = 0; i < take; i++) {
      if (have == need) /* hello complete, yet the record carries more bytes */
        return -EBADMSG;
      msg[have++] = data[off + i];
      if (have == 1 && msg[0] != TLS_HANDSHAKE_CLIENT_HELLO)
        return -EBADMSG;
      if (have == 4) {
        size_t body = ((size_t)msg[1] << 16) | ((size_t)msg[2] << 8) | msg[3];
        if (body > TLS_HELLO_MAX_MSG)
          return -ENOBUFS;
        if (body < 2 + 32 + 1 + 2 + 1) /* version, random, three length prefixes */
          return -EBADMSG;
        need = 4 + body;
      }
    }
    if (take < rlen)
      return have == need ? -EBADMSG : need_more(len);
    off += rlen;
    if (have == need) {
      int r = parse_body(msg + 4, need - 4, ret);
      if (r < 0) {
        memset(ret, 0, sizeof(*ret));
        return r;
      }
      ret->hello_len = off;
      return 0;
    }
  }
}

int tls_hello_alpn_get(const struct tls_hello *h, size_t idx, struct slice *ret) {
  size_t off = 0;
  for (size_t i = 0; off < h->alpn_len; i++) {
    size_t l = h->alpn[off];
    if (off + 1 + l > h->alpn_len)
      return -EBADMSG;
    if (i == idx) {
      *ret = SLICE(h->alpn + off + 1, l);
      return 0;
    }
    off += 1 + l;
  }
  return -ENOENT;
}

bool tls_hello_alpn_offers(const struct tls_hello *h, const char *proto) {
  struct slice s;
  for (size_t i = 0; tls_hello_alpn_get(h, i, &s) == 0; i++)
    if (slice_eq_str(s, proto))
      return true;
  return false;
}
