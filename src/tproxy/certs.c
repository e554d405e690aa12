/* The wildcard certificate store of the TLS-terminating proxy: the current server SSL_CTX, its
 * hot reload, ALPN selection and the session ticket keys shared by every context. */
#include "tproxy_certs.h"

#include <errno.h>
#include <limits.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"

#define TICKET_NAME_LEN 16
#define TICKET_AES_LEN 32  /* AES-256-CBC */
#define TICKET_HMAC_LEN 32 /* HMAC-SHA256 */
#define SELFSIGNED_VALID_S ((int64_t)365 * 86400)
/* Longest X.509 commonName (RFC 5280 ub-common-name). */
#define CN_MAX 64

static const unsigned char session_ctx_id[] = "dstack-tproxy";
static const char tls12_ciphers[] = "ECDHE+AESGCM:ECDHE+CHACHA20";

struct ticket_key {
  unsigned char name[TICKET_NAME_LEN];
  unsigned char aes[TICKET_AES_LEN];
  unsigned char hmac[TICKET_HMAC_LEN];
};

/* What a path leads to, as far as reload cares: the stat of the file symlinks end at, and the
 * resolved path. err != 0 when it could not be stat'ed. */
struct file_id {
  int err;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  char *real;
};

struct tproxy_certs {
  char *cert_path;
  char *key_path;

  pthread_mutex_t lock; /* cur and st */
  SSL_CTX *cur;
  struct tproxy_certs_stats st;

  /* Main thread only (tproxy_certs_new / tproxy_certs_reload). */
  struct file_id loaded[2]; /* cert, key of the last successful load */
  struct file_id failed[2]; /* of the last failed attempt, when have_failed */
  bool have_failed;

  pthread_mutex_t tk_lock; /* the ticket keys */
  struct ticket_key tk_cur;
  struct ticket_key tk_prev;
  bool tk_have_prev;
  int64_t tk_started; /* monotonic seconds when tk_cur was made */
};

/* ex_data slots: the h2 flag of an SSL, the store of an SSL_CTX. */
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ssl_h2_idx = -1;
static int ctx_store_idx = -1;

static void ex_indexes_init(void) {
  ssl_h2_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
  ctx_store_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int64_t mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec;
}

/* ---------------------------------------------------------------- file identities */

static void file_id_clear(struct file_id *f) {
  free(f->real);
  memset(f, 0, sizeof(*f));
}

static void file_id_get(const char *path, struct file_id *ret) {
  struct stat st;
  memset(ret, 0, sizeof(*ret));
  if (stat(path, &st) < 0) {
    ret->err = -errno;
    return;
  }
  ret->dev = st.st_dev;
  ret->ino = st.st_ino;
  ret->size = st.st_size;
  ret->mtime = st.st_mtim;
  ret->real = realpath(path, NULL); /* NULL (vanished, ENOMEM): compared as such */
}

static bool file_id_equal(const struct file_id *a, const struct file_id *b) {
  if (a->err || b->err)
    return a->err == b->err;
  if (a->dev != b->dev || a->ino != b->ino || a->size != b->size ||
      a->mtime.tv_sec != b->mtime.tv_sec || a->mtime.tv_nsec != b->mtime.tv_nsec)
    return false;
  if (!a->real || !b->real)
    return !a->real && !b->real;
  return strcmp(a->real, b->real) == 0;
}

static bool ids_equal(const struct file_id a[2], const struct file_id b[2]) {
  return file_id_equal(&a[0], &b[0]) && file_id_equal(&a[1], &b[1]);
}

static void ids_move(struct file_id dst[2], struct file_id src[2]) {
  for (int i = 0; i < 2; i++) {
    file_id_clear(&dst[i]);
    dst[i] = src[i];
    memset(&src[i], 0, sizeof(src[i]));
  }
}

/* ---------------------------------------------------------------- session tickets */

static int ticket_key_make(struct ticket_key *k) {
  if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
      RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1) {
    ERR_clear_error();
    secure_wipe(k, sizeof(*k));
    return -EIO;
  }
  return 0;
}

/* With tk_lock held: a new current key, the current one becoming the previous. */
static int tickets_rotate_locked(struct tproxy_certs *c, int64_t now) {
  struct ticket_key k;
  int r = ticket_key_make(&k);
  if (r < 0)
    return r;
  c->tk_prev = c->tk_cur;
  c->tk_have_prev = true;
  c->tk_cur = k;
  c->tk_started = now;
  secure_wipe(&k, sizeof(k));
  return 0;
}

/* With tk_lock held: the rotations due by now. After two periods or more both keys are stale. */
static void tickets_age_locked(struct tproxy_certs *c, int64_t now) {
  int64_t age = now - c->tk_started;
  if (age < TPROXY_CERTS_TICKET_ROTATE_S)
    return;
  if (tickets_rotate_locked(c, now) < 0)
    return; /* keep the old key rather than none; tried again on the next ticket */
  if (age >= 2 * (int64_t)TPROXY_CERTS_TICKET_ROTATE_S) {
    secure_wipe(&c->tk_prev, sizeof(c->tk_prev));
    c->tk_have_prev = false;
  }
}

static int ticket_key_apply(const struct ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                            EVP_MAC_CTX *hctx, int enc) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
      OSSL_PARAM_construct_end(),
  };
  if (!EVP_MAC_CTX_set_params(hctx, params))
    return -EIO;
  int ok = enc ? EVP_EncryptInit_ex2(cctx, EVP_aes_256_cbc(), k->aes, iv, NULL)
               : EVP_DecryptInit_ex2(cctx, EVP_aes_256_cbc(), k->aes, iv, NULL);
  return ok ? 0 : -EIO;
}

/* OpenSSL's ticket key callback: -1 error, 0 no such key (full handshake), 1 ok, 2 ok but issue
 * a new ticket (made with the previous key). */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc) {
  struct tproxy_certs *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), ctx_store_idx);
  if (!c)
    return -1;
  int ret;
  pthread_mutex_lock(&c->tk_lock);
  tickets_age_locked(c, mono_now());
  if (enc) {
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
      ret = -1;
    else {
      memcpy(key_name, c->tk_cur.name, TICKET_NAME_LEN);
      ret = ticket_key_apply(&c->tk_cur, iv, cctx, hctx, 1) < 0 ? -1 : 1;
    }
  } else if (memcmp(key_name, c->tk_cur.name, TICKET_NAME_LEN) == 0)
    ret = ticket_key_apply(&c->tk_cur, iv, cctx, hctx, 0) < 0 ? -1 : 1;
  else if (c->tk_have_prev && memcmp(key_name, c->tk_prev.name, TICKET_NAME_LEN) == 0)
    ret = ticket_key_apply(&c->tk_prev, iv, cctx, hctx, 0) < 0 ? -1 : 2;
  else
    ret = 0;
  pthread_mutex_unlock(&c->tk_lock);
  if (ret < 0)
    ERR_clear_error();
  return ret;
}

int tproxy_certs_tickets_rotate(struct tproxy_certs *c) {
  if (!c)
    return -EINVAL;
  pthread_mutex_lock(&c->tk_lock);
  int r = tickets_rotate_locked(c, mono_now());
  pthread_mutex_unlock(&c->tk_lock);
  return r;
}

/* ---------------------------------------------------------------- ALPN */

static const unsigned char alpn_h2[] = "h2";
static const unsigned char alpn_http11[] = "http/1.1";

/* 1 when the wire-format protocol list in offers proto, 0 when not, -1 when it is malformed. */
static int alpn_offered(const unsigned char *in, unsigned inlen, const unsigned char *proto,
                        size_t len) {
  size_t off = 0;
  bool found = false;
  while (off < inlen) {
    size_t n = in[off++];
    if (n == 0 || n > inlen - off)
      return -1;
    if (n == len && memcmp(in + off, proto, len) == 0)
      found = true;
    off += n;
  }
  return found;
}

static int alpn_select_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned inlen, void *arg) {
  (void)arg;
  bool h2 = SSL_get_ex_data(s, ssl_h2_idx) != NULL;
  int r;
  if (h2 && (r = alpn_offered(in, inlen, alpn_h2, sizeof(alpn_h2) - 1)) != 0) {
    if (r < 0)
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = alpn_h2;
    *outlen = sizeof(alpn_h2) - 1;
    return SSL_TLSEXT_ERR_OK;
  }
  r = alpn_offered(in, inlen, alpn_http11, sizeof(alpn_http11) - 1);
  if (r < 0)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  if (r == 0)
    return SSL_TLSEXT_ERR_NOACK;
  *out = alpn_http11;
  *outlen = sizeof(alpn_http11) - 1;
  return SSL_TLSEXT_ERR_OK;
}

/* ---------------------------------------------------------------- loading */

static int no_password_cb(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return 0;
}

/* The loaded pair, ready to be swapped in. */
struct loaded {
  SSL_CTX *ctx;
  int64_t not_after;
  char cn[256];
};

static int read_file(const char *path, const char *what, bool secret, struct buf *out, char *err,
                     size_t errlen) {
  int r = file_read_capped(path, TPROXY_CERTS_FILE_MAX, secret, out);
  if (r == -EFBIG)
    return str_err(err, errlen, r, "%s %s: larger than %zu bytes", what, path, TPROXY_CERTS_FILE_MAX);
  if (r < 0)
    return str_err(err, errlen, r, "%s %s: %s", what, path, strerror(-r));
  return 0;
}

static int ctx_build(struct tproxy_certs *c, STACK_OF(X509) * chain, EVP_PKEY *key,
                     SSL_CTX **ret) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx)
    return -ENOMEM;
  int r = -EIO;
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
      !SSL_CTX_set_cipher_list(ctx, tls12_ciphers))
    goto out;
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  /* TLS 1.3: one ticket per handshake, not OpenSSL's two (a browser resumes with one; each
   * costs an encryption and a record on every new connection). */
  if (!SSL_CTX_set_num_tickets(ctx, 1))
    goto out;
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  if (!SSL_CTX_set_session_id_context(ctx, session_ctx_id, sizeof(session_ctx_id) - 1) ||
      !SSL_CTX_set_ex_data(ctx, ctx_store_idx, c) ||
      !SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb))
    goto out;
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
  if (!SSL_CTX_use_certificate(ctx, sk_X509_value(chain, 0)))
    goto out;
  for (int i = 1; i < sk_X509_num(chain); i++)
    if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)))
      goto out;
  if (!SSL_CTX_use_PrivateKey(ctx, key))
    goto out;
  if (!SSL_CTX_check_private_key(ctx)) {
    r = -EKEYREJECTED;
    goto out;
  }
  *ret = TAKE_PTR(ctx);
  r = 0;
out:
  SSL_CTX_free(ctx);
  return r;
}

/* Reads and checks the pair; on failure err says what is wrong. */
static int pair_load(struct tproxy_certs *c, const char *cert_path, const char *key_path,
                     struct loaded *ret, char *err, size_t errlen) {
  _cleanup_buf_ struct buf cpem = {0};
  _cleanup_buf_ struct buf kpem = {0};
  _cleanup_x509_chain_ STACK_OF(X509) *chain = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_(BIO_free_allp) BIO *bio = NULL;
  char ossl[256];
  int r;

  memset(ret, 0, sizeof(*ret));
  if ((r = read_file(cert_path, "certificate", false, &cpem, err, errlen)) < 0 ||
      (r = read_file(key_path, "key", true, &kpem, err, errlen)) < 0)
    return r;

  r = cpem.len ? x509_chain_from_pem(cpem.data, cpem.len, &chain) : -ENOENT;
  if (r == -ENOMEM)
    return str_err(err, errlen, r, "certificate %s: out of memory", cert_path);
  if (r == -ENOENT)
    return str_err(err, errlen, -EBADMSG, "certificate %s: no PEM certificate", cert_path);
  if (r == -ENOBUFS)
    return str_err(err, errlen, -EBADMSG, "certificate %s: more than %d certificates", cert_path,
                X509_CHAIN_MAX);
  if (r < 0)
    return str_err(err, errlen, -EBADMSG, "certificate %s: malformed PEM certificate", cert_path);

  if (kpem.len > INT_MAX || !(bio = BIO_new_mem_buf(kpem.data ? kpem.data : (void *)"",
                                                    (int)kpem.len)))
    return str_err(err, errlen, -ENOMEM, "key %s: out of memory", key_path);
  key = PEM_read_bio_PrivateKey(bio, NULL, no_password_cb, NULL);
  if (!key) {
    ossl_error_string(ossl, sizeof(ossl));
    return str_err(err, errlen, -EBADMSG, "key %s: no readable PEM private key (%s)", key_path,
                ossl[0] ? ossl : "empty");
  }

  X509 *leaf = sk_X509_value(chain, 0);
  if (X509_check_private_key(leaf, key) != 1) {
    ERR_clear_error();
    return str_err(err, errlen, -EKEYREJECTED, "key %s does not match the certificate %s", key_path,
                cert_path);
  }
  if ((r = x509_cert_validity(leaf, NULL, &ret->not_after)) < 0)
    return str_err(err, errlen, -EBADMSG, "certificate %s: unreadable validity", cert_path);
  _cleanup_buf_ struct buf cn = BUF_INIT(sizeof(ret->cn) - 1);
  if (x509_cert_subject_cn(leaf, &cn) >= 0 && buf_terminate(&cn) >= 0)
    memcpy(ret->cn, cn.data, cn.len + 1);
  ERR_clear_error();

  if ((r = ctx_build(c, chain, key, &ret->ctx)) < 0) {
    ossl_error_string(ossl, sizeof(ossl));
    if (r == -EKEYREJECTED)
      return str_err(err, errlen, r, "key %s does not match the certificate %s", key_path,
                  cert_path);
    return str_err(err, errlen, r, "building the TLS context for %s: %s", cert_path,
                ossl[0] ? ossl : strerror(-r));
  }
  return 0;
}

static void time_str(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M:%SZ", &tm))
    snprintf(out, 32, "%lld", (long long)t);
}

/* ---------------------------------------------------------------- the store */

int tproxy_certs_new(const char *cert_path, const char *key_path, struct tproxy_certs **ret,
                     char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!cert_path || !key_path || !*cert_path || !*key_path || !ret)
    return str_err(err, errlen, -EINVAL, "certificate and key paths are required");
  pthread_once(&ex_once, ex_indexes_init);
  if (ssl_h2_idx < 0 || ctx_store_idx < 0)
    return str_err(err, errlen, -ENOMEM, "out of memory");

  struct tproxy_certs *c = calloc(1, sizeof(*c));
  if (!c)
    return str_err(err, errlen, -ENOMEM, "out of memory");
  pthread_mutex_init(&c->lock, NULL);
  pthread_mutex_init(&c->tk_lock, NULL);
  int r;
  c->cert_path = strdup(cert_path);
  c->key_path = strdup(key_path);
  if (!c->cert_path || !c->key_path) {
    r = str_err(err, errlen, -ENOMEM, "out of memory");
    goto out;
  }
  if ((r = ticket_key_make(&c->tk_cur)) < 0) {
    r = str_err(err, errlen, r, "no random bytes for the session ticket key");
    goto out;
  }
  c->tk_started = mono_now();

  /* stat first: a change while reading shows up on the next poll */
  file_id_get(cert_path, &c->loaded[0]);
  file_id_get(key_path, &c->loaded[1]);
  struct loaded l;
  if ((r = pair_load(c, cert_path, key_path, &l, err, errlen)) < 0)
    goto out;
  c->cur = l.ctx;
  c->st.generation = 1;
  c->st.not_after = l.not_after;
  memcpy(c->st.subject_cn, l.cn, sizeof(c->st.subject_cn));
  *ret = TAKE_PTR(c);
  r = 0;
out:
  tproxy_certs_free(c);
  return r;
}

void tproxy_certs_free(struct tproxy_certs *c) {
  if (!c)
    return;
  SSL_CTX_free(c->cur);
  for (int i = 0; i < 2; i++) {
    file_id_clear(&c->loaded[i]);
    file_id_clear(&c->failed[i]);
  }
  secure_wipe(&c->tk_cur, sizeof(c->tk_cur));
  secure_wipe(&c->tk_prev, sizeof(c->tk_prev));
  pthread_mutex_destroy(&c->lock);
  pthread_mutex_destroy(&c->tk_lock);
  free(c->cert_path);
  free(c->key_path);
  free(c);
}

SSL *tproxy_certs_ssl_new(struct tproxy_certs *c, bool h2) {
  if (!c)
    return NULL;
  pthread_mutex_lock(&c->lock);
  SSL *s = SSL_new(c->cur);
  pthread_mutex_unlock(&c->lock);
  if (!s) {
    ERR_clear_error();
    return NULL;
  }
  if (!SSL_set_ex_data(s, ssl_h2_idx, h2 ? (void *)1 : NULL)) {
    ERR_clear_error();
    SSL_free(s);
    return NULL;
  }
  return s;
}

int tproxy_certs_reload(struct tproxy_certs *c, bool force) {
  if (!c)
    return -EINVAL;
  pthread_mutex_lock(&c->tk_lock);
  tickets_age_locked(c, mono_now());
  pthread_mutex_unlock(&c->tk_lock);

  struct file_id now[2];
  file_id_get(c->cert_path, &now[0]);
  file_id_get(c->key_path, &now[1]);
  int r;
  if (!force && ids_equal(now, c->loaded)) {
    /* back to what is being served (a failed pair was moved away again) */
    if (c->have_failed) {
      c->have_failed = false;
      pthread_mutex_lock(&c->lock);
      c->st.last_error = 0;
      pthread_mutex_unlock(&c->lock);
    }
    r = 1;
    goto out;
  }
  if (!force && c->have_failed && ids_equal(now, c->failed)) {
    pthread_mutex_lock(&c->lock);
    r = c->st.last_error;
    pthread_mutex_unlock(&c->lock);
    goto out;
  }

  char err[512] = "";
  struct loaded l;
  r = pair_load(c, c->cert_path, c->key_path, &l, err, sizeof(err));
  pthread_mutex_lock(&c->lock);
  if (r < 0) {
    c->st.reloads_failed++;
    c->st.last_error = r;
    char na[32], cn[sizeof(c->st.subject_cn)];
    time_str(c->st.not_after, na);
    memcpy(cn, c->st.subject_cn, sizeof(cn));
    pthread_mutex_unlock(&c->lock);
    ids_move(c->failed, now);
    c->have_failed = true;
    log_warn("certificate reload from %s failed: %s; keeping the current certificate (CN %s, "
             "valid until %s)",
             c->cert_path, err, cn[0] ? cn : "-", na);
    goto out;
  }
  SSL_CTX *old = c->cur;
  c->cur = l.ctx;
  c->st.generation++;
  c->st.reloads_ok++;
  c->st.last_error = 0;
  c->st.not_after = l.not_after;
  memcpy(c->st.subject_cn, l.cn, sizeof(c->st.subject_cn));
  uint64_t gen = c->st.generation;
  pthread_mutex_unlock(&c->lock);
  SSL_CTX_free(old); /* SSLs in flight hold their own reference */
  ids_move(c->loaded, now);
  c->have_failed = false;
  char na[32];
  time_str(l.not_after, na);
  log_info("certificate reloaded from %s: CN %s, valid until %s (generation %llu)", c->cert_path,
           l.cn[0] ? l.cn : "-", na, (unsigned long long)gen);
  r = 0;
out:
  file_id_clear(&now[0]);
  file_id_clear(&now[1]);
  return r;
}

void tproxy_certs_stats(const struct tproxy_certs *c, struct tproxy_certs_stats *ret) {
  memset(ret, 0, sizeof(*ret));
  if (!c)
    return;
  struct tproxy_certs *m = (struct tproxy_certs *)c;
  pthread_mutex_lock(&m->lock);
  *ret = m->st;
  pthread_mutex_unlock(&m->lock);
}

/* ---------------------------------------------------------------- dev mode */

static bool domain_ok(const char *d) {
  size_t n = strlen(d);
  if (n == 0 || n + 2 > CN_MAX || d[0] == '.' || d[0] == '-' || d[n - 1] == '.')
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = d[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '.'))
      return false;
    if (ch == '.' && d[i + 1] == '.')
      return false;
  }
  return true;
}

/* 1 when the files hold a matching, unexpired pair for cn; 0 otherwise. */
static int selfsigned_present(const char *cert_path, const char *key_path, const char *cn) {
  struct stat st;
  if (stat(cert_path, &st) < 0 || stat(key_path, &st) < 0)
    return 0;
  _cleanup_buf_ struct buf cpem = {0};
  _cleanup_buf_ struct buf kpem = {0};
  _cleanup_(X509_freep) X509 *cert = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_buf_ struct buf got = BUF_INIT(256);
  int64_t na = 0;
  bool ok = read_file(cert_path, "certificate", false, &cpem, NULL, 0) >= 0 &&
            read_file(key_path, "key", true, &kpem, NULL, 0) >= 0 &&
            x509_cert_from_pem(cpem.data ? (void *)cpem.data : (void *)"", cpem.len, &cert) >= 0 &&
            key_from_pem_or_der(kpem.data ? (void *)kpem.data : (void *)"", kpem.len, &key) >= 0 &&
            X509_check_private_key(cert, key) == 1 && x509_cert_validity(cert, NULL, &na) >= 0 &&
            na > (int64_t)time(NULL) && x509_cert_subject_cn(cert, &got) >= 0 &&
            slice_eq_str(buf_slice(&got), cn);
  ERR_clear_error();
  return ok;
}

int tproxy_certs_selfsigned_write(const char *cert_path, const char *key_path,
                                  const char *base_domain) {
  if (!cert_path || !key_path || !base_domain || !*cert_path || !*key_path ||
      !domain_ok(base_domain))
    return -EINVAL;
  _cleanup_free_ char *wild = str_printf("*.%s", base_domain);
  if (!wild)
    return -ENOMEM;
  if (selfsigned_present(cert_path, key_path, wild))
    return 0;

  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_(X509_freep) X509 *cert = NULL;
  _cleanup_buf_ struct buf cpem = BUF_INIT(BUF_MAX_SMALL);
  _cleanup_buf_ struct buf kpem = {0};
  buf_init_secret(&kpem, BUF_MAX_SMALL);
  const char *sans[] = {wild, base_domain};
  int64_t now = (int64_t)time(NULL);
  struct x509_params p = {
      .subject_cn = wild,
      .dns_sans = sans,
      .n_dns_sans = ARRAY_SIZE(sans),
      .explicit_no_ca = true,
      .path_len = -1,
      .key_usage = X509_KU_DIGITAL_SIGNATURE,
      .ext_key_usage = X509_EKU_SERVER_AUTH,
      .not_before = now,
      .not_after = now + SELFSIGNED_VALID_S,
      .skid_akid = true,
  };
  int r;
  if ((r = key_p256_generate(&key)) < 0 || (r = x509_cert_build(&p, key, NULL, NULL, &cert)) < 0 ||
      (r = x509_cert_to_pem(cert, &cpem)) < 0 || (r = key_to_pkcs8_pem(key, &kpem)) < 0)
    return r;
  /* the key first: a crash in between leaves a mismatched pair, replaced on the next call */
  if ((r = file_write_atomic(key_path, kpem.data, kpem.len, 0600)) < 0)
    return r;
  return file_write_atomic(cert_path, cpem.data, cpem.len, 0644);
}
