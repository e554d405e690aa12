/* WireGuard keys, config rendering, change-only apply (wg syncconf or UAPI) and get=1 parsing. */
#include "tproxy_wg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"

extern char **environ;

/* ---------------------------------------------------------------- keys */

int wg_key_decode(const char *s, uint8_t ret[WG_KEY_LEN]) {
  if (!s || strlen(s) != WG_KEY_B64_LEN)
    return -EINVAL;
  struct buf b;
  buf_init_secret(&b, 64);
  int r = base64_decode_buf(s, WG_KEY_B64_LEN, &b);
  if (r == 0 && b.len != WG_KEY_LEN)
    r = -EINVAL;
  if (r == 0)
    memcpy(ret, b.data, WG_KEY_LEN);
  buf_free(&b);
  return r < 0 ? -EINVAL : 0;
}

void wg_key_encode(const uint8_t key[WG_KEY_LEN], char ret[WG_KEY_B64_LEN + 1]) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < WG_KEY_LEN; i += 3) {
    uint32_t v = (uint32_t)key[i] << 16;
    size_t n = WG_KEY_LEN - i;
    if (n > 1)
      v |= (uint32_t)key[i + 1] << 8;
    if (n > 2)
      v |= key[i + 2];
    ret[o++] = tbl[(v >> 18) & 63];
    ret[o++] = tbl[(v >> 12) & 63];
    ret[o++] = n > 1 ? tbl[(v >> 6) & 63] : '=';
    ret[o++] = n > 2 ? tbl[v & 63] : '=';
  }
  ret[o] = '\0';
}

int wg_key_public_from_private(const uint8_t priv[WG_KEY_LEN], char ret_b64[WG_KEY_B64_LEN + 1]) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
  uint8_t pub[WG_KEY_LEN];
  int r = key_x25519_from_secret(priv, &k);
  if (r < 0)
    return r;
  r = key_raw_public(k, pub);
  if (r < 0)
    return r;
  wg_key_encode(pub, ret_b64);
  return 0;
}

int wg_key_public_from_private_b64(const char *priv_b64, char ret_b64[WG_KEY_B64_LEN + 1]) {
  uint8_t priv[WG_KEY_LEN];
  int r = wg_key_decode(priv_b64, priv);
  if (r == 0)
    r = wg_key_public_from_private(priv, ret_b64);
  secure_wipe(priv, sizeof(priv));
  return r;
}

int wg_key_load_or_generate(const char *path, uint8_t ret_priv[WG_KEY_LEN],
                            char ret_b64[WG_KEY_B64_LEN + 1]) {
  char b64[WG_KEY_B64_LEN + 2];
  struct buf b;
  int r;

  if (!path || !ret_priv)
    return -EINVAL;
  buf_init_secret(&b, 256);
  r = file_read_all(path, 256, &b);
  if (r == 0) {
    while (b.len > 0 && char_is_space((char)b.data[b.len - 1]))
      b.len--;
    if (b.len != WG_KEY_B64_LEN || memchr(b.data, '\0', b.len)) {
      r = -EBADMSG;
      goto out;
    }
    memcpy(b64, b.data, WG_KEY_B64_LEN);
    b64[WG_KEY_B64_LEN] = '\0';
    r = wg_key_decode(b64, ret_priv) < 0 ? -EBADMSG : 0;
  } else if (r == -ENOENT) {
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
    r = key_x25519_generate(&k);
    if (r < 0)
      goto out;
    r = key_raw_private(k, ret_priv);
    if (r < 0)
      goto out;
    /* Clamped like `wg genkey`; X25519 clamps anyway, so the public key is unaffected. */
    ret_priv[0] &= 248;
    ret_priv[31] = (uint8_t)((ret_priv[31] & 127) | 64);
    wg_key_encode(ret_priv, b64);
    b64[WG_KEY_B64_LEN] = '\n';
    r = mkdir_parents(path, 0700);
    if (r == 0)
      r = file_write_atomic(path, b64, WG_KEY_B64_LEN + 1, 0600);
  }
out:
  if (r == 0 && ret_b64)
    wg_key_encode(ret_priv, ret_b64);
  if (r < 0)
    secure_wipe(ret_priv, WG_KEY_LEN);
  secure_wipe(b64, sizeof(b64));
  buf_free(&b);
  return r;
}

/* ---------------------------------------------------------------- rendering */

struct rpeer {
  uint32_t ip; /* host order */
  uint8_t key[WG_KEY_LEN];
  char key_b64[WG_KEY_B64_LEN + 1];
  char ip_str[INET_ADDRSTRLEN];
  char endpoint[64]; /* canonical, "" = none */
};

static int parse_allowed_ip(const char *s, struct rpeer *p) {
  char tmp[INET_ADDRSTRLEN + 4];
  struct in_addr a;
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n >= sizeof(tmp))
    return -EINVAL;
  memcpy(tmp, s, n + 1);
  char *slash = strchr(tmp, '/');
  if (slash) {
    if (!str_eq(slash, "/32"))
      return -EINVAL;
    *slash = '\0';
  }
  if (inet_pton(AF_INET, tmp, &a) != 1)
    return -EINVAL;
  p->ip = ntohl(a.s_addr);
  if (!inet_ntop(AF_INET, &a, p->ip_str, sizeof(p->ip_str)))
    return -EINVAL;
  return 0;
}

static int parse_endpoint(const char *s, char ret[64]) {
  char host[INET6_ADDRSTRLEN + 2], canon[INET6_ADDRSTRLEN];
  uint16_t port;
  size_t n = strlen(s);
  const char *colon = strrchr(s, ':');
  if (n == 0 || n >= 64 || !colon)
    return -EINVAL;
  if (str_to_u16(colon + 1, &port) < 0 || port == 0 || colon[1] == '+' || colon[1] == '-')
    return -EINVAL;
  size_t hl = (size_t)(colon - s);
  if (hl == 0 || hl >= sizeof(host))
    return -EINVAL;
  memcpy(host, s, hl);
  host[hl] = '\0';
  if (host[0] == '[') {
    struct in6_addr a6;
    if (hl < 3 || host[hl - 1] != ']')
      return -EINVAL;
    host[hl - 1] = '\0';
    if (inet_pton(AF_INET6, host + 1, &a6) != 1 || !inet_ntop(AF_INET6, &a6, canon, sizeof(canon)))
      return -EINVAL;
    snprintf(ret, 64, "[%s]:%u", canon, (unsigned)port);
  } else {
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1 || !inet_ntop(AF_INET, &a, canon, sizeof(canon)))
      return -EINVAL;
    snprintf(ret, 64, "%s:%u", canon, (unsigned)port);
  }
  return 0;
}

static int rpeer_cmp(const void *a, const void *b) {
  const struct rpeer *x = a, *y = b;
  if (x->ip != y->ip)
    return x->ip < y->ip ? -1 : 1;
  return memcmp(x->key, y->key, WG_KEY_LEN);
}

static int key_cmp(const void *a, const void *b) {
  return memcmp(a, b, WG_KEY_LEN);
}

/* Validates everything and returns the peers in render order. */
static int prepare(const struct wg_config *c, uint8_t priv[WG_KEY_LEN], struct rpeer **ret) {
  if (!c || (c->n_peers > 0 && !c->peers) || c->n_peers > WG_MAX_PEERS)
    return -EINVAL;
  if (wg_key_decode(c->private_key, priv) < 0)
    return -EINVAL;
  struct rpeer *ps = calloc(c->n_peers ? c->n_peers : 1, sizeof(*ps));
  if (!ps)
    return -ENOMEM;
  for (size_t i = 0; i < c->n_peers; i++) {
    const struct wg_peer *in = &c->peers[i];
    struct rpeer *p = &ps[i];
    if (wg_key_decode(in->public_key, p->key) < 0 || parse_allowed_ip(in->allowed_ip, p) < 0 ||
        (in->endpoint && parse_endpoint(in->endpoint, p->endpoint) < 0))
      goto bad;
    wg_key_encode(p->key, p->key_b64);
  }
  qsort(ps, c->n_peers, sizeof(*ps), rpeer_cmp);
  for (size_t i = 1; i < c->n_peers; i++)
    if (ps[i].ip == ps[i - 1].ip)
      goto bad;
  /* Duplicate keys: compare over a key-sorted copy of the indices (n log n). */
  if (c->n_peers > 1) {
    uint8_t (*keys)[WG_KEY_LEN] = malloc(c->n_peers * WG_KEY_LEN);
    if (!keys) {
      free(ps);
      secure_wipe(priv, WG_KEY_LEN);
      return -ENOMEM;
    }
    for (size_t i = 0; i < c->n_peers; i++)
      memcpy(keys[i], ps[i].key, WG_KEY_LEN);
    qsort(keys, c->n_peers, WG_KEY_LEN, key_cmp);
    bool dup = false;
    for (size_t i = 1; i < c->n_peers && !dup; i++)
      dup = memcmp(keys[i], keys[i - 1], WG_KEY_LEN) == 0;
    free(keys);
    if (dup)
      goto bad;
  }
  *ret = ps;
  return 0;
bad:
  free(ps);
  secure_wipe(priv, WG_KEY_LEN);
  return -EINVAL;
}

int wg_render_conf(const struct wg_config *c, struct buf *out) {
  uint8_t priv[WG_KEY_LEN];
  char b64[WG_KEY_B64_LEN + 1];
  struct rpeer *ps = NULL;
  size_t old = out ? out->len : 0;
  if (!out)
    return -EINVAL;
  int r = prepare(c, priv, &ps);
  if (r < 0)
    return r;
  wg_key_encode(priv, b64);
  r = buf_printf(out, "[Interface]\nPrivateKey = %s\n", b64);
  if (r == 0 && c->listen_port)
    r = buf_printf(out, "ListenPort = %u\n", (unsigned)c->listen_port);
  for (size_t i = 0; r == 0 && i < c->n_peers; i++) {
    r = buf_printf(out, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n", ps[i].key_b64,
                   ps[i].ip_str);
    if (r == 0 && ps[i].endpoint[0])
      r = buf_printf(out, "Endpoint = %s\n", ps[i].endpoint);
  }
  if (r < 0) {
    secure_wipe(out->data + old, out->len - old);
    out->len = old;
  }
  secure_wipe(priv, sizeof(priv));
  secure_wipe(b64, sizeof(b64));
  free(ps);
  return r;
}

/* One peer as a UAPI set=1 block. */
static int uapi_peer_put(struct buf *out, const struct rpeer *p) {
  char hex[2 * WG_KEY_LEN + 1];
  hex_encode(p->key, WG_KEY_LEN, hex);
  int r = buf_printf(out, "public_key=%s\nreplace_allowed_ips=true\nallowed_ip=%s/32\n", hex,
                     p->ip_str);
  if (r == 0 && p->endpoint[0])
    r = buf_printf(out, "endpoint=%s\n", p->endpoint);
  return r;
}

int wg_render_uapi(const struct wg_config *c, struct buf *out) {
  uint8_t priv[WG_KEY_LEN];
  char hex[2 * WG_KEY_LEN + 1];
  struct rpeer *ps = NULL;
  size_t old = out ? out->len : 0;
  if (!out)
    return -EINVAL;
  int r = prepare(c, priv, &ps);
  if (r < 0)
    return r;
  hex_encode(priv, WG_KEY_LEN, hex);
  r = buf_printf(out, "set=1\nprivate_key=%s\nlisten_port=%u\nreplace_peers=true\n", hex,
                 (unsigned)c->listen_port);
  for (size_t i = 0; r == 0 && i < c->n_peers; i++) {
    r = uapi_peer_put(out, &ps[i]);
  }
  if (r == 0)
    r = buf_append_str(out, "\n");
  if (r < 0) {
    secure_wipe(out->data + old, out->len - old);
    out->len = old;
  }
  secure_wipe(priv, sizeof(priv));
  secure_wipe(hex, sizeof(hex));
  free(ps);
  return r;
}

static int status_key_cmp(const void *a, const void *b) {
  const struct wg_peer_status *const *x = a, *const *y = b;
  return memcmp((*x)->public_key, (*y)->public_key, WG_KEY_LEN);
}

/* The current peer with this key in a key-sorted index, or NULL. */
static const struct wg_peer_status *status_lookup(const struct wg_peer_status **idx, size_t n,
                                                  const uint8_t key[WG_KEY_LEN]) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = memcmp(key, idx[mid]->public_key, WG_KEY_LEN);
    if (c == 0)
      return idx[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

static bool peer_unchanged(const struct wg_peer_status *cur, const struct rpeer *p) {
  char want[48];
  snprintf(want, sizeof(want), "%s/32", p->ip_str);
  if (cur->n_allowed_ips != 1 || !str_eq(cur->allowed_ips[0], want))
    return false;
  return !p->endpoint[0] || str_eq(cur->endpoint, p->endpoint);
}

int wg_render_uapi_delta(const struct wg_config *c, const struct wg_status *cur, struct buf *out) {
  uint8_t priv[WG_KEY_LEN];
  char hex[2 * WG_KEY_LEN + 1];
  struct rpeer *ps = NULL;
  const struct wg_peer_status **idx = NULL;
  uint8_t (*keys)[WG_KEY_LEN] = NULL;
  size_t old = out ? out->len : 0;
  if (!out || !cur || (cur->n_peers && !cur->peers))
    return -EINVAL;
  int r = prepare(c, priv, &ps);
  if (r < 0)
    return r;
  if (!(idx = malloc((cur->n_peers ? cur->n_peers : 1) * sizeof(*idx)))) {
    r = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < cur->n_peers; i++)
    idx[i] = &cur->peers[i];
  qsort(idx, cur->n_peers, sizeof(*idx), status_key_cmp);
  hex_encode(priv, WG_KEY_LEN, hex);
  r = buf_printf(out, "set=1\nprivate_key=%s\n", hex); /* the same key is a no-op */
  if (r == 0 && cur->listen_port != c->listen_port)
    r = buf_printf(out, "listen_port=%u\n", (unsigned)c->listen_port);
  /* Peers no longer wanted. */
  if (r == 0 && !(keys = malloc((c->n_peers ? c->n_peers : 1) * WG_KEY_LEN)))
    r = -ENOMEM;
  for (size_t j = 0; r == 0 && j < c->n_peers; j++)
    memcpy(keys[j], ps[j].key, WG_KEY_LEN);
  if (r == 0)
    qsort(keys, c->n_peers, WG_KEY_LEN, key_cmp);
  for (size_t i = 0; r == 0 && i < cur->n_peers; i++) {
    if (!bsearch(cur->peers[i].public_key, keys, c->n_peers, WG_KEY_LEN, key_cmp)) {
      hex_encode(cur->peers[i].public_key, WG_KEY_LEN, hex);
      r = buf_printf(out, "public_key=%s\nremove=true\n", hex);
    }
  }
  /* New or changed peers; unchanged ones are not touched (sessions and roamed endpoints stay). */
  for (size_t i = 0; r == 0 && i < c->n_peers; i++) {
    const struct wg_peer_status *p = status_lookup(idx, cur->n_peers, ps[i].key);
    if (p && peer_unchanged(p, &ps[i]))
      continue;
    r = uapi_peer_put(out, &ps[i]);
  }
  if (r == 0)
    r = buf_append_str(out, "\n");
out:
  if (r < 0) {
    secure_wipe(out->data + old, out->len - old);
    out->len = old;
  }
  secure_wipe(priv, sizeof(priv));
  secure_wipe(hex, sizeof(hex));
  free(ps);
  free(idx);
  free(keys);
  return r;
}

/* ---------------------------------------------------------------- get=1 */

void wg_status_free(struct wg_status *s) {
  if (!s)
    return;
  free(s->peers);
  s->peers = NULL;
  s->n_peers = 0;
}

const struct wg_peer_status *wg_status_find(const struct wg_status *s, const char *pubkey_b64) {
  uint8_t k[WG_KEY_LEN];
  if (!s || wg_key_decode(pubkey_b64, k) < 0)
    return NULL;
  for (size_t i = 0; i < s->n_peers; i++)
    if (memcmp(s->peers[i].public_key, k, WG_KEY_LEN) == 0)
      return &s->peers[i];
  return NULL;
}

static int parse_line(struct wg_status *st, size_t *alloc, const char *key, const char *val,
                      int *ret_errno, bool *seen_errno) {
  struct wg_peer_status *p = st->n_peers ? &st->peers[st->n_peers - 1] : NULL;
  uint64_t u;

  if (*seen_errno)
    return -EBADMSG; /* errno must be the last line */
  if (str_eq(key, "errno")) {
    int32_t e;
    if (str_to_i32(val, &e) < 0)
      return -EBADMSG;
    *ret_errno = e;
    *seen_errno = true;
    return 0;
  }
  if (str_eq(key, "public_key")) {
    if (st->n_peers >= WG_MAX_PEERS)
      return -ENOBUFS;
    if (st->n_peers == *alloc) {
      size_t na = *alloc ? *alloc * 2 : 8;
      if (na > WG_MAX_PEERS)
        na = WG_MAX_PEERS;
      struct wg_peer_status *np = realloc(st->peers, na * sizeof(*np));
      if (!np)
        return -ENOMEM;
      st->peers = np;
      *alloc = na;
    }
    p = &st->peers[st->n_peers];
    memset(p, 0, sizeof(*p));
    if (hex_decode_exact(val, strlen(val), p->public_key, WG_KEY_LEN) < 0)
      return -EBADMSG;
    st->n_peers++;
    return 0;
  }
  if (str_eq(key, "private_key") || str_eq(key, "fwmark") || str_eq(key, "protocol_version") ||
      str_eq(key, "preshared_key"))
    return 0;
  if (str_eq(key, "listen_port")) {
    if (p)
      return -EBADMSG;
    return str_to_u16(val, &st->listen_port) < 0 ? -EBADMSG : 0;
  }
  /* Everything else we know is peer-scoped. */
  if (str_eq(key, "endpoint")) {
    if (!p || strlen(val) >= sizeof(p->endpoint))
      return -EBADMSG;
    strcpy(p->endpoint, val);
  } else if (str_eq(key, "last_handshake_time_sec") || str_eq(key, "last_handshake_time_nsec")) {
    if (!p || str_to_u64(val, &u) < 0 || u > INT64_MAX)
      return -EBADMSG;
    if (key[20] == 's')
      p->last_handshake_sec = (int64_t)u;
    else
      p->last_handshake_nsec = (int64_t)u;
  } else if (str_eq(key, "rx_bytes") || str_eq(key, "tx_bytes")) {
    if (!p || str_to_u64(val, &u) < 0)
      return -EBADMSG;
    if (key[0] == 'r')
      p->rx_bytes = u;
    else
      p->tx_bytes = u;
  } else if (str_eq(key, "persistent_keepalive_interval")) {
    if (!p || str_to_u32(val, &p->keepalive) < 0)
      return -EBADMSG;
  } else if (str_eq(key, "allowed_ip")) {
    if (!p || strlen(val) >= sizeof(p->allowed_ips[0]) || !strchr(val, '/'))
      return -EBADMSG;
    if (p->n_allowed_ips < WG_STATUS_MAX_ALLOWED_IPS)
      strcpy(p->allowed_ips[p->n_allowed_ips], val);
    p->n_allowed_ips++;
  }
  /* Unknown keys are ignored (newer wireguard versions). */
  return 0;
}

int wg_uapi_parse_get(const char *text, size_t len, struct wg_status *ret) {
  struct wg_status st = {0};
  size_t alloc = 0, off = 0;
  char line[WG_UAPI_MAX_LINE + 1];
  int r = 0, err = 0;
  bool seen_errno = false, ended = false;

  if (!text || !ret)
    return -EINVAL;
  if (len > WG_UAPI_MAX_RESPONSE)
    return -ENOBUFS;
  while (off < len) {
    const char *nl = memchr(text + off, '\n', len - off);
    if (!nl) {
      r = -EBADMSG;
      goto out;
    }
    size_t ll = (size_t)(nl - (text + off));
    if (ll > WG_UAPI_MAX_LINE) {
      r = -ENOBUFS;
      goto out;
    }
    memcpy(line, text + off, ll);
    line[ll] = '\0';
    off += ll + 1;
    if (ll == 0) {
      ended = true;
      break;
    }
    if (memchr(line, '\0', ll)) {
      r = -EBADMSG;
      goto out;
    }
    char *eq = strchr(line, '=');
    if (!eq || eq == line) {
      r = -EBADMSG;
      goto out;
    }
    *eq = '\0';
    r = parse_line(&st, &alloc, line, eq + 1, &err, &seen_errno);
    if (r < 0)
      goto out;
  }
  if (!ended || off != len || !seen_errno) {
    r = -EBADMSG;
    goto out;
  }
  if (err != 0) {
    log_debug("wg: UAPI errno=%d", err);
    r = -EIO;
    goto out;
  }
  *ret = st;
  st.peers = NULL;
out:
  secure_wipe(line, sizeof(line));
  wg_status_free(&st);
  return r;
}

/* ---------------------------------------------------------------- UAPI socket */

static bool ends_with_blank_line(const struct buf *b) {
  return b->len >= 2 && b->data[b->len - 1] == '\n' && b->data[b->len - 2] == '\n';
}

int wg_uapi_transact(const char *sock_path, const char *req, size_t len, int timeout_ms,
                     struct buf *ret) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  struct timeval tv;
  size_t old;
  int fd, r = 0;

  if (!sock_path || !req || !ret || strlen(sock_path) >= sizeof(sa.sun_path))
    return -EINVAL;
  if (ret->max == 0)
    ret->max = WG_UAPI_MAX_RESPONSE;
  old = ret->len;
  if (timeout_ms <= 0)
    timeout_ms = 10000;
  strcpy(sa.sun_path, sock_path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
      connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    r = -errno;
    goto out;
  }
  for (size_t sent = 0; sent < len;) {
    ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
      goto out;
    }
    sent += (size_t)n;
  }
  while (ret->len - old < 2 || !ends_with_blank_line(ret)) {
    char tmp[4096];
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
      goto out;
    }
    if (n == 0) {
      r = -EBADMSG;
      goto out;
    }
    if (ret->len - old + (size_t)n > WG_UAPI_MAX_RESPONSE) {
      r = -ENOBUFS;
      goto out;
    }
    r = buf_append(ret, tmp, (size_t)n);
    secure_wipe(tmp, (size_t)n);
    if (r < 0)
      goto out;
  }
out:
  close(fd);
  if (r < 0) {
    if (ret->data)
      secure_wipe(ret->data + old, ret->len - old);
    ret->len = old;
  }
  return r;
}

/* ---------------------------------------------------------------- interface */

struct wg_iface {
  char *ifname;
  enum wg_mode mode;
  char *sock_path;
  char *wg_bin;
  char *tmp_dir;
  int timeout_ms;
  bool have_hash;
  uint8_t hash[32];
  unsigned writes;
};

static bool ifname_valid(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > WG_IFNAME_MAX || str_eq(s, ".") || str_eq(s, ".."))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.'))
      return false;
  }
  return true;
}

void wg_iface_free(struct wg_iface *w) {
  if (!w)
    return;
  free(w->ifname);
  free(w->sock_path);
  free(w->wg_bin);
  free(w->tmp_dir);
  free(w);
}

int wg_iface_new(const struct wg_iface_opts *o, struct wg_iface **ret) {
  if (!o || !ret || !ifname_valid(o->ifname) ||
      (o->mode != WG_MODE_SYNCCONF && o->mode != WG_MODE_UAPI))
    return -EINVAL;
  struct wg_iface *w = calloc(1, sizeof(*w));
  if (!w)
    return -ENOMEM;
  const char *tmp = o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");
  w->ifname = strdup(o->ifname);
  w->mode = o->mode;
  w->sock_path = str_printf("%s/%s.sock", o->sock_dir ? o->sock_dir : WG_DEFAULT_SOCK_DIR,
                            o->ifname);
  w->wg_bin = strdup(o->wg_bin ? o->wg_bin : "wg");
  w->tmp_dir = strdup(tmp && tmp[0] ? tmp : "/tmp");
  w->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
  if (!w->ifname || !w->sock_path || !w->wg_bin || !w->tmp_dir) {
    wg_iface_free(w);
    return -ENOMEM;
  }
  *ret = w;
  return 0;
}

void wg_iface_invalidate(struct wg_iface *w) {
  if (w)
    w->have_hash = false;
}

unsigned wg_iface_write_count(const struct wg_iface *w) {
  return w ? w->writes : 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wg_spawnattr_init(posix_spawnattr_t *a) {
  sigset_t def;
  if (posix_spawnattr_init(a) != 0)
    return -ENOMEM;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  if (posix_spawnattr_setsigdefault(a, &def) != 0 ||
      posix_spawnattr_setflags(a, POSIX_SPAWN_SETSIGDEF) != 0) {
    posix_spawnattr_destroy(a);
    return -EINVAL;
  }
  return 0;
}

/* Runs argv with stdin from /dev/null; waits at most timeout_ms, then kills it. */
int wg_run_bounded(char *const argv[], int timeout_ms) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  pid_t pid;
  int status, r;

  if ((r = wg_spawnattr_init(&attr)) < 0)
    return r;
  if (posix_spawn_file_actions_init(&fa) != 0) {
    posix_spawnattr_destroy(&attr);
    return -ENOMEM;
  }
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (r != 0)
    return -r;
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    pid_t p = waitpid(pid, &status, WNOHANG);
    if (p == pid)
      break;
    if (p < 0 && errno != EINTR)
      return -errno;
    if (now_ms() >= deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
      return -ETIMEDOUT;
    }
    struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    log_debug("wg: %s exited with status 0x%x", argv[0], (unsigned)status);
    return -EIO;
  }
  return 0;
}

static int apply_syncconf(struct wg_iface *w, const struct buf *conf) {
  _cleanup_free_ char *dir = str_printf("%s/dstack-wg.XXXXXX", w->tmp_dir);
  _cleanup_free_ char *file = NULL;
  int r;
  if (!dir)
    return -ENOMEM;
  if (!mkdtemp(dir)) /* mode 0700 */
    return -errno;
  file = str_printf("%s/%s.conf", dir, w->ifname);
  if (!file) {
    rmdir(dir);
    return -ENOMEM;
  }
  r = file_write_atomic(file, conf->data, conf->len, 0600);
  if (r == 0) {
    char *argv[] = {w->wg_bin, (char *)"syncconf", w->ifname, file, NULL};
    w->writes++;
    r = wg_run_bounded(argv, w->timeout_ms);
  }
  unlink(file);
  rmdir(dir);
  return r;
}

/* Like `wg syncconf`: reads the interface, then writes only the difference. */
static int apply_uapi(struct wg_iface *w, const struct wg_config *c) {
  struct buf resp, req;
  struct wg_status st;
  struct wg_status cur = {0};
  int r = wg_iface_status(w, &cur);
  if (r < 0)
    return r;
  buf_init_secret(&req, (size_t)WG_MAX_PEERS * 256 + 4096);
  r = wg_render_uapi_delta(c, &cur, &req);
  wg_status_free(&cur);
  if (r < 0) {
    buf_free(&req);
    return r;
  }
  buf_init_secret(&resp, 4096);
  w->writes++;
  r = wg_uapi_transact(w->sock_path, (const char *)req.data, req.len, w->timeout_ms, &resp);
  buf_free(&req);
  if (r == 0) {
    r = wg_uapi_parse_get((const char *)resp.data, resp.len, &st);
    if (r == 0) {
      if (st.n_peers > 0)
        r = -EBADMSG;
      wg_status_free(&st);
    }
  }
  buf_free(&resp);
  return r;
}

int wg_apply(struct wg_iface *w, const struct wg_config *c, bool *ret_changed) {
  struct buf text;
  uint8_t h[32];
  int r;

  if (ret_changed)
    *ret_changed = false;
  if (!w || !c)
    return -EINVAL;
  buf_init_secret(&text, (size_t)WG_MAX_PEERS * 256 + 4096);
  r = w->mode == WG_MODE_UAPI ? wg_render_uapi(c, &text) : wg_render_conf(c, &text);
  if (r < 0)
    goto out;
  sha256(text.data, text.len, h);
  if (w->have_hash && memcmp_ct(h, w->hash, sizeof(h)) == 0)
    goto out;
  w->have_hash = false;
  r = w->mode == WG_MODE_UAPI ? apply_uapi(w, c) : apply_syncconf(w, &text);
  if (r < 0)
    goto out;
  memcpy(w->hash, h, sizeof(h));
  w->have_hash = true;
  if (ret_changed)
    *ret_changed = true;
out:
  buf_free(&text);
  return r;
}

int wg_iface_status(struct wg_iface *w, struct wg_status *ret) {
  static const char req[] = "get=1\n\n";
  struct buf resp;
  if (!w || !ret)
    return -EINVAL;
  buf_init_secret(&resp, WG_UAPI_MAX_RESPONSE);
  int r = wg_uapi_transact(w->sock_path, req, sizeof(req) - 1, w->timeout_ms, &resp);
  if (r == 0)
    r = wg_uapi_parse_get((const char *)resp.data, resp.len, ret);
  buf_free(&resp);
  return r;
}
