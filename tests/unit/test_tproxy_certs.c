#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "tproxy_certs.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "testutil.h"

#define DAY ((int64_t)86400)

struct env {
  char *dir;
  char *cert; /* <dir>/cert.pem */
  char *key;  /* <dir>/key.pem */
  SSL_CTX *client;
};

static int env_setup(void **state) {
  struct env *e = calloc(1, sizeof(*e));
  assert_non_null(e);
  e->dir = tu_mkdtemp();
  e->cert = str_printf("%s/cert.pem", e->dir);
  e->key = str_printf("%s/key.pem", e->dir);
  assert_non_null(e->cert);
  assert_non_null(e->key);
  e->client = SSL_CTX_new(TLS_client_method());
  assert_non_null(e->client);
  SSL_CTX_set_verify(e->client, SSL_VERIFY_NONE, NULL);
  *state = e;
  return 0;
}

static int env_teardown(void **state) {
  struct env *e = *state;
  SSL_CTX_free(e->client);
  tu_rm_rf(e->dir);
  free(e->dir);
  free(e->cert);
  free(e->key);
  free(e);
  return 0;
}

static char *path_in(struct env *e, const char *rel) {
  char *p = str_printf("%s/%s", e->dir, rel);
  assert_non_null(p);
  assert_int_equal(mkdir_parents(p, 0700), 0);
  return p;
}

static void put(const char *path, const void *data, size_t len) {
  assert_int_equal(file_write_atomic(path, data, len, 0600), 0);
}

/* A certificate for a new P-256 key: PEM of both (the key in PKCS#8). issuer/issuer_key NULL:
 * self-signed. */
static void make_pair(const char *cn, int64_t not_before, int64_t not_after, bool ca,
                      X509 *issuer, EVP_PKEY *issuer_key, struct buf *cert_pem,
                      struct buf *key_pem, X509 **ret_cert, EVP_PKEY **ret_key) {
  EVP_PKEY *k = NULL;
  X509 *c = NULL;
  const char *sans[] = {cn};
  struct x509_params p = {
      .subject_cn = cn,
      .dns_sans = ca ? NULL : sans,
      .n_dns_sans = ca ? 0 : 1,
      .is_ca = ca,
      .path_len = -1,
      .not_before = not_before,
      .not_after = not_after,
  };
  assert_int_equal(key_p256_generate(&k), 0);
  assert_int_equal(x509_cert_build(&p, k, issuer, issuer_key, &c), 0);
  if (cert_pem)
    assert_int_equal(x509_cert_to_pem(c, cert_pem), 0);
  if (key_pem)
    assert_int_equal(key_to_pkcs8_pem(k, key_pem), 0);
  if (ret_cert)
    *ret_cert = c;
  else
    X509_free(c);
  if (ret_key)
    *ret_key = k;
  else
    EVP_PKEY_free(k);
}

/* Writes a valid self-signed pair for cn to cert_path / key_path. */
static void write_pair(const char *cert_path, const char *key_path, const char *cn) {
  struct buf c = BUF_INIT(BUF_MAX_SMALL), k = BUF_INIT(BUF_MAX_SMALL);
  int64_t now = (int64_t)time(NULL);
  make_pair(cn, now - 60, now + 90 * DAY, false, NULL, NULL, &c, &k, NULL, NULL);
  put(cert_path, c.data, c.len);
  put(key_path, k.data, k.len);
  buf_free(&c);
  buf_free(&k);
}

/* ---- stderr capture, to check what is logged */

static int saved_stderr = -1;
static char *capture_path;

static void capture_begin(struct env *e) {
  fflush(stderr);
  free(capture_path);
  capture_path = str_printf("%s/stderr.txt", e->dir);
  int fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  saved_stderr = dup(STDERR_FILENO);
  assert_true(saved_stderr >= 0);
  assert_true(dup2(fd, STDERR_FILENO) >= 0);
  close(fd);
}

/* What was logged since capture_begin (caller frees). */
static char *capture_end(void) {
  fflush(stderr);
  assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
  close(saved_stderr);
  saved_stderr = -1;
  struct buf b = BUF_INIT(BUF_MAX_SMALL);
  assert_int_equal(file_read_all(capture_path, BUF_MAX_SMALL, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  fputs((char *)b.data, stderr);
  return (char *)buf_steal(&b, NULL);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* ---- in-memory handshakes */

struct hs {
  bool ok;
  bool reused;
  char cn[256];
  char alpn[32];
  int chain_len;
  SSL_SESSION *sess; /* the client's session after the handshake (caller frees) */
};

static void hs_free(struct hs *h) {
  SSL_SESSION_free(h->sess);
  h->sess = NULL;
}

/* A handshake between a client on e->client and a server SSL from the store. alpn: wire-format
 * protocol list the client offers (NULL: none). max_version 0: TLS 1.3. */
static struct hs handshake(struct env *e, struct tproxy_certs *c, bool h2, const char *alpn,
                           size_t alpn_len, SSL_SESSION *sess, int max_version,
                           const char *ciphers) {
  struct hs h = {0};
  SSL *s = tproxy_certs_ssl_new(c, h2);
  SSL *cl = SSL_new(e->client);
  assert_non_null(s);
  assert_non_null(cl);
  BIO *sb = NULL, *cb = NULL;
  assert_int_equal(BIO_new_bio_pair(&sb, 65536, &cb, 65536), 1);
  SSL_set_bio(s, sb, sb);
  SSL_set_bio(cl, cb, cb);
  SSL_set_accept_state(s);
  SSL_set_connect_state(cl);
  assert_int_equal(SSL_set_tlsext_host_name(cl, "a.app.test"), 1);
  if (alpn)
    assert_int_equal(SSL_set_alpn_protos(cl, (const unsigned char *)alpn, (unsigned)alpn_len), 0);
  if (max_version)
    assert_int_equal(SSL_set_max_proto_version(cl, max_version), 1);
  if (ciphers)
    assert_int_equal(SSL_set_cipher_list(cl, ciphers), 1);
  if (sess)
    assert_int_equal(SSL_set_session(cl, sess), 1);

  bool cdone = false, sdone = false, broken = false;
  for (int i = 0; i < 64 && !(cdone && sdone) && !broken; i++) {
    if (!cdone) {
      int r = SSL_do_handshake(cl);
      int err = SSL_get_error(cl, r);
      if (r == 1)
        cdone = true;
      else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        broken = true;
    }
    if (!sdone && !broken) {
      int r = SSL_do_handshake(s);
      int err = SSL_get_error(s, r);
      if (r == 1)
        sdone = true;
      else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        broken = true;
    }
  }
  ERR_clear_error();
  if (cdone && sdone) {
    /* some data, so the client also reads the TLS 1.3 tickets sent before it */
    char x = 0;
    assert_int_equal(SSL_write(s, "x", 1), 1);
    assert_int_equal(SSL_read(cl, &x, 1), 1);
    assert_int_equal(x, 'x');
    h.ok = true;
    h.reused = SSL_session_reused(cl) == 1;
    X509 *peer = SSL_get0_peer_certificate(cl);
    assert_non_null(peer);
    struct buf cn = BUF_INIT(255);
    if (x509_cert_subject_cn(peer, &cn) == 0 && buf_terminate(&cn) == 0)
      memcpy(h.cn, cn.data, cn.len + 1);
    buf_free(&cn);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(cl);
    h.chain_len = chain ? sk_X509_num(chain) : 0;
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(cl, &p, &n);
    assert_true(n < sizeof(h.alpn));
    if (n)
      memcpy(h.alpn, p, n);
    h.sess = SSL_get1_session(cl);
    /* a clean close: SSL_free after a broken one marks the session not resumable */
    SSL_shutdown(cl);
    SSL_shutdown(s);
    ERR_clear_error();
  }
  SSL_free(cl);
  SSL_free(s);
  return h;
}

static struct hs handshake_simple(struct env *e, struct tproxy_certs *c) {
  return handshake(e, c, false, NULL, 0, NULL, 0, NULL);
}

static struct tproxy_certs *store_new(struct env *e) {
  struct tproxy_certs *c = NULL;
  char err[256] = "?";
  assert_int_equal(tproxy_certs_new(e->cert, e->key, &c, err, sizeof(err)), 0);
  assert_non_null(c);
  return c;
}

/* ---- tests */

static void test_load_and_stats(void **state) {
  struct env *e = *state;
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, "app.test"), 0);
  struct tproxy_certs *c = store_new(e);
  struct tproxy_certs_stats st;
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.generation, 1);
  assert_int_equal(st.reloads_ok, 0);
  assert_int_equal(st.reloads_failed, 0);
  assert_int_equal(st.last_error, 0);
  assert_string_equal(st.subject_cn, "*.app.test");
  int64_t now = (int64_t)time(NULL);
  assert_true(st.not_after > now + 364 * DAY);
  assert_true(st.not_after <= now + 366 * DAY);

  struct hs h = handshake_simple(e, c);
  assert_true(h.ok);
  assert_string_equal(h.cn, "*.app.test");
  assert_string_equal(h.alpn, "");
  hs_free(&h);
  /* TLS 1.2 too */
  h = handshake(e, c, false, NULL, 0, NULL, TLS1_2_VERSION, NULL);
  assert_true(h.ok);
  assert_string_equal(h.cn, "*.app.test");
  hs_free(&h);
  tproxy_certs_free(c);
  tproxy_certs_free(NULL);
}

static void test_chain(void **state) {
  struct env *e = *state;
  int64_t now = (int64_t)time(NULL);
  X509 *ca = NULL;
  EVP_PKEY *ca_key = NULL;
  make_pair("Test CA", now - 60, now + 90 * DAY, true, NULL, NULL, NULL, NULL, &ca, &ca_key);
  struct buf cert = BUF_INIT(BUF_MAX_SMALL), key = BUF_INIT(BUF_MAX_SMALL);
  make_pair("*.chain.test", now - 60, now + 30 * DAY, false, ca, ca_key, &cert, &key, NULL, NULL);
  assert_int_equal(x509_cert_to_pem(ca, &cert), 0);
  put(e->cert, cert.data, cert.len);
  put(e->key, key.data, key.len);
  struct tproxy_certs *c = store_new(e);
  struct hs h = handshake_simple(e, c);
  assert_true(h.ok);
  assert_string_equal(h.cn, "*.chain.test");
  assert_int_equal(h.chain_len, 2);
  hs_free(&h);
  struct tproxy_certs_stats st;
  tproxy_certs_stats(c, &st);
  assert_true(st.not_after > now + 29 * DAY && st.not_after <= now + 30 * DAY + 1);
  tproxy_certs_free(c);
  buf_free(&cert);
  buf_free(&key);
  X509_free(ca);
  EVP_PKEY_free(ca_key);
}

static void expect_new_fails(struct env *e, int want) {
  struct tproxy_certs *c = (struct tproxy_certs *)0x1;
  char err[256] = "";
  assert_int_equal(tproxy_certs_new(e->cert, e->key, &c, err, sizeof(err)), want);
  assert_ptr_equal(c, (struct tproxy_certs *)0x1);
  assert_true(err[0] != '\0');
  assert_null(strchr(err, '\n'));
}

static void test_load_errors(void **state) {
  struct env *e = *state;
  struct tproxy_certs *c = NULL;
  char err[256];
  assert_int_equal(tproxy_certs_new(NULL, e->key, &c, err, sizeof(err)), -EINVAL);
  assert_int_equal(tproxy_certs_new(e->cert, e->key, NULL, err, sizeof(err)), -EINVAL);

  /* missing files */
  expect_new_fails(e, -ENOENT);
  write_pair(e->cert, e->key, "*.app.test");
  unlink(e->key);
  expect_new_fails(e, -ENOENT);
  /* a directory */
  assert_int_equal(mkdir(e->key, 0700), 0);
  expect_new_fails(e, -EISDIR);
  assert_int_equal(rmdir(e->key), 0);

  /* garbage */
  write_pair(e->cert, e->key, "*.app.test");
  const char *bad_certs[] = {
      "",
      "hello, not a certificate\n",
      "-----BEGIN CERTIFICATE-----\nAAAA\n",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
  };
  struct buf good_cert = BUF_INIT(BUF_MAX_SMALL), good_key = BUF_INIT(BUF_MAX_SMALL);
  tu_read_file(e->cert, &good_cert);
  tu_read_file(e->key, &good_key);
  for (size_t i = 0; i < sizeof(bad_certs) / sizeof(bad_certs[0]); i++) {
    put(e->cert, bad_certs[i], strlen(bad_certs[i]));
    expect_new_fails(e, -EBADMSG);
  }
  put(e->cert, good_cert.data, good_cert.len);
  const char *bad_keys[] = {
      "",
      "garbage",
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
  };
  for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
    put(e->key, bad_keys[i], strlen(bad_keys[i]));
    expect_new_fails(e, -EBADMSG);
  }
  /* the certificate where the key should be */
  put(e->key, good_cert.data, good_cert.len);
  expect_new_fails(e, -EBADMSG);

  /* a key of another pair */
  struct buf other_key = BUF_INIT(BUF_MAX_SMALL);
  make_pair("*.app.test", 0, 0, false, NULL, NULL, NULL, &other_key, NULL, NULL);
  put(e->key, other_key.data, other_key.len);
  expect_new_fails(e, -EKEYREJECTED);

  /* over the size cap; one byte under it reads (and then fails on content) */
  size_t big_len = TPROXY_CERTS_FILE_MAX + 1;
  char *big = malloc(big_len);
  assert_non_null(big);
  memset(big, 'A', big_len);
  put(e->key, good_key.data, good_key.len);
  put(e->cert, big, big_len);
  expect_new_fails(e, -EFBIG);
  put(e->cert, big, big_len - 1);
  expect_new_fails(e, -EBADMSG);
  put(e->cert, good_cert.data, good_cert.len);
  put(e->key, big, big_len);
  expect_new_fails(e, -EFBIG);
  free(big);

  /* and back to good */
  put(e->key, good_key.data, good_key.len);
  c = store_new(e);
  tproxy_certs_free(c);
  buf_free(&good_cert);
  buf_free(&good_key);
  buf_free(&other_key);
}

static void test_reload(void **state) {
  struct env *e = *state;
  write_pair(e->cert, e->key, "*.old.test");
  struct tproxy_certs *c = store_new(e);
  struct tproxy_certs_stats st;

  /* unchanged */
  capture_begin(e);
  assert_int_equal(tproxy_certs_reload(c, false), 1);
  assert_int_equal(tproxy_certs_reload(c, false), 1);
  char *log = capture_end();
  assert_string_equal(log, "");
  free(log);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.generation, 1);
  assert_int_equal(st.reloads_ok, 0);

  /* a new valid pair */
  write_pair(e->cert, e->key, "*.new.test");
  capture_begin(e);
  assert_int_equal(tproxy_certs_reload(c, false), 0);
  log = capture_end();
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, "*.new.test"));
  assert_non_null(strstr(log, "valid until"));
  free(log);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.generation, 2);
  assert_int_equal(st.reloads_ok, 1);
  assert_int_equal(st.reloads_failed, 0);
  assert_string_equal(st.subject_cn, "*.new.test");
  struct hs h = handshake_simple(e, c);
  assert_true(h.ok);
  assert_string_equal(h.cn, "*.new.test");
  hs_free(&h);
  assert_int_equal(tproxy_certs_reload(c, false), 1);

  /* a broken certificate: the old one stays, one warning */
  const char broken[] = "-----BEGIN CERTIFICATE-----\nAAAA\n";
  put(e->cert, broken, strlen(broken));
  capture_begin(e);
  assert_int_equal(tproxy_certs_reload(c, false), -EBADMSG);
  log = capture_end();
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, "keeping"));
  assert_non_null(strstr(log, e->cert));
  assert_non_null(strstr(log, "*.new.test"));
  free(log);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.generation, 2);
  assert_int_equal(st.reloads_failed, 1);
  assert_int_equal(st.last_error, -EBADMSG);
  assert_string_equal(st.subject_cn, "*.new.test");
  h = handshake_simple(e, c);
  assert_true(h.ok);
  assert_string_equal(h.cn, "*.new.test");
  hs_free(&h);

  /* polls without changes: the same error, quietly, not counted again */
  capture_begin(e);
  assert_int_equal(tproxy_certs_reload(c, false), -EBADMSG);
  assert_int_equal(tproxy_certs_reload(c, false), -EBADMSG);
  log = capture_end();
  assert_string_equal(log, "");
  free(log);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.reloads_failed, 1);

  /* force tries again (and fails again, loudly) */
  capture_begin(e);
  assert_int_equal(tproxy_certs_reload(c, true), -EBADMSG);
  log = capture_end();
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, "keeping"));
  free(log);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.reloads_failed, 2);

  /* a certificate whose key is not on disk: the new file is tried, and fails differently */
  struct buf cert = BUF_INIT(BUF_MAX_SMALL);
  make_pair("*.third.test", 0, 0, false, NULL, NULL, &cert, NULL, NULL, NULL);
  put(e->cert, cert.data, cert.len);
  assert_int_equal(tproxy_certs_reload(c, false), -EKEYREJECTED);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.reloads_failed, 3);
  assert_int_equal(st.last_error, -EKEYREJECTED);
  assert_int_equal(tproxy_certs_reload(c, false), -EKEYREJECTED);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.reloads_failed, 3);
  h = handshake_simple(e, c);
  assert_string_equal(h.cn, "*.new.test");
  hs_free(&h);

  /* a missing file */
  unlink(e->key);
  assert_int_equal(tproxy_certs_reload(c, false), -ENOENT);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.last_error, -ENOENT);
  assert_int_equal(st.reloads_failed, 4);

  /* a good pair again clears the error */
  write_pair(e->cert, e->key, "*.fourth.test");
  assert_int_equal(tproxy_certs_reload(c, false), 0);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.last_error, 0);
  assert_int_equal(st.generation, 3);
  assert_int_equal(st.reloads_ok, 2);
  assert_string_equal(st.subject_cn, "*.fourth.test");

  /* force reloads unchanged files */
  assert_int_equal(tproxy_certs_reload(c, true), 0);
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.generation, 4);
  assert_int_equal(st.reloads_ok, 3);
  assert_int_equal(tproxy_certs_reload(c, false), 1);

  assert_int_equal(tproxy_certs_reload(NULL, false), -EINVAL);
  tproxy_certs_free(c);
  buf_free(&cert);
}

/* certbot's layout: the live files are symlinks that are replaced to point at new files. */
static void test_reload_symlinks(void **state) {
  struct env *e = *state;
  char *a_cert = path_in(e, "archive/cert1.pem"), *a_key = path_in(e, "archive/key1.pem");
  char *b_cert = path_in(e, "archive/cert2.pem"), *b_key = path_in(e, "archive/key2.pem");
  char *tmp = path_in(e, "tmp.lnk");
  write_pair(a_cert, a_key, "*.one.test");
  write_pair(b_cert, b_key, "*.two.test");
  assert_int_equal(symlink(a_cert, e->cert), 0);
  assert_int_equal(symlink(a_key, e->key), 0);
  struct tproxy_certs *c = store_new(e);
  assert_int_equal(tproxy_certs_reload(c, false), 1);

  /* only the key link moves: a mismatched pair, kept out */
  assert_int_equal(symlink(b_key, tmp), 0);
  assert_int_equal(rename(tmp, e->key), 0);
  assert_int_equal(tproxy_certs_reload(c, false), -EKEYREJECTED);
  /* then the certificate link follows: now it loads */
  assert_int_equal(symlink(b_cert, tmp), 0);
  assert_int_equal(rename(tmp, e->cert), 0);
  assert_int_equal(tproxy_certs_reload(c, false), 0);
  struct tproxy_certs_stats st;
  tproxy_certs_stats(c, &st);
  assert_string_equal(st.subject_cn, "*.two.test");
  assert_int_equal(st.last_error, 0);
  assert_int_equal(tproxy_certs_reload(c, false), 1);

  /* the target rewritten in place (new inode behind the same link) */
  write_pair(b_cert, b_key, "*.three.test");
  assert_int_equal(tproxy_certs_reload(c, false), 0);
  tproxy_certs_stats(c, &st);
  assert_string_equal(st.subject_cn, "*.three.test");
  tproxy_certs_free(c);
  free(a_cert), free(a_key), free(b_cert), free(b_key), free(tmp);
}

static const char alpn_both[] = "\x02h2\x08http/1.1";
static const char alpn_h2_only[] = "\x02h2";
static const char alpn_h1_only[] = "\x08http/1.1";
static const char alpn_other[] = "\x06spdy/3\x08http/1.0";

static void test_alpn(void **state) {
  struct env *e = *state;
  write_pair(e->cert, e->key, "*.app.test");
  struct tproxy_certs *c = store_new(e);
  struct {
    bool h2;
    const char *offer;
    size_t len;
    const char *want;
  } cases[] = {
      {true, alpn_both, sizeof(alpn_both) - 1, "h2"},
      {false, alpn_both, sizeof(alpn_both) - 1, "http/1.1"},
      {true, alpn_h2_only, sizeof(alpn_h2_only) - 1, "h2"},
      {false, alpn_h2_only, sizeof(alpn_h2_only) - 1, ""},
      {true, alpn_h1_only, sizeof(alpn_h1_only) - 1, "http/1.1"},
      {false, alpn_h1_only, sizeof(alpn_h1_only) - 1, "http/1.1"},
      {true, alpn_other, sizeof(alpn_other) - 1, ""},
      {false, alpn_other, sizeof(alpn_other) - 1, ""},
      {true, NULL, 0, ""},
      {false, NULL, 0, ""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    for (int v = 0; v < 2; v++) {
      struct hs h = handshake(e, c, cases[i].h2, cases[i].offer, cases[i].len, NULL,
                              v ? TLS1_2_VERSION : 0, NULL);
      assert_true(h.ok);
      assert_string_equal(h.alpn, cases[i].want);
      hs_free(&h);
    }
  }
  /* h2 preferred even when the client lists it second */
  static const char h1_first[] = "\x08http/1.1\x02h2";
  struct hs h = handshake(e, c, true, h1_first, sizeof(h1_first) - 1, NULL, 0, NULL);
  assert_string_equal(h.alpn, "h2");
  hs_free(&h);
  tproxy_certs_free(c);
}

static void test_tls_policy(void **state) {
  struct env *e = *state;
  write_pair(e->cert, e->key, "*.app.test");
  struct tproxy_certs *c = store_new(e);
  /* TLS 1.1 is refused */
  SSL_CTX_set_security_level(e->client, 0);
  assert_int_equal(SSL_CTX_set_min_proto_version(e->client, TLS1_VERSION), 1);
  struct hs h = handshake(e, c, false, NULL, 0, NULL, TLS1_1_VERSION, "ALL:@SECLEVEL=0");
  assert_false(h.ok);
  /* TLS 1.2 without ECDHE AEAD suites is refused */
  h = handshake(e, c, false, NULL, 0, NULL, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256");
  assert_false(h.ok);
  h = handshake(e, c, false, NULL, 0, NULL, TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305");
  assert_true(h.ok);
  hs_free(&h);
  SSL_CTX_set_security_level(e->client, 1);
  assert_int_equal(SSL_CTX_set_min_proto_version(e->client, 0), 1);
  /* the options of the server's SSLs */
  SSL *s = tproxy_certs_ssl_new(c, false);
  assert_non_null(s);
  assert_true(SSL_get_options(s) & SSL_OP_NO_RENEGOTIATION);
  assert_false(SSL_get_options(s) & SSL_OP_NO_TICKET);
  assert_true(SSL_get_mode(s) & SSL_MODE_RELEASE_BUFFERS);
  assert_int_equal(SSL_get_verify_mode(s), SSL_VERIFY_NONE);
  assert_int_equal(SSL_get_min_proto_version(s), TLS1_2_VERSION);
  assert_true(SSL_CTX_get_session_cache_mode(SSL_get_SSL_CTX(s)) & SSL_SESS_CACHE_SERVER);
  /* the caller's app data slot stays free */
  assert_null(SSL_get_app_data(s));
  SSL_free(s);
  assert_null(tproxy_certs_ssl_new(NULL, false));
  tproxy_certs_free(c);
}

static void resumption(struct env *e, int version) {
  write_pair(e->cert, e->key, "*.first.test");
  struct tproxy_certs *c = store_new(e);
  struct hs h1 = handshake(e, c, false, NULL, 0, NULL, version, NULL);
  assert_true(h1.ok);
  assert_false(h1.reused);
  assert_non_null(h1.sess);
  assert_true(SSL_SESSION_is_resumable(h1.sess));

  /* same context */
  struct hs h = handshake(e, c, false, NULL, 0, h1.sess, version, NULL);
  assert_true(h.ok);
  assert_true(h.reused);
  hs_free(&h);

  /* across a reload */
  write_pair(e->cert, e->key, "*.second.test");
  assert_int_equal(tproxy_certs_reload(c, false), 0);
  h = handshake(e, c, false, NULL, 0, h1.sess, version, NULL);
  assert_true(h.ok);
  assert_true(h.reused);
  hs_free(&h);
  /* a full handshake now shows the new certificate */
  h = handshake(e, c, false, NULL, 0, NULL, version, NULL);
  assert_string_equal(h.cn, "*.second.test");
  assert_false(h.reused);
  hs_free(&h);

  /* one rotation: the previous key still resumes, and the client gets a ticket of the new key */
  assert_int_equal(tproxy_certs_tickets_rotate(c), 0);
  h = handshake(e, c, false, NULL, 0, h1.sess, version, NULL);
  assert_true(h.ok);
  assert_true(h.reused);
  struct hs renewed = h;
  /* a second rotation: the first ticket is dead, the renewed one lives */
  assert_int_equal(tproxy_certs_tickets_rotate(c), 0);
  h = handshake(e, c, false, NULL, 0, h1.sess, version, NULL);
  assert_true(h.ok);
  assert_false(h.reused);
  assert_string_equal(h.cn, "*.second.test");
  hs_free(&h);
  h = handshake(e, c, false, NULL, 0, renewed.sess, version, NULL);
  assert_true(h.ok);
  assert_true(h.reused);
  hs_free(&h);

  /* another store's tickets do not resume here */
  struct tproxy_certs *other = store_new(e);
  h = handshake(e, other, false, NULL, 0, renewed.sess, version, NULL);
  assert_true(h.ok);
  assert_false(h.reused);
  hs_free(&h);
  tproxy_certs_free(other);

  hs_free(&renewed);
  hs_free(&h1);
  assert_int_equal(tproxy_certs_tickets_rotate(NULL), -EINVAL);
  tproxy_certs_free(c);
}

static void test_resumption_tls13(void **state) {
  resumption(*state, 0);
}

static void test_resumption_tls12(void **state) {
  resumption(*state, TLS1_2_VERSION);
}

struct worker_arg {
  struct tproxy_certs *c;
  int made;
};

static void *worker(void *p) {
  struct worker_arg *a = p;
  for (int i = 0; i < 3000; i++) {
    SSL *s = tproxy_certs_ssl_new(a->c, i & 1);
    if (s)
      a->made++;
    SSL_free(s);
    struct tproxy_certs_stats st;
    tproxy_certs_stats(a->c, &st);
  }
  return NULL;
}

static void test_concurrent_reload(void **state) {
  struct env *e = *state;
  write_pair(e->cert, e->key, "*.app.test");
  struct tproxy_certs *c = store_new(e);
  pthread_t t[4];
  struct worker_arg a[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (struct worker_arg){.c = c};
    assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
  }
  for (int i = 0; i < 20; i++)
    assert_int_equal(tproxy_certs_reload(c, true), 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(a[i].made, 3000);
  }
  struct tproxy_certs_stats st;
  tproxy_certs_stats(c, &st);
  assert_int_equal(st.generation, 21);
  tproxy_certs_free(c);
}

/* An SSL made before a reload finishes on the old certificate. */
static void test_ssl_outlives_reload(void **state) {
  struct env *e = *state;
  write_pair(e->cert, e->key, "*.old.test");
  struct tproxy_certs *c = store_new(e);
  SSL *s = tproxy_certs_ssl_new(c, false);
  assert_non_null(s);
  write_pair(e->cert, e->key, "*.new.test");
  assert_int_equal(tproxy_certs_reload(c, false), 0);
  X509 *leaf = SSL_get_certificate(s);
  assert_non_null(leaf);
  struct buf cn = BUF_INIT(256);
  assert_int_equal(x509_cert_subject_cn(leaf, &cn), 0);
  assert_true(slice_eq_str(buf_slice(&cn), "*.old.test"));
  buf_free(&cn);
  SSL_free(s);
  tproxy_certs_free(c);
}

static void test_selfsigned(void **state) {
  struct env *e = *state;
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, "app.test"), 0);
  struct stat st_c, st_k;
  assert_int_equal(stat(e->cert, &st_c), 0);
  assert_int_equal(stat(e->key, &st_k), 0);
  assert_int_equal(st_c.st_mode & 07777, 0644);
  assert_int_equal(st_k.st_mode & 07777, 0600);

  struct buf pem = BUF_INIT(BUF_MAX_SMALL);
  tu_read_file(e->cert, &pem);
  X509 *x = NULL;
  assert_int_equal(x509_cert_from_pem(pem.data, pem.len, &x), 0);
  char **names = NULL;
  size_t n = 0;
  assert_int_equal(x509_cert_dns_sans(x, &names, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(names[0], "*.app.test");
  assert_string_equal(names[1], "app.test");
  x509_strv_free(names);
  EVP_PKEY *pub = NULL;
  assert_int_equal(x509_cert_public_key(x, &pub), 0);
  assert_int_equal(key_get_type(pub), KEY_TYPE_P256);
  assert_int_equal(x509_cert_verify_signed_by(x, pub), 0);
  EVP_PKEY_free(pub);
  int64_t nb = 0, na = 0, now = (int64_t)time(NULL);
  assert_int_equal(x509_cert_validity(x, &nb, &na), 0);
  assert_true(nb <= now && nb > now - DAY);
  assert_true(na - nb >= 365 * DAY - 1 && na - nb <= 366 * DAY);
  X509_free(x);

  /* again: nothing changes */
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, "app.test"), 0);
  struct buf pem2 = BUF_INIT(BUF_MAX_SMALL);
  tu_read_file(e->cert, &pem2);
  assert_true(slice_eq(buf_slice(&pem), buf_slice(&pem2)));
  struct stat st2;
  assert_int_equal(stat(e->cert, &st2), 0);
  assert_int_equal(st2.st_ino, st_c.st_ino);
  assert_int_equal(stat(e->key, &st2), 0);
  assert_int_equal(st2.st_ino, st_k.st_ino);

  /* it loads and serves */
  struct tproxy_certs *c = store_new(e);
  struct hs h = handshake_simple(e, c);
  assert_string_equal(h.cn, "*.app.test");
  hs_free(&h);
  tproxy_certs_free(c);

  /* a key that does not match: replaced */
  struct buf other_key = BUF_INIT(BUF_MAX_SMALL);
  make_pair("*.app.test", 0, 0, false, NULL, NULL, NULL, &other_key, NULL, NULL);
  put(e->key, other_key.data, other_key.len);
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, "app.test"), 0);
  buf_reset(&pem2);
  tu_read_file(e->cert, &pem2);
  assert_false(slice_eq(buf_slice(&pem), buf_slice(&pem2)));
  c = store_new(e);
  tproxy_certs_free(c);

  /* an expired pair: replaced */
  struct buf oc = BUF_INIT(BUF_MAX_SMALL), ok = BUF_INIT(BUF_MAX_SMALL);
  make_pair("*.app.test", now - 30 * DAY, now - DAY, false, NULL, NULL, &oc, &ok, NULL, NULL);
  put(e->cert, oc.data, oc.len);
  put(e->key, ok.data, ok.len);
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, "app.test"), 0);
  buf_reset(&pem2);
  tu_read_file(e->cert, &pem2);
  assert_false(slice_eq(buf_slice(&oc), buf_slice(&pem2)));
  c = store_new(e);
  struct tproxy_certs_stats st;
  tproxy_certs_stats(c, &st);
  assert_true(st.not_after > now + 364 * DAY);
  tproxy_certs_free(c);

  /* another domain: replaced */
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, "other.test"), 0);
  c = store_new(e);
  tproxy_certs_stats(c, &st);
  assert_string_equal(st.subject_cn, "*.other.test");
  tproxy_certs_free(c);

  /* a missing key: both rewritten */
  unlink(e->key);
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, "other.test"), 0);
  assert_int_equal(stat(e->key, &st2), 0);
  assert_int_equal(st2.st_mode & 07777, 0600);
  c = store_new(e);
  tproxy_certs_free(c);

  /* bad arguments */
  assert_int_equal(tproxy_certs_selfsigned_write(NULL, e->key, "app.test"), -EINVAL);
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, NULL, "app.test"), -EINVAL);
  assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, NULL), -EINVAL);
  const char *bad_domains[] = {"", ".app.test", "app..test", "app.test.", "a/b", "a b",
                               "0123456789012345678901234567890123456789012345678901234567890.x"};
  for (size_t i = 0; i < sizeof(bad_domains) / sizeof(bad_domains[0]); i++)
    assert_int_equal(tproxy_certs_selfsigned_write(e->cert, e->key, bad_domains[i]), -EINVAL);
  /* a directory that does not exist */
  char *nodir = str_printf("%s/nope/cert.pem", e->dir);
  assert_true(tproxy_certs_selfsigned_write(nodir, e->key, "app.test") < 0);
  free(nodir);

  buf_free(&pem);
  buf_free(&pem2);
  buf_free(&other_key);
  buf_free(&oc);
  buf_free(&ok);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)

int main(void) {
  log_level_set(LOG_LVL_INFO);
  const struct CMUnitTest tests[] = {
      T(test_load_and_stats),   T(test_chain),           T(test_load_errors),
      T(test_reload),           T(test_reload_symlinks), T(test_alpn),
      T(test_tls_policy),       T(test_resumption_tls13), T(test_resumption_tls12),
      T(test_concurrent_reload), T(test_ssl_outlives_reload), T(test_selfsigned),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
