/* The wildcard certificate store of the TLS-terminating proxy.
 *
 * Holds the current server SSL_CTX built from a PEM chain (leaf first, then intermediates) and a
 * PEM private key, typically certbot's live/cert.pem and live/key.pem. Worker threads make SSLs
 * from it (tproxy_certs_ssl_new) while the main thread reloads it (tproxy_certs_reload): the
 * current context is swapped under a mutex, and an SSL keeps a reference on the context it was
 * made from, so connections in flight finish on the old certificate.
 *
 * Contexts: TLS 1.2 minimum, ECDHE AEAD ciphers for TLS 1.2, no renegotiation, no client
 * certificates, released idle buffers, a server session cache, and session tickets whose keys
 * belong to the store (random at start, rotated every TPROXY_CERTS_TICKET_ROTATE_S, the previous
 * key still accepted) so a session resumes across a certificate reload.
 *
 * ALPN: an SSL made for h2 selects "h2" when the client offers it; one made for HTTP/1 selects
 * "http/1.1" when offered, never "h2". Otherwise no protocol is selected (the handshake goes on
 * without ALPN).
 *
 * Errors: -EINVAL bad argument, -ENOENT missing file, -EFBIG file over TPROXY_CERTS_FILE_MAX,
 * -EBADMSG no / malformed PEM certificate or private key, -EKEYREJECTED key does not match the
 * leaf certificate, -ENOMEM, -EIO unexpected OpenSSL failure, other -errno from the file system. */
#pragma once

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest certificate or key file accepted. */
#define TPROXY_CERTS_FILE_MAX ((size_t)1024 * 1024)
/* Session ticket keys: a new one this often; tickets of the one before are still accepted. */
#define TPROXY_CERTS_TICKET_ROTATE_S (12 * 3600)

struct tproxy_certs;

struct tproxy_certs_stats {
  uint64_t reloads_ok;     /* successful reloads (the first load is not counted) */
  uint64_t reloads_failed; /* reload attempts that kept the old certificate */
  uint64_t generation;     /* 1 after tproxy_certs_new, +1 per successful reload */
  int64_t not_after;       /* current leaf's notAfter, unix seconds */
  int last_error;          /* 0, or the -errno of the files on disk when their last reload failed */
  char subject_cn[256];    /* current leaf's subject commonName ("" when it has none) */
};

/* Loads the pair and builds the first context. On failure err (when errlen > 0) says what is
 * wrong in one line (nothing is logged). */
int tproxy_certs_new(const char *cert_path, const char *key_path, struct tproxy_certs **ret,
                     char *err, size_t errlen);
/* Call only once every SSL made from c is freed. NULL is fine. */
void tproxy_certs_free(struct tproxy_certs *c);

/* A new server SSL on the current context, with the ALPN choice described above; NULL when out
 * of memory. Thread-safe. */
SSL *tproxy_certs_ssl_new(struct tproxy_certs *c, bool h2);

/* Re-stats both paths (the files symlinks lead to: device, inode, size, mtime, and the resolved
 * path). Unchanged since the last successful load and !force: returns 1. Otherwise loads the
 * pair; on success swaps the context in, logs the new subject and notAfter, returns 0. On failure
 * the current context stays, one warning is logged, reloads_failed counts it, and the -errno is
 * returned. A failed pair is not tried again until one of the files changes (or force): such
 * polls return the remembered -errno quietly. Call from one thread at a time (the main loop). */
int tproxy_certs_reload(struct tproxy_certs *c, bool force);

/* A snapshot of the counters and the current certificate. Thread-safe. */
void tproxy_certs_stats(const struct tproxy_certs *c, struct tproxy_certs_stats *ret);

/* Starts a new session ticket key now (the current one becomes the previous, the previous is
 * dropped: tickets made with it no longer resume). Done by itself every
 * TPROXY_CERTS_TICKET_ROTATE_S; exposed for tests and for an operator's forced rotation. */
int tproxy_certs_tickets_rotate(struct tproxy_certs *c);

/* Dev mode: writes a self-signed EC P-256 certificate (CN "*.<base_domain>", SAN DNS
 * "*.<base_domain>" and "<base_domain>", valid one year) to cert_path (0644) and its key to
 * key_path (0600), each atomically. Does nothing and returns 0 when both files already hold a
 * matching pair that has not expired. */
int tproxy_certs_selfsigned_write(const char *cert_path, const char *key_path,
                                  const char *base_domain);
