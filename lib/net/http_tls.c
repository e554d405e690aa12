/* Server TLS contexts: certificate + key (+ chain), TLS 1.2+, optional client verification. */
#include "net/http_tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"

#define TLS_FILE_MAX ((size_t)1024 * 1024)

static const unsigned char session_ctx_id[] = "dstack-http";

static int no_password_cb(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return 0;
}

int http_tls_ctx_new_mem(const struct http_tls_mem *m, SSL_CTX **ret) {
  if (!m || !m->cert || !m->key || !ret)
    return -EINVAL;
  int r = -EIO;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx)
    return -ENOMEM;
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
    goto out;
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  if (m->no_resumption) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (!SSL_CTX_set_num_tickets(ctx, 0))
      goto out;
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  if (!SSL_CTX_set_session_id_context(ctx, session_ctx_id, sizeof(session_ctx_id) - 1))
    goto out;
  if (!SSL_CTX_use_certificate(ctx, m->cert))
    goto out;
  for (int i = 0; m->chain && i < sk_X509_num(m->chain); i++)
    if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(m->chain, i)))
      goto out;
  if (!SSL_CTX_use_PrivateKey(ctx, m->key) || !SSL_CTX_check_private_key(ctx)) {
    r = -EBADMSG;
    goto out;
  }
  if (m->client_cas) {
    if (sk_X509_num(m->client_cas) <= 0) {
      r = -EINVAL;
      goto out;
    }
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    for (int i = 0; i < sk_X509_num(m->client_cas); i++) {
      X509 *ca = sk_X509_value(m->client_cas, i);
      if (!X509_STORE_add_cert(st, ca) || !SSL_CTX_add_client_CA(ctx, ca))
        goto out;
    }
    SSL_CTX_set_verify(ctx,
                       SSL_VERIFY_PEER |
                           (m->client_cert_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
                       NULL);
    SSL_CTX_set_verify_depth(ctx, 8);
  }
  *ret = ctx;
  ctx = NULL;
  r = 0;
out:
  if (r < 0)
    ERR_clear_error();
  SSL_CTX_free(ctx);
  return r;
}

/* All certificates of a PEM text. */
static int pem_certs(const struct buf *b, STACK_OF(X509) **ret) {
  BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
  STACK_OF(X509) *sk = sk_X509_new_null();
  int r = -ENOMEM;
  if (!bio || !sk)
    goto out;
  X509 *x;
  while ((x = PEM_read_bio_X509(bio, NULL, no_password_cb, NULL))) {
    if (!sk_X509_push(sk, x)) {
      X509_free(x);
      goto out;
    }
  }
  ERR_clear_error(); /* end of input */
  if (sk_X509_num(sk) == 0) {
    r = -EBADMSG;
    goto out;
  }
  *ret = sk;
  sk = NULL;
  r = 0;
out:
  BIO_free(bio);
  sk_X509_pop_free(sk, X509_free);
  return r;
}

int http_tls_ctx_new(const struct http_tls_files *f, SSL_CTX **ret) {
  if (!f || !f->cert_file || !f->key_file || !ret)
    return -EINVAL;
  struct buf cb = {0}, kb = {0}, cab = {0};
  STACK_OF(X509) *certs = NULL, *cas = NULL;
  EVP_PKEY *key = NULL;
  BIO *kbio = NULL;
  int r = file_read_capped(f->cert_file, TLS_FILE_MAX, false, &cb);
  if (r < 0)
    goto out;
  r = pem_certs(&cb, &certs);
  if (r < 0)
    goto out;
  r = file_read_capped(f->key_file, TLS_FILE_MAX, true, &kb);
  if (r < 0)
    goto out;
  kbio = BIO_new_mem_buf(kb.data, (int)kb.len);
  if (!kbio) {
    r = -ENOMEM;
    goto out;
  }
  key = PEM_read_bio_PrivateKey(kbio, NULL, no_password_cb, NULL);
  if (!key) {
    ERR_clear_error();
    r = -EBADMSG;
    goto out;
  }
  if (f->client_ca_file) {
    r = file_read_capped(f->client_ca_file, TLS_FILE_MAX, false, &cab);
    if (r < 0)
      goto out;
    r = pem_certs(&cab, &cas);
    if (r < 0)
      goto out;
  }
  X509 *leaf = sk_X509_shift(certs);
  struct http_tls_mem m = {.cert = leaf,
                           .chain = certs,
                           .key = key,
                           .client_cas = cas,
                           .client_cert_optional = f->client_cert_optional,
                           .no_resumption = f->no_resumption};
  r = http_tls_ctx_new_mem(&m, ret);
  X509_free(leaf);
out:
  BIO_free(kbio);
  EVP_PKEY_free(key);
  sk_X509_pop_free(certs, X509_free);
  sk_X509_pop_free(cas, X509_free);
  buf_free(&cb);
  buf_free(&kb);
  buf_free(&cab);
  return r;
}
