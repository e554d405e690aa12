/* Server-side TLS contexts for http_server_listen_tls(): TLS 1.2+, session tickets on, optional
 * client-certificate verification (mutual TLS).
 *
 * Errors: -EINVAL bad argument, -ENOENT/-EACCES/... reading files, -EBADMSG unparsable PEM or a
 * key that does not match the certificate, -EFBIG file over 1 MiB, -EIO other OpenSSL failure. */
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>

struct http_tls_files {
  const char *cert_file;      /* PEM: leaf certificate first, then its chain */
  const char *key_file;       /* PEM private key (read into wiped memory, never logged) */
  const char *client_ca_file; /* PEM CA certificates for client certs; NULL = no client certs */
  bool client_cert_optional;  /* with client_ca_file: ask for a cert but accept none */
  bool no_resumption;         /* no session tickets (TLS 1.2/1.3) and no server session cache */
};

struct http_tls_mem {
  X509 *cert;                   /* leaf (a reference is taken) */
  STACK_OF(X509) *chain;        /* intermediates, may be NULL (copied) */
  EVP_PKEY *key;                /* private key of cert (a reference is taken) */
  STACK_OF(X509) *client_cas;   /* trust anchors for client certs; NULL = no client certs */
  bool client_cert_optional;
  /* For servers whose clients never resume (one request per connection, e.g. the KMS): no
   * TLS 1.3 tickets, no TLS 1.2 tickets, no server-side session cache. Default (false): on. */
  bool no_resumption;
};

int http_tls_ctx_new(const struct http_tls_files *f, SSL_CTX **ret);
int http_tls_ctx_new_mem(const struct http_tls_mem *m, SSL_CTX **ret);
