/* DNS wire messages: builders, TSIG, the response parser and a TCP exchange. */
#include "certbot_dnsmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"

#define TSIG_ALG "hmac-sha256"
#define TSIG_FUDGE 300
#define NAME_MAX_JUMPS 32

static int put16(struct buf *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  return buf_append(b, x, 2);
}

static int put32(struct buf *b, uint32_t v) { return buf_append_u32be(b, v); }

static void set16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

int certbot_dns_name_encode(const char *name, struct buf *out) {
  if (!name)
    return -EINVAL;
  size_t start = out->len, n = strlen(name);
  if (n > 0 && name[n - 1] == '.')
    n--;
  const char *p = name, *end = name + n;
  int r;
  while (p < end) {
    const char *dot = memchr(p, '.', (size_t)(end - p));
    size_t l = dot ? (size_t)(dot - p) : (size_t)(end - p);
    if (l == 0 || l > 63)
      return -EINVAL;
    if ((r = buf_append_u8(out, (uint8_t)l)) < 0)
      return r;
    for (size_t i = 0; i < l; i++) {
      char c = p[i];
      if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
      if ((r = buf_append_u8(out, (uint8_t)c)) < 0)
        return r;
    }
    p += l + (dot ? 1 : 0);
  }
  if ((r = buf_append_u8(out, 0)) < 0)
    return r;
  return out->len - start > CERTBOT_DNS_NAME_MAX ? -EINVAL : 0;
}

static int header(struct buf *out, uint16_t id, uint16_t flags, uint16_t qd) {
  int r;
  if ((r = put16(out, id)) < 0 || (r = put16(out, flags)) < 0 || (r = put16(out, qd)) < 0 ||
      (r = put16(out, 0)) < 0 || (r = put16(out, 0)) < 0 || (r = put16(out, 0)) < 0)
    return r;
  return 0;
}

int certbot_dnsmsg_query(uint16_t id, const char *name, uint16_t type, struct buf *out) {
  int r;
  if ((r = header(out, id, 0, 1)) < 0 || (r = certbot_dns_name_encode(name, out)) < 0 ||
      (r = put16(out, type)) < 0 || (r = put16(out, DNS_CLASS_IN)) < 0)
    return r;
  return 0;
}

int certbot_dnsmsg_update_begin(uint16_t id, const char *zone, struct buf *out) {
  int r;
  if ((r = header(out, id, 5 << 11, 1)) < 0 || (r = certbot_dns_name_encode(zone, out)) < 0 ||
      (r = put16(out, DNS_TYPE_SOA)) < 0 || (r = put16(out, DNS_CLASS_IN)) < 0)
    return r;
  return 0;
}

int certbot_dnsmsg_update_rr(struct buf *msg, const char *name, uint16_t type, uint16_t class,
                             uint32_t ttl, const void *rdata, size_t rdlen) {
  if (msg->len < 12 || rdlen > UINT16_MAX)
    return -EINVAL;
  uint16_t up = get16(msg->data + 8);
  if (up == UINT16_MAX)
    return -ENOBUFS;
  int r;
  if ((r = certbot_dns_name_encode(name, msg)) < 0 || (r = put16(msg, type)) < 0 ||
      (r = put16(msg, class)) < 0 || (r = put32(msg, ttl)) < 0 ||
      (r = put16(msg, (uint16_t)rdlen)) < 0 || (r = buf_append(msg, rdata, rdlen)) < 0)
    return r;
  set16(msg->data + 8, (uint16_t)(up + 1));
  return 0;
}

int certbot_dns_txt_rdata(const char *value, struct buf *out) {
  size_t n = strlen(value), off = 0;
  int r;
  do {
    size_t l = MIN(n - off, (size_t)255);
    if ((r = buf_append_u8(out, (uint8_t)l)) < 0 || (r = buf_append(out, value + off, l)) < 0)
      return r;
    off += l;
  } while (off < n);
  return 0;
}

int certbot_dns_caa_rdata(unsigned flags, const char *tag, const char *value, struct buf *out) {
  size_t tl = strlen(tag);
  if (flags > 255 || tl == 0 || tl > 15)
    return -EINVAL;
  for (size_t i = 0; i < tl; i++)
    if (!((tag[i] >= 'a' && tag[i] <= 'z') || (tag[i] >= 'A' && tag[i] <= 'Z') ||
          (tag[i] >= '0' && tag[i] <= '9')))
      return -EINVAL;
  int r;
  if ((r = buf_append_u8(out, (uint8_t)flags)) < 0 || (r = buf_append_u8(out, (uint8_t)tl)) < 0 ||
      (r = buf_append(out, tag, tl)) < 0 || (r = buf_append_str(out, value)) < 0)
    return r;
  return 0;
}

int certbot_dns_txt_rdata_decode(struct slice rd, char **ret) {
  struct buf b = BUF_INIT(CERTBOT_DNSMSG_MAX);
  size_t off = 0;
  int r = 0;
  while (off < rd.len) {
    size_t l = rd.ptr[off++];
    if (l > rd.len - off) {
      r = -EBADMSG;
      goto out;
    }
    if (memchr(rd.ptr + off, 0, l)) {
      r = -EBADMSG;
      goto out;
    }
    if ((r = buf_append(&b, rd.ptr + off, l)) < 0)
      goto out;
    off += l;
  }
  if ((r = buf_terminate(&b)) < 0)
    goto out;
  *ret = (char *)buf_steal(&b, NULL);
  if (!*ret)
    *ret = strdup("");
  r = *ret ? 0 : -ENOMEM;
out:
  buf_free(&b);
  return r;
}

int certbot_dns_caa_rdata_decode(struct slice rd, char **ret) {
  if (rd.len < 2)
    return -EBADMSG;
  unsigned flags = rd.ptr[0];
  size_t tl = rd.ptr[1];
  if (tl == 0 || tl > rd.len - 2)
    return -EBADMSG;
  const uint8_t *tag = rd.ptr + 2, *val = rd.ptr + 2 + tl;
  size_t vl = rd.len - 2 - tl;
  if (memchr(tag, 0, tl) || memchr(val, 0, vl))
    return -EBADMSG;
  int n = asprintf(ret, "%u %.*s \"%.*s\"", flags, (int)tl, (const char *)tag, (int)vl,
                   (const char *)val);
  return n < 0 ? -ENOMEM : 0;
}

/* Reads a possibly compressed name at *off; writes the dotted lowercase form into out (256
 * bytes) and advances *off past the name as it appears at that place. */
static int name_read(const uint8_t *p, size_t len, size_t *off, char out[256]) {
  size_t pos = *off, o = 0, wire = 0;
  bool jumped = false;
  unsigned jumps = 0;
  for (;;) {
    if (pos >= len)
      return -EBADMSG;
    uint8_t l = p[pos];
    if ((l & 0xc0) == 0xc0) {
      if (pos + 1 >= len)
        return -EBADMSG;
      size_t target = ((size_t)(l & 0x3f) << 8) | p[pos + 1];
      if (target >= pos || ++jumps > NAME_MAX_JUMPS)
        return -EBADMSG;
      if (!jumped)
        *off = pos + 2;
      jumped = true;
      pos = target;
      continue;
    }
    if (l & 0xc0)
      return -EBADMSG;
    if (l == 0) {
      if (!jumped)
        *off = pos + 1;
      out[o] = 0;
      return 0;
    }
    if ((size_t)l > len - pos - 1)
      return -EBADMSG;
    wire += (size_t)l + 1;
    if (wire + 1 > CERTBOT_DNS_NAME_MAX || o + l + 2 > 256)
      return -EBADMSG;
    if (o > 0)
      out[o++] = '.';
    for (size_t i = 0; i < l; i++) {
      char c = (char)p[pos + 1 + i];
      if (c == 0 || c == '.')
        return -EBADMSG;
      if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
      out[o++] = c;
    }
    pos += (size_t)l + 1;
  }
}

int certbot_dnsmsg_parse(const uint8_t *p, size_t len, struct certbot_dns_msg *ret) {
  struct certbot_dns_msg m = {0};
  char name[256];
  int r;
  if (!p || len < 12 || len > CERTBOT_DNSMSG_MAX)
    return -EBADMSG;
  m.id = get16(p);
  m.flags = get16(p + 2);
  m.rcode = m.flags & 0xf;
  for (int i = 0; i < 4; i++)
    m.counts[i] = get16(p + 4 + 2 * i);
  size_t total = (size_t)m.counts[1] + m.counts[2] + m.counts[3];
  if (total > CERTBOT_DNSMSG_MAX_RRS || m.counts[0] > 16)
    return -ENOBUFS;
  size_t off = 12;
  for (unsigned i = 0; i < m.counts[0]; i++) {
    if ((r = name_read(p, len, &off, name)) < 0)
      return r;
    if (len - off < 4)
      return -EBADMSG;
    off += 4;
  }
  if (total > 0) {
    m.rrs = calloc(total, sizeof(*m.rrs));
    if (!m.rrs)
      return -ENOMEM;
  }
  for (size_t i = 0; i < total; i++) {
    struct certbot_dns_rr *rr = &m.rrs[i];
    rr->offset = off;
    if ((r = name_read(p, len, &off, rr->name)) < 0)
      goto fail;
    if (len - off < 10) {
      r = -EBADMSG;
      goto fail;
    }
    rr->type = get16(p + off);
    rr->class = get16(p + off + 2);
    rr->ttl = ((uint32_t)get16(p + off + 4) << 16) | get16(p + off + 6);
    size_t rdl = get16(p + off + 8);
    off += 10;
    if (rdl > len - off) {
      r = -EBADMSG;
      goto fail;
    }
    rr->rdata = SLICE(p + off, rdl);
    off += rdl;
    /* A TSIG may only be the very last record. */
    if (rr->type == DNS_TYPE_TSIG && i != total - 1) {
      r = -EBADMSG;
      goto fail;
    }
  }
  if (off != len) {
    r = -EBADMSG;
    goto fail;
  }
  m.n_rrs = total;
  m.n_answer = m.counts[1];
  if (total > 0 && m.counts[3] > 0 && m.rrs[total - 1].type == DNS_TYPE_TSIG) {
    m.has_tsig = true;
    m.tsig_offset = m.rrs[total - 1].offset;
  }
  *ret = m;
  return 0;
fail:
  free(m.rrs);
  return r;
}

void certbot_dnsmsg_free(struct certbot_dns_msg *m) {
  if (!m)
    return;
  free(m->rrs);
  m->rrs = NULL;
  m->n_rrs = 0;
}

/* The TSIG variables after the message (RFC 8945 4.3.3): key name, class ANY, TTL 0,
 * algorithm name, time signed (48 bit), fudge, error, other len, other data (none). */
static int tsig_vars(struct buf *b, const char *key, uint64_t t, uint16_t fudge, uint16_t error,
                     bool with_names) {
  int r;
  if (with_names) {
    if ((r = certbot_dns_name_encode(key, b)) < 0 || (r = put16(b, DNS_CLASS_ANY)) < 0 ||
        (r = put32(b, 0)) < 0 || (r = certbot_dns_name_encode(TSIG_ALG, b)) < 0)
      return r;
  }
  if ((r = put16(b, (uint16_t)(t >> 32))) < 0 || (r = put32(b, (uint32_t)t)) < 0 ||
      (r = put16(b, fudge)) < 0)
    return r;
  if (with_names && ((r = put16(b, error)) < 0 || (r = put16(b, 0)) < 0))
    return r;
  return 0;
}

static int hmac256(const struct certbot_tsig_key *k, struct slice a, struct slice b,
                   uint8_t out[32]) {
  unsigned int n = 32;
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                         OSSL_PARAM_construct_end()};
  size_t outl = 0;
  int r = -EIO;
  if (!ctx || !EVP_MAC_init(ctx, k->secret, k->secret_len, params) ||
      !EVP_MAC_update(ctx, a.ptr, a.len) || !EVP_MAC_update(ctx, b.ptr, b.len) ||
      !EVP_MAC_final(ctx, out, &outl, n) || outl != 32)
    goto out;
  r = 0;
out:
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return r;
}

int certbot_tsig_sign(struct buf *msg, const struct certbot_tsig_key *k, uint64_t now,
                      uint8_t ret_mac[32]) {
  if (!k || !k->name || !k->secret || msg->len < 12)
    return -EINVAL;
  struct buf vars = BUF_INIT(1024);
  uint8_t mac[32];
  int r;
  uint16_t id = get16(msg->data), ar = get16(msg->data + 10);
  if (ar == UINT16_MAX)
    return -ENOBUFS;
  if ((r = tsig_vars(&vars, k->name, now, TSIG_FUDGE, 0, true)) < 0 ||
      (r = hmac256(k, buf_slice(msg), buf_slice(&vars), mac)) < 0)
    goto out;
  /* The record: owner = key name, TSIG, ANY, TTL 0, rdata. */
  size_t rdstart;
  if ((r = certbot_dns_name_encode(k->name, msg)) < 0 || (r = put16(msg, DNS_TYPE_TSIG)) < 0 ||
      (r = put16(msg, DNS_CLASS_ANY)) < 0 || (r = put32(msg, 0)) < 0 || (r = put16(msg, 0)) < 0)
    goto out;
  rdstart = msg->len;
  if ((r = certbot_dns_name_encode(TSIG_ALG, msg)) < 0 ||
      (r = tsig_vars(msg, k->name, now, TSIG_FUDGE, 0, false)) < 0 || (r = put16(msg, 32)) < 0 ||
      (r = buf_append(msg, mac, 32)) < 0 || (r = put16(msg, id)) < 0 || (r = put16(msg, 0)) < 0 ||
      (r = put16(msg, 0)) < 0)
    goto out;
  set16(msg->data + rdstart - 2, (uint16_t)(msg->len - rdstart));
  set16(msg->data + 10, (uint16_t)(ar + 1));
  memcpy(ret_mac, mac, 32);
out:
  buf_free(&vars);
  return r;
}

int certbot_tsig_verify(const uint8_t *resp, size_t len, const struct certbot_dns_msg *m,
                        const struct certbot_tsig_key *k, const uint8_t req_mac[32], uint64_t now) {
  if (!m->has_tsig || m->tsig_offset > len || m->tsig_offset < 12)
    return -EPERM;
  const struct certbot_dns_rr *t = &m->rrs[m->n_rrs - 1];
  struct buf a = BUF_INIT(CERTBOT_DNSMSG_MAX + 64), vars = BUF_INIT(1024);
  char algname[256];
  uint8_t mac[32];
  int r = -EPERM;
  /* The key name must be ours (compared in canonical form: lowercase, no final dot). */
  {
    char ours[256];
    size_t o = 0;
    const char *kn = k->name;
    for (; *kn && o < 255; kn++)
      ours[o++] = (char)((*kn >= 'A' && *kn <= 'Z') ? *kn - 'A' + 'a' : *kn);
    if (o > 0 && ours[o - 1] == '.')
      o--;
    ours[o] = 0;
    if (strcmp(ours, t->name) != 0 || t->class != DNS_CLASS_ANY)
      goto out;
  }
  /* rdata: alg name (uncompressed), time(6), fudge(2), mac size(2), mac, orig id(2), error(2),
   * other len(2), other. */
  size_t off = 0;
  const uint8_t *rd = t->rdata.ptr;
  size_t rl = t->rdata.len;
  if (name_read(rd, rl, &off, algname) < 0 || strcmp(algname, TSIG_ALG) != 0)
    goto out;
  if (rl - off < 10)
    goto out;
  uint64_t ts = ((uint64_t)get16(rd + off) << 32) | ((uint64_t)get16(rd + off + 2) << 16) |
                get16(rd + off + 4);
  uint16_t fudge = get16(rd + off + 6);
  size_t macl = get16(rd + off + 8);
  off += 10;
  if (macl != 32 || rl - off < 32 + 6)
    goto out;
  const uint8_t *rmac = rd + off;
  off += 32;
  uint16_t orig_id = get16(rd + off), error = get16(rd + off + 2);
  size_t otherl = get16(rd + off + 4);
  off += 6;
  if (otherl != rl - off || error != 0)
    goto out;
  /* Digest: request MAC (with its size), the response without the TSIG (ARCOUNT - 1, original
   * id), then the variables. */
  if (put16(&a, 32) < 0 || buf_append(&a, req_mac, 32) < 0 ||
      buf_append(&a, resp, m->tsig_offset) < 0)
    goto out;
  uint8_t *h = a.data + 34;
  set16(h, orig_id);
  set16(h + 10, (uint16_t)(get16(h + 10) - 1));
  if (tsig_vars(&vars, k->name, ts, fudge, error, true) < 0)
    goto out;
  /* Other data (none expected on success) is part of the variables. */
  vars.len -= 2;
  if (put16(&vars, (uint16_t)otherl) < 0 || buf_append(&vars, rd + off, otherl) < 0)
    goto out;
  if (hmac256(k, buf_slice(&a), buf_slice(&vars), mac) < 0)
    goto out;
  if (CRYPTO_memcmp(mac, rmac, 32) != 0)
    goto out;
  if ((ts > now ? ts - now : now - ts) > fudge)
    goto out;
  r = 0;
out:
  secure_wipe(mac, sizeof(mac));
  buf_free(&a);
  buf_free(&vars);
  return r;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - mono_ms();
    if (left <= 0)
      return -ETIMEDOUT;
    struct pollfd pfd = {.fd = fd, .events = ev};
    int n = poll(&pfd, 1, (int)MIN(left, (int64_t)INT32_MAX));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n > 0)
      return 0;
  }
}

static int split_hostport(const char *server, char *host, size_t hostlen, char *port,
                          size_t portlen) {
  const char *colon;
  const char *h = server;
  size_t hl;
  if (server[0] == '[') {
    const char *rb = strchr(server, ']');
    if (!rb || rb[1] != ':')
      return -EINVAL;
    h = server + 1;
    hl = (size_t)(rb - h);
    colon = rb + 1;
  } else {
    colon = strrchr(server, ':');
    if (!colon)
      return -EINVAL;
    hl = (size_t)(colon - server);
  }
  if (hl == 0 || hl >= hostlen || strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen)
    return -EINVAL;
  memcpy(host, h, hl);
  host[hl] = 0;
  strcpy(port, colon + 1);
  return 0;
}

static int io_all(int fd, bool rd, uint8_t *p, size_t n, int64_t deadline) {
  size_t done = 0;
  while (done < n) {
    int r = wait_fd(fd, rd ? POLLIN : POLLOUT, deadline);
    if (r < 0)
      return r;
    ssize_t k = rd ? read(fd, p + done, n - done) : send(fd, p + done, n - done, MSG_NOSIGNAL);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (k < 0)
      return -errno;
    if (k == 0)
      return -ECONNRESET;
    done += (size_t)k;
  }
  return 0;
}

int certbot_dns_tcp_exchange(const char *server, const struct slice req, unsigned timeout_ms,
                             struct buf *resp) {
  char host[256], port[16];
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  int fd = -1, r;
  int64_t deadline = mono_ms() + timeout_ms;
  if (req.len > UINT16_MAX ||
      (r = split_hostport(server, host, sizeof(host), port, sizeof(port))) < 0)
    return -EINVAL;
  if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
    return -EHOSTUNREACH;
  fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    r = -errno;
    goto out;
  }
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
    r = -errno;
    goto out;
  }
  if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
    goto out;
  int soerr = 0;
  socklen_t sl = sizeof(soerr);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
    r = soerr ? -soerr : -errno;
    goto out;
  }
  uint8_t lp[2] = {(uint8_t)(req.len >> 8), (uint8_t)req.len};
  if ((r = io_all(fd, false, lp, 2, deadline)) < 0 ||
      (r = io_all(fd, false, (uint8_t *)req.ptr, req.len, deadline)) < 0 ||
      (r = io_all(fd, true, lp, 2, deadline)) < 0)
    goto out;
  size_t n = get16(lp);
  buf_reset(resp);
  if ((r = buf_reserve(resp, n)) < 0)
    goto out;
  if ((r = io_all(fd, true, resp->data, n, deadline)) < 0)
    goto out;
  resp->len = n;
out:
  if (fd >= 0)
    close(fd);
  freeaddrinfo(ai);
  return r;
}
