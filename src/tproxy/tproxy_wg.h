/* WireGuard interface management for tproxy: keys, config rendering, applying a config only when
 * it changed, and reading peer state back.
 *
 * Two ways to apply:
 *  - WG_MODE_SYNCCONF: the rendered wg-quick style config is written to a 0600 file in a fresh
 *    0700 directory and `wg syncconf <ifname> <file>` runs (kernel WireGuard, and also
 *    wireguard-go through `wg`). The private key is only ever in the file, never in argv.
 *  - WG_MODE_UAPI: the text UAPI ("set=1") is spoken directly over
 *    <sock_dir>/<ifname>.sock (wireguard-go; default dir /var/run/wireguard).
 * Either way a SHA-256 of the rendered text is remembered; applying an identical config again is
 * a no-op, so this is never on a connection path.
 *
 * Every key (base64 of exactly 32 bytes), address and endpoint is validated before anything is
 * rendered; an invalid one fails the whole render with -EINVAL and produces no text. */
#pragma once

#include <spawn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 44 /* without NUL */
#define WG_MAX_PEERS 65536
#define WG_IFNAME_MAX 15 /* IFNAMSIZ - 1 */
#define WG_DEFAULT_SOCK_DIR "/var/run/wireguard"
/* Caps for the get=1 parser. */
#define WG_UAPI_MAX_RESPONSE ((size_t)16 * 1024 * 1024)
#define WG_UAPI_MAX_LINE 512
#define WG_STATUS_MAX_ALLOWED_IPS 4 /* stored per peer; more are only counted */

struct wg_peer {
  const char *public_key; /* base64, 32 bytes */
  const char *allowed_ip; /* IPv4 "a.b.c.d" or "a.b.c.d/32" */
  const char *endpoint;   /* optional "a.b.c.d:port" or "[v6]:port"; NULL = none */
};

struct wg_config {
  const char *private_key; /* base64, 32 bytes */
  uint16_t listen_port;    /* 0 = let WireGuard choose */
  const struct wg_peer *peers;
  size_t n_peers;
};

/* --- keys --- */
/* Decodes a WireGuard key: -EINVAL unless s is the canonical base64 of exactly 32 bytes. */
int wg_key_decode(const char *s, uint8_t ret[WG_KEY_LEN]);
/* NUL-terminated base64 of a raw key. */
void wg_key_encode(const uint8_t key[WG_KEY_LEN], char ret[WG_KEY_B64_LEN + 1]);
/* X25519 public key (base64) of a private key (raw or base64). */
int wg_key_public_from_private(const uint8_t priv[WG_KEY_LEN], char ret_b64[WG_KEY_B64_LEN + 1]);
int wg_key_public_from_private_b64(const char *priv_b64, char ret_b64[WG_KEY_B64_LEN + 1]);
/* Loads a private key file (base64 + optional '\n', as `wg genkey` writes) or, when it does not
 * exist, generates a key and writes it atomically with mode 0600. ret_b64 may be NULL. */
int wg_key_load_or_generate(const char *path, uint8_t ret_priv[WG_KEY_LEN],
                            char ret_b64[WG_KEY_B64_LEN + 1]);

/* --- rendering (out should be a secret buffer: it receives the private key) --- */
/* wg syncconf text: "[Interface]\nPrivateKey = ..\nListenPort = ..\n" then per peer
 * "\n[Peer]\nPublicKey = ..\nAllowedIPs = a.b.c.d/32\n[Endpoint = ..\n]". Peers are sorted by
 * address, then public key. Duplicate keys or addresses: -EINVAL. ListenPort is omitted when 0. */
int wg_render_conf(const struct wg_config *c, struct buf *out);
/* UAPI text: "set=1\nprivate_key=<hex>\nlisten_port=N\nreplace_peers=true\n" then per peer
 * "public_key=<hex>\nreplace_allowed_ips=true\nallowed_ip=a.b.c.d/32\n[endpoint=..\n]", then
 * the terminating empty line. Same order and checks as wg_render_conf. */
int wg_render_uapi(const struct wg_config *c, struct buf *out);
/* What `wg syncconf` would write, as UAPI, given the interface's current state (get=1): the
 * private key (setting the same one is a no-op), listen_port only when it differs,
 * "public_key=..\nremove=true\n" for peers no longer in c, and only the peers of c that are
 * new or whose allowed IP (or configured endpoint) changed, as wg_render_uapi writes them.
 * Unchanged peers are not mentioned, so their sessions and roamed endpoints survive. */
struct wg_status;
int wg_render_uapi_delta(const struct wg_config *c, const struct wg_status *cur, struct buf *out);

/* --- get=1 --- */
struct wg_peer_status {
  uint8_t public_key[WG_KEY_LEN];
  char endpoint[64]; /* "" when none */
  int64_t last_handshake_sec; /* 0 = never */
  int64_t last_handshake_nsec;
  uint64_t rx_bytes, tx_bytes;
  uint32_t keepalive;
  char allowed_ips[WG_STATUS_MAX_ALLOWED_IPS][48];
  size_t n_allowed_ips; /* total seen; only the first WG_STATUS_MAX_ALLOWED_IPS are stored */
};

struct wg_status {
  uint16_t listen_port;
  struct wg_peer_status *peers;
  size_t n_peers;
};

/* Parses a get=1 response (key=value lines ending with "errno=0" and an empty line). Unknown
 * keys are ignored; private/preshared keys are skipped without being copied. Malformed lines:
 * -EBADMSG; over the caps (WG_UAPI_MAX_LINE, WG_MAX_PEERS, WG_UAPI_MAX_RESPONSE): -ENOBUFS;
 * a non-zero errno: -EIO. */
int wg_uapi_parse_get(const char *text, size_t len, struct wg_status *ret);
void wg_status_free(struct wg_status *s);
/* The peer with this base64 public key, or NULL. */
const struct wg_peer_status *wg_status_find(const struct wg_status *s, const char *pubkey_b64);

/* One request/response exchange on a UAPI socket (timeouts of timeout_ms for connect, send and
 * each receive). The response, up to and including the terminating empty line, is appended to
 * ret (a secret buffer is advisable; cap WG_UAPI_MAX_RESPONSE applies if ret->max is 0). */
/* Spawn attributes for wg and wireguard-go: SIGPIPE back to its default in the child (the
 * daemon ignores it; a child should not inherit that). posix_spawnattr_destroy it. */
int wg_spawnattr_init(posix_spawnattr_t *a);
/* Runs argv (PATH search, stdin /dev/null) and waits at most timeout_ms: 0 on exit status 0,
 * -EIO on another status, -ETIMEDOUT (the child killed) past the deadline. */
int wg_run_bounded(char *const argv[], int timeout_ms);

int wg_uapi_transact(const char *sock_path, const char *req, size_t len, int timeout_ms,
                     struct buf *ret);

/* --- interface --- */
enum wg_mode { WG_MODE_SYNCCONF, WG_MODE_UAPI };

struct wg_iface_opts {
  const char *ifname;   /* required, 1..15 chars [A-Za-z0-9_.-] */
  enum wg_mode mode;
  const char *sock_dir; /* UAPI: NULL = WG_DEFAULT_SOCK_DIR */
  const char *wg_bin;   /* syncconf: NULL = "wg" (PATH) */
  const char *tmp_dir;  /* syncconf: parent of the private dir; NULL = $TMPDIR or /tmp */
  int timeout_ms;       /* per operation; 0 = 10000 */
};

struct wg_iface;
int wg_iface_new(const struct wg_iface_opts *o, struct wg_iface **ret);
void wg_iface_free(struct wg_iface *w);
/* Applies c unless the rendered text equals the last successfully applied one (UAPI: reads
 * the interface and writes the delta, wg_render_uapi_delta).
 * *ret_changed (may be NULL) tells whether anything was written. On failure the remembered
 * hash is cleared, so the next call retries. */
int wg_apply(struct wg_iface *w, const struct wg_config *c, bool *ret_changed);
/* Forgets the remembered hash (e.g. after the interface was recreated). */
void wg_iface_invalidate(struct wg_iface *w);
/* Number of writes (set=1 requests or syncconf runs) made so far. */
unsigned wg_iface_write_count(const struct wg_iface *w);
/* get=1 over the UAPI socket (UAPI mode and wireguard-go only). */
int wg_iface_status(struct wg_iface *w, struct wg_status *ret);
