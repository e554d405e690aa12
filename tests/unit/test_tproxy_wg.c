#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/str.h"
#include "testutil.h"
#include "tproxy_wg.h"

extern char **environ;

/* Key pairs produced by `wg genkey | wg pubkey` (independent implementation). */
#define PRIV_A "EOmytFlmlvYo1DH+eVF1J58tMXVv4H4hv2Gplhfj4E4="
#define PUB_A "Qhvp3Oi0P+jacSVz6msuYvB+UNz1UEOAoSx6ql8zu0M="
#define PRIV_A_HEX "10e9b2b4596696f628d431fe795175279f2d31756fe07e21bf61a99617e3e04e"
#define PUB_B "ha1++tmp8d0HHrSgvk3Huvd0xRh3FKZ8NbeAvpefPHE="
#define PUB_B_HEX "85ad7efad9a9f1dd071eb4a0be4dc7baf774c5187714a67c35b780be979f3c71"
#define PUB_C "mn46sv+oXRRewizXyBs9PDt6UB3nkuJxxSj+HOzeP3I="
#define PUB_C_HEX "9a7e3ab2ffa85d145ec22cd7c81b3d3c3b7a501de792e271c528fe1cecde3f72"
#define PRIV_D "EHUh3JA6RasGnoe1vBotzGnochjkTKVBJOBnJcr4b3k="
#define PUB_D "3pahFAopbKrekTiztYv/zteENZb7rjZPXjqf7JREL28="

static void test_keys(void **state) {
  (void)state;
  char pub[WG_KEY_B64_LEN + 1];
  uint8_t k[WG_KEY_LEN];
  assert_int_equal(wg_key_public_from_private_b64(PRIV_A, pub), 0);
  assert_string_equal(pub, PUB_A);
  assert_int_equal(wg_key_public_from_private_b64(PRIV_D, pub), 0);
  assert_string_equal(pub, PUB_D);
  assert_int_equal(wg_key_decode(PUB_B, k), 0);
  wg_key_encode(k, pub);
  assert_string_equal(pub, PUB_B);
  /* negatives: wrong length, bad chars, non-canonical last char, NULL */
  assert_int_equal(wg_key_decode("AAAA", k), -EINVAL);
  assert_int_equal(wg_key_decode(PUB_B "=", k), -EINVAL);
  assert_int_equal(wg_key_decode("ha1++tmp8d0HHrSgvk3Huvd0xRh3FKZ8NbeAvpefPH!=", k), -EINVAL);
  assert_int_equal(wg_key_decode("ha1++tmp8d0HHrSgvk3Huvd0xRh3FKZ8NbeAvpefPHF=", k), -EINVAL);
  assert_int_equal(wg_key_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", k), -EINVAL);
  assert_int_equal(wg_key_decode(NULL, k), -EINVAL);
  assert_int_equal(wg_key_public_from_private_b64("nope", pub), -EINVAL);
}

static void test_key_file(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  _cleanup_free_ char *path = str_printf("%s/sub/wg.key", dir);
  uint8_t k1[WG_KEY_LEN], k2[WG_KEY_LEN];
  char b1[WG_KEY_B64_LEN + 1], b2[WG_KEY_B64_LEN + 1], pub[WG_KEY_B64_LEN + 1];
  struct stat st;
  assert_int_equal(wg_key_load_or_generate(path, k1, b1), 0);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(st.st_size, WG_KEY_B64_LEN + 1);
  assert_int_equal(k1[0] & 7, 0);
  assert_int_equal(k1[31] & 0xc0, 0x40);
  assert_int_equal(wg_key_load_or_generate(path, k2, b2), 0);
  assert_memory_equal(k1, k2, WG_KEY_LEN);
  assert_string_equal(b1, b2);
  assert_int_equal(wg_key_public_from_private(k1, pub), 0);
  /* an existing `wg genkey` style file is read as is */
  assert_int_equal(file_write_atomic(path, PRIV_A "\n", WG_KEY_B64_LEN + 1, 0600), 0);
  assert_int_equal(wg_key_load_or_generate(path, k2, NULL), 0);
  assert_int_equal(wg_key_public_from_private(k2, pub), 0);
  assert_string_equal(pub, PUB_A);
  /* garbage is not replaced */
  assert_int_equal(file_write_atomic(path, "garbage\n", 8, 0600), 0);
  assert_int_equal(wg_key_load_or_generate(path, k2, NULL), -EBADMSG);
  tu_rm_rf(dir);
  free(dir);
}

static const struct wg_peer peers3[] = {
    {.public_key = PUB_C, .allowed_ip = "10.0.0.3", .endpoint = "192.168.1.5:51820"},
    {.public_key = PUB_B, .allowed_ip = "10.0.0.2/32"},
    {.public_key = PUB_D, .allowed_ip = "10.0.0.10", .endpoint = "[fe80:0::1]:7"},
};

static const char golden_conf[] = "[Interface]\n"
                                  "PrivateKey = " PRIV_A "\n"
                                  "ListenPort = 51820\n"
                                  "\n[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 10.0.0.2/32\n"
                                  "\n[Peer]\nPublicKey = " PUB_C "\nAllowedIPs = 10.0.0.3/32\n"
                                  "Endpoint = 192.168.1.5:51820\n"
                                  "\n[Peer]\nPublicKey = " PUB_D "\nAllowedIPs = 10.0.0.10/32\n"
                                  "Endpoint = [fe80::1]:7\n";

static void test_render_golden(void **state) {
  (void)state;
  struct wg_config c = {.private_key = PRIV_A, .listen_port = 51820, .peers = peers3, .n_peers = 3};
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(wg_render_conf(&c, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data, golden_conf);

  buf_reset(&b);
  assert_int_equal(wg_render_uapi(&c, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data,
                      "set=1\nprivate_key=" PRIV_A_HEX "\nlisten_port=51820\nreplace_peers=true\n"
                      "public_key=" PUB_B_HEX "\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n"
                      "public_key=" PUB_C_HEX "\nreplace_allowed_ips=true\nallowed_ip=10.0.0.3/32\n"
                      "endpoint=192.168.1.5:51820\n"
                      "public_key=de96a1140a296caade9138b3b58bffced7843596fbae364f5e3a9fec94442f6f\n"
                      "replace_allowed_ips=true\nallowed_ip=10.0.0.10/32\nendpoint=[fe80::1]:7\n\n");

  /* order of input does not matter */
  struct wg_peer rev[3] = {peers3[2], peers3[0], peers3[1]};
  c.peers = rev;
  buf_reset(&b);
  assert_int_equal(wg_render_conf(&c, &b), 0);
  assert_int_equal(b.len, strlen(golden_conf));
  assert_memory_equal(b.data, golden_conf, b.len);

  /* no peers, no port */
  struct wg_config e = {.private_key = PRIV_A};
  buf_reset(&b);
  assert_int_equal(wg_render_conf(&e, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data, "[Interface]\nPrivateKey = " PRIV_A "\n");
}

/* The delta against the interface's current state: stale peer removed, unchanged peer not
 * mentioned (its session and roamed endpoint stay), changed and new peers written. */
static void test_render_delta(void **state) {
  (void)state;
  struct wg_config c = {.private_key = PRIV_A, .listen_port = 51820, .peers = peers3, .n_peers = 2};
  const char get[] = "listen_port=51820\n"
                     "public_key=" PUB_B_HEX "\nendpoint=10.1.1.1:999\nallowed_ip=10.0.0.2/32\n"
                     "public_key=" PUB_C_HEX "\nallowed_ip=10.0.0.9/32\n"
                     "public_key=de96a1140a296caade9138b3b58bffced7843596fbae364f5e3a9fec94442f6f\n"
                     "allowed_ip=10.0.0.10/32\nerrno=0\n\n";
  struct wg_status cur;
  assert_int_equal(wg_uapi_parse_get(get, sizeof(get) - 1, &cur), 0);
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(wg_render_uapi_delta(&c, &cur, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data,
                      "set=1\nprivate_key=" PRIV_A_HEX "\n"
                      "public_key=de96a1140a296caade9138b3b58bffced7843596fbae364f5e3a9fec94442f6f\n"
                      "remove=true\n"
                      "public_key=" PUB_C_HEX "\nreplace_allowed_ips=true\nallowed_ip=10.0.0.3/32\n"
                      "endpoint=192.168.1.5:51820\n\n");
  /* another port: written; nothing current: every peer written */
  cur.listen_port = 1;
  buf_reset(&b);
  assert_int_equal(wg_render_uapi_delta(&c, &cur, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_non_null(strstr((char *)b.data, "\nlisten_port=51820\n"));
  wg_status_free(&cur);
  struct wg_status none = {.listen_port = 51820};
  buf_reset(&b);
  assert_int_equal(wg_render_uapi_delta(&c, &none, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_non_null(strstr((char *)b.data, "allowed_ip=10.0.0.2/32"));
  assert_null(strstr((char *)b.data, "remove=true"));
  assert_null(strstr((char *)b.data, "listen_port"));
  /* bad input: nothing appended */
  struct wg_config bad = {.private_key = "nope"};
  size_t len = b.len;
  assert_int_equal(wg_render_uapi_delta(&bad, &none, &b), -EINVAL);
  assert_int_equal(wg_render_uapi_delta(&c, NULL, &b), -EINVAL);
  assert_int_equal(b.len, len);
}

static void expect_reject(const struct wg_config *c) {
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(buf_append_str(&b, "keep"), 0);
  assert_int_equal(wg_render_conf(c, &b), -EINVAL);
  assert_int_equal(wg_render_uapi(c, &b), -EINVAL);
  assert_int_equal(b.len, 4);
}

static void test_render_invalid(void **state) {
  (void)state;
  static const char *bad_keys[] = {"", "AAAA", PUB_B "\nListenPort = 1", PUB_B " ", NULL};
  static const char *bad_ips[] = {"10.0.0.2/24", "10.0.0.256", "10.0.0.2/", "::1",
                                  "10.0.0.2\n[Peer]", "", "1.2.3", NULL};
  static const char *bad_eps[] = {"1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536", "host:80", ":80",
                                  "[::1:80", "[zz]:80", "1.2.3.4:80\nx", "1.2.3.4:-1", NULL};
  struct wg_peer p[2] = {{.public_key = PUB_B, .allowed_ip = "10.0.0.2"},
                         {.public_key = PUB_C, .allowed_ip = "10.0.0.3"}};
  struct wg_config c = {.private_key = PRIV_A, .listen_port = 1, .peers = p, .n_peers = 2};
  for (size_t i = 0; i < ARRAY_SIZE(bad_keys); i++) {
    p[1].public_key = bad_keys[i];
    expect_reject(&c);
    c.private_key = bad_keys[i];
    p[1].public_key = PUB_C;
    expect_reject(&c);
    c.private_key = PRIV_A;
  }
  for (size_t i = 0; i < ARRAY_SIZE(bad_ips); i++) {
    p[1].allowed_ip = bad_ips[i];
    expect_reject(&c);
  }
  p[1].allowed_ip = "10.0.0.3";
  for (size_t i = 0; bad_eps[i]; i++) {
    p[1].endpoint = bad_eps[i];
    expect_reject(&c);
  }
  p[1].endpoint = NULL;
  /* duplicates */
  p[1].allowed_ip = "10.0.0.2/32";
  expect_reject(&c);
  p[1].allowed_ip = "10.0.0.3";
  p[1].public_key = PUB_B;
  expect_reject(&c);
  p[1].public_key = PUB_C;
  c.peers = NULL;
  expect_reject(&c);
  c.peers = p;
  c.n_peers = WG_MAX_PEERS + 1;
  expect_reject(&c);
  c.n_peers = 2;
  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(wg_render_conf(&c, &b), 0);
}

static const char get_resp[] =
    "private_key=" PRIV_A_HEX "\nlisten_port=51820\nfwmark=0\n"
    "public_key=" PUB_B_HEX "\npreshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
    "protocol_version=1\nendpoint=192.168.1.5:51820\nlast_handshake_time_sec=1700000000\n"
    "last_handshake_time_nsec=5\ntx_bytes=10\nrx_bytes=20\npersistent_keepalive_interval=25\n"
    "allowed_ip=10.0.0.2/32\nallowed_ip=10.1.0.0/16\n"
    "public_key=" PUB_C_HEX "\nlast_handshake_time_sec=0\nfuture_key=whatever\n"
    "errno=0\n\n";

static void test_parse_get(void **state) {
  (void)state;
  struct wg_status st;
  assert_int_equal(wg_uapi_parse_get(get_resp, strlen(get_resp), &st), 0);
  assert_int_equal(st.listen_port, 51820);
  assert_int_equal(st.n_peers, 2);
  const struct wg_peer_status *b = wg_status_find(&st, PUB_B);
  assert_non_null(b);
  assert_string_equal(b->endpoint, "192.168.1.5:51820");
  assert_int_equal(b->last_handshake_sec, 1700000000);
  assert_int_equal(b->last_handshake_nsec, 5);
  assert_int_equal(b->tx_bytes, 10);
  assert_int_equal(b->rx_bytes, 20);
  assert_int_equal(b->keepalive, 25);
  assert_int_equal(b->n_allowed_ips, 2);
  assert_string_equal(b->allowed_ips[1], "10.1.0.0/16");
  const struct wg_peer_status *c = wg_status_find(&st, PUB_C);
  assert_non_null(c);
  assert_int_equal(c->last_handshake_sec, 0);
  assert_null(wg_status_find(&st, PUB_D));
  wg_status_free(&st);
  wg_status_free(NULL);

  assert_int_equal(wg_uapi_parse_get("errno=0\n\n", 9, &st), 0);
  assert_int_equal(st.n_peers, 0);
  wg_status_free(&st);
}

static void test_parse_get_negative(void **state) {
  (void)state;
  struct wg_status st;
  static const char *bad[] = {
      "",                                   /* empty */
      "errno=0\n",                          /* no terminator */
      "errno=0",                            /* truncated */
      "listen_port=1\n\n",                  /* no errno */
      "errno=0\n\nextra",                   /* trailing data */
      "errno=0\nlisten_port=1\n\n",         /* errno not last */
      "garbage\nerrno=0\n\n",               /* no '=' */
      "=x\nerrno=0\n\n",                    /* empty key */
      "public_key=zz\nerrno=0\n\n",         /* bad hex */
      "public_key=" PUB_B_HEX "00\nerrno=0\n\n",
      "endpoint=1.2.3.4:5\nerrno=0\n\n",    /* peer key without a peer */
      "listen_port=70000\nerrno=0\n\n",
      "public_key=" PUB_B_HEX "\nlast_handshake_time_sec=-1\nerrno=0\n\n",
      "public_key=" PUB_B_HEX "\nrx_bytes=1x\nerrno=0\n\n",
      "public_key=" PUB_B_HEX "\nlisten_port=1\nerrno=0\n\n",
      "public_key=" PUB_B_HEX "\nallowed_ip=10.0.0.1\nerrno=0\n\n",
      "errno=x\n\n",
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_int_equal(wg_uapi_parse_get(bad[i], strlen(bad[i]), &st), -EBADMSG);
  assert_int_equal(wg_uapi_parse_get("errno=2\n\n", 9, &st), -EIO);
  assert_int_equal(wg_uapi_parse_get("a\0=b\nerrno=0\n\n", 14, &st), -EBADMSG);

  /* line cap */
  _cleanup_buf_ struct buf b = BUF_INIT(WG_UAPI_MAX_RESPONSE + 16);
  assert_int_equal(buf_append_str(&b, "x="), 0);
  assert_int_equal(buf_append_zero(&b, 0), 0);
  for (size_t i = 0; i < WG_UAPI_MAX_LINE; i++)
    assert_int_equal(buf_append_str(&b, "a"), 0);
  assert_int_equal(buf_append_str(&b, "\nerrno=0\n\n"), 0);
  assert_int_equal(wg_uapi_parse_get((char *)b.data, b.len, &st), -ENOBUFS);
  /* total cap */
  assert_int_equal(wg_uapi_parse_get((char *)b.data, WG_UAPI_MAX_RESPONSE + 1, &st), -ENOBUFS);
  /* peer cap */
  buf_reset(&b);
  for (size_t i = 0; i <= WG_MAX_PEERS; i++)
    assert_int_equal(buf_append_str(&b, "public_key=" PUB_B_HEX "\n"), 0);
  assert_int_equal(buf_append_str(&b, "errno=0\n\n"), 0);
  assert_int_equal(wg_uapi_parse_get((char *)b.data, b.len, &st), -ENOBUFS);
}

static void test_iface_opts(void **state) {
  (void)state;
  struct wg_iface *w = NULL;
  struct wg_iface_opts o = {.ifname = "../x"};
  assert_int_equal(wg_iface_new(&o, &w), -EINVAL);
  o.ifname = "abcdefghijklmnop";
  assert_int_equal(wg_iface_new(&o, &w), -EINVAL);
  o.ifname = "";
  assert_int_equal(wg_iface_new(&o, &w), -EINVAL);
  o.ifname = "..";
  assert_int_equal(wg_iface_new(&o, &w), -EINVAL);
  o.ifname = "wg0";
  o.mode = 7;
  assert_int_equal(wg_iface_new(&o, &w), -EINVAL);
  o.mode = WG_MODE_UAPI;
  o.sock_dir = "/nonexistent-dir";
  assert_int_equal(wg_iface_new(&o, &w), 0);
  struct wg_peer p = {.public_key = PUB_B, .allowed_ip = "10.0.0.2"};
  struct wg_config c = {.private_key = PRIV_A, .peers = &p, .n_peers = 1};
  bool changed = true;
  assert_int_equal(wg_apply(w, &c, &changed), -ENOENT);
  assert_false(changed);
  /* invalid config: nothing written */
  unsigned n = wg_iface_write_count(w);
  p.allowed_ip = "bad";
  assert_int_equal(wg_apply(w, &c, &changed), -EINVAL);
  assert_int_equal(wg_iface_write_count(w), n);
  wg_iface_free(w);
  wg_iface_free(NULL);
}

/* syncconf through a fake wg: the private key must not be in argv, the file must be 0600 in a
 * private directory, and an unchanged config must not run it again. */
static void test_syncconf_fake(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  _cleanup_free_ char *script = str_printf("%s/fakewg", dir);
  _cleanup_free_ char *log = str_printf("%s/log", dir);
  _cleanup_free_ char *body = str_printf(
      "#!/bin/sh\necho \"$@\" >> %s\nstat -c '%%a' \"$3\" \"$(dirname \"$3\")\" >> %s\n"
      "cat \"$3\" >> %s\n[ \"$2\" = wgfail ] && exit 3\nexit 0\n", log, log, log);
  assert_int_equal(file_write_atomic(script, body, strlen(body), 0700), 0);
  struct wg_iface *w = NULL;
  struct wg_iface_opts o = {.ifname = "wgfake0", .mode = WG_MODE_SYNCCONF, .wg_bin = script,
                            .tmp_dir = dir};
  assert_int_equal(wg_iface_new(&o, &w), 0);
  struct wg_config c = {.private_key = PRIV_A, .listen_port = 51820, .peers = peers3, .n_peers = 3};
  bool changed = false;
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_true(changed);
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_false(changed);
  assert_int_equal(wg_iface_write_count(w), 1);
  c.n_peers = 2;
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_true(changed);
  assert_int_equal(wg_iface_write_count(w), 2);
  wg_iface_invalidate(w);
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_true(changed);
  wg_iface_free(w);

  _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
  tu_read_file(log, &b);
  assert_int_equal(buf_terminate(&b), 0);
  const char *t = (const char *)b.data;
  assert_true(str_startswith(t, "syncconf wgfake0 "));
  assert_non_null(strstr(t, "/wgfake0.conf\n600\n700\n[Interface]\nPrivateKey = " PRIV_A));
  assert_non_null(strstr(t, golden_conf));
  /* the only occurrences of the private key are in the file contents (3 runs) */
  size_t n = 0;
  for (const char *p = t; (p = strstr(p, PRIV_A)); p++)
    n++;
  assert_int_equal(n, 3);
  for (const char *p = t; (p = strstr(p, "syncconf ")); p++)
    assert_null(memchr(p, '=', strcspn(p, "\n")));

  /* failure: exit status → -EIO, hash not remembered */
  o.ifname = "wgfail";
  assert_int_equal(wg_iface_new(&o, &w), 0);
  assert_int_equal(wg_apply(w, &c, &changed), -EIO);
  assert_int_equal(wg_apply(w, &c, &changed), -EIO);
  assert_int_equal(wg_iface_write_count(w), 2);
  wg_iface_free(w);
  /* the private directories were removed */
  _cleanup_free_ char *cmd = str_printf("test -z \"$(ls -d %s/dstack-wg.* 2>/dev/null)\"", dir);
  assert_int_equal(system(cmd), 0);
  tu_rm_rf(dir);
  free(dir);
}

/* ---- real wireguard-go in a private network namespace ---- */

struct wgproc {
  char ns[64];
  char ifname[16];
  pid_t pid;
  bool ns_made;
};

static int run_quiet(const char *cmd) {
  _cleanup_free_ char *c = str_printf("{ %s; } >/dev/null 2>&1", cmd);
  int s = system(c);
  return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

static void wgproc_stop(struct wgproc *p) {
  if (p->pid > 0) {
    int status;
    kill(p->pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
      if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
        p->pid = 0;
        break;
      }
      struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    if (p->pid > 0) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      p->pid = 0;
    }
  }
  if (p->ns_made) {
    _cleanup_free_ char *c = str_printf("ip netns del %s", p->ns);
    run_quiet(c);
    p->ns_made = false;
  }
  if (p->ifname[0]) {
    _cleanup_free_ char *sock = str_printf("/var/run/wireguard/%s.sock", p->ifname);
    unlink(sock);
  }
}

/* Returns false (and a reason) when the environment cannot run the test. */
static bool wgproc_start(struct wgproc *p, const char **why) {
  memset(p, 0, sizeof(*p));
  snprintf(p->ns, sizeof(p->ns), "dstk-wg-test-%d", (int)getpid());
  snprintf(p->ifname, sizeof(p->ifname), "dwgt%d", (int)(getpid() % 10000000));
  if (run_quiet("command -v wireguard-go && command -v wg && command -v ip") != 0) {
    *why = "wireguard-go, wg or ip not installed";
    return false;
  }
  _cleanup_free_ char *add = str_printf("ip netns add %s", p->ns);
  if (run_quiet(add) != 0) {
    *why = "cannot create a network namespace (needs root/CAP_SYS_ADMIN)";
    return false;
  }
  p->ns_made = true;
  char *argv[] = {(char *)"ip", (char *)"netns", (char *)"exec", p->ns, (char *)"wireguard-go",
                  (char *)"-f", p->ifname, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  int r = posix_spawnp(&p->pid, "ip", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (r != 0) {
    p->pid = 0;
    wgproc_stop(p);
    *why = "cannot spawn wireguard-go";
    return false;
  }
  _cleanup_free_ char *sock = str_printf("/var/run/wireguard/%s.sock", p->ifname);
  for (int i = 0; i < 500; i++) { /* up to 5 s */
    if (access(sock, F_OK) == 0)
      return true;
    int status;
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
      p->pid = 0;
      break;
    }
    struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  wgproc_stop(p);
  *why = "wireguard-go did not create its control socket (no /dev/net/tun?)";
  return false;
}

static void check_status(struct wg_iface *w, const struct wg_peer *peers, size_t n, uint16_t port) {
  struct wg_status st;
  assert_int_equal(wg_iface_status(w, &st), 0);
  assert_int_equal(st.listen_port, port);
  assert_int_equal(st.n_peers, n);
  for (size_t i = 0; i < n; i++) {
    const struct wg_peer_status *ps = wg_status_find(&st, peers[i].public_key);
    assert_non_null(ps);
    assert_int_equal(ps->n_allowed_ips, 1);
    assert_true(str_startswith(ps->allowed_ips[0], peers[i].allowed_ip));
    assert_int_equal(ps->last_handshake_sec, 0);
    if (peers[i].endpoint)
      assert_string_equal(ps->endpoint, peers[i].endpoint);
  }
  wg_status_free(&st);
}

static struct wgproc real_proc;

/* Teardown runs even when an assertion fails, so the namespace and process never leak. */
static int real_teardown(void **state) {
  (void)state;
  wgproc_stop(&real_proc);
  return 0;
}

static void test_real_wireguard_go(void **state) {
  (void)state;
  struct wgproc *pp = &real_proc;
  const char *why = NULL;
  if (!wgproc_start(pp, &why)) {
    print_message("SKIP real wireguard-go test: %s\n", why);
    skip();
  }
  struct wg_iface *w = NULL;
  struct wg_iface_opts o = {.ifname = pp->ifname, .mode = WG_MODE_UAPI};
  assert_int_equal(wg_iface_new(&o, &w), 0);
  struct wg_peer two[] = {
      {.public_key = PUB_B, .allowed_ip = "10.0.0.2", .endpoint = "10.9.9.9:51820"},
      {.public_key = PUB_C, .allowed_ip = "10.0.0.3"},
  };
  struct wg_config c = {.private_key = PRIV_A, .listen_port = 41820, .peers = two, .n_peers = 2};
  bool changed = false;
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_true(changed);
  assert_int_equal(wg_iface_write_count(w), 1);
  check_status(w, two, 2, 41820);
  /* same config: no write */
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_false(changed);
  assert_int_equal(wg_iface_write_count(w), 1);

  /* `wg show` inside the namespace agrees */
  _cleanup_free_ char *cmd =
      str_printf("ip netns exec %s wg show %s dump > /dev/null 2>&1 && "
                 "ip netns exec %s wg show %s peers | sort | tr '\\n' ' ' | "
                 "grep -qx '" PUB_B " " PUB_C " ' && "
                 "ip netns exec %s wg show %s public-key | grep -qx '" PUB_A "'",
                 pp->ns, pp->ifname, pp->ns, pp->ifname, pp->ns, pp->ifname);
  assert_int_equal(system(cmd), 0);

  /* changed peer list replaces the peers */
  struct wg_peer other[] = {
      {.public_key = PUB_D, .allowed_ip = "10.0.0.4"},
      {.public_key = PUB_C, .allowed_ip = "10.0.0.5"},
  };
  c.peers = other;
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_true(changed);
  assert_int_equal(wg_iface_write_count(w), 2);
  check_status(w, other, 2, 41820);
  wg_iface_free(w);

  /* syncconf mode through the real `wg` against the same wireguard-go */
  o.mode = WG_MODE_SYNCCONF;
  assert_int_equal(wg_iface_new(&o, &w), 0);
  c.peers = two;
  c.n_peers = 1;
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_true(changed);
  check_status(w, two, 1, 41820);
  assert_int_equal(wg_apply(w, &c, &changed), 0);
  assert_false(changed);
  assert_int_equal(wg_iface_write_count(w), 1);
  wg_iface_free(w);
  wgproc_stop(pp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_key_file),
      cmocka_unit_test(test_render_golden),
      cmocka_unit_test(test_render_invalid),
      cmocka_unit_test(test_render_delta),
      cmocka_unit_test(test_parse_get),
      cmocka_unit_test(test_parse_get_negative),
      cmocka_unit_test(test_iface_opts),
      cmocka_unit_test(test_syncconf_fake),
      cmocka_unit_test_teardown(test_real_wireguard_go, real_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
